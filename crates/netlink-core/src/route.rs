use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use futures_util::TryStreamExt;
use rtnetlink::{
    RouteMessageBuilder,
    packet_route::{
        address::{AddressAttribute, AddressFlags, AddressHeaderFlags, AddressScope, CacheInfo},
        route::{RouteMessage, RouteProtocol, RouteScope},
    },
};

use crate::{Errno, Error, Handle, KernelError, Link, Result};

impl Handle {
    /// Adds `address/prefix_len` to `link`. IPv6 addresses skip duplicate address detection
    /// (`IFA_F_NODAD`): the lease store already guarantees uniqueness, and DAD would leave the
    /// address unusable ("tentative") for about a second after the container starts.
    pub async fn add_address(&self, link: &Link, address: IpAddr, prefix_len: u8) -> Result<()> {
        self.add_address_for(link, address, prefix_len, None).await
    }

    /// [`Self::add_address`], and with `lifetime` the kernel's valid and preferred lifetimes
    /// (`IFA_CACHEINFO`): the kernel takes the address off by itself when it runs out (a lease
    /// nobody renewed). With a lifetime the address is replaced if the link has it already, so
    /// adding it again with a new lifetime extends it.
    pub async fn add_address_for(
        &self,
        link: &Link,
        address: IpAddr,
        prefix_len: u8,
        lifetime: Option<Duration>,
    ) -> Result<()> {
        let mut request = self.inner.address().add(link.index, address, prefix_len);
        if let Some(lifetime) = lifetime {
            // u32::MAX is "forever" to the kernel; 0 would be a deprecated, dead address.
            let secs = u32::try_from(lifetime.as_secs())
                .unwrap_or(u32::MAX)
                .clamp(1, u32::MAX - 1);
            let mut info = CacheInfo::default();
            info.ifa_valid = secs;
            info.ifa_preferred = secs;
            request
                .message_mut()
                .attributes
                .push(AddressAttribute::CacheInfo(info));
            request = request.replace();
        }
        if address.is_ipv6() {
            let msg = request.message_mut();
            msg.header.flags |= AddressHeaderFlags::Nodad;
            msg.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        request.execute().await.map_err(|err| Error::AddAddress {
            link: link.name.clone(),
            address,
            prefix_len,
            source: err.into(),
        })
    }

    /// Removes each of `addresses` from whatever link of this handle's namespace carries it, and
    /// returns what was removed, as `(link index, address)`. One dump of the namespace's
    /// addresses: meant for a container's namespace, never the host's.
    pub async fn remove_addresses(&self, addresses: &[IpAddr]) -> Result<Vec<(u32, IpAddr)>> {
        self.remove_addresses_where(addresses, None).await
    }

    /// [`Self::remove_addresses`] on `link` alone: the same address on another link of the
    /// namespace (another network's) stays. Returns the addresses removed.
    pub async fn remove_addresses_on(
        &self,
        link: &Link,
        addresses: &[IpAddr],
    ) -> Result<Vec<IpAddr>> {
        let removed = self
            .remove_addresses_where(addresses, Some(link.index))
            .await?;
        Ok(removed.into_iter().map(|(_, ip)| ip).collect())
    }

    /// Removes each of `addresses` from the links that carry it: any, or the one of index
    /// `only`.
    async fn remove_addresses_where(
        &self,
        addresses: &[IpAddr],
        only: Option<u32>,
    ) -> Result<Vec<(u32, IpAddr)>> {
        let list = |err: rtnetlink::Error| Error::ListAddresses { source: err.into() };
        let mut found = Vec::new();
        let mut dump = self.inner.address().get().execute();
        while let Some(msg) = dump.try_next().await.map_err(list)? {
            if only.is_some_and(|index| msg.header.index != index) {
                continue;
            }
            let carried = msg.attributes.iter().find_map(|attr| match attr {
                AddressAttribute::Address(ip) => Some(*ip),
                _ => None,
            });
            if let Some(ip) = carried.filter(|ip| addresses.contains(ip)) {
                found.push((ip, msg));
            }
        }
        let mut removed = Vec::with_capacity(found.len());
        for (address, msg) in found {
            let index = msg.header.index;
            match self.inner.address().del(msg).execute().await {
                Ok(()) => removed.push((index, address)),
                Err(err) => match KernelError::from(err) {
                    // Gone meanwhile (the link with it).
                    KernelError::Errno(Errno::EADDRNOTAVAIL | Errno::ENODEV) => {}
                    source => {
                        return Err(Error::DeleteAddress {
                            index,
                            address,
                            source,
                        });
                    }
                },
            }
        }
        Ok(removed)
    }

    /// The addresses of global scope on `link`, in the kernel's order (a family's primary
    /// address first): those another host on the link can use as a next hop. The kernel answers
    /// with every address of the namespace and the link's are kept: for the host's parent, read by
    /// `network inspect` and `doctor`, and for a container's link by a lease's renewer; never on
    /// a hook's path.
    pub async fn global_addresses(&self, link: &Link) -> Result<Vec<IpAddr>> {
        let list = |err: rtnetlink::Error| Error::ListLinkAddresses {
            link: link.name.clone(),
            source: err.into(),
        };
        let mut dump = self
            .inner
            .address()
            .get()
            .set_link_index_filter(link.index)
            .execute();
        let mut found = Vec::new();
        while let Some(msg) = dump.try_next().await.map_err(list)? {
            if msg.header.scope != AddressScope::Universe {
                continue;
            }
            found.extend(msg.attributes.iter().find_map(|attr| match attr {
                AddressAttribute::Address(ip) => Some(*ip),
                _ => None,
            }));
        }
        Ok(found)
    }

    /// Adds the default route of `gateway`'s family via `gateway` on `link`.
    pub async fn add_default_route(&self, link: &Link, gateway: IpAddr) -> Result<()> {
        self.default_route(link, gateway, false).await
    }

    /// Replaces the default route of `gateway`'s family with one via `gateway` on `link` (`ip
    /// route replace default`), in one step: the table never lacks a default route, and if the
    /// kernel refuses the new one the old one stays.
    pub async fn replace_default_route(&self, link: &Link, gateway: IpAddr) -> Result<()> {
        self.default_route(link, gateway, true).await
    }

    async fn default_route(&self, link: &Link, gateway: IpAddr, replace: bool) -> Result<()> {
        let route = match gateway {
            IpAddr::V4(gw) => RouteMessageBuilder::<Ipv4Addr>::new()
                .gateway(gw)
                .output_interface(link.index)
                .build(),
            IpAddr::V6(gw) => RouteMessageBuilder::<Ipv6Addr>::new()
                .gateway(gw)
                .output_interface(link.index)
                .build(),
        };
        let added = if replace {
            self.inner
                .route()
                .add(route)
                .replace()
                .execute()
                .await
                .map_err(KernelError::from)
        } else {
            self.add_route(route).await
        };
        added.map_err(|source| Error::AddDefaultRoute {
            link: link.name.clone(),
            gateway,
            source,
        })
    }

    /// Adds the default route of a family straight onto `link`, without gateway (`ip route add
    /// default dev LINK`, scope link): every destination is a neighbour of the link, as on an
    /// ipvlan in L3 mode, where the parent's host routes for the container.
    pub async fn add_default_route_on_link(&self, link: &Link, ipv6: bool) -> Result<()> {
        let any = if ipv6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        self.add_route_on_link(link, any, 0).await
    }

    /// Adds a route to `destination/prefix_len` straight onto `link`, without gateway (`ip route
    /// add DEST dev LINK`, scope link): the destinations are neighbours of the link.
    pub async fn add_route_on_link(
        &self,
        link: &Link,
        destination: IpAddr,
        prefix_len: u8,
    ) -> Result<()> {
        let route = match destination {
            IpAddr::V6(dest) => RouteMessageBuilder::<Ipv6Addr>::new()
                .destination_prefix(dest, prefix_len)
                .output_interface(link.index)
                .build(),
            IpAddr::V4(dest) => RouteMessageBuilder::<Ipv4Addr>::new()
                .destination_prefix(dest, prefix_len)
                .output_interface(link.index)
                .scope(RouteScope::Link)
                .build(),
        };
        self.add_route(route)
            .await
            .map_err(|source| Error::AddDeviceRoute {
                link: link.name.clone(),
                destination,
                prefix_len,
                source,
            })
    }

    /// Adds a route to `destination/prefix_len` via `gateway` on `link` (`ip route add DEST via
    /// GATEWAY dev LINK`): a route an address source gave (a DHCP classless static route).
    pub async fn add_route_via(
        &self,
        link: &Link,
        destination: IpAddr,
        prefix_len: u8,
        gateway: IpAddr,
    ) -> Result<()> {
        let route = match (destination, gateway) {
            (IpAddr::V4(dest), IpAddr::V4(gw)) => RouteMessageBuilder::<Ipv4Addr>::new()
                .destination_prefix(dest, prefix_len)
                .gateway(gw)
                .output_interface(link.index)
                .build(),
            (IpAddr::V6(dest), IpAddr::V6(gw)) => RouteMessageBuilder::<Ipv6Addr>::new()
                .destination_prefix(dest, prefix_len)
                .gateway(gw)
                .output_interface(link.index)
                .build(),
            _ => {
                return Err(Error::AddRouteVia {
                    link: link.name.clone(),
                    route: Box::new((format!("{destination}/{prefix_len}"), gateway)),
                    source: KernelError::Errno(Errno::EINVAL),
                });
            }
        };
        self.add_route(route)
            .await
            .map_err(|source| Error::AddRouteVia {
                link: link.name.clone(),
                route: Box::new((format!("{destination}/{prefix_len}"), gateway)),
                source,
            })
    }

    /// Deletes the route to `destination/prefix_len` through `link`, via `gateway` (none: the
    /// one straight onto the link), of the protocol this crate adds routes with (`static`), in
    /// any scope; whether it was there. The kernel's own routes (`proto kernel`: a link's
    /// connected subnet) are never matched, so a lease that once named the link's own subnet
    /// and then drops it leaves the subnet reachable. A route already gone, or its link, is not an error; nor are a destination
    /// and a gateway of two families, which no route has.
    pub async fn delete_route(
        &self,
        link: &Link,
        (destination, prefix_len): (IpAddr, u8),
        gateway: Option<IpAddr>,
    ) -> Result<bool> {
        let mut route = match (destination, gateway) {
            (IpAddr::V4(dest), gw) => {
                let mut builder = RouteMessageBuilder::<Ipv4Addr>::new()
                    .destination_prefix(dest, prefix_len)
                    .output_interface(link.index);
                match gw {
                    Some(IpAddr::V4(gw)) => builder = builder.gateway(gw),
                    Some(IpAddr::V6(_)) => return Ok(false),
                    None => {}
                }
                builder.build()
            }
            (IpAddr::V6(dest), gw) => {
                let mut builder = RouteMessageBuilder::<Ipv6Addr>::new()
                    .destination_prefix(dest, prefix_len)
                    .output_interface(link.index);
                match gw {
                    Some(IpAddr::V6(gw)) => builder = builder.gateway(gw),
                    Some(IpAddr::V4(_)) => return Ok(false),
                    None => {}
                }
                builder.build()
            }
        };
        route.header.protocol = RouteProtocol::Static;
        route.header.scope = RouteScope::NoWhere;
        match self.inner.route().del(route).execute().await {
            Ok(()) => Ok(true),
            Err(err) => match KernelError::from(err) {
                KernelError::Errno(Errno::ESRCH | Errno::ENODEV | Errno::ENOENT) => Ok(false),
                source => Err(Error::DeleteRoute {
                    link: link.name.clone(),
                    route: match gateway {
                        Some(gw) => format!("{destination}/{prefix_len} via {gw}"),
                        None => format!("{destination}/{prefix_len}"),
                    },
                    source,
                }),
            },
        }
    }

    /// `ip route add` of `route`; the caller names what failed.
    pub(crate) async fn add_route(&self, route: RouteMessage) -> Result<(), KernelError> {
        Ok(self.inner.route().add(route).execute().await?)
    }
}
