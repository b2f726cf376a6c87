//! A lease as the client holds it, serializable so that a renewer can be killed and another one
//! carry on from the stored copy.

use std::{
    net::Ipv4Addr,
    time::{Duration, SystemTime},
};

use serde::{Deserialize, Serialize};

/// One classless static route (option 121).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The destination network's address (host bits zero).
    pub destination: Ipv4Addr,
    /// The destination's prefix length.
    pub prefix: u8,
    /// The gateway; 0.0.0.0 when the destination is on the link.
    pub gateway: Ipv4Addr,
}

/// An address leased by a server, with its timers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The leased address.
    pub address: Ipv4Addr,
    /// Its prefix length (option 1, or the network's `--subnet`).
    pub prefix: u8,
    /// The first router (option 3), inside the leased subnet.
    pub router: Option<Ipv4Addr>,
    /// Classless static routes (option 121); when there are any, RFC 3442 says the router
    /// option is to be ignored for the default route: the caller applies these instead.
    pub routes: Vec<Route>,
    /// Name servers (option 6), shown, not applied.
    pub dns: Vec<Ipv4Addr>,
    /// The domain name (option 15), shown, not applied.
    pub domain: Option<String>,
    /// The server that gave the lease (option 54).
    pub server: Ipv4Addr,
    /// When the ACK came.
    pub obtained: SystemTime,
    /// When to renew (unicast to `server`).
    pub t1: SystemTime,
    /// When to rebind (broadcast to any server).
    pub t2: SystemTime,
    /// When the address must be gone.
    pub expiry: SystemTime,
}

impl Lease {
    /// The lease's length.
    pub fn length(&self) -> Duration {
        self.expiry
            .duration_since(self.obtained)
            .unwrap_or(Duration::ZERO)
    }

    /// The time left at `now` before the address must be gone (the kernel's `valid_lft`).
    pub fn left(&self, now: SystemTime) -> Duration {
        self.expiry.duration_since(now).unwrap_or(Duration::ZERO)
    }
}
