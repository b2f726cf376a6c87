use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde::Serialize;

use crate::Result;

/// Who holds a lease: one interface of one container.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Owner {
    pub container_id: String,
    pub ifname: String,
}

/// One leased address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    pub ip: IpAddr,
    pub subnet: IpNetwork,
    pub network: String,
    #[serde(flatten)]
    pub owner: Owner,
}

/// The view of the store inside one transaction, which is all the allocator needs.
pub trait Txn {
    /// Leases `owner` holds on `network`.
    fn owner_leases(&mut self, network: &str, owner: &Owner) -> Result<Vec<Lease>>;
    /// The lease on `ip`, on any network: overlapping networks share one address space.
    fn lease_of(&mut self, ip: IpAddr) -> Result<Option<Lease>>;
    /// The lowest key in `lo..=hi` that is neither leased nor in `reserved` (sorted).
    fn lowest_free(&mut self, lo: u128, hi: u128, reserved: &[u128]) -> Result<Option<u128>>;
    fn insert(&mut self, lease: &Lease) -> Result<()>;
    /// How many addresses in `lo..=hi` are leased, on any network.
    fn count_leased(&mut self, lo: u128, hi: u128) -> Result<u128>;
}

/// A durable lease store shared by every hook process on the host.
pub trait LeaseStore {
    /// Runs `f` in one transaction, holding the store's write lock: commits if `f` succeeds,
    /// leaves the store untouched if it fails.
    fn transaction<T>(&mut self, f: impl FnOnce(&mut dyn Txn) -> Result<T>) -> Result<T>;
    /// Releases every lease of `container_id` and returns them. Releasing nothing is not an error.
    fn release_container(&mut self, container_id: &str) -> Result<Vec<Lease>>;
    /// Releases the leases of one interface of a container on one network.
    fn release(&mut self, network: &str, owner: &Owner) -> Result<Vec<Lease>>;
    /// Releases the leases of `owner` on exactly these addresses (what one attach leased);
    /// any other lease of the owner stays.
    fn release_ips(&mut self, owner: &Owner, ips: &[IpAddr]) -> Result<Vec<Lease>>;
    /// Every lease `container_id` holds, in address order.
    fn container_leases(&mut self, container_id: &str) -> Result<Vec<Lease>>;
    /// Every lease on `network`, in address order.
    fn network_leases(&mut self, network: &str) -> Result<Vec<Lease>>;
    /// Every lease, in address order.
    fn all_leases(&mut self) -> Result<Vec<Lease>>;
    /// Problems the store finds in its own files (empty when sound).
    fn integrity_problems(&mut self) -> Result<Vec<String>>;
    /// Rebuilds derived indexes that disagree with the leases (after a hand edit of the store);
    /// returns whether anything was rebuilt. The leases themselves are never changed.
    fn repair_index(&mut self) -> Result<bool>;
}
