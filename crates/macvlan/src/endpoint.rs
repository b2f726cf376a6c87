use std::{net::IpAddr, path::Path};

use ipnetwork::IpNetwork;
use oci_macvlan_ipam::{Lease, LeaseStore, LeaseStoreExt, Owner, Request, Txn, allocate};
use oci_macvlan_netlink_core::{Errno, Handle, Link, MacAddr, Netns, NetnsId, NewChild};
use serde::Serialize;

use crate::{
    Access, Error, Liveness, Network, Networks, Records, Result, StorePolicy, failpoint,
    host_access,
    ownership::claim,
    parents::{check_parent_free, parent_busy, resolve_parents},
    record::{Record, RecordedEndpoint},
    undo::{Step, Undo},
    wiring::Wiring,
};

mod adopt;
mod unheld;

use adopt::Created;
use unheld::Unheld;

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
    /// The network definitions (which the caller holds, [`Networks::hold`]): a MAC asked for is
    /// checked against the host links of the networks with host access on its parent.
    pub definitions: &'a Networks,
    /// `network connect`: the container runs already and joins more networks, so a network
    /// its record holds is refused whatever interface it is on. Otherwise (a hook) a network
    /// on the record under the same interface is this very attach run again, and returns the
    /// same endpoints.
    pub connect: bool,
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
/// it up and adds default routes. All or nothing: on failure every step this run took is undone,
/// and nothing an earlier run (or another container) made is touched.
///
/// Re-running it for a container that is already attached returns the same endpoints. An id
/// whose record belongs to another container that still lives is refused. The record of an
/// earlier container of that id, gone without its poststop, is taken back first. `stores`
/// opens the one store of the request's networks (they must agree on it) and, under the
/// container's lock and before anything is made, the stores that earlier record names when
/// they are not that one; an error opening either is the attach's.
pub async fn attach<P: StorePolicy>(
    host: &Handle,
    stores: &P,
    records: &Records,
    req: &AttachRequest<'_>,
) -> std::result::Result<Vec<Endpoint>, P::Error> {
    let networks: Vec<&Network> = req.attachments.iter().map(|a| a.network).collect();
    let mut store = stores.networks_store(&networks, Access::Write, false)?;
    let store = store.as_mut();
    let mut record = crate::plan::plan(req)?.record();
    host_access::check_reserved_macs(req)?;
    let lock = records.lock(req.container_id)?;
    // A networked store reads while the namespace is opened and the parents are checked.
    store.read_ahead();
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
        // A path from config.json names the namespace the runtime put the container in: its
        // process is there by now. Any other namespace (another process's, one its author made)
        // is not this container's to give a leg on the LAN.
        if let (true, Some(pid)) = (req.persistent_netns, req.pid) {
            let own = Netns::open(format!("/proc/{pid}/ns/net"))
                .and_then(|ns| ns.identity())
                .map_err(Error::ContainerNetns)?;
            if own != liveness.netns() {
                return Err(Error::NetnsNotTheContainers {
                    path: req.netns.to_path_buf(),
                    pid,
                });
            }
        }
        let container = Handle::open(&netns).map_err(Error::ContainerNetns)?;
        Ok((netns, liveness, container))
    });
    let claimed = match opened {
        Ok((netns, liveness, container)) => claim(
            store,
            stores,
            &record.endpoints,
            records,
            req.container_id,
            &liveness,
        )
        .await
        .and_then(|previous| {
            failpoint::hit("attach:claimed")?;
            Ok((netns, liveness, container, previous))
        }),
        Err(err) => Err(err.into()),
    };
    let (netns, liveness, container, previous) = match claimed {
        Ok(claimed) => claimed,
        Err(err) => {
            // Nothing was done; a container without a record (a first attach) leaves no lock
            // file either. A record of another container stays as it is, lock file and all.
            if matches!(records.read(req.container_id), Ok(None)) {
                let _ = lock.remove_file();
            }
            return Err(err);
        }
    };
    record.liveness = Some(liveness);
    let mut undo = Undo::default();
    let ctx = Apply {
        host,
        container: &container,
        netns: &netns,
        records,
        req,
        previous: previous.as_ref(),
    };
    let err = match ctx.attach_all(store, &mut record, &mut undo).await {
        Ok(endpoints) => return Ok(endpoints),
        Err(err) => err,
    };
    let left = undo
        .run(req.container_id, Some(&container), store, records)
        .await;
    if !left.is_empty() {
        // Said, not swallowed: the caller's error line (and the journal) name what is left.
        return Err(Error::RollbackIncomplete {
            line: crate::one_line(&err),
            failed: Box::new(err),
            left: left.join("; "),
        }
        .into());
    }
    if previous.is_none() {
        // Nothing is left of the container: neither is its lock file. An error here changes
        // nothing for the caller, whose attach failed anyway.
        let _ = lock.remove_file();
    }
    Err(err.into())
}

