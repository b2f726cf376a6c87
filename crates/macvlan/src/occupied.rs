//! Nothing we announce on the LAN may impersonate a machine already there (DESIGN.md, rule 9).
//!
//! A container's link announces its addresses (gratuitous ARP, unsolicited NA) as it comes up,
//! and the host link of a network with host access announces the host's; a host route to a
//! container takes the host's own traffic to that address. So an address that something on the
//! LAN already answers for is refused before anything is written or announced: an address of the
//! host itself (any of its links), a router of any of the host's routes (nexthop objects
//! included), a neighbour the host knows on the parent, and anyone who answers an
//! address-conflict probe on the parent ([`oci_macvlan_netlink_core::probe`]).
//!
//! Addresses our own allocator hands out skip all this: the operator gave the range to the
//! network. The checks are for the addresses a container (or `network connect --ip`) names, for
//! `-o host_access` at `network create`, and (without the probe) for a DHCP server's leases,
//! since a server is not the operator; `-o static_ips` lets a network narrow the first kind, or
//! forbid it.

use std::{fmt, net::IpAddr};

use oci_macvlan_ipam::{LeaseStore, LeaseStoreExt, Reserved};
use oci_macvlan_netlink_core::{Handle, Link, MacAddr, Router, probe};

use crate::{Error, Network, ParentLink, Result};

/// Who on the LAN answers for an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// The host itself: a link of its namespace carries the address.
    HostLink(String),
    /// A router the host sends through: the gateway of a route (`None`: the default route).
    Router {
        /// The route's destination and prefix length.
        destination: Option<(IpAddr, u8)>,
        /// The link the route goes out on (`#INDEX` when its name cannot be read); `None`
        /// when the route names none.
        link: Option<String>,
    },
    /// An entry of the host's neighbour table on the parent.
    Neighbour {
        /// The neighbour's MAC, when the entry has one.
        mac: Option<MacAddr>,
        /// The parent.
        link: String,
    },
    /// A machine answered the ARP probe.
    ArpProbe(MacAddr),
    /// A machine answered the neighbour solicitation.
    NsProbe(MacAddr),
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HostLink(link) => write!(f, "the host's link {link}"),
            Self::Router { destination, link } => {
                match destination {
                    None => f.write_str("the router of the host's default route")?,
                    Some((ip, prefix)) => {
                        write!(f, "a router of the host's route to {ip}/{prefix}")?;
                    }
                }
                match link {
                    Some(link) => write!(f, " on {link}"),
                    None => Ok(()),
                }
            }
            Self::Neighbour {
                mac: Some(mac),
                link,
            } => write!(
                f,
                "a neighbour {mac} on {link} (the host's neighbour table)"
            ),
            Self::Neighbour { mac: None, link } => {
                write!(f, "a neighbour on {link} (the host's neighbour table)")
            }
            Self::ArpProbe(mac) => write!(f, "{mac} answered the ARP probe for it"),
            Self::NsProbe(mac) => write!(f, "{mac} answered the neighbour solicitation for it"),
        }
    }
}

/// Attach: refuses static addresses the network does not let a container ask for
/// ([`StaticIps`], invalid input), then those something on the LAN answers for (a conflict).
/// An address outside the network's subnets, or one it reserves (its gateway, an auxiliary or
/// host access address), or one a container holds in the network's store (on this host or,
/// through etcd, another), is left to the allocator, which refuses it in its own words, naming
/// the container.
pub(crate) async fn check_static(
    host: &Handle,
    store: &mut dyn LeaseStore,
    net: &Network,
    parent: &Link,
    ips: &[IpAddr],
) -> Result<()> {
    let ips: Vec<IpAddr> = ips
        .iter()
        .copied()
        .filter(|ip| {
            // The host's own addresses reserved at create are checked still: the error then
            // names the host's link that holds the address (a conflict), not the reservation.
            net.pools.iter().any(|pool| {
                pool.contains(*ip)
                    && match pool.reservation(*ip) {
                        None => true,
                        Some(Reserved::Aux(name)) => name.starts_with(HOST_AUX_PREFIX),
                        Some(_) => false,
                    }
            })
        })
        .collect();
    if ips.is_empty() {
        return Ok(());
    }
    // Before the store is read: who holds an address a tenant may not ask for is none of its
    // business.
    if let Some(ip) = ips.iter().find(|ip| !net.static_ips.allows(**ip)) {
        return Err(Error::StaticIpNotAllowed {
            ip: *ip,
            network: net.name.clone(),
            allowed: net.static_ips.to_string(),
        });
    }
    let mut free = Vec::with_capacity(ips.len());
    for ip in ips {
        if store
            .read(|view| view.lease_of(ip))
            .map_err(Error::store)?
            .is_none()
        {
            free.push(ip);
        }
    }
    let ips = free.as_slice();
    if ips.is_empty() {
        return Ok(());
    }
    match holder(host, net, parent, ips, true, &[], true).await? {
        Some((ip, holder)) => Err(Error::AddressOnLan {
            ip,
            network: net.name.clone(),
            holder: holder.to_string(),
        }),
        None => Ok(()),
    }
}

