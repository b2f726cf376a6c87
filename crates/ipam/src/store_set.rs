//! The fan-out over several lease stores: what detach, `gc`, `verify` and `gc --forget-host`
//! ask of every store a record or the definitions name. It answers what a [`LeaseSet`] answers
//! and nothing more: a transaction needs one store, so a set offers none (an attach opens the
//! store of its networks alone), rather than refusing one at run time.

use std::net::IpAddr;

use crate::{Lease, LeaseSet, LeaseStore, Owner, Result};

/// Several stores seen as one [`LeaseSet`]: each call goes to every member, in order, and the
/// answers are put together; the first error ends the call.
pub struct StoreSet {
    members: Vec<Box<dyn LeaseStore>>,
}

impl std::fmt::Debug for StoreSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreSet({} stores)", self.members.len())
    }
}

impl StoreSet {
    /// The set of `members` (each store once: a store named twice would count its leases twice).
    pub fn new(members: Vec<Box<dyn LeaseStore>>) -> Self {
        Self { members }
    }

    /// How many stores the set holds.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the set holds no store.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    fn each(
        &mut self,
        mut f: impl FnMut(&mut dyn LeaseStore) -> Result<Vec<Lease>>,
    ) -> Result<Vec<Lease>> {
        let mut out = Vec::new();
        for member in &mut self.members {
            out.extend(f(member.as_mut())?);
        }
        Ok(out)
    }

    fn lines(
        &mut self,
        mut f: impl FnMut(&mut dyn LeaseStore) -> Result<Vec<String>>,
    ) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for member in &mut self.members {
            out.extend(f(member.as_mut())?);
        }
        Ok(out)
    }
}

impl LeaseSet for StoreSet {
    fn release_container(&mut self, container_id: &str) -> Result<Vec<Lease>> {
        self.each(|s| s.release_container(container_id))
    }

    fn release(&mut self, network: &str, owner: &Owner) -> Result<Vec<Lease>> {
        self.each(|s| s.release(network, owner))
    }

    fn release_ips(&mut self, owner: &Owner, ips: &[IpAddr]) -> Result<Vec<Lease>> {
        self.each(|s| s.release_ips(owner, ips))
    }

    fn container_leases(&mut self, container_id: &str) -> Result<Vec<Lease>> {
        self.each(|s| s.container_leases(container_id))
    }

    fn network_leases(&mut self, network: &str) -> Result<Vec<Lease>> {
        self.each(|s| s.network_leases(network))
    }

    fn all_leases(&mut self) -> Result<Vec<Lease>> {
        self.each(|s| s.all_leases())
    }

    fn is_ours(&self, lease: &Lease) -> bool {
        self.members.iter().any(|s| s.is_ours(lease))
    }

    fn integrity_problems(&mut self) -> Result<Vec<String>> {
        self.lines(|s| s.integrity_problems())
    }

    fn maintain(&mut self) -> Result<Vec<String>> {
        self.lines(|s| s.maintain())
    }

    fn forget_host(&mut self, host: &str) -> Result<Vec<Lease>> {
        self.each(|s| s.forget_host(host))
    }

    fn check_forgettable(&mut self, host: &str) -> Result<()> {
        for member in &mut self.members {
            member.check_forgettable(host)?;
        }
        Ok(())
    }

    fn read_ahead(&mut self) {
        for member in &mut self.members {
            member.read_ahead();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{LeaseStoreExt, LmdbStore};

    /// Two stores as one: reads and releases reach both, and their leases are counted once
    /// each (a store put in twice would count its leases twice: the caller puts each once).
    #[test]
    fn a_set_reads_and_releases_every_member() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let lease = |ip: &str| Lease {
            ip: ip.parse().unwrap(),
            subnet: "10.0.0.0/24".parse().unwrap(),
            network: "n".into(),
            owner: Owner {
                container_id: "c1".into(),
                ifname: "eth0".into(),
            },
            host: None,
        };
        let mut stores: Vec<Box<dyn LeaseStore>> = Vec::new();
        for (dir, ip) in [(&a, "10.0.0.2"), (&b, "10.0.0.3")] {
            let mut store = LmdbStore::open_thorough(dir.path()).unwrap();
            store.transaction(|txn| txn.insert(&lease(ip))).unwrap();
            stores.push(Box::new(store));
        }
        let mut set = StoreSet::new(stores);
        assert_eq!(set.len(), 2);
        assert_eq!(set.container_leases("c1").unwrap().len(), 2);
        assert!(set.is_ours(&lease("10.0.0.2")));
        let released = set.release_container("c1").unwrap();
        let ips: Vec<String> = released.iter().map(|l| l.ip.to_string()).collect();
        assert_eq!(ips, ["10.0.0.2", "10.0.0.3"]);
        assert!(set.all_leases().unwrap().is_empty());
    }
}
