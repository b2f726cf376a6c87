use std::{io, net::Ipv4Addr, time::Duration};

/// Why an answer from a server was refused: each names what was wrong with it.
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
    /// Not a DHCP message (a short header, no magic cookie, an option past the end, …).
    #[error("malformed: {0}")]
    Malformed(String),
    /// More options than a client takes.
    #[error("{count} options, more than {max}")]
    TooManyOptions {
        /// How many the answer carries.
        count: usize,
        /// The most a client takes.
        max: usize,
    },
    /// Not an answer to the transaction in flight.
    #[error("transaction {got:#010x}, not ours ({want:#010x})")]
    Xid {
        /// The answer's transaction.
        got: u32,
        /// Ours.
        want: u32,
    },
    /// For another client's hardware address.
    #[error("for hardware address {0}, not ours")]
    Chaddr(String),
    /// For another client identifier (RFC 6842 echoes it).
    #[error("for another client identifier")]
    ClientId,
    /// Not a BOOTREPLY.
    #[error("not a reply (op {0})")]
    NotReply(u8),
    /// No message type, or one that does not answer what was sent.
    #[error("message type {0}, not expected here")]
    MessageType(String),
    /// No server identifier (option 54).
    #[error("no server identifier")]
    NoServerId,
    /// From another server than the one the client deals with.
    #[error("from server {got}, not {want}")]
    Server {
        /// The answer's server identifier.
        got: Ipv4Addr,
        /// The server the client deals with.
        want: Ipv4Addr,
    },
    /// A server identifier no server can have: in 0.0.0.0/8, loopback, link-local, multicast,
    /// reserved or broadcast, or the very address it leases.
    #[error("server identifier {0} cannot be a server's")]
    BadServer(Ipv4Addr),
    /// An ACK, in REQUESTING, of another address than the one requested.
    #[error("ACK of {acked}, not of the requested {requested}")]
    AckedOther {
        /// The address the ACK leases.
        acked: Ipv4Addr,
        /// The address the REQUEST asked for.
        requested: Ipv4Addr,
    },
    /// A subnet mask shorter than [`crate::answer::MIN_PREFIX`] that no `--subnet` allows.
    #[error("subnet mask /{0} is wider than a LAN")]
    WideMask(u8),
    /// An address no host can take (in 0.0.0.0/8, loopback, link-local, multicast, reserved,
    /// broadcast, or the subnet's network or broadcast address).
    #[error("address {0} cannot be a host's")]
    BadAddress(Ipv4Addr),
    /// An address outside the network's `--subnet`.
    #[error("address {address} outside the subnet {subnet}")]
    OutsideSubnet {
        /// The address offered.
        address: Ipv4Addr,
        /// The network's subnet.
        subnet: String,
    },
    /// No subnet mask (option 1), and no `--subnet` to take the prefix from.
    #[error("no subnet mask")]
    NoMask,
    /// A subnet mask whose ones are not contiguous.
    #[error("subnet mask {0} is not a prefix")]
    BadMask(Ipv4Addr),
    /// A router (option 3) or a route's gateway (option 121) outside the leased subnet.
    #[error("gateway {gateway} outside the leased subnet {subnet}")]
    GatewayOutside {
        /// The gateway.
        gateway: Ipv4Addr,
        /// The leased subnet.
        subnet: String,
    },
    /// Classless static routes (option 121) that do not decode.
    #[error("classless static routes: {0}")]
    Routes(String),
    /// No lease time (option 51) in an ACK, or a lease of zero seconds.
    #[error("no lease time")]
    NoLeaseTime,
}

/// What this crate's calls fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An answer was refused.
    #[error("refused a DHCP answer: {0}")]
    Refused(#[from] Refused),
    /// A message could not be built (a hostname too long, …).
    #[error("cannot build the DHCP message: {0}")]
    Build(String),
    /// No server answered before the deadline (answers that were refused are counted, and the
    /// last one's reason kept: a server that answers wrongly is told from one that is silent).
    #[error(
        "no DHCP answer on {link} within {timeout:?}{}{on_host}",
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
    /// A server refused the request (DHCPNAK).
    #[error("the DHCP server {server} refused the request on {link} (NAK)")]
    Nak {
        /// The link.
        link: String,
        /// The server that said no.
        server: Ipv4Addr,
    },
    /// The caller's note of an offer, taken before its REQUEST goes out, failed: the REQUEST
    /// was not sent.
    #[error("the offer of {address} could not be noted before its REQUEST: {why}")]
    Unnoted {
        /// The address offered.
        address: Ipv4Addr,
        /// Why the note failed.
        why: String,
    },
    /// The NAK of a noted offer's REQUEST could not be noted: the note still names the offer,
    /// which the server holds nothing for (no RELEASE may be sent for it).
    #[error(
        "the NAK of the REQUEST for {address} could not be noted (the offer stays noted, \
         but the server holds nothing for it): {why}"
    )]
    NakUnnoted {
        /// The address the NAKed REQUEST asked for.
        address: Ipv4Addr,
        /// Why the note failed.
        why: String,
    },
    /// The packet socket failed.
    #[error("DHCP socket on {link}: {source}")]
    Socket {
        /// The link.
        link: String,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
}

/// The timeout's note on refused answers (v4's and v6's): how many, and the last one's reason.
pub(crate) fn refused_note(refused: usize, last: &Option<impl std::fmt::Display>) -> String {
    match last {
        Some(why) if refused > 0 => format!(" ({refused} answers refused, the last: {why})"),
        _ => String::new(),
    }
}

/// This crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
