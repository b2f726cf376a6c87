use std::{
    net::IpAddr,
    time::{SystemTime, UNIX_EPOCH},
};

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Who holds a lease: one interface of one container.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Owner {
    /// The container's id.
    pub container_id: String,
    /// Its interface on the network.
    pub ifname: String,
}

/// One leased address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    /// The address.
    pub ip: IpAddr,
    /// The subnet (pool) it is leased from.
    pub subnet: IpNetwork,
    /// The network it is leased on.
    pub network: String,
    /// Who holds it.
    #[serde(flatten)]
    pub owner: Owner,
    /// The host whose container holds the lease, in a store several hosts share (`None` in a
    /// store of this host alone). A store fills it in: what a caller sets is ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// A lease as every store keeps it under its address (the key): JSON. A store of one host
/// leaves `host` out, as the LMDB store has always written it.
#[derive(Debug, Serialize, Deserialize)]
pub struct StoredLease {
    /// The network it is leased on.
    pub network: String,
    /// The subnet it is leased from.
    pub subnet: IpNetwork,
    /// The host that holds it, in a shared store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The container that holds it.
    pub container_id: String,
    /// The container's interface.
    pub ifname: String,
    /// When it was leased (seconds since the epoch; 0 in leases of early builds).
    #[serde(default)]
    pub created_unix: u64,
}

impl StoredLease {
    /// `lease` as `host`'s (none: a store of one host), created now.
    pub fn of(lease: &Lease, host: Option<&str>) -> Self {
        Self {
            network: lease.network.clone(),
            subnet: lease.subnet,
            host: host.map(str::to_owned),
            container_id: lease.owner.container_id.clone(),
            ifname: lease.owner.ifname.clone(),
            created_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }

    /// The lease as its store keeps it: JSON.
    pub fn encode(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|err| Error::Corrupt(err.to_string()))
    }

    /// The lease of `ip` stored as `value`; `what` names it in the error.
    pub fn decode(ip: IpAddr, value: &[u8], what: &str) -> Result<Lease> {
        let row: Self = serde_json::from_slice(value)
            .map_err(|err| Error::Corrupt(format!("{what}: {err}")))?;
        Ok(Lease {
            ip,
            subnet: row.subnet,
            network: row.network,
            owner: Owner {
                container_id: row.container_id,
                ifname: row.ifname,
            },
            host: row.host,
        })
    }
}

/// What a transaction reads: the whole view of the store the allocator and `inspect` need.
/// Inside one [`LeaseStore::view`] or [`LeaseStore::run`] every read sees one snapshot.
pub trait View {
    /// Leases `owner` (of this host) holds on `network`.
    fn owner_leases(&mut self, network: &str, owner: &Owner) -> Result<Vec<Lease>>;
    /// The lease on `ip`, on any network (and any host): overlapping networks share one
    /// address space.
    fn lease_of(&mut self, ip: IpAddr) -> Result<Option<Lease>>;
    /// The lowest key in `lo..=hi` that is neither leased nor in `reserved` (sorted).
    fn lowest_free(&mut self, lo: u128, hi: u128, reserved: &[u128]) -> Result<Option<u128>>;
    /// How many addresses in `lo..=hi` are leased, on any network.
    fn count_leased(&mut self, lo: u128, hi: u128) -> Result<u128>;
    /// Every lease on `network`, of every host, in address order (`inspect` reads them with
    /// the pools' usage, in one snapshot).
    fn network_leases(&mut self, network: &str) -> Result<Vec<Lease>>;
}

/// A read-write transaction: the view, and the leases it adds. Nothing is visible to others
/// before the store commits it, and a store may discard it and run the closure again.
pub trait Txn: View {
    /// Adds `lease` (its address free in this transaction's view), committed with the rest.
    fn insert(&mut self, lease: &Lease) -> Result<()>;
}

