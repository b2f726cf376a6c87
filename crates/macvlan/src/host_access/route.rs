//! The host's routes to the containers of a network with host access, through its host link:
//! added in an attach (and when the link is made again), deleted in a detach or an undo.

use std::{collections::BTreeSet, net::IpAddr};

use oci_macvlan_ipam::LeaseSet;
use oci_macvlan_netlink_core::{Errno, Handle, Link};
use oci_macvlan_vlan::OWNER_ALIAS;

use crate::{Error, Network, Records, Result, record::RecordedEndpoint};

/// The check of a static address (a router the host sends through among others) lives with
/// the other checks of what the LAN holds.
pub(crate) use crate::occupied::check_static;

/// Adds a host route to each of `ips` through `link`, pushing onto `added` those this call
/// added (a route already there is not this call's).
pub(crate) async fn add_routes(
    host: &Handle,
    net: &Network,
    link: &Link,
    ips: &[IpAddr],
    added: &mut Vec<IpAddr>,
) -> Result<()> {
    for ip in ips {
        match host.add_host_route(link, *ip).await {
            Ok(()) => added.push(*ip),
            Err(err) if err.errno() == Some(Errno::EEXIST) => {}
            Err(source) => {
                return Err(Error::HostRoutes {
                    network: net.name.clone(),
                    source,
                });
            }
        }
    }
    Ok(())
}

/// The routes of every container on record for the network, through its host link. Under the
/// network's host-access lock, held exclusively: a detach holds it shared across its
/// [`unroute`] and its release, so no lease read here is being released (see the module doc of
/// `host_access`).
pub(super) async fn restore(
    host: &Handle,
    net: &Network,
    link: &Link,
    store: &mut dyn LeaseSet,
    records: &Records,
) -> Result<Vec<IpAddr>> {
    let wanted = wanted(net, store, records)?;
    let mut added = Vec::new();
    add_routes(host, net, link, &wanted, &mut added).await?;
    Ok(added)
}

/// The addresses the network's containers on record hold: those the host routes to.
pub(super) fn wanted(
    net: &Network,
    store: &mut dyn LeaseSet,
    records: &Records,
) -> Result<Vec<IpAddr>> {
    let leases = store.network_leases(&net.name).map_err(Error::store)?;
    let mut recorded = BTreeSet::new();
    let mut wanted = Vec::new();
    // A host's host access lease is no container's: it has no record, and no route.
    for lease in leases
        .into_iter()
        .filter(|l| !super::shared::is_host_access(l))
    {
        let id = &lease.owner.container_id;
        if recorded.contains(id) || records.read(id)?.is_some() {
            recorded.insert(id.clone());
            if net.host_routes_to(lease.ip) {
                wanted.push(lease.ip);
            }
        }
    }
    Ok(wanted)
}

/// Detach (and disconnect): deletes the host routes to the addresses the container holds on
/// networks with host access (its record names their host links). A host link that is gone took
/// its routes along; a link of that name that is not ours is not touched. The caller holds the
/// links' host-access locks shared ([`super::hold`]) until it has released the leases.
pub(crate) async fn unroute(
    host: &impl crate::kernel::Host,
    store: &mut dyn LeaseSet,
    container_id: &str,
    endpoints: &[RecordedEndpoint],
) -> Result<()> {
    if endpoints.iter().all(|e| e.host_link.is_none()) {
        return Ok(());
    }
    let leases = store.container_leases(container_id).map_err(Error::store)?;
    for ep in endpoints {
        let Some(name) = &ep.host_link else {
            continue;
        };
        let routes = |source| Error::HostRoutes {
            network: ep.network.clone(),
            source,
        };
        let link = host.host_link_by_name(name).await.map_err(routes)?;
        let Some(link) = link.filter(|l| l.alias.as_deref() == Some(OWNER_ALIAS)) else {
            continue;
        };
        for lease in leases
            .iter()
            .filter(|l| l.network == ep.network && l.owner.ifname == ep.ifname)
        {
            host.delete_host_route(&link, lease.ip)
                .await
                .map_err(routes)?;
        }
    }
    Ok(())
}
