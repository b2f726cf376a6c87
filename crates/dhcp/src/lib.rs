//! A DHCPv4 client for one container's link (RFC 2131), in pieces a caller puts together:
//!
//! - [`identity`]: the client identifier (RFC 4361: type 255, IAID and DUID), derived from a
//!   per-host secret, the network and the container, so that a restart or a re-create asks for
//!   the same lease and two hosts cloned from one image never collide;
//! - [`message`]: DISCOVER, REQUEST (selecting, renewing, rebinding) and RELEASE, built with
//!   `dhcproto`;
//! - [`answer`]: a server's answer decoded and checked (transaction, hardware address, message
//!   type, server, the address inside the expected subnet, the router and the classless static
//!   routes inside the leased subnet, the timers), refused with an error that names why;
//! - [`machine`]: the client's states as a pure machine driven by "a message came" and "the time
//!   is now", with the [`Lease`] it holds serializable, so that a renewer can be killed and
//!   restarted from a stored lease;
//! - [`socket`] and [`frame`]: DHCP on one link of the caller's namespace, broadcasts as whole
//!   frames over an `AF_PACKET` socket with the link's own MAC as source, and [`exchange`]
//!   drives the machine over it under one deadline (`dhcp_timeout`, [`DEFAULT_TIMEOUT`]).
//!
//! [`probe`] sends one DISCOVER and reports the offers, taking no lease (`doctor`'s question:
//! does a server answer on this LAN?).
//!
//! [`v6`] is the DHCPv6 client (RFC 8415, IA_NA) on the same identity.
//!
//! Nothing here knows about containers, stores or netlink: the caller applies the lease.

#![warn(missing_docs)]

pub mod answer;
mod drive;
mod error;
pub mod exchange;
#[cfg(test)]
mod fake;
pub mod frame;
pub mod here;
pub mod identity;
pub mod lease;
pub mod machine;
pub mod message;
pub mod probe;
pub mod routes;
pub mod socket;
pub mod v6;

pub use answer::{Answer, Expect};
pub use error::{Error, Refused, Result};
pub use exchange::{DEFAULT_TIMEOUT, acquire, acquire_noting, decline, next_event, open, release};
pub use identity::ClientId;
pub use lease::{Lease, Route};
pub use machine::{Client, Config, Event, Outgoing, State, Step, To};
pub use socket::{OnLink, PacketLink};
