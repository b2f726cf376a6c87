//! Store policy: which lease store serves a network, a record's endpoints or every cluster this
//! host uses, and this host's identity in stores several hosts share.
//!
//! A network without `--ipam-opt` is on this host's LMDB store and never waits on a cluster; a
//! network with `etcd_endpoints` is on that cluster, and an error reaching it is an error
//! (never a fallback to the local store: that is how duplicate addresses happen). The core
//! takes [`HostStores`] as its [`StorePolicy`]; every front door builds one from its config and
//! state dirs and passes it along, so none of them chooses a store itself. The kinds of shared
//! store are registered once, in [`BACKENDS`]; nothing else here names one.

#![warn(missing_docs)]

mod error;
mod identity;

use std::path::{Path, PathBuf};

use oci_macvlan_ipam::{Backends, LeaseStore, LmdbStore, Locator, StoreChoice, StoreSet};
use oci_macvlan_macvlan::{
    self as macvlan, Access, Network, Networks, RecordedEndpoint, Records, StorePolicy, Unreachable,
};

pub use error::{Error, Result};

/// The kinds of shared lease store this build knows: a new backend is its crate and a line
/// here.
pub static BACKENDS: Backends = Backends(&[&oci_macvlan_ipam_etcd::BACKEND]);
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

    fn open_shared(&self, locator: &Locator, access: Access) -> Result<Box<dyn LeaseStore>> {
        let backend = BACKENDS.of(locator)?;
        let make = match access {
            Access::Read => false,
            Access::Write => true,
            Access::Upkeep => self.host_id.is_some(),
        };
        let identity = self.identity(make)?;
        Ok(backend.open(locator, &identity)?)
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
        match BACKENDS.parse_options(ipam_options) {
            Ok(StoreChoice::Shared(locator)) => self.open_shared(&locator, access),
            Ok(StoreChoice::Local) | Err(_) => self.open_local(false),
        }
    }

    /// The options of `choice` as `inspect` shows them (Docker's `IPAM.Options`).
    pub fn ipam_options(choice: &StoreChoice) -> std::collections::BTreeMap<String, String> {
        BACKENDS.options(choice)
    }

    /// Every store the defined networks and the endpoint records use, the local one first,
    /// each once, opened for upkeep (`gc --forget-host`, which needs them all).
    pub fn every_store(&self, networks: &Networks, records: &Records) -> Result<StoreSet> {
        let mut members = vec![self.open_local(true)?];
        for (locator, _) in clusters(networks, records)? {
            members.push(self.open_shared(&locator, Access::Upkeep)?);
        }
        Ok(StoreSet::new(members))
    }
}

impl StorePolicy for HostStores {
    type Error = Error;

    fn source_secret(&self) -> Result<Vec<u8>> {
        HostStores::source_secret(self)
    }

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
            StoreChoice::Shared(locator) => self.open_shared(&locator, access),
        }
    }

    /// The local store, and each cluster `endpoints` name, once. Only an endpoint an earlier
    /// build recorded, without its store, has its network's definition asked (and a
    /// definition that is gone leaves the local store alone to look in).
    fn endpoints_stores(&self, endpoints: &[RecordedEndpoint], access: Access) -> Result<StoreSet> {
        let networks = Networks::new(&self.config_dir);
        let mut clusters = Vec::new();
        for endpoint in endpoints {
            add_cluster(&mut clusters, macvlan::store_of(endpoint, &networks));
        }
        let mut members = vec![self.open_local(false)?];
        for (locator, _) in &clusters {
            members.push(self.open_shared(locator, access)?);
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
        for (locator, names) in clusters(networks, records)? {
            let mut store = match self.open_shared(&locator, access) {
                Ok(store) => store,
                // A locator no backend reads (a record of a newer build, a hand-edited file):
                // named like a silent store, so that what names it is left alone and the rest
                // of `gc` and `verify` goes on.
                Err(Error::Core(macvlan::Error::Store(err)))
                    if matches!(*err, oci_macvlan_ipam::Error::Corrupt(_)) =>
                {
                    unreachable.push(Unreachable {
                        names,
                        error: macvlan::one_line(&err),
                    });
                    continue;
                }
                Err(err) => return Err(err),
            };
            match store.all_leases() {
                Err(err) if err.is_unavailable() => unreachable.push(Unreachable {
                    names,
                    error: macvlan::one_line(&err),
                }),
                _ => members.push(store),
            }
        }
        Ok((StoreSet::new(members), unreachable))
    }
}

/// A shared store, and every locator of it seen (one store may be worded in several ways).
type Cluster = (Locator, Vec<StoreChoice>);

/// Every shared store (as its backend tells one from another, once) the defined networks and
/// the endpoint records use. A record names its store even when the network's definition is
/// gone, so `gc` still takes back a gone container's leases there.
fn clusters(networks: &Networks, records: &Records) -> Result<Vec<Cluster>> {
    let mut clusters = Vec::new();
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

/// Adds the store of `choice` to `clusters`, unless it is there: opened once, a store's leases
/// are counted once. Each way of naming it is kept beside it.
fn add_cluster(clusters: &mut Vec<Cluster>, choice: Option<StoreChoice>) {
    let Some(choice @ StoreChoice::Shared(_)) = choice else {
        return;
    };
    match clusters
        .iter_mut()
        .find(|(locator, _)| BACKENDS.same_store(&StoreChoice::Shared(locator.clone()), &choice))
    {
        Some((_, names)) => {
            if !names.contains(&choice) {
                names.push(choice);
            }
        }
        None => {
            if let StoreChoice::Shared(locator) = &choice {
                clusters.push((locator.clone(), vec![choice.clone()]));
            }
        }
    }
}
