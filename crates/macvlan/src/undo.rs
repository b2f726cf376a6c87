use std::net::IpAddr;

use oci_macvlan_ipam::{LeaseStore, Owner};
use oci_macvlan_netlink_core::Link;

use crate::{ContainerId, Record, RecordedEndpoint, Records, kernel::Kernel, source::Source};

/// One step an attach took, recorded with what undoes it. Only what this run made is here: a
/// lease or link an earlier run of the container made (and this one adopted) is not, so a
/// failed re-run never takes away what the container already had.
#[derive(Debug)]
pub(crate) enum Step {
    /// The record was written over `previous` (this container's record of an earlier run).
    WroteRecord { previous: Option<Record> },
    /// Addresses this run leased (not those the owner held already).
    Leased {
        source: Source,
        owner: Owner,
        ips: Vec<IpAddr>,
    },
    /// A lease written to a networked store that gave no answer: it may have been taken. The
    /// owner held nothing on the network before this run, so whatever it holds there now is
    /// this run's.
    MaybeLeased {
        source: Source,
        network: String,
        owner: Owner,
    },
    /// A link this run created, by name and index (a link that has taken its name since is not
    /// this one).
    CreatedLink { ifname: String, index: u32 },
    /// Host routes through a network's host link (`-o host_access`) to these addresses: those
    /// this run added and those to addresses it leased. The link itself stays: it is the
    /// network's, made at `network create` (an attach that made it again restored the routes
    /// of the network's other containers through it).
    HostRoutes { link: Link, ips: Vec<IpAddr> },
    /// A lease a server gave this run (DHCP), as the endpoint's record holds it: given back to
    /// the server once everything else is undone (its RELEASE goes from a link with the
    /// container's MAC, which the container's own link holds until it is deleted).
    ServerLease { endpoint: Box<RecordedEndpoint> },
}

/// The undo log of one attach: steps are pushed as they are taken and, on failure, undone in
/// reverse. `Drop` is no substitute: a hook may be SIGKILLed, which is why the record is written
/// first and detach works from it.
#[derive(Debug, Default)]
pub(crate) struct Undo {
    steps: Vec<Step>,
}

impl Undo {
    pub(crate) fn push(&mut self, step: Step) {
        self.steps.push(step);
    }

    /// Undoes every step, newest first. If a step cannot be undone the record is kept, so that
    /// poststop or `gc` can finish the job; returns what could not be undone (empty when
    /// everything was), each said in a few words with why.
    pub(crate) async fn run(
        self,
        container_id: &ContainerId,
        kernel: &impl Kernel,
        store: &mut dyn LeaseStore,
        records: &Records,
    ) -> Vec<String> {
        let mut left = Vec::new();
        // Addresses whose host routes could not be deleted: their leases stay too, so that
        // poststop or gc, which find a container's routes through its leases, delete them.
        let mut routed: Vec<IpAddr> = Vec::new();
        let mut server_leases = Vec::new();
        for step in self.steps.into_iter().rev() {
            let what = step.to_string();
            if let Err(err) = crate::failpoint::hit("undo:step") {
                left.push(format!("{what} ({})", crate::one_line(&err)));
                if let Step::HostRoutes { ips, .. } = step {
                    routed.extend(ips);
                }
                continue;
            }
            let undone = match step {
                Step::ServerLease { endpoint } => {
                    server_leases.push(endpoint);
                    Ok(())
                }
                Step::CreatedLink { ifname, index } => match kernel.link_by_name(&ifname).await {
                    Ok(Some(link)) if link.index == index => kernel
                        .delete_link(&link)
                        .await
                        .map_err(|err| crate::one_line(&err)),
                    Ok(_) => Ok(()),
                    Err(err) => Err(crate::one_line(&err)),
                },
                Step::HostRoutes { link, ips } => {
                    // By index: a link made since is not this one.
                    let mut undone = Ok(());
                    for ip in &ips {
                        if let Err(err) = kernel.delete_host_route(&link, *ip).await {
                            undone = Err(crate::one_line(&err));
                            break;
                        }
                    }
                    if undone.is_err() {
                        routed.extend(ips);
                    }
                    undone
                }
                Step::Leased { source, owner, ips } => {
                    let (kept, free): (Vec<IpAddr>, Vec<IpAddr>) =
                        ips.into_iter().partition(|ip| routed.contains(ip));
                    match source.release(store.as_set(), &owner, &free).await {
                        Err(err) => Err(crate::one_line(&err)),
                        Ok(_) if !kept.is_empty() => {
                            Err("kept while a host route to it is left".to_owned())
                        }
                        Ok(_) => Ok(()),
                    }
                }
                Step::MaybeLeased {
                    source,
                    network,
                    owner,
                } => source
                    .release_all(store.as_set(), &network, &owner)
                    .await
                    .map(drop)
                    .map_err(|err| crate::one_line(&err)),
                // Kept while anything else is left: poststop and gc work from it.
                Step::WroteRecord { .. } if !left.is_empty() => {
                    Err("kept, for poststop or gc to finish".to_owned())
                }
                Step::WroteRecord { previous } => match previous {
                    Some(previous) => records.write(&previous),
                    None => records.remove(container_id),
                }
                .map_err(|err| crate::one_line(&err)),
            };
            if let Err(why) = undone {
                left.push(format!("{what} ({why})"));
            }
        }
        // All at once, under one deadline; a RELEASE that cannot be sent is given up: the
        // server's lease runs out.
        let server_leases: Vec<&RecordedEndpoint> = server_leases.iter().map(|e| &**e).collect();
        Source::all_gone(&server_leases).await;
        left
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::WroteRecord { .. } => f.write_str("the endpoint record"),
            Self::Leased { owner, ips, .. } => {
                let ips: Vec<String> = ips.iter().map(ToString::to_string).collect();
                write!(f, "the lease of {} for {}", ips.join(", "), owner.ifname)
            }
            Self::MaybeLeased { network, owner, .. } => {
                write!(f, "the lease {} may hold on {network}", owner.ifname)
            }
            Self::CreatedLink { ifname, .. } => write!(f, "link {ifname}"),
            Self::ServerLease { endpoint } => match &endpoint.dhcp {
                Some(dhcp) => write!(
                    f,
                    "the DHCP lease of {} from {}",
                    dhcp.lease.address, dhcp.lease.server
                ),
                None => write!(f, "the server's lease of {}", endpoint.ifname),
            },
            Self::HostRoutes { link, ips } => {
                let ips: Vec<String> = ips.iter().map(ToString::to_string).collect();
                write!(f, "the host routes to {} via {}", ips.join(", "), link.name)
            }
        }
    }
}
