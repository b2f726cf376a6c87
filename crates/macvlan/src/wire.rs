//! The second pure step of an attach: what one planned link carries once its addresses are
//! acquired — its addresses, its sysctls, and its exact routes, with "the first network of the
//! container with a default route of a family wins" and "an internal L3 network routes only to
//! its other subnets" already applied. Apply (`wiring.rs`) sends exactly this to the kernel, in
//! this order: addresses, sysctls, link up, routes.

use std::{net::IpAddr, time::Duration};

use ipnetwork::IpNetwork;
use oci_macvlan_netlink_core::{ChildKind, Sysctl};
use serde::{Serialize, Serializer};

use crate::{
    plan::{PlannedNetwork, Routes},
    source::{Acquired, SourceRoute},
    sysctl::{conf, dhcp6_sysctls, ipv6_sysctls},
};

/// The families in which an earlier network of the container has its default route.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DefaultRouted {
    /// IPv4's default route is taken.
    pub v4: bool,
    /// IPv6's default route is taken.
    pub v6: bool,
}

impl DefaultRouted {
    fn of(&self, ip: IpAddr) -> bool {
        if ip.is_ipv6() { self.v6 } else { self.v4 }
    }

    fn take(&mut self, ip: IpAddr) {
        if ip.is_ipv6() {
            self.v6 = true;
        } else {
            self.v4 = true;
        }
    }
}

/// One route in the container's namespace, on the planned link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// `default via GATEWAY dev LINK`.
    DefaultVia(IpAddr),
    /// `default dev LINK` of one family (`true`: IPv6).
    DefaultOnLink {
        /// The family: IPv6 when set.
        ipv6: bool,
    },
    /// `SUBNET dev LINK`.
    OnLink(IpNetwork),
    /// `DESTINATION via GATEWAY dev LINK` (a route an address source gave).
    Via {
        /// Where the route leads.
        destination: IpNetwork,
        /// Through whom.
        gateway: IpAddr,
    },
}

/// What one link carries, as [`wire`] decided it.
#[derive(Debug, Clone, Serialize)]
pub struct Wired<'p> {
    /// The link's addresses, with their prefixes.
    pub addresses: Vec<IpNetwork>,
    /// Its settings, written before it comes up.
    #[serde(serialize_with = "sysctl_text")]
    pub sysctls: Vec<Sysctl<'p>>,
    /// Its routes, added once it is up.
    pub routes: Vec<Route>,
    /// The families whose default route is taken once these routes are in (this network's
    /// and the earlier ones').
    pub default_routed: DefaultRouted,
    /// The gateways the container's endpoint reports: those the source returned on a network
    /// that routes via its gateways.
    pub gateways: Vec<IpAddr>,
    /// The addresses the host routes to through the network's host link (`-o host_access`):
    /// those of a family the host link has an address of.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub host_routes: Vec<IpAddr>,
    /// The addresses a lease bounds, with their lifetime: the kernel takes them off when it
    /// runs out unless a renewal extends it (an address of no lease stays as long as the link).
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "lifetime_secs"
    )]
    pub lifetimes: Vec<(IpNetwork, Duration)>,
}

impl Wired<'_> {
    /// The lifetime `address` is added with, if a lease bounds it.
    pub fn lifetime_of(&self, address: &IpNetwork) -> Option<Duration> {
        self.lifetimes
            .iter()
            .find(|(a, _)| a == address)
            .map(|(_, lifetime)| *lifetime)
    }
}

/// Each lifetime as its seconds (what the kernel is given).
fn lifetime_secs<S: Serializer>(
    lifetimes: &[(IpNetwork, Duration)],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(lifetimes.iter().map(|(a, l)| (a, l.as_secs())))
}

fn sysctl_text<S: Serializer>(sysctls: &[Sysctl<'_>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(
        sysctls
            .iter()
            .map(|c| format!("{}={}", c.key.join("."), c.value)),
    )
}

/// The shortest prefix of a route from an address source (DHCP's option 121) on a link that
/// does not hold its family's default route: a shorter one (`0.0.0.0/1` and `128.0.0.0/1`
/// together) would take the container's traffic from the network that holds it.
pub const SHORTEST_SOURCE_ROUTE: u8 = 8;

/// The routes `given` (by an address source) that a link adds: all of them when it holds the
/// default route of their family (`holds_default`), else none shorter than
/// [`SHORTEST_SOURCE_ROUTE`] ("the first network with a default route wins" has no back door);
/// never a default route (the source's gateway is that). Pure; the renewer uses it too.
pub fn source_routes(given: &[SourceRoute], holds_default: bool) -> impl Iterator<Item = Route> {
    source_routes_among(given, holds_default, &[])
}

