//! Children a short-lived process (a hook, a CLI command, the CNI plugin) makes and never
//! waits for, each made by `clone(CLONE_VM)` on a stack of its own and making raw system calls
//! only (`clone.rs`): [`close_later`] closes a packet socket there (its release waits for an
//! RCU grace period), [`Start`] starts a program there (`posix_spawn` waits for its `execve`).
//!
//! This crate knows nothing about containers, networks or leases.

#![warn(missing_docs)]

mod clone;
mod close_later;
mod start;

pub use close_later::{Closer, close_later};
pub use start::Start;
