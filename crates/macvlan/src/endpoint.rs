use std::{
    net::IpAddr,
    path::Path,
    time::{SystemTime, UNIX_EPOCH},
};

use ipnetwork::IpNetwork;
use oci_macvlan_ipam::{Lease, LeaseStore, Owner, Request, allocate};
use oci_macvlan_netlink_core::{Errno, Handle, Link, MacAddr, Netns, NetnsId, NewMacvlan};
use oci_macvlan_vlan::ifname_problem;
use serde::Serialize;

use crate::{
    Error, Liveness, Mode, Network, ParentLink, Records, Result, default_mac, failpoint,
    lock::FileLock,
    record::{Record, RecordedEndpoint, check_container_id},
    undo::{Step, Undo},
    wiring::Wiring,
};

/// One network a container joins, with its per-network requests.
#[derive(Debug)]
pub struct Attachment<'a> {
    pub network: &'a Network,
    pub ifname: String,
    /// Static addresses (at most one per family).
    pub static_ips: Vec<IpAddr>,
    pub mac: Option<MacAddr>,
}

#[derive(Debug)]
pub struct AttachRequest<'a> {
    pub container_id: &'a str,
    pub netns: &'a Path,
    /// The namespace outlives the container (a path from `config.json`), so detach must delete
    /// the links; otherwise the kernel deletes them with the namespace, for free.
    pub persistent_netns: bool,
    /// The container's process (from the OCI state): with its start time, it tells `gc` when
    /// the container is gone.
    pub pid: Option<i32>,
    pub attachments: Vec<Attachment<'a>>,
}

/// What a container got on one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub network: String,
    pub ifname: String,
    pub mac: String,
    pub addresses: Vec<IpNetwork>,
    pub gateways: Vec<IpAddr>,
}

/// Gives the container its macvlan legs: for each attachment, leases addresses, creates the
/// macvlan on the network's parent straight into the container's namespace, addresses it, sets
/// it up and adds default routes. All or nothing: on failure every step taken is undone.
///
/// Re-running it for a container that is already attached returns the same endpoints.
pub async fn attach(
    host: &Handle,
    store: &mut impl LeaseStore,
    records: &Records,
    req: &AttachRequest<'_>,
) -> Result<Vec<Endpoint>> {
    let mut record = plan(req)?;
    let lock = records.lock(req.container_id)?;
    let opened = failpoint::hit("attach:locked").and_then(|()| {
        let netns = Netns::open(req.netns).map_err(|err| {
            match (err.errno(), req.pid, req.persistent_netns) {
                // The namespace was found through the pid: the process has exited.
                (Some(Errno::ENOENT), Some(pid), false) => Error::ProcessGone {
                    pid,
                    path: req.netns.to_path_buf(),
                },
                _ => Error::ContainerNetns(err),
            }
        })?;
        let liveness = Liveness::observe(req.pid, &netns)?;
        // A config.json that names the runtime's own namespace (`/proc/1/ns/net`, say) would get
        // eth0, its addresses and a default route on the host.
        if liveness.netns() == NetnsId::current().map_err(Error::Netlink)? {
            return Err(Error::HostNetns {
                path: req.netns.to_path_buf(),
            });
        }
        let container = Handle::open(&netns).map_err(Error::ContainerNetns)?;
        Ok((netns, liveness, container))
    });
    let (netns, liveness, container) = match opened {
        Ok(opened) => opened,
        Err(err) => {
            // Nothing was done; a container without a record (a first attach) leaves no lock
            // file either.
            if matches!(records.read(req.container_id), Ok(None)) {
                let _ = lock.remove_file();
            }
            return Err(err);
        }
    };
    record.liveness = Some(liveness);
    let mut undo = Undo::default();
    let result = attach_all(
        host, &container, &netns, store, records, req, &record, &mut undo,
    )
    .await;
    if result.is_err()
        && undo
            .run(req.container_id, Some(&container), store, records)
            .await
    {
        // Nothing is left of the container: neither is its lock file. An error here changes
        // nothing for the caller, whose attach failed anyway.
        let _ = lock.remove_file();
    }
    result
}