/// What every lease store answers, and so also a [`crate::StoreSet`] of several: releases and
/// reads that need no transaction, the store's own checks and upkeep. `detach`, `gc` and
/// `verify` work through this trait, over the stores a record or a host's definitions name.
///
/// Every method may fail with [`Error::Unavailable`] (a networked store cannot be reached in
/// time); nothing is then changed, and nothing may be assumed about the store.
pub trait LeaseSet {
    /// Releases every lease of `container_id` (of this host) and returns them. Releasing
    /// nothing is not an error.
    fn release_container(&mut self, container_id: &str) -> Result<Vec<Lease>>;
    /// Releases the leases of one interface of a container on one network.
    fn release(&mut self, network: &str, owner: &Owner) -> Result<Vec<Lease>>;
    /// Releases the leases of `owner` on exactly these addresses (what one attach leased);
    /// any other lease of the owner stays.
    fn release_ips(&mut self, owner: &Owner, ips: &[IpAddr]) -> Result<Vec<Lease>>;
    /// Every lease `container_id` (of this host) holds, in address order.
    fn container_leases(&mut self, container_id: &str) -> Result<Vec<Lease>>;
    /// Every lease on `network`, of every host, in address order.
    fn network_leases(&mut self, network: &str) -> Result<Vec<Lease>>;
    /// Every lease, of every host, in address order.
    fn all_leases(&mut self) -> Result<Vec<Lease>>;
    /// Whether a lease is this host's (`gc` and `verify` judge only those).
    fn is_ours(&self, lease: &Lease) -> bool;
    /// Problems the store finds in its own data (empty when sound).
    fn integrity_problems(&mut self) -> Result<Vec<String>>;
    /// The store's own upkeep, which `gc` runs (LMDB: rebuild derived indexes that disagree
    /// with the leases, clear readers of killed processes); one line per thing it did. The
    /// leases themselves are never changed.
    fn maintain(&mut self) -> Result<Vec<String>>;
    /// Releases every lease `host` holds: `gc --forget-host`, for a host gone for good. A
    /// store of one host has no other host's leases and returns none.
    fn forget_host(&mut self, host: &str) -> Result<Vec<Lease>>;
    /// An error when `host` may still run, by what this store knows of it (`gc --forget-host`
    /// asks before it asks the operator; [`LeaseSet::forget_host`] checks again). A store of
    /// one host knows of no other host.
    fn check_forgettable(&mut self, _host: &str) -> Result<()> {
        Ok(())
    }
    /// A hint that a transaction follows after some local work: a networked store may send
    /// the read it will decide on now, so that its answer comes during that work. Called
    /// under the caller's lock on what the transaction is about (the container's), so the
    /// read sees every earlier change of that caller. A store on this host ignores it.
    fn read_ahead(&mut self) {}
}

/// A durable lease store: the single point of truth for "who holds which address", shared by
/// every hook process on the host (LMDB) or on every host of a cluster (etcd). Beside what
/// every [`LeaseSet`] answers, one store runs transactions.
///
/// Object safe, so the store is picked from a network's definition at run time
/// (`Box<dyn LeaseStore>`). A store may be networked: [`LeaseStore::run`] may run its closure
/// more than once: a store with optimistic concurrency reads a snapshot, runs the closure, and
/// commits only if nothing it decided on changed meanwhile, else runs it again on a new
/// snapshot. The closure must have no effect outside the transaction.
///
/// Something that hands out addresses from elsewhere (a DHCP server: address, prefix and
/// gateway from the LAN) is not a store: it would sit above one, as `allocate` does, and record
/// what it got through [`Txn::insert`] so that detach, `gc` and `verify` work as they do now.
pub trait LeaseStore: LeaseSet {
    /// Runs `f` as one read-write transaction: commits what it inserted if it returns `Ok`,
    /// leaves the store untouched if it fails. `f` may be run again after a conflict.
    fn run(&mut self, f: &mut dyn FnMut(&mut dyn Txn) -> Result<()>) -> Result<()>;
    /// Runs `f` on a read-only snapshot: it never waits for writers nor blocks them.
    fn view(&mut self, f: &mut dyn FnMut(&mut dyn View) -> Result<()>) -> Result<()>;
    /// This store as a [`LeaseSet`] (what `detach`, `gc` and `verify` take): `self`.
    fn as_set(&mut self) -> &mut dyn LeaseSet;
}

/// The typed face of [`LeaseStore`]: closures that return a value.
pub trait LeaseStoreExt: LeaseStore {
    /// [`LeaseStore::run`] for a closure that returns a value (that of its last run).
    fn transaction<T>(&mut self, mut f: impl FnMut(&mut dyn Txn) -> Result<T>) -> Result<T> {
        let mut out = None;
        self.run(&mut |txn| {
            out = Some(f(txn)?);
            Ok(())
        })?;
        out.ok_or_else(|| Error::Corrupt("a transaction committed without running".into()))
    }

    /// [`LeaseStore::view`] for a closure that returns a value.
    fn read<T>(&mut self, mut f: impl FnMut(&mut dyn View) -> Result<T>) -> Result<T> {
        let mut out = None;
        self.view(&mut |view| {
            out = Some(f(view)?);
            Ok(())
        })?;
        out.ok_or_else(|| Error::Corrupt("a read ran no closure".into()))
    }
}

impl<S: LeaseStore + ?Sized> LeaseStoreExt for S {}
