//! `gc`: takes back what containers that are gone still hold, judging each from the facts its
//! record keeps (see [`crate::liveness`]), under the same per-container lock as attach and detach.

use std::collections::BTreeSet;

use oci_macvlan_ipam::{Lease, LeaseSet};

use crate::{
    Access, Error, Networks, RecordedEndpoint, Records, StorePolicy,
    detach::detach_locked,
    host_access::shared,
    liveness::{Verdict, judge},
    reach::{Unreachable, unreachable_for},
};

/// What `gc` did and why, container by container.
#[derive(Debug, Default)]
pub struct GcReport {
    /// Containers found gone, with the reason, and the leases released for them.
    pub released: Vec<(String, String, Vec<Lease>)>,
    /// Containers that still live, with the reason.
    pub alive: Vec<(String, String)>,
    /// Containers that could not be judged (nothing was released for them), with the reason.
    pub undecided: Vec<(String, String)>,
    /// Containers left alone because an attach or detach holds their lock right now.
    pub busy: Vec<String>,
    /// Gone containers left alone, record and all, because a store their record names did not
    /// answer, with that store's error: the next `gc` takes them back.
    pub unreached: Vec<(String, String)>,
    /// Containers that hold leases but have no record: no facts, so nothing is released.
    pub unrecorded: Vec<String>,
    /// What the store's own upkeep did (`LeaseStore::maintain`), a line each.
    pub maintenance: Vec<String>,
    /// Temporary files of writers killed half-way (records, `network create`) removed.
    pub temps_removed: usize,
    /// Keeper slots (`<state-dir>/keepers/`) of endpoints no longer recorded, whose pair
    /// was killed together, removed.
    pub keeper_slots_removed: usize,
    /// What was repaired of the networks' host access (`-o host_access`), a line each, and
    /// the networks whose host access could not be repaired (gc fails then).
    pub host_access: crate::host_access::Repaired,
    /// The networks `rm -f` removed while their store did not answer: forgotten, or kept and
    /// why, a line each.
    pub removed: Vec<String>,
    /// How many of those were kept because their store did not answer (gc fails then).
    pub removed_unreached: usize,
    /// The clusters that did not answer when `gc` began, each with why: their containers and
    /// networks were left alone (gc fails then).
    pub unreachable: Vec<Unreachable>,
}

/// Every store that answers (`stores`' [`StorePolicy::answering`], as upkeep) does the
/// maintenance, the host access and the leases nobody recorded; the clusters that do not are
/// in the report, and their containers and networks are left alone. Each gone container is
/// taken back with the stores its own record names (a local container's, then, never waits on
/// a cluster).
pub async fn gc<P: StorePolicy>(
    stores: &P,
    records: &Records,
    networks: &Networks,
) -> Result<GcReport, P::Error> {
    let (mut answering, unreached) = stores.answering(networks, records, Access::Upkeep)?;
    let store: &mut dyn LeaseSet = &mut answering;
    let mut report = GcReport {
        maintenance: store.maintain().map_err(Error::store)?,
        ..GcReport::default()
    };
    let unreachable = &unreached[..];
    report.temps_removed = records.remove_stale_temps()? + networks.remove_stale_temps()?;
    let recorded = records.list()?;
    for id in &recorded {
        let Some(lock) = records.try_lock(id)? else {
            report.busy.push(id.clone());
            continue;
        };
        // Read under the lock: the record an attach may have just rewritten.
        let Some(record) = records.read(id)? else {
            lock.remove_file()?;
            continue;
        };
        match judge(record.liveness.as_ref(), record.netns.as_ref()) {
            Verdict::Alive(why) => report.alive.push((id.clone(), why)),
            Verdict::Undecided(why) => report.undecided.push((id.clone(), why)),
            Verdict::Gone(why) => {
                if let Some(u) = unreachable_for(unreachable, &record.endpoints, networks) {
                    report.unreached.push((id.clone(), u.error.clone()));
                    continue;
                }
                let mut own = stores.endpoints_stores(&record.endpoints, Access::Upkeep)?;
                match detach_locked(
                    &mut own,
                    records,
                    &record.container_id,
                    Some(&record),
                    &lock,
                )
                .await
                {
                    Ok(leases) => report.released.push((id.clone(), why, leases)),
                    // A cluster that stopped answering since it was asked: the record stays,
                    // and the take-back, which may run again, is the next gc's.
                    Err(Error::Store(err)) if err.is_unavailable() => {
                        report
                            .unreached
                            .push((id.clone(), crate::one_line(err.as_ref())));
                    }
                    Err(err) => return Err(err.into()),
                }
            }
        }
    }
    // A hook killed after taking a container's lock and before writing its record leaves a lock
    // file and nothing else.
    records.remove_unrecorded_locks()?;
    report.keeper_slots_removed = crate::gc_keepers::sweep(records);
    report.host_access = crate::host_access::repair(store, unreachable, records, networks).await?;
    let leases = store.all_leases().map_err(Error::store)?;
    report
        .host_access
        .lines
        .extend(shared::release_left(store, networks, &leases)?);
    let recorded: BTreeSet<&String> = recorded.iter().collect();
    let holders: BTreeSet<String> = leases
        .into_iter()
        // Another host's containers are that host's to judge; a host's host access lease is
        // no container's.
        .filter(|lease| store.is_ours(lease) && !shared::is_host_access(lease))
        .map(|lease| lease.owner.container_id)
        .collect();
    for id in holders {
        // An attach that began after the listing has written its record by now.
        if !recorded.contains(&id) && records.read(&id)?.is_none() {
            report.unrecorded.push(id);
        }
    }
    forget_removed(&mut report, unreachable, stores, records, networks)?;
    report.unreachable = unreached;
    Ok(report)
}

