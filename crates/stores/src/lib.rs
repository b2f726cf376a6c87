//! Store policy: which lease store serves a network, a record's endpoints or every cluster this
//! host uses, and this host's identity in stores several hosts share.
//!
//! A network without `--ipam-opt` is on this host's LMDB store and never waits on a cluster; a
//! network with `etcd_endpoints` is on that cluster, and an error reaching it is an error
//! (never a fallback to the local store: that is how duplicate addresses happen). The core
//! takes [`HostStores`] as its [`StorePolicy`]; every front door builds one from its config and
//! state dirs and passes it along, so none of them chooses a store itself.

mod error;
mod identity;

use std::path::{Path, PathBuf};

use oci_macvlan_ipam::{EtcdConfig, LeaseStore, LmdbStore, StoreChoice, StoreSet};
use oci_macvlan_ipam_etcd::EtcdStore;
use oci_macvlan_macvlan::{
    self as macvlan, Access, Network, Networks, RecordedEndpoint, Records, StorePolicy, Unreachable,
};

pub use error::{Error, Result};
pub use identity::{FILE as IDENTITY_FILE, check_host_id};

/// The stores of one host: its local store in the state dir, the clusters its definitions and
/// records name, and its identity (kept in the config dir) for those clusters.
#[derive(Debug, Clone)]
pub struct HostStores {
    config_dir: PathBuf,
    state_dir: PathBuf,
    /// `--host-id`, if given: see [`HostStores::identity`].
    host_id: Option<String>,
}

impl HostStores {
    /// The stores of the host whose definitions are in `config_dir` and state in `state_dir`;
    /// `host_id`, the id the operator gave (`--host-id`), if any.
    pub fn new(config_dir: &Path, state_dir: &Path, host_id: Option<String>) -> Self {
        Self {
            config_dir: config_dir.to_path_buf(),
            state_dir: state_dir.to_path_buf(),
            host_id,
        }
    }

    fn open_etcd(&self, config: &EtcdConfig, access: Access) -> Result<EtcdStore> {
        let make = match access {
            Access::Read => false,
            Access::Write => true,
            Access::Upkeep => self.host_id.is_some(),
        };
        let identity = self.identity(make)?;
        Ok(EtcdStore::open(config, &identity)?)
    }

    fn open_shared(&self, config: &EtcdConfig, access: Access) -> Result<Box<dyn LeaseStore>> {
        Ok(Box::new(self.open_etcd(config, access)?))
    }

    fn open_local(&self, thorough: bool) -> Result<Box<dyn LeaseStore>> {
        let store = if thorough {
            LmdbStore::open_thorough(&self.state_dir)
        } else {
            LmdbStore::open(&self.state_dir)
        };
        Ok(Box::new(store?))
    }

    /// The store a network about to be created will use, from its `--ipam-opt` (`network
    /// create` checks that no lease holds its `host_access` addresses, and on a shared store
    /// leases them: `access` is then [`Access::Write`], which makes this host's identity file
    /// if there is none). An option the definition would refuse is left to `network create`'s
    /// own validation, which names it: the local store then.
    pub fn for_ipam_options(
        &self,
        ipam_options: &[String],
        access: Access,
    ) -> Result<Box<dyn LeaseStore>> {
        match oci_macvlan_ipam::parse_ipam_options(ipam_options) {
            Ok(StoreChoice::Etcd(config)) => self.open_shared(&config, access),
            _ => self.open_local(false),
        }
    }

    /// Every cluster the defined networks and the endpoint records use, opened for upkeep
    /// (`gc --forget-host`, which needs them all), each once.
    pub fn all_clusters(&self, networks: &Networks, records: &Records) -> Result<Vec<EtcdStore>> {
        clusters(networks, records)?
            .iter()
            .map(|config| self.open_etcd(config, Access::Upkeep))
            .collect()
    }

    /// The local store and `clusters` as one set (`gc --forget-host`).
    pub fn with_local(&self, clusters: Vec<EtcdStore>) -> Result<StoreSet> {
        let mut members = vec![self.open_local(true)?];
        for store in clusters {
            members.push(Box::new(store) as Box<dyn LeaseStore>);
        }
        Ok(StoreSet::new(members))
    }
}

impl StorePolicy for HostStores {
    type Error = Error;

    fn is_unavailable(err: &Error) -> bool {
        matches!(err, Error::Core(macvlan::Error::Store(store)) if store.is_unavailable())
    }

    fn networks_store(
        &self,
        networks: &[&Network],
        access: Access,
        thorough: bool,
    ) -> Result<Box<dyn LeaseStore>> {
        let Some(first) = networks.first() else {
            return self.open_local(thorough);
        };
        let choice = first.store_choice();
        if let Some(other) = networks.iter().find(|n| n.store_choice() != choice) {
            return Err(Error::MixedStores {
                first: first.name.clone(),
                second: other.name.clone(),
            });
        }
        match choice {
            StoreChoice::Local => self.open_local(thorough),
            StoreChoice::Etcd(config) => self.open_shared(&config, access),
        }
    }

    /// The local store, and each cluster `endpoints` name, once. Only an endpoint an earlier
    /// build recorded, without its store, has its network's definition asked (and a
    /// definition that is gone leaves the local store alone to look in).
    fn endpoints_stores(&self, endpoints: &[RecordedEndpoint], access: Access) -> Result<StoreSet> {
        let networks = Networks::new(&self.config_dir);
        let mut clusters: Vec<EtcdConfig> = Vec::new();
        for endpoint in endpoints {
            add_cluster(&mut clusters, macvlan::store_of(endpoint, &networks));
        }
        let mut members = vec![self.open_local(false)?];
        for config in &clusters {
            members.push(self.open_shared(config, access)?);
        }
        Ok(StoreSet::new(members))
    }

    /// Each cluster is asked for its leases once here; one that cannot be reached in its
    /// `etcd_timeout` is left out of the set and named. Any other error is left to the
    /// command's own read of that store, which reports it as it always has.
    fn answering(
        &self,
        networks: &Networks,
        records: &Records,
        access: Access,
    ) -> Result<(StoreSet, Vec<Unreachable>)> {
        let mut members = vec![self.open_local(true)?];
        let mut unreachable = Vec::new();
        for config in clusters(networks, records)? {
            let mut store = self.open_shared(&config, access)?;
            match store.all_leases() {
                Err(err) if err.is_unavailable() => unreachable.push(Unreachable {
                    config,
                    error: macvlan::one_line(&err),
                }),
                _ => members.push(store),
            }
        }
        Ok((StoreSet::new(members), unreachable))
    }
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
