use std::net::IpAddr;

use crate::{Pool, Result, View, addr::from_key};

/// How much of one pool's dynamic range is taken, for `network inspect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// Addresses of the dynamic range (the ip-range, or the whole subnet).
    pub dynamic_total: u128,
    /// Addresses of the dynamic range that the allocator may still hand out: neither reserved
    /// nor leased by any network (overlapping networks share one address space).
    pub dynamic_available: u128,
}

impl Pool {
    /// What is left of the pool's dynamic range, read in the caller's view of the store.
    /// `undeclared_router` is the network's, as [`crate::Request`] has it: the address
    /// [`Pool::kept_for_router`] is not available.
    pub fn usage(&self, txn: &mut dyn View, undeclared_router: bool) -> Result<Usage> {
        let (lo, hi) = self.dynamic_bounds();
        let total = (hi - lo).saturating_add(1);
        let leased = txn.count_leased(lo, hi)?;
        let mut unusable = leased;
        for key in self.reserved_keys(undeclared_router) {
            if key < lo || key > hi {
                continue;
            }
            // A reserved address may be leased by an overlapping network: count it once.
            let ip: IpAddr = from_key(key, self.is_ipv4());
            if txn.lease_of(ip)?.is_none() {
                unusable += 1;
            }
        }
        Ok(Usage {
            dynamic_total: total,
            dynamic_available: total.saturating_sub(unusable),
        })
    }
}
