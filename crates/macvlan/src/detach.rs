//! Detach: a container's links (where its namespace outlives it), leases and record taken back,
//! from the record and the lease store alone.

use std::{net::IpAddr, path::Path};

use oci_macvlan_ipam::{Lease, LeaseSet};
use oci_macvlan_netlink_core::{Errno, Handle, Netns};

use crate::{
    Access, ContainerId, Error, Liveness, Records, Result, StorePolicy, failpoint,
    id_in_use::refuse_if_its_process_lives,
    kernel::{CurrentHost, Host},
    lock::FileLock,
    record::{Record, RecordedEndpoint},
    source::Source,
};

/// Takes back what a container holds: deletes its links when its namespace outlives it (a
/// namespace that dies takes its macvlans along, at no cost), releases its leases, and removes
/// its record. Idempotent: it may run twice, after a crash, without any attach, or with the
/// namespace or parent gone; it needs neither the network definitions nor a pid.
///
/// The record is read once, under the container's lock; `stores` opens the lease stores its
/// endpoints name (none without a record: the local store).
pub async fn detach<P: StorePolicy>(
    stores: &P,
    records: &Records,
    container_id: &ContainerId,
) -> std::result::Result<Vec<Lease>, P::Error> {
    let lock = records.lock(container_id)?;
    failpoint::hit("detach:locked")?;
    let record = records.read(container_id)?;
    let endpoints = record.as_ref().map_or(&[][..], |r| r.endpoints.as_slice());
    let mut store = stores.endpoints_stores(endpoints, Access::Write)?;
    // A networked store reads while the process and the namespace are looked at.
    store.read_ahead();
    if let Some(record) = &record {
        refuse_if_its_process_lives(&mut store, record)?;
    }
    Ok(detach_locked(&mut store, records, container_id, record.as_ref(), &lock).await?)
}

/// [`detach`] for a caller that holds the container's lock and has read its record.
pub(crate) async fn detach_locked(
    store: &mut dyn LeaseSet,
    records: &Records,
    container_id: &ContainerId,
    record: Option<&Record>,
    lock: &FileLock,
) -> Result<Vec<Lease>> {
    let released = match record {
        Some(record) => take_back(store, records, container_id, record).await?,
        None => release(store, container_id)?,
    };
    failpoint::hit("detach:unrecorded")?;
    lock.remove_file()?;
    Ok(released)
}

/// Deletes the recorded links (where the namespace outlives the container), releases the
/// container's leases and removes its record.
pub(crate) async fn take_back(
    store: &mut dyn LeaseSet,
    records: &Records,
    container_id: &ContainerId,
    record: &Record,
) -> Result<Vec<Lease>> {
    take_back_with(
        &CurrentHost::default(),
        store,
        records,
        container_id,
        record,
    )
    .await
}

/// [`take_back`], the host's routes deleted through `host`.
pub(crate) async fn take_back_with(
    host: &impl Host,
    store: &mut dyn LeaseSet,
    records: &Records,
    container_id: &ContainerId,
    record: &Record,
) -> Result<Vec<Lease>> {
    if let Some(path) = &record.netns {
        let expected = record.liveness.as_ref();
        let ours = Ours {
            records,
            container_id,
            endpoints: &record.endpoints,
        };
        // The leases are read only for a namespace that is still there: a namespace that died
        // with its container (runc's, crun's) costs no read of the store.
        let held = || {
            Ok(store
                .container_leases(container_id)
                .map_err(Error::store)?
                .iter()
                .map(|l| l.ip)
                .collect())
        };
        ours.delete_from(path, expected, held).await?;
    }
    // Held from before the routes are looked for until the leases are released: no restore
    // of a host link made again runs in between (see `crate::host_access`).
    let _held = crate::host_access::hold(records, &record.endpoints)?;
    crate::host_access::unroute(host, store, container_id, &record.endpoints).await?;
    if record.endpoints.iter().any(|e| e.host_link.is_some()) {
        failpoint::hit("detach:host-unrouted")?;
    }
    // Every endpoint's at once, under one deadline.
    let endpoints: Vec<&RecordedEndpoint> = record.endpoints.iter().collect();
    Source::all_gone(&endpoints).await;
    let released = release(store, container_id)?;
    records.remove(container_id)?;
    Ok(released)
}

fn release(store: &mut dyn LeaseSet, container_id: &str) -> Result<Vec<Lease>> {
    failpoint::hit("detach:links")?;
    let released = store
        .release_container(container_id)
        .map_err(Error::store)?;
    failpoint::hit("detach:released")?;
    Ok(released)
}

/// What a container left in a namespace that outlives it.
pub(crate) struct Ours<'a> {
    pub(crate) records: &'a Records,
    pub(crate) container_id: &'a ContainerId,
    pub(crate) endpoints: &'a [RecordedEndpoint],
}

impl Ours<'_> {
    /// Deletes the recorded links from the namespace at `path`, if it is still there and is the
    /// one they were created in (`expected`; a path re-mounted with another namespace is not
    /// ours). A link is deleted only if it is the one the record describes (kind, parent, MAC,
    /// and index once recorded) and no other container's record claims it. Then no link left
    /// there may keep an address the container leased, which is about to be free: a link it
    /// changed (another MAC, another name) or one another record claims keeps its place, never
    /// the address. `held` gives the addresses the container leased; it is called only once
    /// the namespace is found.
    pub(crate) async fn delete_from(
        &self,
        path: &Path,
        expected: Option<&Liveness>,
        held: impl FnOnce() -> Result<Vec<IpAddr>>,
    ) -> Result<()> {
        let Some(netns) = Netns::open_if_exists(path).map_err(Error::ContainerNetns)? else {
            return Ok(());
        };
        // Another namespace at the path (its identity, or its cookie where one was recorded)
        // is not the container's: nothing in it is touched.
        if let Some(expected) = expected
            && !expected.is_netns(&netns)?
        {
            return Ok(());
        }
        let identity = netns.identity().map_err(Error::ContainerNetns)?;
        let handle = match Handle::open(&netns) {
            Ok(handle) => handle,
            // The path survives but no namespace is mounted on it any more.
            Err(err) if err.errno() == Some(Errno::EINVAL) => return Ok(()),
            Err(err) => return Err(Error::ContainerNetns(err)),
        };
        let held = held()?;
        for ep in self.endpoints {
            let Some(link) = handle
                .link_by_name(&ep.ifname)
                .await
                .map_err(Error::Netlink)?
            else {
                continue;
            };
            let confirmed = ep.index == Some(link.index);
            if ep.is(&link)
                && self
                    .records
                    .claims_of_others(self.container_id, identity, &link, confirmed)?
                    .is_empty()
            {
                handle.delete_link(&link).await.map_err(Error::Netlink)?;
            }
        }
        if !held.is_empty() {
            handle
                .remove_addresses(&held)
                .await
                .map_err(Error::Netlink)?;
        }
        Ok(())
    }
}
