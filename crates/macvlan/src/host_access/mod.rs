//! Host access (`-o host_access=IP[,IP6]`): the host reaches its own containers, and they reach
//! it. The kernel hands a parent's macvlan (or ipvlan) children the frames of their siblings,
//! never those of the parent's own stack, so a host cannot reach its containers through the
//! parent. A network with host access gets a sibling of its own in the host namespace (the one
//! the hook and the CLI run in, which owns the parent): a link of the network's driver on the
//! parent (macvlan in bridge mode; ipvlan in the network's mode and flag), named `ha-` and 12
//! characters of the network id, tagged `created by oci-macvlan`, holding the host's addresses
//! on the network as a /32 and a /128 (so it adds no subnet route beside the parent's). Each
//! container address gets a host route through it. The host's own addresses, its default route,
//! its other routes and the parent are never touched.
//!
//! The link is made at `network create`, and made again by an attach (or `gc`) that finds it
//! missing (after a reboot; a network manager deleted it), which then restores the routes of
//! every container on record for the network, under the network's host-access lock
//! (`<state-dir>/host-access/<host link>.lock`) so that concurrent attaches make it once. An
//! attach that finds it (the usual case) takes no lock: one lookup and a route per address.
//! Before a link is made or set up again, its addresses are checked on the LAN as at create
//! (`occupied::check_host_access`): another machine may have taken one meanwhile, and the
//! attach fails (exit 5, `gc` reports it and fails) rather than announce it.
//!
//! The link's MAC is derived from the network (see `Network::host_link_mac`) and reserved on its
//! parent: a container may not ask for it on any network of that parent, even while the link
//! is missing ([`check_reserved_macs`]), or the link could never be made again. When the
//! kernel refuses the link its MAC all the same, a link of ours that has it under another name
//! (the link renamed by hand) is deleted and the link made again under its own; anyone else
//! who has it is named (`identity.rs`).
//!
//! Why a detach never leaves a route behind a restore (and the locks' order): see `lock.rs`.

use std::net::IpAddr;

use oci_macvlan_ipam::{LeaseStore, LeaseStoreExt};
use oci_macvlan_netlink_core::{Errno, Handle, Link, Netns, NewChild, Sysctl};
use oci_macvlan_vlan::OWNER_ALIAS;

use crate::{
    Error, Network, Records, Result,
    sysctl::{conf, ipv6_sysctls},
};

mod health;
mod identity;
mod lock;
mod route;
pub mod shared;

pub(crate) use health::repair;
pub use health::{Health, Repaired, health, verify};
pub(crate) use route::{add_routes, check_static, unroute};
use route::{restore, wanted};

pub(crate) use identity::check_reserved_macs;
use identity::{find_renamed, refused};
pub(crate) use lock::hold;
use lock::lock;

pub use crate::network::link_name;

/// `network create`: refuses host access addresses the host or a container has already (another
/// network's host access, a lease in the shared address space, an address on a link of the
/// host), in those words, before the LAN is asked (`occupied::check_host_access`: another
/// network's host link would answer its probe).
pub(crate) async fn check_taken(
    host: &Handle,
    net: &Network,
    others: &[Network],
    store: &mut dyn LeaseStore,
) -> Result<()> {
    if net.host_access.is_empty() {
        return Ok(());
    }
    let in_use = |ip: IpAddr, holder: String| Error::HostAccessInUse {
        ip,
        network: net.name.clone(),
        holder,
    };
    for ip in &net.host_access {
        if let Some(other) = others.iter().find(|o| o.host_access.contains(ip)) {
            return Err(in_use(
                *ip,
                format!("it is the host_access of network {}", other.name),
            ));
        }
        let lease = store
            .read(|view| view.lease_of(*ip))
            .map_err(Error::store)?;
        // The lease of a shared network's host access is this create's own (`shared::take`).
        if let Some(lease) = lease.filter(|l| l.owner != shared::owner(net)) {
            return Err(in_use(*ip, shared::holder(&lease)));
        }
    }
    let mut held = host
        .address_holders(&net.host_access)
        .await
        .map_err(Error::Netlink)?;
    if held.is_empty() {
        // AnyIP: a `local` route makes the host answer for addresses no link carries.
        held = host
            .local_route_holders(&net.host_access)
            .await
            .map_err(Error::Netlink)?;
    }
    if let Some((index, ip)) = held.first() {
        // Said by name (one dump, at create only), with what to do instead.
        let links = host.links().await.map_err(Error::Netlink)?;
        let who = match links.iter().find(|l| l.index == *index) {
            Some(link) => format!("the host's link {} has it", link.name),
            None => format!("a link of the host (index {index}) has it"),
        };
        return Err(in_use(
            *ip,
            format!(
                "{who}; pick a free address of the network, outside the LAN's DHCP pool and the network's --ip-range"
            ),
        ));
    }
    Ok(())
}

/// `network create`, once [`check_taken`] and the LAN said nothing: makes the link. Returns the
/// link it made, which the caller deletes if storing the definition fails.
pub(crate) async fn create(host: &Handle, net: &Network, parent: &Link) -> Result<Option<Link>> {
    if net.host_access.is_empty() {
        return Ok(None);
    }
    let (link, ensured) = ensure_link(host, net, parent, None).await?;
    Ok((ensured == Ensured::Made).then_some(link))
}

