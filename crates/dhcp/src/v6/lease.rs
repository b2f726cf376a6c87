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

/// The lease a REPLY gives for `given` at `now`. T1 and T2 are the server's when they fall
/// inside the valid lifetime (T1 before T2). Otherwise — 0 (left to the client), at or past
/// the valid lifetime (a client would renew only as the address dies, or never), or T1 not
/// before T2 — they are 0.5 and 0.8 of the preferred lifetime (of the valid one when the
/// address is already deprecated), as RFC 8415 (21.4) recommends to servers: the preferred
/// lifetime is never past the valid one, so both fall before expiry, and the client renews
/// before the address is deprecated, not just before it is gone.
pub(crate) fn lease_of(answer: &Answer, given: IaAddress, now: SystemTime) -> Lease {
    let (t1, t2) = answer.ia.as_ref().map_or((0, 0), |ia| (ia.t1, ia.t2));
    let (t1, t2) = timers(t1, t2, given);
    let expiry = at(now, given.valid);
    let t2 = at(now, t2).min(expiry);
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

/// T1 and T2 (seconds) for the server's `t1` and `t2` and the address `given`: see
/// [`lease_of`].
fn timers(t1: u32, t2: u32, given: IaAddress) -> (u32, u32) {
    let base = u64::from(if given.preferred > 0 {
        given.preferred
    } else {
        given.valid
    });
    let (default_t1, default_t2) = ((base / 2) as u32, (base * 4 / 5) as u32);
    let t2 = Some(t2)
        .filter(|t| *t != 0 && *t < given.valid)
        .unwrap_or(default_t2);
    let t1 = Some(t1)
        .filter(|t| *t != 0 && *t < t2)
        .unwrap_or(default_t1.min(t2));
    (t1, t2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(preferred: u32, valid: u32) -> IaAddress {
        IaAddress {
            address: "2001:db8::5".parse().unwrap(),
            preferred,
            valid,
        }
    }

    #[test]
    fn timers_at_or_past_the_valid_lifetime_are_the_clients() {
        let a = address(80, 100);
        // The server's, when inside the valid lifetime.
        assert_eq!(timers(40, 70, a), (40, 70));
        // Left to the client.
        assert_eq!(timers(0, 0, a), (40, 64));
        assert_eq!(timers(30, 0, a), (30, 64));
        assert_eq!(timers(0, 90, a), (40, 90));
        // At or past the valid lifetime: renewing would start as the address dies.
        assert_eq!(timers(100, 100, a), (40, 64));
        assert_eq!(timers(50, 100, a), (50, 64));
        assert_eq!(timers(200, 300, a), (40, 64));
        // T1 not before T2 (T2 replaced): T1 too.
        assert_eq!(timers(70, 150, a), (40, 64));
        // A deprecated address (preferred 0): of the valid lifetime.
        assert_eq!(timers(0, 0, address(0, 100)), (50, 80));
        // Infinite lifetimes: no overflow.
        let (t1, t2) = timers(u32::MAX, u32::MAX, address(u32::MAX, u32::MAX));
        assert!(t1 < t2 && t2 < u32::MAX, "{t1} {t2}");
    }
}
