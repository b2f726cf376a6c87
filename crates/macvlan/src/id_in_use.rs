//! Refusing a container id that another living container holds: what `attach` (through
//! `ownership::claim`) and `detach` say, naming the holder's addresses.

use oci_macvlan_ipam::LeaseSet;

use crate::{
    ContainerId, Error, Result,
    liveness::{Verdict, judge},
    record::Record,
};

/// A container's poststop runs after its process has exited. So the poststop of an id whose
/// recorded process still runs is another container's (the same id under another runtime root,
/// refused at its attach): nothing of the one that runs is touched.
pub(crate) fn refuse_if_its_process_lives(store: &mut dyn LeaseSet, record: &Record) -> Result<()> {
    let Some(facts) = &record.liveness else {
        return Ok(());
    };
    if facts.process.is_none() {
        return Ok(());
    }
    match judge(Some(facts), None) {
        Verdict::Alive(why) => Err(id_in_use(store, &record.container_id, why)),
        Verdict::Gone(_) | Verdict::Undecided(_) => Ok(()),
    }
}

/// [`Error::IdInUse`], with the addresses the holder has.
pub(crate) fn id_in_use(
    store: &mut dyn LeaseSet,
    container_id: &ContainerId,
    holder: String,
) -> Error {
    let addresses = store
        .container_leases(container_id)
        .map(|leases| {
            leases
                .iter()
                .map(|l| format!("{} on {}", l.ip, l.network))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    Error::IdInUse {
        container_id: container_id.to_string(),
        holder,
        addresses: if addresses.is_empty() {
            "no address".to_owned()
        } else {
            addresses.join(", ")
        },
    }
}
