//! A DHCPv6 client for one container's link (RFC 8415, one IA_NA), in pieces a caller puts
//! together, as the v4 client:
//!
//! - the identity is the v4 client's [`ClientId`](crate::ClientId): its DUID (a DUID-UUID
//!   derived from the per-host secret, the network and the container) is the client
//!   identifier, its IAID the IA_NA's, so v4 and v6 name the same client (RFC 4361, 6.1);
//! - [`wire`]: the message format, and why not `dhcproto::v6`;
//! - [`message`]: SOLICIT, REQUEST, RENEW, REBIND, RELEASE, with the client FQDN (option 39);
//! - [`answer`]: an ADVERTISE or REPLY decoded and checked, refused with a reason;
//! - [`machine`]: the states as a pure machine over a serializable [`Lease`];
//! - [`socket`] and [`exchange`]: UDP from the link's link-local address, port 546, to
//!   `ff02::1:2` port 547 (or to the server when it allowed unicast), under one deadline;
//! - [`probe`]: one SOLICIT and the ADVERTISEs it brings, taking no lease (`doctor`'s).
//!
//! The caller applies the lease: it adds the address as a /128 (or with the `--subnet`'s
//! prefix) with `nodad`, and prepares the link first with [`socket::prepare_link`], so that
//! nothing waits for duplicate address detection.

mod error;

pub mod answer;
pub mod exchange;
#[cfg(test)]
mod fake;
pub mod lease;
pub mod machine;
pub mod message;
pub mod probe;
mod retrans;
pub mod socket;
mod step;
pub mod wire;

pub use error::{Error, Refused, Result};
pub use exchange::{acquire, acquire_noting, next_event, release};
pub use lease::Lease;
pub use machine::{Client, Config, Event, Outgoing, State, Step, To};
pub use retrans::Retrans;
pub use socket::{OnLink6, UdpLink, prepare_link};