/// The MAC an endpoint gets. A passthru macvlan carries its parent's MAC: setting another would
/// rewrite the parent's, so none is set, and asking for one is an error.
fn planned_mac(container_id: &str, att: &Attachment<'_>) -> Result<Option<MacAddr>> {
    let network = &att.network.name;
    if att.network.mode == Mode::Passthru {
        return match att.mac {
            Some(mac) => Err(Error::InvalidMac {
                mac: mac.to_string(),
                network: network.clone(),
                reason: "a passthru network's container uses its parent's MAC",
            }),
            None => Ok(None),
        };
    }
    let mac = att
        .mac
        .unwrap_or_else(|| default_mac(container_id, network));
    if mac.is_multicast() || mac.is_zero() {
        return Err(Error::InvalidMac {
            mac: mac.to_string(),
            network: network.clone(),
            reason: if mac.is_zero() {
                "the all-zero address is not a station address"
            } else {
                "it is a multicast address"
            },
        });
    }
    Ok(Some(mac))
}

/// Checks the request and decides names and MACs before anything is touched.
fn plan(req: &AttachRequest<'_>) -> Result<Record> {
    check_container_id(req.container_id)?;
    let mut endpoints: Vec<RecordedEndpoint> = Vec::new();
    for att in &req.attachments {
        let network = &att.network.name;
        if let Some(reason) = ifname_problem(&att.ifname).or_else(|| {
            endpoints
                .iter()
                .any(|e| e.ifname == att.ifname)
                .then_some("two networks of the container ask for it")
        }) {
            return Err(Error::InvalidIfname {
                name: att.ifname.clone(),
                network: network.clone(),
                reason,
            });
        }
        let mac = planned_mac(req.container_id, att)?;
        endpoints.push(RecordedEndpoint {
            network: network.clone(),
            ifname: att.ifname.clone(),
            mac,
        });
    }
    Ok(Record {
        container_id: req.container_id.to_owned(),
        netns: req.persistent_netns.then(|| req.netns.to_path_buf()),
        liveness: None,
        endpoints,
    })
}

#[allow(clippy::too_many_arguments)]
async fn attach_all(
    host: &Handle,
    container: &Handle,
    netns: &Netns,
    store: &mut impl LeaseStore,
    records: &Records,
    req: &AttachRequest<'_>,
    record: &Record,
    undo: &mut Undo,
) -> Result<Vec<Endpoint>> {
    records.write(record)?;
    undo.push(Step::WroteRecord);
    failpoint::hit("attach:recorded")?;

    let mut endpoints = Vec::with_capacity(req.attachments.len());
    let mut default_route = [false, false]; // [v4, v6]: the first network with a gateway wins
    for (att, planned) in req.attachments.iter().zip(&record.endpoints) {
        let net = att.network;
        let parent = resolve_parent(host, net).await?;
        failpoint::hit("attach:net:parent")?;
        let owner = Owner {
            container_id: req.container_id.to_owned(),
            ifname: att.ifname.clone(),
        };
        undo.push(Step::Leased {
            network: net.name.clone(),
            owner: owner.clone(),
        });
        let leases = store
            .transaction(|txn| {
                allocate(
                    txn,
                    &Request {
                        network: &net.name,
                        owner: &owner,
                        pools: &net.pools,
                        static_ips: &att.static_ips,
                        ipv6: net.ipv6,
                        undeclared_router: net.undeclared_router(),
                    },
                )
            })
            .map_err(|source| Error::Lease {
                network: net.name.clone(),
                source: Box::new(source),
            })?;
        failpoint::hit("attach:net:leased")?;

        let configure = |source| Error::Configure {
            network: net.name.clone(),
            ifname: att.ifname.clone(),
            source,
        };
        let spec = NewMacvlan {
            parent: &parent,
            name: &att.ifname,
            mode: net.mode.to_netlink(),
            mac: planned.mac,
            mtu: net.mtu,
            source_macs: &net.source_macs()?,
            target: netns,
        };
        let link = create_or_adopt(host, container, &spec, planned)
            .await
            .map_err(|err| match err {
                Created::NameTaken => Error::InterfaceExists {
                    ifname: att.ifname.clone(),
                },
                Created::Netlink(source) => configure(source),
            })?;
        undo.push(Step::CreatedLink {
            ifname: att.ifname.clone(),
        });
        failpoint::hit("attach:net:created")?;
        let wiring = Wiring {
            container,
            netns,
            link: &link,
            net,
            parent: &parent,
            planned,
            leases: &leases,
        };
        wiring.configure(&mut default_route).await?;
        let gateways = leases
            .iter()
            .filter_map(|lease| net.gateway_for(lease.ip))
            .collect();
        endpoints.push(endpoint(net, planned, &leases, gateways));
    }
    container
        .set_link_up_by_name("lo")
        .await
        .map_err(Error::Netlink)?;
    failpoint::hit("attach:done")?;
    Ok(endpoints)
}

