//! One attempt of a store transaction (`LeaseStore::run`): the `View` and `Txn` the
//! allocator works on, over a snapshot of every lease and what the attempt inserted.
//!
//! **Why no address is handed out twice.** A transaction reads every lease under the prefix at one
//! revision (one linearizable range request), runs the allocator on that snapshot, and commits its
//! new leases in one etcd transaction whose compare is `create_revision(PREFIX/leases/<ip>) == 0`
//! for each of them: the write happens only if no host holds the key, whatever the snapshot said.
//! The key is the address, so two leases of one address are two writes of one key, and etcd's
//! serialisable transactions let exactly one see the key absent. When the compare fails (another
//! host took the address since the read), nothing is written, and the closure runs again on a new
//! snapshot, after a pause of up to 0.5 ms that differs per process, until `etcd_timeout` is spent
//! (then: exit 1, "N attempts conflicted"). A release deletes only keys whose `mod_revision` is the
//! one read, so it never deletes a lease another host wrote in between (`gc --forget-host` racing
//! that host). "Lowest free" is decided on the snapshot; if an address below was freed meanwhile, a
//! higher one is taken: never a duplicate. The snapshot's cost is one range of the prefix's leases
//! per attempt: fine for the /24s and /26s of a LAN; blocks claimed per host (Calico's design)
//! would make it constant, and are not built.

use std::{collections::BTreeMap, net::IpAddr};

use oci_macvlan_ipam::{Lease, Owner, Result, Txn, View, to_key};

use crate::Snapshot;

/// One attempt of a transaction: reads answer from the snapshot and what this attempt
/// inserted; inserts wait for the commit.
pub(crate) struct Attempt<'a> {
    pub(crate) snapshot: &'a Snapshot,
    pub(crate) pending: BTreeMap<u128, Lease>,
    pub(crate) host: &'a str,
}

impl Attempt<'_> {
    fn leased(&self, key: u128) -> bool {
        self.snapshot.leases.contains_key(&key)
            || self.snapshot.occupied.contains_key(&key)
            || self.pending.contains_key(&key)
    }
}

impl Attempt<'_> {
    fn leased_before(&self, key: u128) -> bool {
        self.snapshot.leases.contains_key(&key) || self.snapshot.occupied.contains_key(&key)
    }
}

impl View for Attempt<'_> {
    fn network_leases(&mut self, network: &str) -> Result<Vec<Lease>> {
        let mut leases: BTreeMap<u128, &Lease> = (self.snapshot.leases.iter())
            .map(|(key, (lease, _))| (*key, lease))
            .collect();
        leases.extend(self.pending.iter().map(|(key, lease)| (*key, lease)));
        Ok(leases
            .into_values()
            .filter(|l| l.network == network)
            .cloned()
            .collect())
    }

    fn owner_leases(&mut self, network: &str, owner: &Owner) -> Result<Vec<Lease>> {
        let snapshot = self.snapshot.leases.values().map(|(lease, _)| lease);
        Ok(snapshot
            .chain(self.pending.values())
            .filter(|l| {
                l.host.as_deref() == Some(self.host) && l.network == network && l.owner == *owner
            })
            .cloned()
            .collect())
    }

    fn lease_of(&mut self, ip: IpAddr) -> Result<Option<Lease>> {
        let key = to_key(ip);
        if let Some(why) = self.snapshot.occupied.get(&key) {
            // Not a lease, but the key is there: the address is taken all the same.
            return Ok(Some(Lease {
                ip,
                subnet: ipnetwork::IpNetwork::from(ip),
                network: String::new(),
                owner: Owner {
                    container_id: "(none: its etcd key holds no lease)".to_owned(),
                    ifname: why.clone(),
                },
                host: None,
            }));
        }
        Ok(self
            .pending
            .get(&key)
            .or_else(|| self.snapshot.leases.get(&key).map(|(lease, _)| lease))
            .cloned())
    }

    fn lowest_free(&mut self, lo: u128, hi: u128, reserved: &[u128]) -> Result<Option<u128>> {
        // Each step passes a leased or reserved address: at most leases + reserved + 1 steps.
        let mut key = lo;
        loop {
            if key > hi {
                return Ok(None);
            }
            if !self.leased(key) && reserved.binary_search(&key).is_err() {
                return Ok(Some(key));
            }
            match key.checked_add(1) {
                Some(next) => key = next,
                None => return Ok(None),
            }
        }
    }

    fn count_leased(&mut self, lo: u128, hi: u128) -> Result<u128> {
        let stored = self.snapshot.leases.range(lo..=hi).count()
            + self.snapshot.occupied.range(lo..=hi).count();
        let added = self
            .pending
            .range(lo..=hi)
            .filter(|(key, _)| !self.leased_before(**key))
            .count();
        Ok((stored + added) as u128)
    }
}

impl Txn for Attempt<'_> {
    fn insert(&mut self, lease: &Lease) -> Result<()> {
        let mut lease = lease.clone();
        lease.host = Some(self.host.to_owned());
        self.pending.insert(to_key(lease.ip), lease);
        Ok(())
    }
}
