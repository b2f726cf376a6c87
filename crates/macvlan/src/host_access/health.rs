//! The state of the networks' host access, read (`verify`, `doctor`) and repaired (`gc`).

use std::net::IpAddr;

use oci_macvlan_ipam::LeaseSet;
use oci_macvlan_netlink_core::Handle;
use oci_macvlan_vlan::OWNER_ALIAS;

use super::{
    Ensured, add_routes, ensure_link, lacking, link_name, lock, lookup, readdress, wanted,
};
use crate::{
    Error, Network, Networks, Records, Result,
    parents::resolve_parents,
    reach::{Unreachable, unreachable_of},
};

fn with_host_access(networks: &Networks) -> Result<Vec<Network>> {
    let mut nets = networks.list()?;
    nets.retain(|n| !n.host_access.is_empty());
    Ok(nets)
}

/// What `gc` did to the networks' host access: a line per change, and a line per network it
/// could not repair (which makes `gc` fail once it has done the rest).
#[derive(Debug, Default)]
pub struct Repaired {
    /// What was changed, a line each.
    pub lines: Vec<String>,
    /// The networks that could not be repaired, a line each, saying why.
    pub failed: Vec<String>,
}

/// `gc`: for each network with host access, makes its link again if it is missing (with its
/// parent, if that is ours to make; in place of the link renamed by hand, if it finds it),
/// adds the routes of containers on record that lack one and deletes the routes through it to
/// addresses no container on record holds. A network whose cluster is `unreachable` is left
/// alone (its leases unknown, no route is known to be wrong), a line saying so (that cluster
/// fails `gc` already).
pub(crate) async fn repair(
    store: &mut dyn LeaseSet,
    unreachable: &[Unreachable],
    records: &Records,
    networks: &Networks,
) -> Result<Repaired> {
    let nets = with_host_access(networks)?;
    let mut repaired = Repaired::default();
    if nets.is_empty() {
        return Ok(repaired);
    }
    let host = Handle::current().map_err(Error::Netlink)?;
    let lines = &mut repaired.lines;
    for net in &nets {
        if let Some(u) = unreachable_of(unreachable, net) {
            lines.push(format!(
                "network {}: host access not repaired: {}",
                net.name, u.error
            ));
            continue;
        }
        // One network's host access that cannot be repaired (its link's name taken by a link
        // that is not ours, its MAC by another link, a parent that refuses the link) is a
        // line: the other networks and the rest of gc go on, and gc fails at the end.
        if let Err(err) = repair_one(&host, store, records, net, lines).await {
            repaired.failed.push(format!(
                "network {}: host access not repaired: {}",
                net.name,
                crate::one_line(&err)
            ));
        }
    }
    Ok(repaired)
}

/// `gc`'s repair of one network's host access, its changes pushed onto `lines`.
async fn repair_one(
    host: &Handle,
    store: &mut dyn LeaseSet,
    records: &Records,
    net: &Network,
    lines: &mut Vec<String>,
) -> Result<()> {
    let parent = resolve_parents(host, &[net]).await?.remove(0);
    let _lock = lock(records, net)?;
    let (link, ensured) = ensure_link(host, net, &parent, Some(records)).await?;
    let done = match &ensured {
        Ensured::Found => None,
        Ensured::Made => Some("made".to_owned()),
        Ensured::SetUp => Some("set up".to_owned()),
        Ensured::Replaced(renamed) => Some(format!(
            "deleted {renamed}, the host link renamed, and made"
        )),
    };
    if let Some(done) = done {
        lines.push(format!(
            "{done} host link {} of network {} again",
            link.name, net.name
        ));
    }
    // Up but without an address of its own (flushed by hand or by a network manager): the
    // host cannot be answered through it.
    let lacking = readdress(host, net, &link).await?;
    if !lacking.is_empty() {
        let lacking: Vec<String> = lacking.iter().map(ToString::to_string).collect();
        lines.push(format!(
            "gave host link {} of network {} its address {} again",
            link.name,
            net.name,
            lacking.join(", ")
        ));
    }
    // The routes first, then the leases: a route an attach adds follows its lease, so
    // every route read here whose container is on record has its lease read below.
    let have = host
        .host_routes(&link)
        .await
        .map_err(|source| Error::HostRoutes {
            network: net.name.clone(),
            source,
        })?;
    let wanted = wanted(net, store, records)?;
    let missing: Vec<IpAddr> = wanted
        .iter()
        .filter(|ip| !have.contains(ip))
        .copied()
        .collect();
    let mut added = Vec::new();
    add_routes(host, net, &link, &missing, &mut added).await?;
    for ip in added {
        lines.push(format!(
            "restored host route {ip} via {} (network {})",
            link.name, net.name
        ));
    }
    for ip in have.iter().filter(|ip| !wanted.contains(ip)) {
        host.delete_host_route(&link, *ip)
            .await
            .map_err(|source| Error::HostRoutes {
                network: net.name.clone(),
                source,
            })?;
        lines.push(format!(
            "deleted host route {ip} via {} (network {}): no container on record holds it",
            link.name, net.name
        ));
    }
    Ok(())
}

