//! Clusters that did not answer `gc` or `verify`: those commands go on with the stores that
//! did, and leave alone whatever needs one that did not (never reading its silence as "no
//! leases").
//!
//! `gc` and `verify` while a cluster does not answer (`StorePolicy::answering`): each cluster the
//! definitions and records name is asked for its leases once; one that fails with `Unavailable`
//! is left out of the `StoreSet` and named (`Unreachable`), one line on stdout, exit 1 at the end
//! (a system failure, as an attach's; 6 would claim a whole check). The rest goes on with the
//! stores that answered, and nothing takes a silent cluster's silence for "no leases": `gc` takes
//! back each gone container with the stores its own record names (`StorePolicy::endpoints_stores`,
//! as detach: a local container's take-back never waits on etcd) and keeps, record and lock file
//! and all, each gone container whose record names a silent cluster (`unreachable_for`, through
//! the definition for a record of an earlier build), and one whose take-back meets `Unavailable`
//! midway (the take-back is idempotent: the next `gc` finishes it); the host access of a silent
//! cluster's networks is neither repaired nor checked; `verify` does not call a record leaseless
//! when it names a silent cluster; the unrecorded holders are looked for among the answering
//! stores' leases (a silent cluster's are the next run's). `gc --forget-host` needs its clusters
//! and opens them all: a silent one fails it, exit 1.

use oci_macvlan_ipam::StoreChoice;

use crate::{Network, Networks, RecordedEndpoint};

/// A shared store that did not answer.
#[derive(Debug)]
pub struct Unreachable {
    /// Every locator of it that the definitions and records hold (one store may be worded in
    /// several ways: a record keeps its attach's, a definition edited since another), as the
    /// store policy grouped them: what names one of these needs the silent store.
    pub names: Vec<StoreChoice>,
    /// Why, as one line (the store's error, which names its endpoints).
    pub error: String,
}

/// The store that holds `endpoint`'s leases: the one its record names, else (a record of an
/// earlier build, which names none) its network's definition; `None` when that is gone too.
pub fn store_of(endpoint: &RecordedEndpoint, networks: &Networks) -> Option<StoreChoice> {
    match &endpoint.store {
        Some(choice) => Some(choice.clone()),
        None => networks
            .load(&endpoint.network)
            .ok()
            .map(|network| network.store_choice()),
    }
}

/// The first of `unreachable` that holds leases of recorded `endpoints`.
pub fn unreachable_for<'a>(
    unreachable: &'a [Unreachable],
    endpoints: &[RecordedEndpoint],
    networks: &Networks,
) -> Option<&'a Unreachable> {
    if unreachable.is_empty() {
        return None;
    }
    endpoints
        .iter()
        .find_map(|endpoint| find(unreachable, store_of(endpoint, networks)?))
}

/// The one of `unreachable` that holds the leases of `network`.
pub fn unreachable_of<'a>(
    unreachable: &'a [Unreachable],
    network: &Network,
) -> Option<&'a Unreachable> {
    find(unreachable, network.store_choice())
}

fn find(unreachable: &[Unreachable], choice: StoreChoice) -> Option<&Unreachable> {
    unreachable.iter().find(|u| u.names.contains(&choice))
}
