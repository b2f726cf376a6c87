//! `gc`'s sweep of keeper slots (`<state-dir>/keepers/`, see [`Records::keeper_dir`]): a slot
//! is removed by the last of its pair to end, so a pair killed together leaves it behind. One
//! that no record wants any more (its container's endpoint on that DHCP network is gone) and
//! whose roles are both free is removed; a slot a record still wants is left (a hook re-run
//! starts its pair again in it), and so is one a keeper holds, and one changed in the last
//! [`FRESH`].

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    time::Duration,
};

use oci_macvlan_keeper::Slot;

use crate::Records;

/// Removes the stale slots (see the module); how many. Best effort: a slot that cannot be
/// looked at or removed is left for the next `gc`.
pub(crate) fn sweep(records: &Records) -> usize {
    let root = records.state.join("keepers");
    let Ok(entries) = std::fs::read_dir(&root) else {
        return 0;
    };
    let Some(wanted) = wanted(records) else {
        return 0;
    };
    entries
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        .map(|entry| entry.path())
        .filter(|path| !wanted.contains(path) && !fresh(path))
        .filter(|path| Slot::new(path).remove_if_free().unwrap_or(false))
        .count()
}

/// How long a slot is left alone after it last changed (made, or a keeper's pid written in
/// it). An attach writes its record, then starts its keepers, which make the slot: a sweep
/// that read the records before that write, and took the slot's two locks before the keepers
/// did, would look to them like a pair already there (they would leave, and the container
/// would have no renewer). A stale slot is removed by a later `gc`.
pub(crate) const FRESH: Duration = Duration::from_secs(60);

/// Whether `slot` changed in the last [`FRESH`] (or its time cannot be told).
fn fresh(slot: &Path) -> bool {
    std::fs::metadata(slot)
        .and_then(|meta| meta.modified())
        .ok()
        .and_then(|changed| changed.elapsed().ok())
        .is_none_or(|age| age < FRESH)
}

/// The slots of every recorded DHCP endpoint; `None` if the records cannot all be read (then
/// nothing is swept).
fn wanted(records: &Records) -> Option<HashSet<PathBuf>> {
    let mut wanted = HashSet::new();
    for id in records.list().ok()? {
        let Some(record) = records.read(&id).ok()? else {
            continue;
        };
        for endpoint in record.endpoints.iter().filter(|e| e.dhcp.is_some()) {
            wanted.insert(records.keeper_dir(&record.container_id, &endpoint.network));
        }
    }
    Some(wanted)
}
