//! Disconnect: one network's legs taken back from a container that goes on running (`network
//! disconnect`), under the container's lock, from its record: the links deleted from its
//! namespace (only those the record proves its own), the host's routes to its addresses on a
//! network with host access deleted, the leases released, the record rewritten without them. A container's later poststop (or `gc`) then takes back the rest.

use std::path::PathBuf;

use oci_macvlan_ipam::{Lease, LeaseSet, Owner};

use crate::{
    Access, ContainerId, Error, Records, StorePolicy,
    detach::Ours,
    failpoint,
    kernel::{CurrentHost, Host},
    source::Source,
};

/// Takes `network`'s endpoints back from `container_id`; a container left with none has no
/// record either. Each step may be re-run: a disconnect
/// that failed half-way (a link deleted, its lease not yet released) completes when run again,
/// since the record still names the endpoint until the end.
///
/// The record is read once, under the container's lock; `stores` opens the lease stores its
/// endpoints on `network` name.
pub async fn disconnect<P: StorePolicy>(
    stores: &P,
    records: &Records,
    container_id: &ContainerId,
    network: &str,
) -> Result<Vec<Lease>, P::Error> {
    disconnect_with(
        &CurrentHost::default(),
        stores,
        records,
        container_id,
        network,
    )
    .await
}

/// [`disconnect`], the host's routes deleted through `host`.
pub(crate) async fn disconnect_with<P: StorePolicy>(
    host: &impl Host,
    stores: &P,
    records: &Records,
    container_id: &ContainerId,
    network: &str,
) -> Result<Vec<Lease>, P::Error> {
    let lock = records.lock(container_id)?;
    // The steps are named as a detach's: a disconnect is the detach of one network.
    failpoint::hit("detach:locked")?;
    let not_connected = || Error::NotConnected {
        container_id: container_id.to_string(),
        network: network.to_owned(),
    };
    let mut record = records.read(container_id)?.ok_or_else(not_connected)?;
    let (gone, kept): (Vec<_>, Vec<_>) = record
        .endpoints
        .iter()
        .cloned()
        .partition(|e| e.network == network);
    if gone.is_empty() {
        return Err(not_connected().into());
    }
    let mut store = stores.endpoints_stores(&gone, Access::Write)?;
    let owners: Vec<Owner> = gone
        .iter()
        .map(|e| Owner {
            container_id: container_id.to_string(),
            ifname: e.ifname.clone(),
        })
        .collect();
    // The namespace the links are in: the recorded path, or the recorded process's, and only
    // if it is still the one they were made in.
    let expected = record.liveness.as_ref();
    let path = match (
        &record.netns,
        record.liveness.as_ref().and_then(|l| l.process),
    ) {
        (Some(path), _) => Some(path.clone()),
        (None, Some(process)) if expected.is_some() => {
            Some(PathBuf::from(format!("/proc/{}/ns/net", process.pid)))
        }
        (None, _) => None,
    };
    if let Some(path) = path {
        let ours = Ours {
            records,
            container_id,
            endpoints: &gone,
        };
        // Asked of every store the policy gave (a transaction would need a single one).
        let held = || {
            Ok(store
                .container_leases(container_id)
                .map_err(Error::store)?
                .into_iter()
                .filter(|l| l.network == network && owners.contains(&l.owner))
                .map(|l| l.ip)
                .collect())
        };
        ours.delete_from(&path, expected, held).await?;
    }
    failpoint::hit("detach:links")?;
    // The host's routes to the addresses, as a detach deletes them, under the same hold (see
    // `crate::host_access`): then the leases.
    let _held = crate::host_access::hold(records, &gone)?;
    crate::host_access::unroute(host, &mut store, container_id, &gone).await?;
    failpoint::hit("detach:host-unrouted")?;
    let mut released = Vec::new();
    for (ep, owner) in gone.iter().zip(&owners) {
        let source = Source::recorded(ep);
        // A server's lease (DHCP) is given back to it first.
        source.container_gone(ep).await?;
        released.extend(
            source
                .release_all(&mut store, network, owner)
                .await
                .map_err(Error::store)?,
        );
    }
    failpoint::hit("detach:released")?;
    if kept.is_empty() {
        // Nothing is left to the container: no record (a record holds leases, `verify` says),
        // no lock file, as after a detach.
        records.remove(container_id)?;
        failpoint::hit("detach:unrecorded")?;
        lock.remove_file()?;
    } else {
        record.endpoints = kept;
        records.write(&record)?;
        failpoint::hit("detach:unrecorded")?;
    }
    Ok(released)
}
