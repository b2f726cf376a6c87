//! What the v6 machine is told it is ([`Config`]) and what it answers with ([`Step`]: a
//! message to send and where, an [`Event`], the next deadline).

use std::{net::Ipv6Addr, time::SystemTime};

use crate::{ClientId, v6::Lease};

/// Who the client is and what it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The identity: its DUID is the client identifier, its IAID the IA_NA's (the same as the
    /// v4 client's option 61, as RFC 4361 asks).
    pub client_id: ClientId,
    /// The hostname to send (option 39).
    pub hostname: Option<String>,
    /// The network's `--subnet`: an address outside it is refused.
    pub subnet: Option<(Ipv6Addr, u8)>,
}

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum To {
    /// All DHCP relay agents and servers, `ff02::1:2` port 547, on the link.
    AllServers,
    /// The server, unicast (it allowed it with option 12).
    Server(Ipv6Addr),
}

/// A message to send (from the link's link-local address, port 546).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The DHCPv6 message (the UDP payload).
    pub bytes: Vec<u8>,
    /// Where to.
    pub to: To,
}

/// What happened, for the caller to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A lease was given after a SOLICIT: add its address (without DAD).
    Bound(Lease),
    /// The lease was extended (renewed or rebound); its address may have changed.
    Extended(Lease),
    /// The server took the address back (a valid lifetime of 0), has no address for the client
    /// (NoAddrsAvail, NotOnLink), or no longer knows the lease and refused or left unanswered
    /// the REQUEST for it that followed (NoBinding): remove the address; soliciting starts
    /// again.
    Lost(Lease),
    /// The lease ran out unanswered: remove the address.
    Expired(Lease),
    /// The RELEASE was answered (`true`) or sent its times unanswered (`false`).
    Released(bool),
}

/// What the caller does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// A message to send now.
    pub send: Option<Outgoing>,
    /// Something that happened.
    pub event: Option<Event>,
    /// When to call [`Client::tick`] at the latest.
    pub deadline: SystemTime,
}

pub(crate) fn send(bytes: Vec<u8>, to: To, deadline: SystemTime) -> Step {
    Step {
        send: Some(Outgoing { bytes, to }),
        event: None,
        deadline,
    }
}

pub(crate) fn event(event: Event, deadline: SystemTime) -> Step {
    Step {
        send: None,
        event: Some(event),
        deadline,
    }
}