/// Forgets each network `rm -f` removed while its store did not answer ([`Networks::removed`])
/// once nothing of it is left: no endpoint record names it, and its store answers and holds no
/// lease of this host's on it (this host's host access leases of it are released first). What
/// keeps one is a line.
fn forget_removed<P: StorePolicy>(
    report: &mut GcReport,
    unreachable: &[Unreachable],
    stores: &P,
    records: &Records,
    networks: &Networks,
) -> Result<(), P::Error> {
    for gone in networks.removed()? {
        let name = &gone.name;
        let mut holders = Vec::new();
        for id in records.list()? {
            let record = records.read(&id)?;
            if record.is_some_and(|r| r.endpoints.iter().any(|e| e.network == *name)) {
                holders.push(id);
            }
        }
        if !holders.is_empty() {
            report.removed.push(format!(
                "kept removed network {name} (rm -f): containers {} on record hold addresses on it",
                holders.join(", ")
            ));
            continue;
        }
        let unanswered = |report: &mut GcReport, why: &str| {
            report.removed_unreached += 1;
            report.removed.push(format!(
                "kept removed network {name} (rm -f): its lease store did not answer: {why}"
            ));
        };
        if let Some(u) = crate::reach::unreachable_of(unreachable, &gone) {
            unanswered(report, &u.error);
            continue;
        }
        let endpoint = RecordedEndpoint {
            network: name.clone(),
            ifname: String::new(),
            mac: None,
            kind: None,
            lower: None,
            index: None,
            host_link: None,
            store: Some(gone.store_choice()),
            dhcp: None,
        };
        let mut store = stores.endpoints_stores(&[endpoint], Access::Upkeep)?;
        let left = shared::release(&mut store, &gone)
            .and_then(|_| store.network_leases(name).map_err(Error::store));
        match left {
            Ok(mut leases) => {
                leases.retain(|l| store.is_ours(l));
                if leases.is_empty() {
                    let _lock = networks.lock()?;
                    networks.forget_removed(name)?;
                    report.removed.push(format!(
                        "forgot removed network {name} (rm -f): nothing of it is left"
                    ));
                } else {
                    let held: Vec<String> = leases
                        .iter()
                        .map(|l| format!("{} (container {})", l.ip, l.owner.container_id))
                        .collect();
                    report.removed.push(format!(
                        "kept removed network {name} (rm -f): its store still holds this host's leases of {} with no endpoint record",
                        held.join(", ")
                    ));
                }
            }
            Err(Error::Store(err)) if err.is_unavailable() => {
                unanswered(report, &crate::one_line(err.as_ref()));
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}
