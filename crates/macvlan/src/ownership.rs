//! Whose a container id is. Ownership is proven from facts recorded at attach (the process
//! and its start time, the namespace's device and inode, and its cookie where one was
//! recorded), never guessed: an attach or a
//! poststop for an id that another living container holds is refused and touches nothing of it.

use oci_macvlan_ipam::{LeaseSet, LeaseStore};

use crate::{
    Access, ContainerId, Liveness, Records, StorePolicy,
    detach::take_back,
    id_in_use::id_in_use,
    liveness::{Verdict, judge},
    record::{Record, RecordedEndpoint},
};

/// Whose the container id is, judged under its lock: `Ok(None)` when it has no record (a first
/// attach), `Ok(Some(record))` when the record is this very container's (a re-run
/// createRuntime, or one after a hook that died half-way: the same pid and start time, or the
/// same namespace), and an error when it belongs to another container that lives (or cannot be
/// judged): that container's lease, link, record and lock are not touched. The record of an
/// earlier container of that id that is gone without its poststop is taken back first, as `gc`
/// would, from the stores it names: `store` (the attach's, whose endpoints are `planned`) when
/// every endpoint it records is on that store, else the stores `stores` opens for them (an earlier
/// container on another cluster, or on the local store while this one is on a cluster, or the
/// reverse; a record of an earlier build, which names no store).
pub(crate) async fn claim<P: StorePolicy>(
    store: &mut dyn LeaseStore,
    stores: &P,
    planned: &[RecordedEndpoint],
    records: &Records,
    container_id: &ContainerId,
    facts: &Liveness,
) -> Result<Option<Record>, P::Error> {
    let Some(previous) = records.read(container_id)? else {
        return Ok(None);
    };
    if previous
        .liveness
        .as_ref()
        .is_some_and(|recorded| same_container(recorded, facts))
    {
        return Ok(Some(previous));
    }
    let why = match judge(previous.liveness.as_ref(), previous.netns.as_ref()) {
        Verdict::Gone(_) => {
            if on_the_same_store(&previous.endpoints, planned) {
                take_back(store.as_set(), records, container_id, &previous).await?;
            } else {
                let mut theirs = stores.endpoints_stores(&previous.endpoints, Access::Write)?;
                // A networked store reads while the namespace is looked at.
                theirs.read_ahead();
                take_back(&mut theirs, records, container_id, &previous).await?;
            }
            return Ok(None);
        }
        Verdict::Alive(why) | Verdict::Undecided(why) => why,
    };
    Err(id_in_use(store.as_set(), container_id, why).into())
}

/// Whether every `recorded` endpoint names the store of the `planned` ones (an attach's
/// networks agree on one store). An endpoint recorded without a store (by an earlier build) is
/// not known to be there.
fn on_the_same_store(recorded: &[RecordedEndpoint], planned: &[RecordedEndpoint]) -> bool {
    recorded
        .iter()
        .all(|old| old.store.is_some() && planned.iter().any(|new| new.store == old.store))
}

/// Whether facts observed now and facts recorded earlier are of one container: the same
/// process (pid and start time) in the same namespace, or, without a process, the same
/// namespace. The same namespace is the same device and inode, and the same cookie where both
/// have one: the kernel gives a deleted namespace's inode to the next one made, never its
/// cookie.
fn same_container(recorded: &Liveness, now: &Liveness) -> bool {
    let cookies_agree = match (recorded.netns_cookie, now.netns_cookie) {
        (Some(then), Some(now)) => then == now,
        _ => true,
    };
    recorded.netns() == now.netns() && recorded.process == now.process && cookies_agree
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_made_since_with_the_old_inode_is_another_container() {
        let facts = Liveness {
            process: None,
            netns_dev: 4,
            netns_ino: 4026532300,
            netns_cookie: Some(7),
        };
        assert!(same_container(&facts, &facts));
        let remade = Liveness {
            netns_cookie: Some(9),
            ..facts.clone()
        };
        assert!(!same_container(&facts, &remade));
        // A record written before cookies were kept, or a kernel without them: the identity.
        let older = Liveness {
            netns_cookie: None,
            ..facts.clone()
        };
        assert!(same_container(&older, &remade));
        let elsewhere = Liveness {
            netns_ino: 4026532301,
            ..facts.clone()
        };
        assert!(!same_container(&facts, &elsewhere));
    }
}