fn endpoint(
    net: &Network,
    planned: &RecordedEndpoint,
    leases: &[Lease],
    gateways: Vec<IpAddr>,
) -> Endpoint {
    Endpoint {
        network: net.name.clone(),
        ifname: planned.ifname.clone(),
        mac: planned
            .mac
            .map_or_else(|| "parent's".to_owned(), |mac| mac.to_string()),
        addresses: leases
            .iter()
            .filter_map(|l| IpNetwork::new(l.ip, l.subnet.prefix()).ok())
            .collect(),
        gateways,
    }
}

fn vanished(ifname: &str) -> oci_macvlan_netlink_core::Error {
    oci_macvlan_netlink_core::Error::GetLink {
        name: ifname.to_owned(),
        source: oci_macvlan_netlink_core::KernelError::Errno(Errno::ENODEV),
    }
}

/// The network's parent link in the host namespace, by name (never a dump of all links). A
/// parent oci-macvlan owns is re-created if it is missing (after a reboot), so containers start
/// without any boot-time step.
pub(crate) async fn resolve_parent(host: &Handle, net: &Network) -> Result<Link> {
    let parent = net.parent()?;
    let may_create = net.parent_link != ParentLink::Existing;
    let ensured = oci_macvlan_vlan::ensure(host, &parent, may_create)
        .await
        .map_err(Error::ParentLink)?;
    Ok(ensured.link)
}

/// Why [`create_or_adopt`] has no link for the container.
enum Created {
    /// The container has a link of that name that is not ours.
    NameTaken,
    Netlink(oci_macvlan_netlink_core::Error),
}

impl From<oci_macvlan_netlink_core::Error> for Created {
    fn from(err: oci_macvlan_netlink_core::Error) -> Self {
        Self::Netlink(err)
    }
}

/// The container's macvlan for `spec`: created, or, when the container already has a link of
/// that name with the planned MAC (a re-run createRuntime, or one after a hook that died
/// half-way), adopted, so configuring it again completes what is missing. The name is looked up
/// only when the kernel reports it taken: the usual attach makes one request fewer.
async fn create_or_adopt(
    host: &Handle,
    container: &Handle,
    spec: &NewMacvlan<'_>,
    planned: &RecordedEndpoint,
) -> Result<Link, Created> {
    match host.create_macvlan(spec).await {
        Ok(()) => {}
        Err(err) if err.errno() == Some(Errno::EEXIST) => {
            match container.link_by_name(spec.name).await? {
                Some(link) if planned.is(&link) => return Ok(link),
                Some(_) => return Err(Created::NameTaken),
                // Taken in the parent's namespace, not in the container's.
                None => create_renamed(host, container, spec).await?,
            }
        }
        Err(err) => return Err(err.into()),
    }
    Ok(container
        .link_by_name(spec.name)
        .await?
        .ok_or_else(|| vanished(spec.name))?)
}

