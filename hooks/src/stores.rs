//! The one place that picks a lease store: from the network definitions a command works on.
//! A network without `--ipam-opt` is on this host's LMDB store and never waits on etcd; a
//! network with `etcd_endpoints` is on that cluster, and an error reaching it is an error
//! (never a fallback to the local store: that is how duplicate addresses happen).

use oci_macvlan_ipam::{EtcdConfig, LeaseStore, LmdbStore, StoreChoice, Union};
use oci_macvlan_ipam_etcd::EtcdStore;
use oci_macvlan_macvlan::{
    self as macvlan, Network, Networks, RecordedEndpoint, Records, Unreachable,
};

use crate::{
    Context,
    error::{Error, Result},
};

/// What a command does with a shared store, and so whether it may make this host's identity
/// file (see `identity.rs`) when there is none yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Only reads: makes no file.
    Read,
    /// Writes (an attach, a detach, a disconnect): makes the file, with `--host-id` or else
    /// `/etc/machine-id`.
    Write,
    /// Writes as upkeep (`gc`, `gc --forget-host`, run by a timer or an operator, often without
    /// the hooks' `--host-id`): makes the file only with `--host-id`. Without it and without
    /// the file, nothing is written (the store says this host has no identity yet): guessing
    /// `/etc/machine-id` would pin an id the hooks, given another, then disagree with.
    Upkeep,
}

fn open_etcd(ctx: &Context, config: &EtcdConfig, access: Access) -> Result<EtcdStore> {
    let make = match access {
        Access::Read => false,
        Access::Write => true,
        Access::Upkeep => ctx.host_id.is_some(),
    };
    let identity = ctx.identity(make)?;
    EtcdStore::open(config, &identity).map_err(|err| macvlan::Error::store(err).into())
}

fn open_store(ctx: &Context, config: &EtcdConfig, access: Access) -> Result<Box<dyn LeaseStore>> {
    Ok(Box::new(open_etcd(ctx, config, access)?))
}

fn open_local(ctx: &Context, thorough: bool) -> Result<Box<dyn LeaseStore>> {
    let store = if thorough {
        LmdbStore::open_thorough(&ctx.state_dir)
    } else {
        LmdbStore::open(&ctx.state_dir)
    };
    Ok(Box::new(store.map_err(macvlan::Error::store)?))
}

/// The store of `networks` to read (`inspect`, `rm`, `doctor`): they must agree on it.
pub fn for_networks(
    ctx: &Context,
    networks: &[&Network],
    thorough: bool,
) -> Result<Box<dyn LeaseStore>> {
    networks_store(ctx, networks, thorough, Access::Read)
}

/// The store of an attach's `networks`, to write: they must agree on it.
pub fn for_attach(ctx: &Context, networks: &[&Network]) -> Result<Box<dyn LeaseStore>> {
    networks_store(ctx, networks, false, Access::Write)
}

fn networks_store(
    ctx: &Context,
    networks: &[&Network],
    thorough: bool,
    access: Access,
) -> Result<Box<dyn LeaseStore>> {
    let Some(first) = networks.first() else {
        return open_local(ctx, thorough);
    };
    let choice = first.store_choice();
    if let Some(other) = networks.iter().find(|n| n.store_choice() != choice) {
        return Err(Error::MixedStores {
            first: first.name.clone(),
            second: other.name.clone(),
        });
    }
    match choice {
        StoreChoice::Local => open_local(ctx, thorough),
        StoreChoice::Etcd(config) => open_store(ctx, &config, access),
    }
}

/// The store a network about to be created will use, from its `--ipam-opt` (`network create`
/// checks that no lease holds its `host_access` addresses, and on a shared store leases them:
/// `access` is then [`Access::Write`], which makes this host's identity file if there is none).
/// An option the definition would refuse is left to `network create`'s own validation, which
/// names it: the local store then.
pub fn for_ipam_options(
    ctx: &Context,
    ipam_options: &[String],
    access: Access,
) -> Result<Box<dyn LeaseStore>> {
    match oci_macvlan_ipam::parse_ipam_options(ipam_options) {
        Ok(StoreChoice::Etcd(config)) => open_store(ctx, &config, access),
        _ => open_local(ctx, false),
    }
}

