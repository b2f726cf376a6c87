//! Disconnect: one network's legs taken back from a container that goes on running (`network
//! disconnect`), under the container's lock, from its record: the links deleted from its
//! namespace (only those the record proves its own), the leases released, the record rewritten
//! without them. A container's later poststop (or `gc`) then takes back the rest.

use std::{net::IpAddr, path::PathBuf};

use oci_macvlan_ipam::{Lease, LeaseStore, LeaseStoreExt, Owner};

use crate::{Error, Liveness, Records, Result, detach::Ours};

/// Takes `network`'s endpoints back from `container_id`; a container left with none has no
/// record either. Each step may be re-run: a disconnect
/// that failed half-way (a link deleted, its lease not yet released) completes when run again,
/// since the record still names the endpoint until the end.
pub async fn disconnect(
    store: &mut dyn LeaseStore,
    records: &Records,
    container_id: &str,
    network: &str,
) -> Result<Vec<Lease>> {
    let lock = records.lock(container_id)?;
    let not_connected = || Error::NotConnected {
        container_id: container_id.to_owned(),
        network: network.to_owned(),
    };
    let mut record = records.read(container_id)?.ok_or_else(not_connected)?;
    let (gone, kept): (Vec<_>, Vec<_>) = record
        .endpoints
        .iter()
        .cloned()
        .partition(|e| e.network == network);
    if gone.is_empty() {
        return Err(not_connected());
    }
    let owners: Vec<Owner> = gone
        .iter()
        .map(|e| Owner {
            container_id: container_id.to_owned(),
            ifname: e.ifname.clone(),
        })
        .collect();
    // The namespace the links are in: the recorded path, or the recorded process's, and only
    // if it is still the one they were made in.
    let expected = record.liveness.as_ref().map(Liveness::netns);
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
        let held = || {
            let mut held: Vec<IpAddr> = Vec::new();
            for owner in &owners {
                let leases = store
                    .read(|view| view.owner_leases(network, owner))
                    .map_err(Error::store)?;
                held.extend(leases.iter().map(|l| l.ip));
            }
            Ok(held)
        };
        ours.delete_from(&path, expected, held).await?;
    }
    let mut released = Vec::new();
    for owner in &owners {
        released.extend(store.release(network, owner).map_err(Error::store)?);
    }
    if kept.is_empty() {
        // Nothing is left to the container: no record (a record holds leases, `verify` says),
        // no lock file, as after a detach.
        records.remove(container_id)?;
        lock.remove_file()?;
    } else {
        record.endpoints = kept;
        records.write(&record)?;
    }
    Ok(released)
}