/// [`source_routes`], without those inside one of `others`, the subnets of the container's
/// other endpoints (the subnet itself or a part of it): a route given with one network's lease
/// never takes traffic for another network's subnet away from that network's link. A wider
/// route that holds such a subnet stays: the subnet's own, longer, route still wins for it.
/// Pure.
pub fn source_routes_among<'a>(
    given: &'a [SourceRoute],
    holds_default: bool,
    others: &'a [IpNetwork],
) -> impl Iterator<Item = Route> + 'a {
    given
        .iter()
        .filter(move |r| {
            r.destination.prefix() > 0
                && (holds_default || r.destination.prefix() >= SHORTEST_SOURCE_ROUTE)
                && !others.iter().any(|o| inside(&r.destination, o))
        })
        .map(|r| match r.via {
            Some(gateway) => Route::Via {
                destination: r.destination,
                gateway,
            },
            None => Route::OnLink(r.destination),
        })
}

/// Whether `route` is `subnet` or a part of it.
fn inside(route: &IpNetwork, subnet: &IpNetwork) -> bool {
    subnet.contains(route.network()) && route.prefix() >= subnet.prefix()
}

/// The subnets of the container's endpoints other than `networks[this]`: those the plan names
/// (a network's pools, a DHCP network's `--subnet`s) and those of the addresses `wired` so far
/// on the others (`wired[j]`: the `j`-th network's, a DHCP lease's subnet among them).
pub fn other_subnets(
    networks: &[PlannedNetwork<'_>],
    this: usize,
    wired: &[Vec<IpNetwork>],
) -> Vec<IpNetwork> {
    let mut others = Vec::new();
    for (j, planned) in networks.iter().enumerate().filter(|(j, _)| *j != this) {
        let net = planned.definition;
        others.extend(net.pools.iter().map(|p| p.subnet));
        if let Some(dhcp) = net.dhcp {
            others.extend(dhcp.subnet.map(IpNetwork::V4));
            others.extend(dhcp.subnet6.map(IpNetwork::V6));
        }
        for address in wired.get(j).into_iter().flatten() {
            others.extend(IpNetwork::new(address.network(), address.prefix()).ok());
        }
    }
    others
}

/// Works out what `planned`'s link carries for the `acquired` addresses, given the families an
/// earlier network of the container routes by default. Pure.
pub fn wire<'p>(
    planned: &'p PlannedNetwork<'_>,
    acquired: &[Acquired],
    earlier: DefaultRouted,
) -> Wired<'p> {
    wire_among(planned, acquired, earlier, &[])
}

/// [`wire`], on a link of a container whose other endpoints have the subnets `others` (see
/// [`other_subnets`]): a source's routes that overlap one are left out
/// ([`source_routes_among`]). Pure.
pub fn wire_among<'p>(
    planned: &'p PlannedNetwork<'_>,
    acquired: &[Acquired],
    earlier: DefaultRouted,
    others: &[IpNetwork],
) -> Wired<'p> {
    let ifname = planned.link.name.as_str();
    let mut routed = earlier;
    let mut routes = Vec::new();
    for got in acquired {
        let ip = got.address.ip();
        if routed.of(ip) {
            continue;
        }
        match &planned.routes {
            Routes::None => {}
            Routes::ViaGateway => {
                if let Some(gateway) = got.gateway {
                    routes.push(Route::DefaultVia(gateway));
                    routed.take(ip);
                }
            }
            Routes::OnLink => {
                routes.push(Route::DefaultOnLink { ipv6: ip.is_ipv6() });
                routed.take(ip);
            }
            Routes::OtherSubnets(subnets) => routes.extend(
                subnets
                    .iter()
                    .filter(|s| s.is_ipv4() == ip.is_ipv4() && !s.contains(ip))
                    .map(|s| Route::OnLink(*s)),
            ),
        }
    }
    for got in acquired {
        let ip = got.address.ip();
        let holds_default = routed.of(ip) && !earlier.of(ip);
        routes.extend(source_routes_among(&got.routes, holds_default, others));
    }
    let gateways = match planned.routes {
        Routes::ViaGateway => acquired.iter().filter_map(|a| a.gateway).collect(),
        _ => Vec::new(),
    };
    let mut sysctls = Vec::new();
    // A DHCP network's link always gets an IPv4 lease: its setting goes with the link's first
    // ones, written before the exchange (one write on the attach's path, not two). It announces
    // nothing there: the kernel sends gratuitous ARPs for the addresses a link has at link-up.
    if planned.definition.dhcp.is_some() || acquired.iter().any(|a| a.address.is_ipv4()) {
        sysctls.push(conf(ifname, "ipv4", "arp_notify", "1", false));
    }
    match planned.definition.dhcp.filter(|d| d.ipv6) {
        Some(dhcp) => sysctls.extend(dhcp6_sysctls(
            ifname,
            dhcp.slaac,
            matches!(planned.link.kind, ChildKind::Ipvlan { .. }),
        )),
        None => sysctls.extend(ipv6_sysctls(ifname, planned.addresses.ipv6)),
    }
    let host_routes = match planned.host_link {
        Some(_) => acquired
            .iter()
            .map(|a| a.address.ip())
            .filter(|ip| planned.definition.host_routes_to(*ip))
            .collect(),
        None => Vec::new(),
    };
    Wired {
        addresses: acquired.iter().map(|a| a.address).collect(),
        sysctls,
        routes,
        default_routed: routed,
        gateways,
        host_routes,
        lifetimes: acquired
            .iter()
            .filter_map(|a| Some((a.address, a.lifetime?)))
            .collect(),
    }
}
