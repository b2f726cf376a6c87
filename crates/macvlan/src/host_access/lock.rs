//! The host-access locks, `<state-dir>/host-access/<host link>.lock`, one per network with
//! host access, named after its host link (which a record names; the network's id it does
//! not).
//!
//! **Why a detach never leaves a route behind a restore.** Making the link again restores the
//! routes of every container on record (`route::restore`: the network's leases, then the
//! records of their holders), under the network's host-access lock held exclusively; `gc`'s
//! repair reads and fixes the routes under it too. A detach (and a disconnect) deletes its
//! container's routes through the link it finds (`route::unroute`), then releases the leases,
//! then removes the record. Without a lock between them, a detach that found the link missing
//! (nothing to delete) and had not yet released its leases let a restore read its lease and
//! record and add a route that nobody deleted afterwards (`tests/tests/host_access_identity.rs`
//! races them). So a detach holds the lock shared ([`hold`]) from before it looks the link up
//! until its leases are released: a restore (or a repair) runs wholly before that, and then
//! the detach finds the link and deletes the route restored, or wholly after it, and then the
//! lease is gone and no route is restored for it (a route follows its lease). Detaches share
//! the lock, so they never wait for each other; only making the link, which is rare, waits for
//! them. Lock order: a container's lock, then a host-access lock, never the reverse and never
//! two host-access locks exclusively; nothing is waited for under a host-access lock but the
//! kernel and the store, so no cycle can form.

use std::{collections::BTreeSet, path::PathBuf};

use super::link_name;
use crate::{Network, Records, Result, lock::FileLock, record::RecordedEndpoint};

/// Shared holds on the host-access locks of the host links `endpoints` name (see the module's
/// doc): a detach or a disconnect holds them from before it deletes its routes until its leases
/// are released, so that no restore of a link made again runs in between.
pub(crate) fn hold(records: &Records, endpoints: &[RecordedEndpoint]) -> Result<Vec<FileLock>> {
    let links: BTreeSet<&String> = endpoints
        .iter()
        .filter_map(|e| e.host_link.as_ref())
        .collect();
    links
        .into_iter()
        .map(|link| FileLock::acquire_shared(&lock_path(records, link)))
        .collect()
}

/// The network's host-access lock, held exclusively: to make its link, restore or repair its
/// routes.
pub(super) fn lock(records: &Records, net: &Network) -> Result<FileLock> {
    FileLock::acquire(&lock_path(records, &link_name(&net.id)))
}

/// `<state-dir>/host-access/<host link>.lock`: named after the host link, which a detach knows
/// from the record alone (a network's id is not recorded).
fn lock_path(records: &Records, link: &str) -> PathBuf {
    records
        .state
        .join("host-access")
        .join(format!("{link}.lock"))
}