/// `network rm`: deletes the network's host link (its routes go with it) if it is ours.
pub(crate) async fn remove(host: &Handle, net: &Network) -> Result<()> {
    let Some(name) = net.host_link() else {
        return Ok(());
    };
    match host.link_by_name(&name).await.map_err(Error::Netlink)? {
        Some(link) if link.alias.as_deref() == Some(OWNER_ALIAS) => {
            host.delete_link(&link).await.map_err(Error::Netlink)
        }
        _ => Ok(()),
    }
}

/// In an attach: the network's host link on `parent`. The usual case is one lookup. A missing
/// link is made again (a down one set up again) under the network's host-access lock, and then
/// the routes of every container on record for the network are restored; a link that is not
/// ours is judged under that lock too (the maker tags it right after making it).
pub(crate) async fn link_for_attach(
    host: &Handle,
    net: &Network,
    parent: &Link,
    store: &mut dyn LeaseStore,
    records: &Records,
) -> Result<Link> {
    if let Some(link) = lookup(host, net).await? {
        // A link that is not (yet) ours may be one another attach is making, under the lock,
        // and has not tagged yet: judged again once the lock is ours.
        // A down one lost its routes and its IPv6 address: set up again under the lock.
        if let Ok(link) = adopt(net, parent, link)
            && link.up
        {
            return Ok(link);
        }
    }
    let _lock = lock(records, net)?;
    let (link, ensured) = ensure_link(host, net, parent, Some(records)).await?;
    if ensured != Ensured::Found {
        restore(host, net, &link, store.as_set(), records).await?;
    }
    Ok(link)
}

/// What [`ensure_link`] did to the network's host link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ensured {
    /// Found up: nothing.
    Found,
    /// Made (again).
    Made,
    /// Found renamed (by hand) under this name, deleted and made again under its own.
    Replaced(String),
    /// Found down (by hand, a network manager), which cost it its routes and its IPv6 address
    /// (the kernel drops both): given its addresses again and set up.
    SetUp,
}

async fn lookup(host: &Handle, net: &Network) -> Result<Option<Link>> {
    let name = link_name(&net.id);
    host.link_by_name(&name)
        .await
        .map_err(link_failed(&name, net))
}

/// The network's host link, found, made, or set up again. `records` (none at `network
/// create`) are searched for the holder of its MAC when the kernel says another link has it.
async fn ensure_link(
    host: &Handle,
    net: &Network,
    parent: &Link,
    records: Option<&Records>,
) -> Result<(Link, Ensured)> {
    let name = link_name(&net.id);
    let failed = |source: oci_macvlan_netlink_core::Error| Error::HostLink {
        name: name.clone(),
        network: net.name.clone(),
        source: Box::new(source),
    };
    // Made (or set up) again after `network create` (after a reboot, a `link del`): the
    // address may have been taken on the LAN meanwhile, and the link's announcement would move
    // its holder's neighbours to the host. Checked as at create; at create (no `records`) the
    // caller has checked already.
    let recheck = || async {
        match records {
            Some(_) => crate::occupied::check_host_access(host, net, parent).await,
            None => Ok(()),
        }
    };
    if let Some(link) = lookup(host, net).await? {
        let link = adopt(net, parent, link)?;
        if !link.up {
            recheck().await?;
        }
        return set_up(host, net, link).await.map_err(failed);
    }
    recheck().await?;
    // The driver's MAC for a link of that name on the network; none for an ipvlan, which has
    // its parent's.
    let mac = net.host_link_mac()?;
    let here = Netns::open("/proc/thread-self/ns/net").map_err(failed)?;
    let spec = NewChild {
        parent,
        name: &name,
        mac,
        mtu: net.mtu,
        target: &here,
        kind: net.driver().host_child()?,
    };
    let mut renamed = None;
    let link = loop {
        match make(host, net, &spec).await {
            Ok(link) => break link,
            // Made meanwhile by someone who does not hold our lock: judged as found.
            Err(err) if err.errno() == Some(Errno::EEXIST) => {
                let link = lookup(host, net).await?.ok_or_else(|| failed(err))?;
                return set_up(host, net, adopt(net, parent, link)?)
                    .await
                    .map_err(failed);
            }
            // The kernel refuses, at link-up, a MAC another link on the parent has
            // (`EADDRINUSE`, which names nobody). The link renamed by hand has it: deleted,
            // and made again under its own name, once. Anyone else who has it is named.
            Err(err) if err.errno() == Some(Errno::EADDRINUSE) && renamed.is_none() => {
                let found = match mac {
                    Some(mac) => find_renamed(host, net, parent, mac).await?,
                    None => None,
                };
                let Some(found) = found else {
                    return Err(refused(host, net, parent, mac, records, err).await);
                };
                host.delete_link(&found).await.map_err(failed)?;
                renamed = Some(found.name);
            }
            Err(err) => return Err(refused(host, net, parent, mac, records, err).await),
        }
    };
    Ok((link, renamed.map_or(Ensured::Made, Ensured::Replaced)))
}

