//! The configuration of one macvlan once it exists in the container's namespace: addresses,
//! link settings, link up, default routes.

use std::time::{Duration, Instant};

use oci_macvlan_ipam::Lease;
use oci_macvlan_netlink_core::{Errno, Handle, Link, Netns, Sysctl};

use crate::{Error, Network, Result, driver::DefaultRoute, failpoint, record::RecordedEndpoint};

/// One macvlan in the container's namespace and what it is to carry.
pub(crate) struct Wiring<'a> {
    pub(crate) container: &'a Handle,
    pub(crate) netns: &'a Netns,
    pub(crate) link: &'a Link,
    pub(crate) net: &'a Network,
    pub(crate) parent: &'a Link,
    pub(crate) planned: &'a RecordedEndpoint,
    pub(crate) leases: &'a [Lease],
}

impl Wiring<'_> {
    /// Addresses, link settings, link up, default routes (the first network with a gateway of a
    /// family gets that family's: `default_route` is `[v4, v6]`). Idempotent: what a previous,
    /// interrupted attach already did (`EEXIST`) counts as done.
    pub(crate) async fn configure(&self, default_route: &mut [bool; 2]) -> Result<()> {
        let (net, link) = (self.net, self.link);
        let configure = |source| Error::Configure {
            network: net.name.clone(),
            ifname: link.name.clone(),
            source,
        };
        for lease in self.leases {
            exists_ok(
                self.container
                    .add_address(link, lease.ip, lease.subnet.prefix())
                    .await,
            )
            .map_err(configure)?;
        }
        failpoint::hit("attach:net:addressed")?;
        self.netns
            .write_sysctls(&link_sysctls(&link.name, self.leases, net))
            .map_err(configure)?;
        failpoint::hit("attach:net:configured")?;
        self.link_up().await.map_err(|err| {
            // The kernel refuses, at link-up, a MAC that its parent or a sibling macvlan already
            // has; its EADDRINUSE alone does not say which address.
            match (err.errno(), self.planned.mac) {
                (Some(Errno::EADDRINUSE), Some(mac)) => Error::MacInUse {
                    mac: mac.to_string(),
                    network: net.name.clone(),
                    parent: self.parent.name.clone(),
                },
                _ => configure(err),
            }
        })?;
        failpoint::hit("attach:net:up")?;
        for lease in self.leases {
            let family = usize::from(lease.ip.is_ipv6());
            if default_route[family] {
                continue;
            }
            let added = match net.driver().default_route() {
                DefaultRoute::ViaGateway => match net.gateway_for(lease.ip) {
                    Some(gateway) => self.container.add_default_route(link, gateway).await,
                    None => continue,
                },
                // An internal network leads nowhere: no default route onto it either, but a
                // route onto the link to each of its other subnets of the family (the parent
                // routes between them), as Docker's internal L3 networks reach across subnets.
                DefaultRoute::OnLink if net.internal => {
                    for pool in net.pools.iter().filter(|p| {
                        p.subnet.is_ipv4() == lease.ip.is_ipv4() && !p.contains(lease.ip)
                    }) {
                        let subnet = pool.subnet;
                        exists_ok(
                            self.container
                                .add_route_on_link(link, subnet.network(), subnet.prefix())
                                .await,
                        )
                        .map_err(configure)?;
                    }
                    continue;
                }
                DefaultRoute::OnLink => {
                    self.container
                        .add_default_route_on_link(link, lease.ip.is_ipv6())
                        .await
                }
            };
            exists_ok(added).map_err(configure)?;
            default_route[family] = true;
        }
        failpoint::hit("attach:net:routed")
    }

    /// Sets the link up. A MAC still held by the macvlan of a namespace the kernel is tearing
    /// down (a container restarted at once keeps its MAC) is `EADDRINUSE` until the kernel's
    /// cleanup work gets to it, tens of milliseconds later: retried for [`MAC_SETTLE`].
    async fn link_up(&self) -> oci_macvlan_netlink_core::Result<()> {
        let deadline = Instant::now() + MAC_SETTLE;
        let mut pause = Duration::from_millis(1);
        loop {
            match self.container.set_link_up(self.link).await {
                Err(err) if err.errno() == Some(Errno::EADDRINUSE) && Instant::now() < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }
}

/// How long a MAC conflict at link-up is retried before it is an error.
const MAC_SETTLE: Duration = Duration::from_secs(1);

fn exists_ok(result: oci_macvlan_netlink_core::Result<()>) -> oci_macvlan_netlink_core::Result<()> {
    match result {
        Err(err) if err.errno() == Some(Errno::EEXIST) => Ok(()),
        other => other,
    }
}

/// Per-link settings, made before the link comes up:
/// - IPv4: `arp_notify`, so the kernel sends a gratuitous ARP when the link comes up and
///   neighbours (and switches) learn the address at once, as CNI and Docker v28 do;
/// - a network with IPv6: no router advertisements, no SLAAC addresses (the network's addresses
///   and gateway are the configuration) and `ndisc_notify`, the IPv6 counterpart of
///   `arp_notify` (unsolicited neighbour advertisements on link-up);
/// - a network without IPv6: IPv6 off on the link (no link-local address, no RA, no SLAAC).
fn link_sysctls<'a>(ifname: &'a str, leases: &[Lease], net: &Network) -> Vec<Sysctl<'a>> {
    let mut sysctls = Vec::new();
    if leases.iter().any(|l| l.ip.is_ipv4()) {
        sysctls.push(conf(ifname, "ipv4", "arp_notify", "1", false));
    }
    sysctls.extend(ipv6_sysctls(ifname, net.pools.iter().any(|p| !p.is_ipv4())));
    sysctls
}

/// A link with IPv6 addresses: no router advertisements, no SLAAC, unsolicited neighbour
/// advertisements on link-up. Without: IPv6 off on the link.
pub(crate) fn ipv6_sysctls(ifname: &str, ipv6: bool) -> Vec<Sysctl<'_>> {
    if ipv6 {
        vec![
            conf(ifname, "ipv6", "accept_ra", "0", false),
            conf(ifname, "ipv6", "autoconf", "0", false),
            conf(ifname, "ipv6", "ndisc_notify", "1", false),
        ]
    } else {
        // A kernel without IPv6 has nothing to turn off.
        vec![conf(ifname, "ipv6", "disable_ipv6", "1", true)]
    }
}

/// `net.FAMILY.conf.IFNAME.KEY = VALUE`.
pub(crate) fn conf<'a>(
    ifname: &'a str,
    family: &'a str,
    key: &'a str,
    value: &'a str,
    missing_ok: bool,
) -> Sysctl<'a> {
    Sysctl {
        key: vec!["net", family, "conf", ifname, key],
        value,
        missing_ok,
    }
}
