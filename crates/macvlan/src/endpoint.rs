use std::net::IpAddr;

use ipnetwork::IpNetwork;
use oci_macvlan_ipam::{LeaseStore, Owner};
use oci_macvlan_netlink_core::{Errno, Handle, Link, MacAddr, Netns, NetnsId};
use serde::Serialize;

use crate::{
    Access, AttachRequest, Error, Liveness, Network, Records, Result, StorePolicy,
    admit::admit,
    failpoint,
    kernel::{ChildSpec, Kernel},
    mac::Mac,
    ownership::claim,
    parents::parent_busy,
    plan::{Plan, PlannedNetwork},
    record::{Record, RecordedEndpoint},
    source::{Ask, DhcpRecord, LinkAt, Note, Runs, Source},
    undo::{Step, Undo},
    wire::{DefaultRouted, Wired, other_subnets, wire, wire_among},
    wiring::Wiring,
};

mod acquire;
mod adopt;
pub(crate) mod real;

use acquire::acquire;
use adopt::Created;
use real::Real;

/// What a container got on one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    /// The network's name.
    pub network: String,
    /// The link's name in the container.
    pub ifname: String,
    /// The link's MAC: its own, or its parent's.
    pub mac: Mac,
    /// The parent's MAC as the kernel had it at the attach ([`Endpoint::link_mac`] for
    /// [`Mac::Parents`]).
    #[serde(skip)]
    pub parent_mac: Option<MacAddr>,
    /// Its addresses, with their prefixes.
    pub addresses: Vec<IpNetwork>,
    /// The gateways of its addresses, on a network that routes via its gateways.
    pub gateways: Vec<IpAddr>,
}

