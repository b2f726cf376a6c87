//! Why a DHCPv6 answer was refused, and what the v6 client's calls fail with.

use std::{io, net::Ipv6Addr, time::Duration};

use crate::error::refused_note;

/// Why a server's answer was refused: each names what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Larger than a client takes.
    #[error("{len} bytes, more than {max}")]
    TooLarge {
        /// The answer's length.
        len: usize,
        /// The most a client takes.
        max: usize,
    },
    /// Not a DHCPv6 message (a short header, an option past the end, an option of the wrong
    /// length, …).
    #[error("malformed: {0}")]
    Malformed(String),
    /// More options (nested ones counted) than a client takes.
    #[error("more options than {}", crate::v6::answer::MAX_OPTIONS)]
    TooManyOptions,
    /// Not an answer to the transaction in flight.
    #[error("transaction {got:#08x}, not ours ({want:#08x})")]
    Xid {
        /// The answer's transaction.
        got: u32,
        /// Ours.
        want: u32,
    },
    /// A message type that does not answer what was sent.
    #[error("message type {0}, not expected here")]
    MessageType(u8),
    /// No client identifier, or another client's.
    #[error("for another client identifier")]
    ClientId,
    /// No server identifier, or one no DUID can be.
    #[error("no server identifier")]
    NoServerId,
    /// From another server than the one the client deals with.
    #[error("from another server than the lease's")]
    Server,
    /// A rapid-commit REPLY to a SOLICIT: the client does not ask for one.
    #[error("a rapid commit the client did not ask for")]
    RapidCommit,
    /// An address no host can take (unspecified, loopback, multicast, link-local).
    #[error("address {0} cannot be a host's")]
    BadAddress(Ipv6Addr),
    /// An address outside the network's `--subnet`.
    #[error("address {address} outside the subnet {subnet}")]
    OutsideSubnet {
        /// The address offered.
        address: Ipv6Addr,
        /// The network's subnet.
        subnet: String,
    },
    /// T1 after T2 (RFC 8415, 21.4: the IA is discarded).
    #[error("T1 {t1} s after T2 {t2} s")]
    Timers {
        /// T1.
        t1: u32,
        /// T2.
        t2: u32,
    },
    /// No address for the client's IA (NoAddrsAvail, or none given).
    #[error("no address offered ({0})")]
    NoAddress(String),
    /// A status code that ends nothing and changes nothing (UnspecFail, …).
    #[error("status {code}: {message}")]
    Status {
        /// The code.
        code: u16,
        /// The server's text.
        message: String,
    },
}

/// What the v6 client's calls fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An answer was refused.
    #[error("refused a DHCPv6 answer: {0}")]
    Refused(#[from] Refused),
    /// A message could not be built (a hostname that is no domain name, …).
    #[error("cannot build the DHCPv6 message: {0}")]
    Build(String),
    /// No server answered before the deadline (refused answers counted, the last one's reason
    /// kept).
    #[error(
        "no DHCPv6 answer on {link} within {timeout:?}{}{on_host}",
        refused_note(*refused, last)
    )]
    Timeout {
        /// The link the exchange ran on.
        link: String,
        /// The whole exchange's deadline.
        timeout: Duration,
        /// How many answers were refused.
        refused: usize,
        /// Why the last one was.
        last: Option<Refused>,
        /// Empty, or why the server may be unreachable: one listens on this host
        /// ([`crate::here`]).
        on_host: &'static str,
    },
    /// The link has no link-local address to send from (within the wait).
    #[error("no IPv6 link-local address on {0} (IPv6 disabled on the link?)")]
    NoLinkLocal(String),
    /// The caller's note of the lease an ADVERTISE offers (or of its REQUEST given nothing)
    /// failed: the exchange ends there, no REQUEST sent for it.
    #[error("the DHCPv6 lease of {address} could not be noted: {why}")]
    Unnoted {
        /// The address offered.
        address: Ipv6Addr,
        /// Why the note failed.
        why: String,
    },
    /// The socket failed.
    #[error("DHCPv6 socket on {link}: {source}")]
    Socket {
        /// The link.
        link: String,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
}

/// The v6 client's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
