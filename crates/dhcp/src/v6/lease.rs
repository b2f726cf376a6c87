//! A DHCPv6 lease as the client holds it: one address of its IA_NA with its lifetimes, the
//! server that gave it, the IA's timers; serializable, so that a renewer can be killed and
//! another one carry on from the stored copy.

use std::{
    net::Ipv6Addr,
    time::{Duration, SystemTime},
};

use serde::{Deserialize, Serialize};

use crate::v6::answer::{Answer, IaAddress};

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

fn at(now: SystemTime, secs: u32) -> SystemTime {
    // An infinite lifetime (0xffffffff) is a very long one.
    now.checked_add(Duration::from_secs(u64::from(secs)))
        .unwrap_or(now)
}

/// The lease a REPLY gives for `given` at `now`. T1 and T2 are the server's when it set them;
/// 0 leaves them to the client: 0.5 and 0.8 of the preferred lifetime (RFC 8415, 21.4), never
/// past the valid lifetime.
pub(crate) fn lease_of(answer: &Answer, given: IaAddress, now: SystemTime) -> Lease {
    let (t1, t2) = answer.ia.as_ref().map_or((0, 0), |ia| (ia.t1, ia.t2));
    let base = if given.preferred > 0 {
        given.preferred
    } else {
        given.valid
    };
    let t1 = if t1 == 0 { base / 2 } else { t1 };
    let t2 = if t2 == 0 {
        (u64::from(base) * 4 / 5) as u32
    } else {
        t2
    };
    let expiry = at(now, given.valid);
    let t2 = at(now, t2.max(t1)).min(expiry);
    let t1 = at(now, t1).min(t2);
    Lease {
        address: given.address,
        server_id: answer.server_id.clone(),
        unicast: answer.unicast,
        dns: answer.dns.clone(),
        obtained: now,
        t1,
        t2,
        preferred_until: at(now, given.preferred).min(expiry),
        expiry,
    }
}
