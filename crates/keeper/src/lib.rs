//! A keeper: a process that keeps one duty for one container (a DHCP lease's renewal) after the
//! hook that started it has returned, under rules a runtime and a dead container impose:
//!
//! - **The hook returns at once** ([`Ready`], [`spawn`]): the keeper is started with every
//!   standard stream on `/dev/null` (a runtime waits for every writer of a hook's output) and
//!   leaves the hook's session as its command's first step ([`detach`]). A hook starts it
//!   with [`Ready`], which does not wait even for its `execve`.
//! - **It ends with its container** ([`Container`]): it waits on a pidfd of the container's
//!   process, checked against the process's start time, so a reused pid is never mistaken for
//!   it; it holds nothing of the container's (no namespace file between two acts), so a dead
//!   container keeps nothing alive. A container with no process to watch (a CNI attachment)
//!   is watched by its namespace's path instead ([`Container::by_netns`]): a `stat` every
//!   second, the same device and inode as at attach.
//! - **Killing it loses nothing** ([`Slot`], [`run`]): keepers come in pairs, an active one and
//!   a standby twin, told apart by two `flock`s in the duty's slot directory. When the active
//!   one dies its lock is free and the standby takes over at once (the duty's schedule is in
//!   its own store, so the next act is still on time); when the standby dies the active one
//!   starts another. A keeper started for a slot that has both exits: starting one again (a hook
//!   re-run) is harmless.
//!
//! What the duty is, where it keeps its schedule, and how it enters the container's namespace
//! ([`Container::netns`]) are the caller's ([`Duty`]).

#![warn(missing_docs)]

mod container;
pub use container::start_time;
mod error;
mod netns_watch;
mod run;
mod slot;
mod spawn;

pub use container::Container;
pub use error::{Error, Result};
pub use run::{Duty, Ended, run};
pub use slot::{Role, Slot};
pub use spawn::{Ready, detach, spawn};
