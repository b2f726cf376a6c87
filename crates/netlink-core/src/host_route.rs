//! Host routes (`/32`, `/128`) through one link, and which links of a namespace carry an
//! address: what a network's host-side link needs (the host reaching its own containers).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures_util::TryStreamExt;
use rtnetlink::{
    RouteMessageBuilder,
    packet_route::{
        AddressFamily,
        address::AddressAttribute,
        route::{
            RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType,
            RouteVia,
        },
    },
};

use crate::{Errno, Error, Handle, KernelError, Link, Result};

/// The main routing table (`RT_TABLE_MAIN`).
const MAIN_TABLE: u8 = 254;

/// A router the host sends through: the gateway of one of its routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Router {
    /// The router's address (`RTA_GATEWAY`, `RTA_VIA`, or a nexthop's).
    pub gateway: IpAddr,
    /// The index of the link the route goes out of (0 for none given).
    pub oif: u32,
    /// The route's destination and prefix length (none for a default route).
    pub destination: Option<(IpAddr, u8)>,
}

/// A unicast route of the main table, as a check of a container's routes reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRoute {
    /// Its destination and prefix length (the family's unspecified address and 0 for a
    /// default route).
    pub destination: (IpAddr, u8),
    /// Its gateway (`RTA_GATEWAY`), if it has one.
    pub gateway: Option<IpAddr>,
    /// The index of the link it goes out of (0 for none given).
    pub oif: u32,
}

fn host_route(link: &Link, destination: IpAddr) -> RouteMessage {
    match destination {
        IpAddr::V4(ip) => RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(ip, 32)
            .output_interface(link.index)
            .scope(RouteScope::Link)
            .protocol(RouteProtocol::Static)
            .build(),
        IpAddr::V6(ip) => RouteMessageBuilder::<Ipv6Addr>::new()
            .destination_prefix(ip, 128)
            .output_interface(link.index)
            .protocol(RouteProtocol::Static)
            .build(),
    }
}

impl Handle {
    /// Adds `ip route add DESTINATION/32 (/128) dev LINK scope link proto static`. `EEXIST` when
    /// the route is there already (the caller decides whether that is done).
    pub async fn add_host_route(&self, link: &Link, destination: IpAddr) -> Result<()> {
        self.add_route(host_route(link, destination))
            .await
            .map_err(|source| Error::AddHostRoute {
                link: link.name.clone(),
                destination,
                source,
            })
    }

    /// Deletes the host route to `destination` through `link` (and no route through another
    /// link). A route that is already gone, or a link that is, is not an error.
    pub async fn delete_host_route(&self, link: &Link, destination: IpAddr) -> Result<()> {
        // As `ip route del` asks: any protocol and scope, so a route someone else added
        // through the link matches too.
        let mut route = host_route(link, destination);
        route.header.protocol = RouteProtocol::Unspec;
        route.header.scope = RouteScope::NoWhere;
        match self.inner.route().del(route).execute().await {
            Ok(()) => Ok(()),
            Err(err) => match KernelError::from(err) {
                KernelError::Errno(Errno::ESRCH | Errno::ENODEV | Errno::ENOENT) => Ok(()),
                source => Err(Error::DeleteHostRoute {
                    link: link.name.clone(),
                    destination,
                    source,
                }),
            },
        }
    }

    /// The destinations of the host routes (`/32`, `/128`, main table, not the kernel's own)
    /// through `link`, both families. The kernel answers with every route of the namespace and
    /// the link's are kept: for `gc`, `verify` and `doctor`, never on a hook's path.
    pub async fn host_routes(&self, link: &Link) -> Result<Vec<IpAddr>> {
        let mut found = Vec::new();
        for msg in self.all_routes(&link.name).await? {
            let full = match msg.header.address_family {
                AddressFamily::Inet => 32,
                _ => 128,
            };
            if msg.header.destination_prefix_length != full
                || msg.header.table != MAIN_TABLE
                || msg.header.kind != RouteType::Unicast
                || msg.header.protocol == RouteProtocol::Kernel
                || !msg
                    .attributes
                    .iter()
                    .any(|a| matches!(a, RouteAttribute::Oif(index) if *index == link.index))
            {
                continue;
            }
            found.extend(msg.attributes.iter().find_map(|a| match a {
                RouteAttribute::Destination(dst) => ip_of(dst),
                _ => None,
            }));
        }
        Ok(found)
    }

    /// The routers of every route of the namespace, every table, both families: each route's
    /// gateway (`RTA_GATEWAY`, or `RTA_VIA` for one of the other family), its multipath hops', and those of the nexthop object it names (`RTA_NH_ID`,
    /// which is all a route carries with `net.ipv4.nexthop_compat_mode=0`), each with the link
    /// it goes out of and the route's destination. The nexthop objects are read from the
    /// calling thread's namespace: call it on [`Handle::current`] only.
    pub async fn routers(&self) -> Result<Vec<Router>> {
        routers_of(&self.all_routes("(all)").await?)
    }