impl Endpoint {
    /// The MAC the link has: its own, or its parent's (an ipvlan's, a passthru macvlan's).
    pub fn link_mac(&self) -> Option<MacAddr> {
        self.mac.own().or(self.parent_mac)
    }
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
    // A DHCP network's client identifier and MAC derive from this host's key.
    let secret = if networks.iter().any(|n| n.dhcp.is_some()) {
        Some(stores.source_secret()?)
    } else {
        None
    };
    let plan = crate::plan::plan_with(req, secret.as_deref())?;
    let mut record = plan.record();
    let lock = records.lock(req.container_id)?;
    // A networked store reads while the namespace is opened and the parents are checked.
    store.read_ahead();
    let opened = failpoint::hit("attach:locked").and_then(|()| {
        // `network connect` to a network the container is on: refused before its namespace
        // or process is looked at (a stopped container is still on its networks).
        if req.connect {
            crate::admit::already_connected(req, &plan, records.read(req.container_id)?.as_ref())?;
        }
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
        let liveness = Liveness::observe(req.pid, &netns, req.persistent_netns)?;
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
    let kernel = Real {
        host,
        container: &container,
        netns: &netns,
    };
    let applied = apply(
        &kernel,
        store,
        records,
        req,
        &plan,
        &mut record,
        previous.as_ref(),
    )
    .await;
    if let Err(err) = &applied
        && previous.is_none()
        && !matches!(err, Error::RollbackIncomplete { .. })
    {
        // Nothing is left of the container: neither is its lock file. An error here
        // changes nothing for the caller, whose attach failed anyway.
        let _ = lock.remove_file();
    }
    Ok(applied?)
}

/// Applies `plan` (of `req`) once the container's lock is held and its earlier record, if
/// any, judged its own (`previous`): writes `record`, then makes what the plan says through
/// `kernel`. All or nothing: on failure every step this run took is undone (what could not be
/// is said in [`Error::RollbackIncomplete`]).
pub(crate) async fn apply<K: Kernel>(
    kernel: &K,
    store: &mut dyn LeaseStore,
    records: &Records,
    req: &AttachRequest<'_>,
    plan: &Plan<'_>,
    record: &mut Record,
    previous: Option<&Record>,
) -> Result<Vec<Endpoint>> {
    let mut undo = Undo::default();
    let ctx = Apply {
        kernel,
        records,
        req,
        previous,
    };
    let err = match ctx.attach_all(store, plan, record, &mut undo).await {
        Ok(endpoints) => return Ok(endpoints),
        Err(err) => err,
    };
    let left = undo.run(req.container_id, kernel, store, records).await;
    if !left.is_empty() {
        // Said, not swallowed: the caller's error line (and the journal) name what is left.
        return Err(Error::RollbackIncomplete {
            line: crate::one_line(&err),
            failed: Box::new(err),
            left: left.join("; "),
        });
    }
    Err(err)
}

/// What applying a planned attach works with.
struct Apply<'a, K> {
    kernel: &'a K,
    records: &'a Records,
    req: &'a AttachRequest<'a>,
    /// This container's record from an earlier run, if any (see [`claim`]).
    previous: Option<&'a Record>,
}

impl<K: Kernel> Apply<'_, K> {
    async fn attach_all(
        &self,
        store: &mut dyn LeaseStore,
        plan: &Plan<'_>,
        record: &mut Record,
        undo: &mut Undo,
    ) -> Result<Vec<Endpoint>> {
        let parents = admit(self.kernel, store, self.req, plan, self.previous).await?;
        for (recorded, parent) in record.endpoints.iter_mut().zip(&parents) {
            recorded.lower = Some(parent.index);
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

        let mut endpoints: Vec<Endpoint> = Vec::with_capacity(plan.networks.len());
        let mut default_routed = DefaultRouted::default();
        for (i, (planned, parent)) in plan.networks.iter().zip(&parents).enumerate() {
            let recorded = record.endpoints[i].clone();
            let net = planned.definition;
            let owner = Owner {
                container_id: plan.container_id.to_string(),
                ifname: planned.link.name.clone(),
            };
            // Only what this container's own earlier run recorded is its to take back: a lease
            // of its owner that no record here lists (another machine under this host's id) is
            // someone else's.
            let held_before = self.previous.is_some_and(|p| {
                p.endpoints
                    .iter()
                    .any(|e| e.network == planned.network && e.ifname == planned.link.name)
            });
            let source = Source::of(net);
            let hints = self.records.state.join(crate::source::HINTS_DIR);
            let previous = self.previous.and_then(|p| {
                p.endpoints
                    .iter()
                    .find(|e| e.network == planned.network && e.ifname == planned.link.name)
            });
            let mut ask = Ask {
                network: net,
                owner: &owner,
                static_ips: &planned.addresses.static_ips,
                held_before,
                link: None,
                kind: planned.link.kind,
                secret: plan.secret.as_deref(),
                hostname: self.req.hostname,
                previous,
                note: None,
                hints: Some(&hints),
                parent: Some(parent),
                on_lease: self.req.on_lease,
            };
            let mut taken = None;
            if source.runs() == Runs::BeforeLink {
                taken = Some(acquire(source, store, &ask, &recorded, undo).await?);
                failpoint::hit("attach:net:leased")?;
            }
            let link = self
                .make_link(store, planned, parent, &recorded, undo)
                .await?;
            // Where detach will delete the link (a namespace that outlives the container), the
            // record names it by index: a link of that name made by anyone else is not this one.
            if record.netns.is_some() && record.endpoints[i].index != Some(link.index) {
                record.endpoints[i].index = Some(link.index);
                self.records.write(record)?;
            }
            let wiring = Wiring {
                kernel: self.kernel,
                link: &link,
                parent,
                planned,
            };
            let mut before = None;
            let taken = match taken {
                Some(taken) => taken,
                None => {
                    // A source that talks on the link needs it up.
                    let up = before.insert(wire(planned, &[], default_routed));
                    wiring.up_for_source(up).await?;
                    ask.link = Some(LinkAt {
                        netns: self.req.netns,
                        opened: self.kernel.opened_netns(),
                        ifname: &link.name,
                        index: link.index,
                        mac: link.mac,
                    });
                    // A lease in flight, on the record: one write, on a clone of it.
                    let note = |pending: &DhcpRecord| {
                        let mut noted = record.clone();
                        noted.endpoints[i].dhcp = Some(pending.clone());
                        self.records.write(&noted)
                    };
                    ask.note = Some(Note(&note));
                    acquire(source, store, &ask, &recorded, undo).await?
                }
            };
            // What a source keeps on the record (a DHCP lease), before the link gets it.
            if let Some(dhcp) = &taken.dhcp {
                record.endpoints[i].dhcp = Some(dhcp.clone());
                // Before the write: a write that fails still gives the server's lease back.
                if !taken.new.is_empty() {
                    undo.push(Step::ServerLease {
                        endpoint: Box::new(record.endpoints[i].clone()),
                    });
                }
                failpoint::hit("attach:net:record-lease")?;
                self.records.write(record)?;
            }
            if source.runs() == Runs::AfterLink {
                // Once the record holds what the server gave: poststop or gc give it back.
                failpoint::hit("attach:net:leased")?;
            }
            if !taken.stale.is_empty() {
                // An adopted link's addresses of the lease this one replaced (link and store).
                self.kernel
                    .remove_addresses(&link, &taken.stale)
                    .await
                    .map_err(|source| Error::Configure {
                        network: planned.network.clone(),
                        ifname: planned.link.name.clone(),
                        source,
                    })?;
                source
                    .release(store.as_set(), &owner, &taken.stale)
                    .await
                    .map_err(|source| Error::Lease {
                        network: planned.network.clone(),
                        source: Box::new(source),
                    })?;
            }
            // A lease's routes leave the container's other endpoints' subnets alone.
            let wired_so_far: Vec<Vec<IpNetwork>> =
                endpoints.iter().map(|e| e.addresses.clone()).collect();
            let others = other_subnets(&plan.networks, i, &wired_so_far);
            let wired = wire_among(planned, &taken.acquired, default_routed, &others);
            wiring.apply(&wired, before.as_ref()).await?;
            default_routed = wired.default_routed;
            if planned.host_link.is_some() {
                self.route_host(store, net, parent, &wired, &taken.new, undo)
                    .await?;
            }
            endpoints.push(Endpoint {
                network: planned.network.clone(),
                ifname: planned.link.name.clone(),
                mac: planned.link.mac,
                parent_mac: parent.mac,
                addresses: wired.addresses,
                gateways: wired.gateways,
            });
        }
        self.kernel
            .set_link_up_by_name("lo")
            .await
            .map_err(Error::Netlink)?;
        failpoint::hit("attach:done")?;
        Ok(endpoints)
    }

    /// The planned link, created (or adopted: see [`Self::create_or_adopt`]) on `parent`
    /// straight into the container's namespace.
    async fn make_link(
        &self,
        store: &mut dyn LeaseStore,
        planned: &PlannedNetwork<'_>,
        parent: &Link,
        recorded: &RecordedEndpoint,
        undo: &mut Undo,
    ) -> Result<Link> {
        let net = planned.definition;
        let configure = |source| Error::Configure {
            network: planned.network.clone(),
            ifname: planned.link.name.clone(),
            source,
        };
        let spec = ChildSpec {
            parent,
            name: &planned.link.name,
            mac: planned.link.mac.own(),
            mtu: planned.link.mtu,
            kind: planned.link.kind,
        };
        let (link, created) =
            self.create_or_adopt(&spec, recorded)
                .await
                .map_err(|err| match err {
                    Created::NameTaken => Error::InterfaceExists {
                        ifname: planned.link.name.clone(),
                    },
                    Created::Netlink(source) if source.errno() == Some(Errno::EINVAL) => {
                        match net.driver().exclusive_parent() {
                            Some(mode) => parent_busy(store, net, mode, self.req.container_id),
                            None => configure(source),
                        }
                    }
                    Created::Netlink(source) => configure(source),
                    Created::Other(err) => *err,
                })?;
        if created {
            undo.push(Step::CreatedLink {
                ifname: planned.link.name.clone(),
                index: link.index,
            });
        }
        failpoint::hit("attach:net:created")?;
        Ok(link)
    }

    /// Host access: the host's routes to the container's addresses through the network's host
    /// link (made again if it is missing; see [`crate::host_access`]). The undo deletes the
    /// routes this run added and those to addresses it leased.
    async fn route_host(
        &self,
        store: &mut dyn LeaseStore,
        net: &Network,
        parent: &Link,
        wired: &Wired<'_>,
        new: &[IpAddr],
        undo: &mut Undo,
    ) -> Result<()> {
        let link = self
            .kernel
            .host_link(net, parent, store, self.records)
            .await?;
        failpoint::hit("attach:net:host-link")?;
        let ips = &wired.host_routes;
        let mut added = Vec::new();
        let mut routed = Ok(());
        for ip in ips {
            match self.kernel.add_host_route(&link, *ip).await {
                Ok(()) => added.push(*ip),
                // A route already there is not this run's.
                Err(err) if err.errno() == Some(Errno::EEXIST) => {}
                Err(source) => {
                    routed = Err(Error::HostRoutes {
                        network: net.name.clone(),
                        source,
                    });
                    break;
                }
            }
        }
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
