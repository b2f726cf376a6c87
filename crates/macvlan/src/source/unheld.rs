//! A transaction in which an owner holds nothing: for an attach whose container has no record
//! of an earlier run on that network, a lease its owner (container id and interface, of this
//! host's id) holds in the store is not its own re-run's but someone else's (another machine
//! presenting this host's id): taken, never adopted.

use std::net::IpAddr;

use oci_macvlan_ipam::{Lease, Owner, Result, Txn, View};

pub(super) struct Unheld<'a>(pub(super) &'a mut dyn Txn);

impl View for Unheld<'_> {
    fn owner_leases(&mut self, _network: &str, _owner: &Owner) -> Result<Vec<Lease>> {
        Ok(Vec::new())
    }

    fn lease_of(&mut self, ip: IpAddr) -> Result<Option<Lease>> {
        self.0.lease_of(ip)
    }

    fn lowest_free(&mut self, lo: u128, hi: u128, reserved: &[u128]) -> Result<Option<u128>> {
        self.0.lowest_free(lo, hi, reserved)
    }

    fn count_leased(&mut self, lo: u128, hi: u128) -> Result<u128> {
        self.0.count_leased(lo, hi)
    }

    fn network_leases(&mut self, network: &str) -> Result<Vec<Lease>> {
        self.0.network_leases(network)
    }
}

impl Txn for Unheld<'_> {
    fn insert(&mut self, lease: &Lease) -> Result<()> {
        self.0.insert(lease)
    }
}