/// A DHCP lease's new addresses, before the link gets them (DESIGN.md, rule 9: a server is not
/// the operator, and a stale reservation or a rogue server can hand out the host's own address
/// or a router's): refused when the host holds one (any of its links), routes through one, or
/// knows one as a neighbour on `parent` (when found). No probe (the renewer's check; the
/// attach's is [`check_leased_probing`]).
pub(crate) async fn check_leased(
    host: &Handle,
    net: &Network,
    parent: Option<&Link>,
    ips: &[IpAddr],
) -> Result<()> {
    check_leased_probing(host, net, parent, ips, false).await
}

/// [`check_leased`]; with `probe`, then probed for on the LAN out of `parent` (RFC 2131,
/// 4.4.1: a client checks a new lease's address; its cost is the probe's wait,
/// [`oci_macvlan_netlink_core::probe::PROBE_WAIT`], when no one answers).
pub(crate) async fn check_leased_probing(
    host: &Handle,
    net: &Network,
    parent: Option<&Link>,
    ips: &[IpAddr],
    probe: bool,
) -> Result<()> {
    let failed = |source| Error::CheckAddresses {
        network: net.name.clone(),
        source,
    };
    let parent = match parent {
        Some(parent) => Some(parent.clone()),
        None => host
            .link_by_name(net.parent.as_str())
            .await
            .map_err(failed)?,
    };
    let found = match &parent {
        Some(parent) => holder(host, net, parent, ips, true, &[], probe).await?,
        None => None,
    };
    match found {
        Some((ip, holder)) => Err(Error::AddressOnLan {
            ip,
            network: net.name.clone(),
            holder: holder.to_string(),
        }),
        None => Ok(()),
    }
}

/// `network create` with `-o host_access`, and a host link made or set up again: the host
/// link's addresses, checked as a container's static addresses are but for the host's own
/// (which the caller names in its own words). A probe answer from the host link's own MAC is
/// ours (the link renamed by hand, which it then takes back).
pub(crate) async fn check_host_access(host: &Handle, net: &Network, parent: &Link) -> Result<()> {
    if net.host_access.is_empty() {
        return Ok(());
    }
    let ours: Vec<MacAddr> = net.host_link_mac()?.into_iter().collect();
    match holder(host, net, parent, &net.host_access, false, &ours, true).await? {
        Some((ip, holder)) => Err(Error::HostAccessInUse {
            ip,
            network: net.name.clone(),
            holder: holder.to_string(),
        }),
        None => Ok(()),
    }
}

/// The prefix of the auxiliary addresses under which `network create` reserves the host's own
/// addresses that the network's allocator could hand out (`host-eth0`).
pub const HOST_AUX_PREFIX: &str = "host-";

/// `network create`: each address of the host (any link) that `net`'s allocator could hand out
/// (inside a pool's dynamic range, not reserved already) is reserved in its pool as an
/// auxiliary address `host-<link>`, so that no container is given the host's address. Returns
/// the warning that says so (one line), if any was. At create only: an attach reads nothing
/// more.
pub(crate) async fn reserve_host_addresses(
    host: &Handle,
    net: &mut Network,
) -> Result<Option<String>> {
    let failed = |source| Error::CheckAddresses {
        network: net.name.clone(),
        source,
    };
    let addresses = host.all_addresses().await.map_err(failed)?;
    let mut reserved = Vec::new();
    for (index, ip) in addresses {
        let Some(pool) = net.pools.iter_mut().find(|pool| {
            pool.contains(ip)
                && pool.ip_range.unwrap_or(pool.subnet).contains(ip)
                && pool.reservation(ip).is_none()
        }) else {
            continue;
        };
        let link = link_name(host, index).await;
        let base = format!("{HOST_AUX_PREFIX}{link}");
        let mut name = base.clone();
        let mut n = 1;
        while pool.aux_addresses.contains_key(&name) {
            n += 1;
            name = format!("{base}-{n}");
        }
        pool.aux_addresses.insert(name.clone(), ip);
        reserved.push(format!("{ip} ({link}) as {name}"));
    }
    Ok((!reserved.is_empty()).then(|| {
        format!(
            "network {}: the host's own addresses inside its pool are reserved as auxiliary addresses, never handed out: {} (give --ip-range to keep the pool off them)",
            net.name,
            reserved.join(", ")
        )
    }))
}