    /// [`Self::local_route_holders`] of `addresses` and those of [`Self::routers`] that can be
    /// one of them, from one dump of the routes (an attach's check of a leased address needs
    /// both): IPv4's routes only, for IPv4 addresses.
    pub async fn local_holders_and_routers(
        &self,
        addresses: &[IpAddr],
    ) -> Result<(Vec<(u32, IpAddr)>, Vec<Router>)> {
        // IPv6's routes only for an IPv6 address: an IPv4 route may go via an IPv6 router
        // (`RTA_VIA`), and the kernel takes no IPv6 route via an IPv4 one.
        let ipv6 = addresses.iter().any(IpAddr::is_ipv6);
        let routes = self.routes_of_families("(all)", ipv6).await?;
        Ok((local_holders_of(&routes, addresses), routers_of(&routes)?))
    }

    /// The unicast routes of the main table, both families (one dump per family): for a check a
    /// person or a runtime asked for (CNI's CHECK), never on a hook's path.
    pub async fn main_routes(&self) -> Result<Vec<TableRoute>> {
        let mut found = Vec::new();
        for msg in self.all_routes("(main table)").await? {
            if msg.header.table != MAIN_TABLE || msg.header.kind != RouteType::Unicast {
                continue;
            }
            let unspecified = match msg.header.address_family {
                AddressFamily::Inet => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                _ => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            };
            let destination = msg
                .attributes
                .iter()
                .find_map(|a| match a {
                    RouteAttribute::Destination(dst) => ip_of(dst),
                    _ => None,
                })
                .unwrap_or(unspecified);
            let gateway = msg.attributes.iter().find_map(|a| match a {
                RouteAttribute::Gateway(gw) => ip_of(gw),
                _ => None,
            });
            found.push(TableRoute {
                destination: (destination, msg.header.destination_prefix_length),
                gateway,
                oif: oif(&msg),
            });
        }
        Ok(found)
    }

    /// Every route of the namespace, both families, every table (one dump per family); `link`
    /// names what the caller looks for, in the error.
    async fn all_routes(&self, link: &str) -> Result<Vec<RouteMessage>> {
        self.routes_of_families(link, true).await
    }

    /// The routes of every table: IPv4's, and IPv6's when `ipv6` (one dump per family).
    async fn routes_of_families(&self, link: &str, ipv6: bool) -> Result<Vec<RouteMessage>> {
        let mut routes = Vec::new();
        let families = [
            Some(RouteMessageBuilder::<Ipv4Addr>::new().build()),
            ipv6.then(|| RouteMessageBuilder::<Ipv6Addr>::new().build()),
        ];
        for family in families.into_iter().flatten() {
            let mut dump = self.inner.route().get(family).execute();
            while let Some(msg) = dump.try_next().await.map_err(|err| Error::ListRoutes {
                link: link.to_owned(),
                source: err.into(),
            })? {
                routes.push(msg);
            }
        }
        Ok(routes)
    }

    /// Which of `addresses` a link of this namespace carries, as `(link index, address)`: the
    /// link's own address (`IFA_LOCAL` when there is one: a point-to-point address's
    /// `IFA_ADDRESS` is its peer's). One dump of the namespace's addresses: for `network
    /// create`, `gc`, and an attach that asks for a static address.
    /// Only one family's addresses are dumped when `addresses` are all of it.
    pub async fn address_holders(&self, addresses: &[IpAddr]) -> Result<Vec<(u32, IpAddr)>> {
        let family = if addresses.iter().all(IpAddr::is_ipv4) {
            AddressFamily::Inet
        } else if addresses.iter().all(IpAddr::is_ipv6) {
            AddressFamily::Inet6
        } else {
            AddressFamily::Unspec
        };
        let mut all = self.addresses_of(family).await?;
        all.retain(|(_, ip)| addresses.contains(ip));
        Ok(all)
    }

    /// Every address a link of this namespace carries, as `(link index, address)` (a
    /// point-to-point address's own end). One dump: for `network create` and `gc`.
    pub async fn all_addresses(&self) -> Result<Vec<(u32, IpAddr)>> {
        self.addresses_of(AddressFamily::Unspec).await
    }

    /// [`Self::all_addresses`] of one family (`Unspec`: both).
    async fn addresses_of(&self, family: AddressFamily) -> Result<Vec<(u32, IpAddr)>> {
        let list = |err: rtnetlink::Error| Error::ListAddresses { source: err.into() };
        let mut found = Vec::new();
        let mut request = self.inner.address().get();
        request.message_mut().header.family = family;
        let mut dump = request.execute();
        while let Some(msg) = dump.try_next().await.map_err(list)? {
            let local = msg.attributes.iter().find_map(|attr| match attr {
                AddressAttribute::Local(ip) => Some(*ip),
                _ => None,
            });
            let carried = local.or_else(|| {
                msg.attributes.iter().find_map(|attr| match attr {
                    AddressAttribute::Address(ip) => Some(*ip),
                    _ => None,
                })
            });
            if let Some(ip) = carried {
                found.push((msg.header.index, ip));
            }
        }
        Ok(found)
    }

