//! A renewal that keeps the address but changes the routes: the server's ACK names another
//! router (option 3) or other classless static routes (option 121). The link's routes follow,
//! as `wire` would have made them for the new lease: the default route via the new gateway
//! when this link held the old one (or no link holds one: the first network with a default
//! route wins), the lease's routes through `wire::source_routes_among` (no default among them, none
//! shorter than /8 unless this link holds the default, none into another endpoint's subnet). Routes the old lease gave and the new
//! one does not are deleted; the rest stay (no gap in the container's traffic).

use std::net::{IpAddr, Ipv4Addr};

use ipnetwork::IpNetwork;
use oci_macvlan_dhcp::Lease as DhcpLease;
use oci_macvlan_netlink_core::{Errno, Handle, Link, Netns};

use super::DhcpRenewal;
use crate::{
    Error, Result, StorePolicy,
    endpoint::real::Real,
    kernel::Kernel,
    source::dhcp::acquired,
    wire::{Route, source_routes, source_routes_among},
};

/// A route's destination and gateway, as `delete_route` takes them.
fn parts(route: &Route) -> Option<((IpAddr, u8), Option<IpAddr>)> {
    match *route {
        Route::OnLink(net) => Some(((net.network(), net.prefix()), None)),
        Route::Via {
            destination,
            gateway,
        } => Some(((destination.network(), destination.prefix()), Some(gateway))),
        Route::DefaultVia(_) | Route::DefaultOnLink { .. } => None,
    }
}

impl<P: StorePolicy> DhcpRenewal<P> {
    /// Moves the link's routes from `old`'s to `new`'s (the same address and prefix); nothing
    /// when the router and the routes are the same.
    pub(super) async fn reroute(
        &self,
        netns: &Netns,
        container: &Handle,
        link: &Link,
        (old, new): (&DhcpLease, &DhcpLease),
        others: &[IpNetwork],
    ) -> Result<()> {
        let ip = IpAddr::V4(new.address);
        let address = IpNetwork::new(ip, new.prefix)
            .map_err(|_| self.failed(format!("prefix {} of {ip}", new.prefix)))?;
        let (was, will) = (acquired(old, address), acquired(new, address));
        if was.gateway == will.gateway && was.routes == will.routes {
            return Ok(());
        }
        let configure = |source| Error::Configure {
            network: self.network.clone(),
            ifname: link.name.clone(),
            source,
        };
        let any = (IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
        // Whether this link holds the v4 default route now.
        let held = container
            .main_routes()
            .await
            .map_err(Error::Netlink)?
            .iter()
            .any(|r| r.destination == any && r.oif == link.index);
        let mut holds = held;
        if was.gateway != will.gateway {
            match (held, will.gateway) {
                // In one step: no moment without a default route, and the old one stays if
                // the kernel refuses the new one.
                (true, Some(gateway)) => {
                    container
                        .replace_default_route(link, gateway)
                        .await
                        .map_err(configure)?;
                }
                (true, None) => {
                    if let Some(gateway) = was.gateway {
                        container
                            .delete_route(link, any, Some(gateway))
                            .await
                            .map_err(configure)?;
                    }
                    holds = false;
                }
                (false, _) => {}
            }
        }
        if was.gateway != will.gateway
            && !held
            && let Some(gateway) = will.gateway
        {
            let host = Handle::current().map_err(Error::Netlink)?;
            let kernel = Real {
                host: &host,
                container,
                netns,
            };
            match kernel.add_route(link, &Route::DefaultVia(gateway)).await {
                Ok(()) => holds = true,
                // Another network of the container holds it: the first one wins.
                Err(err) if err.errno() == Some(Errno::EEXIST) => {}
                Err(err) => return Err(configure(err)),
            }
        }
        let keep: Vec<Route> = source_routes_among(&will.routes, holds, others).collect();
        for route in source_routes(&was.routes, true) {
            if keep.contains(&route) {
                continue;
            }
            if let Some((destination, gateway)) = parts(&route) {
                container
                    .delete_route(link, destination, gateway)
                    .await
                    .map_err(configure)?;
            }
        }
        let host = Handle::current().map_err(Error::Netlink)?;
        let kernel = Real {
            host: &host,
            container,
            netns,
        };
        for route in &keep {
            match kernel.add_route(link, route).await {
                Ok(()) => {}
                Err(err) if err.errno() == Some(Errno::EEXIST) => {}
                Err(err) => return Err(configure(err)),
            }
        }
        Ok(())
    }
}

impl<P: StorePolicy> DhcpRenewal<P> {
    /// The subnets of the container's endpoints other than the one at `at`, as the attach's
    /// `wire::other_subnets` gathers them: their networks' pools and DHCP `--subnet`s, and the
    /// addresses their leases gave. A renewed lease's routes stay out of them.
    pub(super) fn other_subnets(
        &self,
        record: &crate::record::Record,
        at: usize,
    ) -> Vec<IpNetwork> {
        let mut others = Vec::new();
        for (_, endpoint) in record
            .endpoints
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != at)
        {
            if let Ok(net) = self.networks.load(&endpoint.network) {
                others.extend(net.pools.iter().map(|p| p.subnet));
                if let Some(dhcp) = &net.dhcp {
                    others.extend(dhcp.subnet.map(IpNetwork::V4));
                    others.extend(dhcp.subnet6.map(IpNetwork::V6));
                }
            }
            if let Some(dhcp) = &endpoint.dhcp {
                let lease = &dhcp.lease;
                others.extend(
                    IpNetwork::new(IpAddr::V4(lease.address), lease.prefix)
                        .and_then(|a| IpNetwork::new(a.network(), a.prefix()))
                        .ok(),
                );
                if let Some(v6) = &dhcp.v6 {
                    let address = crate::source::dhcp6::address(v6);
                    others.extend(IpNetwork::new(address.network(), address.prefix()).ok());
                }
            }
        }
        others
    }
}
