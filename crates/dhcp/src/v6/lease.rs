//! A DHCPv6 lease as the client holds it: one address of its IA_NA with its lifetimes, the
//! server that gave it, the IA's timers; serializable, so that a renewer can be killed and
//! another one carry on from the stored copy.

use std::{
    net::Ipv6Addr,
    time::{Duration, SystemTime},
};

use serde::{Deserialize, Serialize};

/// An address leased by a DHCPv6 server, with its timers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The leased address. An IA_NA address is a /128 (RFC 8415 gives no prefix): the prefix
    /// the link is on comes from router advertisements, or from the network's `--subnet`.
    pub address: Ipv6Addr,
    /// The server's DUID (its server identifier).
    pub server_id: Vec<u8>,
    /// The server's address, when it allowed unicast (option 12): RENEW and RELEASE go there.
    pub unicast: Option<Ipv6Addr>,
    /// Name servers (option 23), shown, not applied.
    pub dns: Vec<Ipv6Addr>,
    /// When the REPLY came.
    pub obtained: SystemTime,
    /// When to renew (to the lease's server).
    pub t1: SystemTime,
    /// When to rebind (to any server).
    pub t2: SystemTime,
    /// When the address stops being preferred.
    pub preferred_until: SystemTime,
    /// When the address must be gone.
    pub expiry: SystemTime,
}

impl Lease {
    /// The seconds of preferred lifetime left at `now` (as `ip addr add … preferred_lft`).
    pub fn preferred_left(&self, now: SystemTime) -> Duration {
        self.preferred_until
            .duration_since(now)
            .unwrap_or(Duration::ZERO)
    }

    /// The valid lifetime left at `now` (as `ip addr add … valid_lft`).
    pub fn valid_left(&self, now: SystemTime) -> Duration {
        self.expiry.duration_since(now).unwrap_or(Duration::ZERO)
    }

    /// The lease's length, from the REPLY to expiry.
    pub fn length(&self) -> Duration {
        self.expiry
            .duration_since(self.obtained)
            .unwrap_or(Duration::ZERO)
    }
}