/// Creates the macvlan whose name the kernel found taken in the parent's namespace (it may check
/// there too) under a temporary name, then renames it inside the container, as CNI and netavark
/// do.
async fn create_renamed(
    host: &Handle,
    container: &Handle,
    spec: &NewMacvlan<'_>,
) -> oci_macvlan_netlink_core::Result<()> {
    let temporary = temporary_name();
    host.create_macvlan(&NewMacvlan {
        name: &temporary,
        ..*spec
    })
    .await?;
    let link = container
        .link_by_name(&temporary)
        .await?
        .ok_or_else(|| vanished(&temporary))?;
    if let Err(err) = container.rename_link(&link, spec.name).await {
        let _ = container.delete_link(&link).await;
        return Err(err);
    }
    Ok(())
}

fn temporary_name() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("omv{:08x}", nanos ^ std::process::id().rotate_left(16))
}

/// Takes back what a container holds: deletes its links when its namespace outlives it (a
/// namespace that dies takes its macvlans along, at no cost), releases its leases, and removes
/// its record. Idempotent: it may run twice, after a crash, without any attach, or with the
/// namespace or parent gone; it needs neither the network definitions nor a pid.
pub async fn detach(
    store: &mut impl LeaseStore,
    records: &Records,
    container_id: &str,
) -> Result<Vec<Lease>> {
    let lock = records.lock(container_id)?;
    failpoint::hit("detach:locked")?;
    let record = records.read(container_id)?;
    detach_locked(store, records, container_id, record.as_ref(), &lock).await
}

/// [`detach`] for a caller that holds the container's lock and has read its record.
pub(crate) async fn detach_locked(
    store: &mut impl LeaseStore,
    records: &Records,
    container_id: &str,
    record: Option<&Record>,
    lock: &FileLock,
) -> Result<Vec<Lease>> {
    if let Some(record) = record {
        if let Some(path) = &record.netns {
            let expected = record.liveness.as_ref().map(Liveness::netns);
            delete_recorded_links(path, expected, &record.endpoints).await?;
        }
    }
    failpoint::hit("detach:links")?;
    let released = store
        .release_container(container_id)
        .map_err(Error::store)?;
    failpoint::hit("detach:released")?;
    records.remove(container_id)?;
    failpoint::hit("detach:unrecorded")?;
    lock.remove_file()?;
    Ok(released)
}

/// Deletes the recorded links from the namespace at `path`, if it is still there and is the
/// one they were created in (`expected`; a path re-mounted with another namespace is not ours).
async fn delete_recorded_links(
    path: &Path,
    expected: Option<NetnsId>,
    endpoints: &[RecordedEndpoint],
) -> Result<()> {
    let Some(netns) = Netns::open_if_exists(path).map_err(Error::ContainerNetns)? else {
        return Ok(());
    };
    if let Some(expected) = expected {
        if netns.identity().map_err(Error::ContainerNetns)? != expected {
            return Ok(());
        }
    }
    let handle = match Handle::open(&netns) {
        Ok(handle) => handle,
        // The path survives but no namespace is mounted on it any more.
        Err(err) if err.errno() == Some(Errno::EINVAL) => return Ok(()),
        Err(err) => return Err(Error::ContainerNetns(err)),
    };
    for ep in endpoints {
        if let Some(link) = handle
            .link_by_name(&ep.ifname)
            .await
            .map_err(Error::Netlink)?
        {
            if ep.is(&link) {
                handle.delete_link(&link).await.map_err(Error::Netlink)?;
            }
        }
    }
    Ok(())
}