/// Creates the host link of `spec`, tags and configures it. Nothing half-done: a link that
/// cannot be configured goes again.
async fn make(
    host: &Handle,
    net: &Network,
    spec: &NewChild<'_>,
) -> oci_macvlan_netlink_core::Result<Link> {
    host.create_child(spec).await?;
    let link = host.existing_link(spec.name).await?;
    if let Err(err) = configure(host, spec.target, net, &link).await {
        let _ = host.delete_link(&link).await;
        return Err(err);
    }
    Ok(host.link_by_name(spec.name).await?.unwrap_or(link))
}

/// A found link of ours that is down is configured again (its addresses, its sysctls) and set
/// up.
async fn set_up(
    host: &Handle,
    net: &Network,
    link: Link,
) -> oci_macvlan_netlink_core::Result<(Link, Ensured)> {
    if link.up {
        return Ok((link, Ensured::Found));
    }
    reconfigure(host, net, &link).await?;
    Ok((link, Ensured::SetUp))
}

/// [`configure`] on a link of ours found down or lacking an address: what it lacks is added
/// again, what it has is left.
async fn reconfigure(
    host: &Handle,
    net: &Network,
    link: &Link,
) -> oci_macvlan_netlink_core::Result<()> {
    let here = Netns::open("/proc/thread-self/ns/net")?;
    configure(host, &here, net, link).await
}

/// `gc`: gives a link of ours that is up without some of its addresses (flushed by hand or by
/// a network manager) what it lacks; returns that.
pub(crate) async fn readdress(host: &Handle, net: &Network, link: &Link) -> Result<Vec<IpAddr>> {
    let lacking = lacking(host, net, link).await?;
    if !lacking.is_empty() {
        reconfigure(host, net, link)
            .await
            .map_err(link_failed(&link.name, net))?;
    }
    Ok(lacking)
}

/// The error of a netlink request about the network's host link `name`.
fn link_failed(name: &str, net: &Network) -> impl FnOnce(oci_macvlan_netlink_core::Error) -> Error {
    let (name, network) = (name.to_owned(), net.name.clone());
    move |source| Error::HostLink {
        name,
        network,
        source: Box::new(source),
    }
}

/// The host access addresses `link` does not hold (one dump of the host's addresses: for
/// `gc`, `verify` and `doctor`, never on a hook's path).
pub(crate) async fn lacking(host: &Handle, net: &Network, link: &Link) -> Result<Vec<IpAddr>> {
    let held = host
        .address_holders(&net.host_access)
        .await
        .map_err(link_failed(&link.name, net))?;
    Ok(net
        .host_access
        .iter()
        .filter(|ip| !held.contains(&(link.index, **ip)))
        .copied()
        .collect())
}

/// Tags the new link as ours, sets its sysctls, gives it the host's addresses and sets it up.
async fn configure(
    host: &Handle,
    here: &Netns,
    net: &Network,
    link: &Link,
) -> oci_macvlan_netlink_core::Result<()> {
    host.set_alias(link, OWNER_ALIAS).await?;
    here.write_sysctls(&sysctls(&link.name, net))?;
    for ip in &net.host_access {
        let prefix = if ip.is_ipv4() { 32 } else { 128 };
        match host.add_address(link, *ip, prefix).await {
            Err(err) if err.errno() != Some(Errno::EEXIST) => return Err(err),
            _ => {}
        }
    }
    host.set_link_up(link).await
}

/// The host link's own settings (never the host's others): ARP answers only for the link's own
/// addresses (`arp_ignore=1`: the host's parent address is not announced through it), and a
/// gratuitous ARP (unsolicited NA) when it comes up, as a container's link has; no router
/// advertisements or SLAAC on it; IPv6 off without an IPv6 host address.
fn sysctls<'a>(ifname: &'a str, net: &Network) -> Vec<Sysctl<'a>> {
    let mut sysctls = vec![
        conf(ifname, "ipv4", "arp_ignore", "1", false),
        conf(ifname, "ipv4", "arp_notify", "1", false),
    ];
    sysctls.extend(ipv6_sysctls(
        ifname,
        net.host_access.iter().any(IpAddr::is_ipv6),
    ));
    sysctls
}

/// A link of the host link's name is ours only if it carries our alias, is of the network's
/// driver and sits on its parent.
fn adopt(net: &Network, parent: &Link, link: Link) -> Result<Link> {
    let kind = net.driver().host_child()?.name();
    let found = if link.alias.as_deref() != Some(OWNER_ALIAS) {
        Some("a link oci-macvlan did not create".to_owned())
    } else if link.kind.as_deref() != Some(kind) {
        Some(format!(
            "a {} link",
            link.kind.as_deref().unwrap_or("device")
        ))
    } else if link.lower != Some(parent.index) {
        Some(format!("on another parent than {}", parent.name))
    } else {
        None
    };
    if let Some(found) = found {
        return Err(Error::HostLinkConflict {
            name: link.name,
            network: net.name.clone(),
            found,
        });
    }
    Ok(link)
}