/// What is wrong with the host access of the networks, read only: a missing or foreign link,
/// a container address on record without its route, a route to an address none holds. A
/// network whose cluster is `unreachable` is not checked.
pub async fn verify(
    networks: &Networks,
    store: &mut dyn LeaseSet,
    unreachable: &[Unreachable],
    records: &Records,
) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let nets = with_host_access(networks)?;
    if nets.is_empty() {
        return Ok(problems);
    }
    let host = Handle::current().map_err(Error::Netlink)?;
    for net in nets
        .iter()
        .filter(|n| unreachable_of(unreachable, n).is_none())
    {
        let health = health(&host, net, store, records).await?;
        problems.extend(health.problems());
    }
    Ok(problems)
}

/// The state of one network's host access, as `verify` and `doctor` report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// The network.
    pub network: String,
    /// The name of the network's host link.
    pub link: String,
    /// The link is there, ours.
    pub present: bool,
    /// The link is there and down (which cost it its routes and its IPv6 address).
    pub down: bool,
    /// Host access addresses the link, there, does not hold.
    pub lacking: Vec<IpAddr>,
    /// Addresses of containers on record without a host route.
    pub missing: Vec<IpAddr>,
    /// Host routes through the link to addresses no container on record holds.
    pub stale: Vec<IpAddr>,
}

impl Health {
    /// What is wrong, a line each for a report; empty when the host access is whole.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.present {
            problems.push(format!(
                "network {}: host link {} is missing (the next attach or `oci-macvlan gc` makes it again)",
                self.network, self.link
            ));
        }
        if self.down {
            problems.push(format!(
                "network {}: host link {} is down (the next attach or `oci-macvlan gc` sets it up again)",
                self.network, self.link
            ));
        }
        for ip in &self.lacking {
            problems.push(format!(
                "network {}: host link {} lacks the host access address {ip}",
                self.network, self.link
            ));
        }
        for ip in &self.missing {
            problems.push(format!(
                "network {}: no host route to container address {ip} via {}",
                self.network, self.link
            ));
        }
        for ip in &self.stale {
            problems.push(format!(
                "network {}: host route {ip} via {} leads to no container on record",
                self.network, self.link
            ));
        }
        problems
    }
}

/// Reads the host access state of `net` (which has host access).
pub async fn health(
    host: &Handle,
    net: &Network,
    store: &mut dyn LeaseSet,
    records: &Records,
) -> Result<Health> {
    let name = link_name(&net.id);
    let link = lookup(host, net)
        .await?
        .filter(|l| l.alias.as_deref() == Some(OWNER_ALIAS));
    let routes = |source| Error::HostRoutes {
        network: net.name.clone(),
        source,
    };
    let (have, lacking) = match &link {
        Some(link) => (
            host.host_routes(link).await.map_err(routes)?,
            lacking(host, net, link).await?,
        ),
        None => (Vec::new(), Vec::new()),
    };
    let wanted = wanted(net, store, records)?;
    Ok(Health {
        network: net.name.clone(),
        link: name,
        present: link.is_some(),
        down: link.as_ref().is_some_and(|l| !l.up),
        lacking,
        missing: wanted
            .iter()
            .filter(|ip| !have.contains(ip))
            .copied()
            .collect(),
        stale: have
            .iter()
            .filter(|ip| !wanted.contains(ip))
            .copied()
            .collect(),
    })
}