/// The stores that may hold the leases of recorded `endpoints` (a detach, a disconnect): the
/// local store, and each etcd cluster they name, once. The record says where each endpoint's
/// leases are, so no definition is read: one removed or edited since the attach changes
/// nothing. Only an endpoint an earlier build recorded, without its store, has its network's
/// definition asked (and a definition that is gone leaves the local store alone to look in).
pub fn for_endpoints(ctx: &Context, endpoints: &[RecordedEndpoint]) -> Result<Box<dyn LeaseStore>> {
    endpoints_store(ctx, endpoints, Access::Write)
}

/// [`for_endpoints`] for `gc`'s take-back of a gone container ([`Access::Upkeep`]).
pub fn for_endpoints_upkeep(
    ctx: &Context,
    endpoints: &[RecordedEndpoint],
) -> Result<Box<dyn LeaseStore>> {
    endpoints_store(ctx, endpoints, Access::Upkeep)
}

fn endpoints_store(
    ctx: &Context,
    endpoints: &[RecordedEndpoint],
    access: Access,
) -> Result<Box<dyn LeaseStore>> {
    let networks = Networks::new(&ctx.config_dir);
    let mut clusters: Vec<EtcdConfig> = Vec::new();
    for endpoint in endpoints {
        add_cluster(&mut clusters, macvlan::store_of(endpoint, &networks));
    }
    if clusters.is_empty() {
        return open_local(ctx, false);
    }
    let mut members = vec![open_local(ctx, false)?];
    for config in &clusters {
        members.push(open_store(ctx, config, access)?);
    }
    Ok(Box::new(Union::new(members)))
}

/// Every cluster (by endpoints and prefix, once) the defined networks and the endpoint
/// records use. A record names its cluster even when the network's definition is gone, so
/// `gc` still takes back a gone container's leases there.
fn clusters(networks: &Networks, records: &Records) -> Result<Vec<EtcdConfig>> {
    let mut clusters: Vec<EtcdConfig> = Vec::new();
    let defined = networks.list()?.into_iter().map(|n| n.store_choice());
    // A record that cannot be read here is the core's to report, when it reads it.
    let recorded = records
        .list()?
        .into_iter()
        .filter_map(|id| records.read(&id).ok().flatten())
        .flat_map(|record| record.endpoints)
        .filter_map(|endpoint| endpoint.store);
    for choice in defined.chain(recorded) {
        add_cluster(&mut clusters, Some(choice));
    }
    Ok(clusters)
}

/// Adds the cluster of `choice` to `clusters`, unless it is there (by endpoints and prefix):
/// opened once, a cluster's leases are counted once.
fn add_cluster(clusters: &mut Vec<EtcdConfig>, choice: Option<StoreChoice>) {
    if let Some(StoreChoice::Etcd(config)) = choice {
        if !clusters.iter().any(|c| c.same_cluster(&config)) {
            clusters.push(config);
        }
    }
}

/// Every cluster the defined networks and the endpoint records use, opened for upkeep (`gc
/// --forget-host`, which needs them all), each once.
pub fn all_clusters(
    ctx: &Context,
    networks: &Networks,
    records: &Records,
) -> Result<Vec<EtcdStore>> {
    clusters(networks, records)?
        .iter()
        .map(|config| open_etcd(ctx, config, Access::Upkeep))
        .collect()
}

/// The local store and `clusters` as one.
pub fn with_local(ctx: &Context, clusters: Vec<EtcdStore>) -> Result<Union> {
    let mut members = vec![open_local(ctx, true)?];
    for store in clusters {
        members.push(Box::new(store) as Box<dyn LeaseStore>);
    }
    Ok(Union::new(members))
}

/// The stores of [`all_clusters`] and the local one that answer (`gc`, which writes, and
/// `verify`, which reads), and the clusters that do not, each with its error. A cluster is asked for its leases once here; one that cannot be reached in
/// its `etcd_timeout` is left out of the union and named, never read as "no leases". Any other
/// error is left to the command's own read of that store, which reports it as it always has.
pub fn answering(
    ctx: &Context,
    networks: &Networks,
    records: &Records,
    access: Access,
) -> Result<(Union, Vec<Unreachable>)> {
    let mut members = vec![open_local(ctx, true)?];
    let mut unreachable = Vec::new();
    for config in clusters(networks, records)? {
        let mut store = open_store(ctx, &config, access)?;
        match store.all_leases() {
            Err(err) if err.is_unavailable() => unreachable.push(Unreachable {
                config,
                error: macvlan::one_line(&err),
            }),
            _ => members.push(store),
        }
    }
    Ok((Union::new(members), unreachable))
}