/// What applying a planned attach works with.
struct Apply<'a> {
    host: &'a Handle,
    container: &'a Handle,
    netns: &'a Netns,
    records: &'a Records,
    req: &'a AttachRequest<'a>,
    /// This container's record from an earlier run, if any (see [`claim`]).
    previous: Option<&'a Record>,
}

impl Apply<'_> {
    async fn attach_all(
        &self,
        store: &mut dyn LeaseStore,
        record: &mut Record,
        undo: &mut Undo,
    ) -> Result<Vec<Endpoint>> {
        let req = self.req;
        // A network the container is on already: under another name (two `network connect`s
        // racing), or under any name for a `network connect` (the one rule for "already
        // connected", decided here under the container's lock): refused before anything is
        // made, never a second link and lease on one network.
        if let Some(previous) = self.previous {
            for att in &req.attachments {
                if let Some(old) = previous.endpoints.iter().find(|e| {
                    e.network == att.network.name && (req.connect || e.ifname != att.ifname)
                }) {
                    return Err(Error::AlreadyConnected {
                        container_id: req.container_id.to_owned(),
                        network: old.network.clone(),
                        ifname: old.ifname.clone(),
                    });
                }
            }
        }
        // Every parent first: a missing one changes nothing at all.
        let networks: Vec<&Network> = req.attachments.iter().map(|a| a.network).collect();
        let parents = resolve_parents(self.host, &networks).await?;
        for (planned, parent) in record.endpoints.iter_mut().zip(&parents) {
            failpoint::hit("attach:net:parent")?;
            planned.lower = Some(parent.index);
        }
        // Nothing asked for may be an address the LAN already has: refused before the record
        // is written and anything is announced. A network the container is on already was
        // checked when it joined it.
        for (att, parent) in req.attachments.iter().zip(&parents) {
            let rejoined = self.previous.is_some_and(|p| {
                p.endpoints
                    .iter()
                    .any(|e| e.network == att.network.name && e.ifname == att.ifname)
            });
            if !rejoined {
                host_access::check_static(self.host, store, att.network, parent, &att.static_ips)
                    .await?;
            }
        }
        // What an earlier run recorded and this one does not ask for stays on record, so that
        // detach still finds it.
        if let Some(previous) = self.previous {
            for old in &previous.endpoints {
                if !record
                    .endpoints
                    .iter()
                    .any(|e| e.network == old.network && e.ifname == old.ifname)
                {
                    record.endpoints.push(old.clone());
                }
            }
        }
        self.records.write(record)?;
        undo.push(Step::WroteRecord {
            previous: self.previous.cloned(),
        });
        failpoint::hit("attach:recorded")?;

        let mut endpoints = Vec::with_capacity(req.attachments.len());
        let mut default_route = [false, false]; // [v4, v6]: the first network with a gateway wins
        for (i, (att, parent)) in req.attachments.iter().zip(&parents).enumerate() {
            let planned = record.endpoints[i].clone();
            let planned = &planned;
            let net = att.network;
            let driver = net.driver();
            if let Some(mode) = driver.exclusive_parent() {
                check_parent_free(store, net, mode, req.container_id)?;
            }
            let owner = Owner {
                container_id: req.container_id.to_owned(),
                ifname: att.ifname.clone(),
            };
            // Only what this container's own earlier run recorded is its to take back: a lease
            // of its owner that no record here lists (another machine under this host's id) is
            // someone else's.
            let held_before = self.previous.is_some_and(|p| {
                p.endpoints
                    .iter()
                    .any(|e| e.network == net.name && e.ifname == att.ifname)
            });
            let leased = store.transaction(|txn| {
                let mut unheld;
                let txn: &mut dyn Txn = if held_before {
                    txn
                } else {
                    unheld = Unheld(txn);
                    &mut unheld
                };
                let held = txn.owner_leases(&net.name, &owner)?;
                let leases = allocate(
                    txn,
                    &Request {
                        network: &net.name,
                        owner: &owner,
                        pools: &net.pools,
                        static_ips: &att.static_ips,
                        ipv6: net.ipv6,
                        undeclared_router: net.undeclared_router(),
                    },
                )?;
                Ok((held, leases))
            });
            let (held, leases) = match leased {
                Ok(leased) => leased,
                Err(source) => {
                    // A write whose outcome is unknown: undone as if it was taken, unless the
                    // owner held something there already (then its record keeps it owned).
                    if source.maybe_written() && !held_before {
                        undo.push(Step::MaybeLeased {
                            network: net.name.clone(),
                            owner: owner.clone(),
                        });
                    }
                    return Err(Error::Lease {
                        network: net.name.clone(),
                        source: Box::new(source),
                    });
                }
            };
            // Only what this run leased is this run's to release.
            let new: Vec<IpAddr> = leases
                .iter()
                .filter(|l| !held.contains(l))
                .map(|l| l.ip)
                .collect();
            if !new.is_empty() {
                undo.push(Step::Leased {
                    owner,
                    ips: new.clone(),
                });
            }
            failpoint::hit("attach:net:leased")?;

            let configure = |source| Error::Configure {
                network: net.name.clone(),
                ifname: att.ifname.clone(),
                source,
            };
            let spec = NewChild {
                parent,
                name: &att.ifname,
                mac: planned.mac,
                mtu: net.mtu,
                target: self.netns,
                kind: driver.child(),
            };
            let (link, created) =
                self.create_or_adopt(&spec, planned)
                    .await
                    .map_err(|err| match err {
                        Created::NameTaken => Error::InterfaceExists {
                            ifname: att.ifname.clone(),
                        },
                        Created::Netlink(source) if source.errno() == Some(Errno::EINVAL) => {
                            match driver.exclusive_parent() {
                                Some(mode) => parent_busy(store, net, mode, req.container_id),
                                None => configure(source),
                            }
                        }
                        Created::Netlink(source) => configure(source),
                        Created::Other(err) => *err,
                    })?;
            if created {
                undo.push(Step::CreatedLink {
                    ifname: att.ifname.clone(),
                    index: link.index,
                });
            }
            failpoint::hit("attach:net:created")?;
            // Where detach will delete the link (a namespace that outlives the container), the
            // record names it by index: a link of that name made by anyone else is not this one.
            if record.netns.is_some() && record.endpoints[i].index != Some(link.index) {
                record.endpoints[i].index = Some(link.index);
                self.records.write(record)?;
            }
            let wiring = Wiring {
                container: self.container,
                netns: self.netns,
                link: &link,
                net,
                parent,
                planned,
                leases: &leases,
            };
            wiring.configure(&mut default_route).await?;
            if net.host_link().is_some() {
                self.route_host(store, net, parent, &leases, &new, undo)
                    .await?;
            }
            let gateways = leases
                .iter()
                .filter_map(|lease| net.gateway_for(lease.ip))
                .collect();
            endpoints.push(endpoint(net, planned, &leases, gateways));
        }
        self.container
            .set_link_up_by_name("lo")
            .await
            .map_err(Error::Netlink)?;
        failpoint::hit("attach:done")?;
        Ok(endpoints)
    }

    /// Host access: the host's routes to the container's addresses through the network's host
    /// link (made again if it is missing; see [`crate::host_access`]). The undo deletes the
    /// routes this run added and those to addresses it leased.
    async fn route_host(
        &self,
        store: &mut dyn LeaseStore,
        net: &Network,
        parent: &Link,
        leases: &[Lease],
        new: &[IpAddr],
        undo: &mut Undo,
    ) -> Result<()> {
        let link =
            host_access::link_for_attach(self.host, net, parent, store, self.records).await?;
        failpoint::hit("attach:net:host-link")?;
        let ips: Vec<IpAddr> = leases
            .iter()
            .map(|l| l.ip)
            .filter(|ip| net.host_routes_to(*ip))
            .collect();
        let mut added = Vec::new();
        let routed = host_access::add_routes(self.host, net, &link, &ips, &mut added).await;
        let leased: Vec<IpAddr> = new
            .iter()
            .filter(|ip| ips.contains(ip) && !added.contains(ip))
            .copied()
            .collect();
        added.extend(leased);
        if !added.is_empty() {
            undo.push(Step::HostRoutes { link, ips: added });
        }
        routed?;
        failpoint::hit("attach:net:host-routed")
    }
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