/// Whether a probe is sent on `net`: not on a network of its own dummy (no LAN to ask), not
/// when the operator turned it off (`-o address_probe=off`).
pub fn probes(net: &Network) -> bool {
    net.parent_link != ParentLink::Dummy && net.address_probe
}

/// Why a probe out of `parent` could not be answered: the link is down, or up without a
/// carrier (no cable, no peer). Nothing answering is then no sign that the address is free.
fn unprobeable(parent: &Link) -> Option<&'static str> {
    if !parent.up {
        Some("down")
    } else if parent.carrier == Some(false) {
        Some("up without a carrier")
    } else {
        None
    }
}

/// Who answers for one of `ips` on `net`'s LAN, if anyone: the host (when `host_itself`), its
/// routers, its neighbours on `parent`, then the probe.
async fn holder(
    host: &Handle,
    net: &Network,
    parent: &Link,
    ips: &[IpAddr],
    host_itself: bool,
    ours: &[MacAddr],
    probe_too: bool,
) -> Result<Option<(IpAddr, Holder)>> {
    let failed = |source| Error::CheckAddresses {
        network: net.name.clone(),
        source,
    };
    // The routes are dumped once, for the host's `local` routes and the routers both.
    let mut routers = None;
    if host_itself {
        // The addresses themselves, not only their `local` routes: a local route deleted by
        // hand (or by a routing daemon) leaves the address on its link, and the host still
        // sends from it.
        let mut held = host.address_holders(ips).await.map_err(failed)?;
        if held.is_empty() {
            let (local, all) = host.local_holders_and_routers(ips).await.map_err(failed)?;
            held = local;
            routers = Some(all);
        }
        if let Some((index, ip)) = held.first() {
            return Ok(Some((*ip, Holder::HostLink(link_name(host, *index).await))));
        }
    }
    // A router the host's operator reaches through the network's own host link is a container.
    let own = match net.host_link() {
        Some(name) => host
            .link_by_name(&name)
            .await
            .map_err(failed)?
            .map(|l| l.index),
        None => None,
    };
    let routers = match routers {
        Some(routers) => routers,
        None => host.routers().await.map_err(failed)?,
    };
    if let Some(router) = routers
        .iter()
        .find(|r| ips.contains(&r.gateway) && Some(r.oif) != own)
    {
        return Ok(Some(router_holder(host, router).await));
    }
    let neighbours = host
        .neighbours_holding(parent.index, ips)
        .await
        .map_err(failed)?;
    if let Some(n) = neighbours.first() {
        return Ok(Some((
            n.ip,
            Holder::Neighbour {
                mac: n.mac,
                link: parent.name.clone(),
            },
        )));
    }
    if probe_too && probes(net) {
        if let (Some(state), Some(ip)) = (unprobeable(parent), ips.first()) {
            return Err(Error::ProbeParentDown {
                ip: *ip,
                network: net.name.clone(),
                parent: parent.name.clone(),
                state,
            });
        }
        // Out of the parent. A probe out of a bridge-mode sibling would also reach a foreign
        // macvlan on the parent (the parent's own frames never do), but it hears as well the
        // link of a container just stopped whose namespace the kernel is still tearing down,
        // and would refuse its address to the next container that asks for it (a restart with
        // a static address); it was tried and taken out (see README, *Static addresses and the
        // LAN*).
        let answer = probe(parent, ips, ours);
        if let Some(answer) = answer.map_err(failed)? {
            let holder = match answer.ip {
                IpAddr::V4(_) => Holder::ArpProbe(answer.mac),
                IpAddr::V6(_) => Holder::NsProbe(answer.mac),
            };
            return Ok(Some((answer.ip, holder)));
        }
    }
    Ok(None)
}

async fn router_holder(host: &Handle, router: &Router) -> (IpAddr, Holder) {
    let link = match router.oif {
        0 => None,
        index => Some(link_name(host, index).await),
    };
    let destination = router.destination.filter(|(_, prefix)| *prefix != 0);
    (router.gateway, Holder::Router { destination, link })
}

/// A link's name for a message; its index when it cannot be read.
async fn link_name(host: &Handle, index: u32) -> String {
    match host.link_by_index(index).await {
        Ok(Some(link)) => link.name,
        _ => format!("#{index}"),
    }
}

#[cfg(test)]
mod tests;