    /// Which of `addresses` the host takes as its own through a `local` route without carrying
    /// it on a link (AnyIP: `ip route add local 10.9.0.0/24 dev lo`), as `(link index, address)`
    /// (0 for a route without a link). One dump of the routes, every table.
    pub async fn local_route_holders(&self, addresses: &[IpAddr]) -> Result<Vec<(u32, IpAddr)>> {
        Ok(local_holders_of(
            &self.all_routes("(local)").await?,
            addresses,
        ))
    }
}

/// The routers of `routes` (see [`Handle::routers`]).
fn routers_of(routes: &[RouteMessage]) -> Result<Vec<Router>> {
    let nexthops = if routes.iter().any(|msg| {
        msg.attributes
            .iter()
            .any(|a| matches!(a, RouteAttribute::NhId(_)))
    }) {
        crate::nexthop::nexthops().map_err(|source| Error::ListNexthops { source })?
    } else {
        Vec::new()
    };
    let mut found = Vec::new();
    for msg in routes {
        let oif = oif(msg);
        let destination = msg
            .attributes
            .iter()
            .find_map(|a| match a {
                RouteAttribute::Destination(dst) => ip_of(dst),
                _ => None,
            })
            .map(|ip| (ip, msg.header.destination_prefix_length));
        let mut push = |gateway: IpAddr, oif: u32| {
            found.push(Router {
                gateway,
                oif,
                destination,
            });
        };
        for attribute in &msg.attributes {
            match attribute {
                RouteAttribute::Gateway(gateway) => {
                    if let Some(ip) = ip_of(gateway) {
                        push(ip, oif);
                    }
                }
                // A router of the other family (`via inet6 …` for an IPv4 route).
                RouteAttribute::Via(via) => {
                    if let Some(ip) = via_of(via) {
                        push(ip, oif);
                    }
                }
                RouteAttribute::MultiPath(hops) => {
                    for hop in hops {
                        for a in &hop.attributes {
                            let ip = match a {
                                RouteAttribute::Gateway(gateway) => ip_of(gateway),
                                RouteAttribute::Via(via) => via_of(via),
                                _ => None,
                            };
                            if let Some(ip) = ip {
                                push(ip, hop.interface_index);
                            }
                        }
                    }
                }
                RouteAttribute::NhId(id) => {
                    for (ip, oif) in crate::nexthop::gateways_of(&nexthops, *id) {
                        push(ip, oif);
                    }
                }
                _ => {}
            }
        }
    }
    Ok(found)
}

/// The `local` routes of `routes` holding one of `addresses` (see [`Handle::local_route_holders`]).
fn local_holders_of(routes: &[RouteMessage], addresses: &[IpAddr]) -> Vec<(u32, IpAddr)> {
    let mut found = Vec::new();
    for msg in routes {
        if msg.header.kind != RouteType::Local {
            continue;
        }
        let Some(destination) = msg.attributes.iter().find_map(|a| match a {
            RouteAttribute::Destination(dst) => ip_of(dst),
            _ => None,
        }) else {
            continue;
        };
        let oif = oif(msg);
        let prefix = msg.header.destination_prefix_length;
        for ip in addresses {
            if within(*ip, destination, prefix) {
                found.push((oif, *ip));
            }
        }
    }
    found
}

/// Whether `ip` lies in `network`/`prefix` (of its family).
fn within(ip: IpAddr, network: IpAddr, prefix: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

fn via_of(via: &RouteVia) -> Option<IpAddr> {
    match via {
        RouteVia::Inet(ip) => Some(IpAddr::V4(*ip)),
        RouteVia::Inet6(ip) => Some(IpAddr::V6(*ip)),
        _ => None,
    }
}

fn ip_of(address: &RouteAddress) -> Option<IpAddr> {
    match address {
        RouteAddress::Inet(ip) => Some(IpAddr::V4(*ip)),
        RouteAddress::Inet6(ip) => Some(IpAddr::V6(*ip)),
        _ => None,
    }
}

/// The index of the link a route goes out of (`RTA_OIF`); 0 when it names none.
fn oif(msg: &RouteMessage) -> u32 {
    msg.attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Oif(index) => Some(*index),
            _ => None,
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_a_prefix() {
        let table: &[(&str, &str, u8, bool)] = &[
            ("10.9.0.7", "10.9.0.0", 24, true),
            ("10.9.1.7", "10.9.0.0", 24, false),
            ("10.9.0.7", "10.9.0.7", 32, true),
            ("10.9.0.8", "10.9.0.7", 32, false),
            ("10.9.0.8", "0.0.0.0", 0, true),
            ("fd00::5", "fd00::", 64, true),
            ("fd01::5", "fd00::", 64, false),
            ("fd00::5", "fd00::5", 128, true),
            ("fd00::5", "10.0.0.0", 0, false),
        ];
        for (ip, net, prefix, inside) in table {
            assert_eq!(
                within(ip.parse().unwrap(), net.parse().unwrap(), *prefix),
                *inside,
                "{ip} in {net}/{prefix}"
            );
        }
    }
}
