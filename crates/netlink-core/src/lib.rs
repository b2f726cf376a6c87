//! A typed layer over rtnetlink, bound to one network namespace.
//!
//! A [`Handle`] talks to exactly one network namespace for its whole life. For a namespace other
//! than the caller's, the calling thread enters the namespace for the `socket()` call only and
//! returns at once (`Netns::run_inside`, which aborts the process if it cannot return): no
//! thread, tokio's included, ever stays in a foreign namespace (rtnetlink#68,
//! kata-containers#5729).
//!
//! This crate knows nothing about containers, networks or leases.

#![warn(missing_docs)]

mod cookie;
mod error;
mod handle;
mod host_route;
mod ifname;
mod kinds;
mod link;
mod mac;
mod neigh;
mod netns;
mod nexthop;
mod probe;
mod route;

pub use error::{Error, KernelError, Result};
pub use handle::Handle;
pub use host_route::{Router, TableRoute};
pub use ifname::{MAX_IFNAME_LEN, ifname_problem};
pub use kinds::NewVlan;
pub use link::{
    ChildKind, ChildMode, ChildTag, IpvlanFlag, IpvlanMode, Link, MacAddr, MacvlanMode, NewChild,
    ParseMacError,
};
pub use neigh::{Neighbour, holds_address};
pub use netns::{Netns, NetnsId, Sysctl, file_kind};
pub use nexthop::{Nexthop, gateways_of, nexthops};
pub use nix::errno::Errno;
pub use probe::{Answer, PROBE_WAIT, packet_socket, probe};
