//! The host link's identity on its parent: its MAC, derived from the network and reserved (no
//! container may ask for it, even while the link is missing), the link renamed by hand found by
//! it, and whoever else has it named.

use oci_macvlan_netlink_core::{Errno, Handle, Link, MacAddr};
use oci_macvlan_vlan::OWNER_ALIAS;

use super::{link_failed, link_name};
use crate::{AttachRequest, Error, Network, Records, Result};

/// In an attach, before anything is made: refuses a MAC a container asks for (annotation,
/// `connect --mac`) that is the host link's MAC of a network with host access on the same
/// parent, whether that link is there or not: taken while it is missing, the link could never
/// be made again. The definitions are read only when a MAC is asked for.
pub(crate) fn check_reserved_macs(req: &AttachRequest<'_>) -> Result<()> {
    let asked: Vec<(&Network, MacAddr)> = req
        .attachments
        .iter()
        .filter_map(|a| a.mac.map(|mac| (a.network, mac)))
        .collect();
    if asked.is_empty() {
        return Ok(());
    }
    let defined = req.definitions.list()?;
    for (net, mac) in asked {
        for other in defined.iter().filter(|o| o.parent == net.parent) {
            if other.host_link_mac()? == Some(mac) {
                return Err(Error::MacReserved {
                    mac,
                    network: net.name.clone(),
                    link: link_name(&other.id),
                    owner: other.name.clone(),
                    parent: net.parent.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// The error of making the host link: when the kernel refused its MAC (`EADDRINUSE`), who has
/// that MAC.
pub(super) async fn refused(
    host: &Handle,
    net: &Network,
    parent: &Link,
    mac: Option<MacAddr>,
    records: Option<&Records>,
    err: oci_macvlan_netlink_core::Error,
) -> Error {
    let name = link_name(&net.id);
    match (err.errno(), mac) {
        (Some(Errno::EADDRINUSE), Some(mac)) => Error::HostLinkMacInUse {
            name,
            network: net.name.clone(),
            mac,
            parent: parent.name.clone(),
            holder: holder_of(host, parent, mac, records).await,
        },
        _ => link_failed(&name, net)(err),
    }
}

/// A link of ours on `parent` under another name than the network's host link's that has its
/// MAC, that is that link renamed (by hand): tagged ours, of the network's driver, on its
/// parent, with the MAC derived from the network. One dump of the host's links, only after
/// the kernel refused the MAC (an ipvlan's host link, which has its parent's MAC, is never
/// refused one: renamed, it is left beside the new one, which answers the same).
pub(super) async fn find_renamed(
    host: &Handle,
    net: &Network,
    parent: &Link,
    mac: MacAddr,
) -> Result<Option<Link>> {
    let name = link_name(&net.id);
    // The kernel's kind of the host link, never the driver's name.
    let kind = net.driver().host_child()?.name();
    let listed = host.links().await.map_err(link_failed(&name, net))?;
    Ok(listed.into_iter().find(|l| {
        l.name != name
            && l.mac == Some(mac)
            && l.alias.as_deref() == Some(OWNER_ALIAS)
            && l.kind.as_deref() == Some(kind)
            && l.lower == Some(parent.index)
    }))
}

/// Who has `mac` on `parent`, for the error of a host link the kernel refused it: the parent,
/// a link of the host (one dump), or a container's link on record; else a link in a namespace
/// no record names. Only on that error's path.
async fn holder_of(
    host: &Handle,
    parent: &Link,
    mac: MacAddr,
    records: Option<&Records>,
) -> String {
    if parent.mac == Some(mac) {
        return format!("the parent interface {} has it", parent.name);
    }
    if let Ok(links) = host.links().await
        && let Some(link) = links
            .iter()
            .find(|l| l.mac == Some(mac) && l.lower == Some(parent.index))
    {
        return format!(
            "link {} (index {}) of the host has it",
            link.name, link.index
        );
    }
    if let Some(records) = records {
        for id in records.list().unwrap_or_default() {
            let Ok(Some(record)) = records.read(&id) else {
                continue;
            };
            if let Some(ep) = record
                .endpoints
                .iter()
                .find(|e| e.mac == Some(mac) && e.lower.is_none_or(|lower| lower == parent.index))
            {
                return format!(
                    "container {id} has it (its {} on network {})",
                    ep.ifname, ep.network
                );
            }
        }
    }
    "a link in another network namespace that no record of oci-macvlan names has it".to_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::Path;

    use super::*;
    use crate::{Attachment, NetworkSpec, Networks};

    fn network(name: &str, driver: &str, options: &[&str]) -> Network {
        NetworkSpec {
            name: name.into(),
            driver: driver.into(),
            subnets: vec![format!("10.{}.0.0/24", name.len())],
            options: options.iter().map(|o| (*o).to_owned()).collect(),
            ..Default::default()
        }
        .validate(format!("{name:0>64}"), "2026-12-05T00:00:00Z".into())
        .unwrap()
    }

    static C1: std::sync::LazyLock<crate::ContainerId> =
        std::sync::LazyLock::new(|| crate::ContainerId::parse("c1").unwrap());

    fn request<'a>(
        network: &'a Network,
        mac: Option<MacAddr>,
        definitions: &'a Networks,
    ) -> AttachRequest<'a> {
        AttachRequest {
            container_id: &C1,
            name: None,
            netns: Path::new("/run/netns/c1"),
            persistent_netns: true,
            pid: None,
            attachments: vec![Attachment {
                network,
                ifname: "eth0".into(),
                static_ips: Vec::new(),
                mac,
            }],
            definitions,
            connect: false,
            cni: false,
            hostname: None,
            on_lease: None,
        }
    }

    /// The host link's MAC is refused on every network of its parent (its own included), and
    /// only there; ipvlan host links have none to reserve; without a MAC asked for, no
    /// definition is read.
    #[test]
    fn the_host_links_mac_is_reserved_on_its_parent_only() {
        let dir = tempfile::tempdir().unwrap();
        let definitions = Networks::new(dir.path());
        let ha = network("ha", "macvlan", &["parent=eth0", "host_access=10.2.0.3"]);
        let side = network("side", "macvlan", &["parent=eth0"]);
        let far = network("far", "macvlan", &["parent=eth1"]);
        let ipv = network("ipv", "ipvlan", &["parent=eth2", "host_access=10.3.0.3"]);
        for net in [&ha, &side, &far, &ipv] {
            definitions.create(net).unwrap();
        }
        let mac = ha.host_link_mac().unwrap().unwrap();
        assert_eq!(side.host_link_mac().unwrap(), None, "no host access");
        assert_eq!(
            ipv.host_link_mac().unwrap(),
            None,
            "an ipvlan has its parent's"
        );

        for net in [&side, &ha] {
            let err = check_reserved_macs(&request(net, Some(mac), &definitions)).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Conflict);
            assert!(err.to_string().contains(&link_name(&ha.id)), "{err}");
        }
        insta::assert_snapshot!(
            check_reserved_macs(&request(&side, Some(mac), &definitions)).unwrap_err(),
            @"MAC address 56:ef:f2:b6:ab:28 for network side is reserved on parent interface eth0: it is the MAC of host link ha-000000000000 of network ha"
        );
        check_reserved_macs(&request(&far, Some(mac), &definitions)).unwrap();
        let other = "02:42:0a:00:00:09".parse().unwrap();
        check_reserved_macs(&request(&side, Some(other), &definitions)).unwrap();

        std::fs::write(dir.path().join("networks/broken.json"), "{").unwrap();
        check_reserved_macs(&request(&side, None, &definitions)).unwrap();
        assert!(check_reserved_macs(&request(&side, Some(other), &definitions)).is_err());
    }
}
