//! Clusters that did not answer `gc` or `verify`: those commands go on with the stores that
//! did, and leave alone whatever needs one that did not (never reading its silence as "no
//! leases").

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
