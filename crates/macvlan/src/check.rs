//! A check of one live attachment against what it was said to be when it was made (CNI's CHECK
//! with ADD's result as `prevResult`) and against the container's record, the network's
//! definition and its lease store: the link's kind, mode, parent and MAC, its addresses, the
//! routes, and each address's lease. Read only; every difference is named.
//!
//! [`attachment_problems`] reads; [`problems`] compares, pure, so each rule is tested without
//! root.

use std::{collections::BTreeSet, net::IpAddr, path::Path};

use ipnetwork::IpNetwork;
use oci_macvlan_ipam::{Lease, LeaseStoreExt};
use oci_macvlan_netlink_core::{Handle, Link, MacAddr, Netns, TableRoute};

use crate::{Access, ContainerId, Error, Network, RecordedEndpoint, Records, StorePolicy};

/// What a front door was told an attachment is (CNI: ADD's result, replayed as `prevResult`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    /// The link's MAC, if the result gave one.
    pub mac: Option<MacAddr>,
    /// The link's addresses.
    pub addresses: Vec<IpNetwork>,
    /// Routes the container's namespace has: a destination and, if given, its gateway.
    pub routes: Vec<(IpNetwork, Option<IpAddr>)>,
}

/// What is there now, as [`attachment_problems`] read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    /// The container's link.
    pub link: Link,
    /// The network's parent in the host's namespace, if it is there.
    pub parent: Option<Link>,
    /// The link's addresses of global scope.
    pub addresses: Vec<IpAddr>,
    /// The main table of the container's namespace.
    pub routes: Vec<TableRoute>,
    /// For each expected address: its lease in the network's store, if any, and whether that
    /// lease is this host's.
    pub leases: Vec<(IpAddr, Option<Lease>, bool)>,
}

/// Checks the attachment of container `id` to `network` on interface `ifname` in the namespace
/// at `netns`: what differs from `expected`, the record and the store, one line each (empty
/// when all agree). A missing record, endpoint or link is a difference; a store that cannot be
/// read, or a namespace that cannot be opened, is an error.
pub async fn attachment_problems<P: StorePolicy>(
    stores: &P,
    records: &Records,
    network: &Network,
    id: &ContainerId,
    ifname: &str,
    netns: &Path,
    expected: &Expected,
) -> Result<Vec<String>, P::Error> {
    let record = records.read(id)?;
    let Some(endpoint) = record.as_ref().and_then(|r| {
        r.endpoints
            .iter()
            .find(|e| e.network == network.name && e.ifname == ifname)
    }) else {
        return Ok(vec![format!(
            "container {id} has no attachment {ifname} on network {}",
            network.name
        )]);
    };
    let ns = Netns::open(netns).map_err(Error::Netlink)?;
    let handle = Handle::open(&ns).map_err(Error::Netlink)?;
    let Some(link) = handle.link_by_name(ifname).await.map_err(Error::Netlink)? else {
        return Ok(vec![format!(
            "interface {ifname} is missing from {}",
            netns.display()
        )]);
    };
    let addresses = handle
        .global_addresses(&link)
        .await
        .map_err(Error::Netlink)?;
    let routes = handle.main_routes().await.map_err(Error::Netlink)?;
    let host = Handle::current().map_err(Error::Netlink)?;
    let parent = host
        .link_by_name(network.parent.as_str())
        .await
        .map_err(Error::Netlink)?;
    // The leases of what ADD gave: an address it did not give is named as such already.
    let ips: BTreeSet<IpAddr> = expected.addresses.iter().map(IpNetwork::ip).collect();
    let mut store = stores.networks_store(&[network], Access::Read, false)?;
    let found = store
        .read(|view| {
            ips.iter()
                .map(|ip| view.lease_of(*ip).map(|lease| (*ip, lease)))
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(Error::store)?;
    let leases = found
        .into_iter()
        .map(|(ip, lease)| {
            let ours = lease.as_ref().is_some_and(|l| store.is_ours(l));
            (ip, lease, ours)
        })
        .collect();
    let live = Live {
        link,
        parent,
        addresses,
        routes,
        leases,
    };
    Ok(problems(network, endpoint, id, expected, &live))
}

/// What differs between `live` and what `network`'s definition, the container's recorded
/// `endpoint` and `expected` say, one line each.
pub fn problems(
    network: &Network,
    endpoint: &RecordedEndpoint,
    id: &ContainerId,
    expected: &Expected,
    live: &Live,
) -> Vec<String> {
    let link = &live.link;
    let mut out = Vec::new();
    let kind = endpoint.kind.as_deref().unwrap_or("macvlan");
    if link.kind.as_deref() != Some(kind) {
        out.push(format!(
            "its kind is {}, not {kind}",
            link.kind.as_deref().unwrap_or("none")
        ));
    } else {
        let mode = network.driver().child().mode();
        match link.mode {
            Some(live) if live != mode => out.push(format!("it is in {live}, not {mode}")),
            None => out.push(format!("the kernel reports no mode for it, not {mode}")),
            Some(_) => {}
        }
    }
    match &live.parent {
        None => out.push(format!(
            "its parent {} is missing from the host",
            network.parent
        )),
        Some(parent) if link.lower != Some(parent.index) => out.push(format!(
            "its parent is not {} (index {}) but the link of index {}",
            network.parent,
            parent.index,
            link.lower.map_or("none".into(), |i| i.to_string())
        )),
        Some(_) => {}
    }
    let live_mac = link.mac.map_or("none".into(), |m| m.to_string());
    if let Some(mac) = endpoint.mac
        && link.mac != Some(mac)
    {
        out.push(format!("its MAC is {live_mac}, not {mac} as recorded"));
    } else if let Some(mac) = expected.mac
        && link.mac != Some(mac)
    {
        out.push(format!(
            "its MAC is {live_mac}, not {mac} as ADD's result says"
        ));
    }
    if endpoint.index.is_some_and(|i| i != link.index) {
        out.push("it is another link than the one ADD made (its index differs)".into());
    }
    for address in &expected.addresses {
        if !live.addresses.contains(&address.ip()) {
            out.push(format!("address {address} is missing"));
        }
    }
    for ip in &live.addresses {
        if !expected.addresses.iter().any(|a| a.ip() == *ip) {
            out.push(format!("it has address {ip}, which ADD did not give it"));
        }
    }
    for (dst, gw) in &expected.routes {
        let found = live.routes.iter().any(|r| {
            r.destination == (dst.network(), dst.prefix())
                && gw.is_none_or(|g| r.gateway == Some(g))
        });
        if !found {
            let via = gw.map(|g| format!(" via {g}")).unwrap_or_default();
            out.push(format!("route {dst}{via} is missing"));
        }
    }
    for (ip, lease, ours) in &live.leases {
        match lease {
            None => out.push(format!("address {ip} has no lease in the store")),
            Some(lease)
                if !ours
                    || lease.owner.container_id != id.as_str()
                    || lease.owner.ifname != endpoint.ifname
                    || lease.network != network.name =>
            {
                let host = lease
                    .host
                    .as_ref()
                    .map(|h| format!(" of host {h}"))
                    .unwrap_or_default();
                out.push(format!(
                    "address {ip} is leased to container {} ({}){host} on network {}",
                    lease.owner.container_id, lease.owner.ifname, lease.network
                ));
            }
            Some(_) => {}
        }
    }
    out
}

#[cfg(test)]
#[path = "check/tests.rs"]
mod tests;
