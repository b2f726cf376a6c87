//! Plan, then apply. [`plan`] resolves an attach request into a plain value before anything is
//! touched: for each network the link to make (its kernel kind and settings, name, MAC, MTU),
//! its parent, the addresses to ask the network's address source for, and the network's rule
//! for the container's routes — decided from the request and the definitions alone (no kernel,
//! no store), so a request that cannot be carried out is refused whole and the plan can be
//! snapshot-tested without root.
//!
//! Addresses are known only once they are acquired, so the routes a container gets are worked
//! out by a second pure step, [`crate::wire`], from the planned network and what its source
//! returned. Apply (`endpoint.rs`) executes both and decides nothing.

use std::{net::IpAddr, path::PathBuf};

use crate::ifname::ifname_problem;
use ipnetwork::IpNetwork;
use oci_macvlan_ipam::StoreChoice;
use oci_macvlan_netlink_core::{ChildKind, MacAddr};
use serde::{Serialize, Serializer, ser::SerializeMap};

use crate::{
    AttachRequest, ContainerId, ContainerName, Error, Network, ParentLink, Result,
    driver::DefaultRoute,
    mac::Mac,
    record::{Record, RecordedEndpoint},
};

/// An attach, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan<'a> {
    /// The container the links are for.
    pub container_id: ContainerId,
    /// Its name, if the front door gave one (recorded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<ContainerName>,
    /// Set when the namespace outlives the container (detach deletes the links itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netns: Option<PathBuf>,
    /// One per network, in the order of the request.
    pub networks: Vec<PlannedNetwork<'a>>,
    /// Attached through the CNI plugin (see [`crate::Record::cni`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cni: bool,
    /// This host's key for address sources, for a DHCP network's client identifier (see
    /// [`plan_with`]); never shown.
    #[serde(skip)]
    pub(crate) secret: Option<Vec<u8>>,
}

/// What one network gives the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedNetwork<'a> {
    /// The network's name.
    pub network: String,
    /// The network's definition, which the plan resolved (apply asks it nothing it could
    /// decide: it is kept for the address source, the host-link checks and the error texts).
    #[serde(skip)]
    pub definition: &'a Network,
    /// The driver (`-d`), as `network ls` shows it: not the link's kind (see [`LinkSpec`]).
    pub driver: &'static str,
    /// The driver's mode, as `network ls` shows it.
    pub mode: String,
    /// The container's link.
    pub link: LinkSpec<'a>,
    /// The link's parent in the host namespace.
    pub parent: ParentSpec,
    /// What the network's address source is asked for.
    pub addresses: AddressRequest,
    /// The network's rule for the container's routes ([`crate::wire`] applies it).
    pub routes: Routes,
    /// The network's host-side link (`-o host_access`): the host gets a route to each of the
    /// container's addresses through it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_link: Option<String>,
    /// Where the leases live (the network's `--ipam-opt`); the record keeps it for detach.
    #[serde(skip_serializing_if = "StoreChoice::is_local")]
    pub store: StoreChoice,
}

/// The link to make in the container's namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkSpec<'a> {
    /// The kernel's kind of link and its settings (`IFLA_INFO_KIND` and its data).
    #[serde(serialize_with = "kind_text")]
    pub kind: ChildKind<'a>,
    /// The interface name in the container.
    pub name: String,
    /// Its own MAC, or its parent's.
    pub mac: Mac,
    /// The MTU to set; `None`: the parent's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
}

/// A planned link's parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParentSpec {
    /// Its name in the host namespace.
    pub name: String,
    /// Whether attach may make the parent when it is missing (an 802.1q link or dummy
    /// oci-macvlan owns), or must find it.
    pub made_if_missing: bool,
}

/// What a network's address source is asked for on one link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddressRequest {
    /// Static addresses (at most one per family).
    pub static_ips: Vec<IpAddr>,
    /// Whether the network has IPv6 subnets: the link's IPv6 settings follow it.
    pub ipv6: bool,
}

/// A network's rule for a container's routes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Routes {
    /// An internal network (or one whose driver takes no default route): none.
    None,
    /// A default route via the gateway the source returned with each address, for the first
    /// network of the container with one in that family.
    ViaGateway,
    /// A default route straight onto the link (`default dev IFNAME`), whatever gateway was
    /// given, for the first network of the container in that family.
    OnLink,
    /// An internal network whose driver routes on the link (ipvlan L3): no default route, but
    /// one onto the link to each of its subnets of an address's family that does not hold the
    /// address (`SUBNET dev IFNAME`), so containers on its different subnets reach each other
    /// and nothing else, as in Docker; none in a family an earlier network routes by default.
    OtherSubnets(Vec<IpNetwork>),
}

fn kind_text<S: Serializer>(kind: &ChildKind<'_>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match kind {
        ChildKind::Macvlan { source_macs, .. } if !source_macs.is_empty() => {
            let mut map = s.serialize_map(Some(2))?;
            map.serialize_entry("kind", kind.name())?;
            let macs: Vec<String> = source_macs.iter().map(ToString::to_string).collect();
            map.serialize_entry("source_macs", &macs)?;
            map.end()
        }
        _ => s.serialize_str(kind.name()),
    }
}

/// Resolves `req`. Pure: the same request and definitions give the same plan, or the same
/// error, and nothing is touched either way.
pub fn plan<'a>(req: &AttachRequest<'a>) -> Result<Plan<'a>> {
    plan_with(req, None)
}

/// [`plan`], with this host's secret for the networks of the DHCP source: their links' default
/// MACs derive from it, the network and the container (as the client identifier does), so a
/// re-created container shows the LAN the same MAC and two hosts never share one.
pub(crate) fn plan_with<'a>(req: &AttachRequest<'a>, secret: Option<&[u8]>) -> Result<Plan<'a>> {
    let mut networks: Vec<PlannedNetwork<'a>> = Vec::with_capacity(req.attachments.len());
    for att in &req.attachments {
        let net: &'a Network = att.network;
        if let Some(reason) = ifname_problem(&att.ifname).or_else(|| {
            networks
                .iter()
                .any(|p| p.link.name == att.ifname)
                .then_some("two networks of the container ask for it")
        }) {
            return Err(Error::InvalidIfname {
                name: att.ifname.clone(),
                network: net.name.clone(),
                reason,
            });
        }
        let driver = net.driver();
        let mut mac = driver.mac(&net.name, req.container_id, att.mac)?;
        if net.dhcp.is_some() {
            if let Some(ip) = att.static_ips.first() {
                return Err(Error::Dhcp(crate::DhcpError::StaticIp {
                    ip: *ip,
                    network: net.name.clone(),
                }));
            }
            if let (Mac::Own(_), None, Some(secret)) = (mac, att.mac, secret) {
                mac = Mac::Own(MacAddr(oci_macvlan_dhcp::ClientId::default_mac(
                    secret,
                    &net.name,
                    req.container_id.as_str(),
                )));
            }
        }
        networks.push(PlannedNetwork {
            network: net.name.clone(),
            definition: net,
            driver: driver.name(),
            mode: driver.mode(),
            link: LinkSpec {
                kind: driver.child(),
                name: att.ifname.clone(),
                mac,
                mtu: net.mtu,
            },
            parent: ParentSpec {
                name: net.parent.to_string(),
                made_if_missing: net.parent_link != ParentLink::Existing,
            },
            addresses: AddressRequest {
                static_ips: att.static_ips.clone(),
                ipv6: net.pools.iter().any(|p| !p.is_ipv4()),
            },
            routes: routes(net),
            host_link: net.host_link(),
            store: net.store_choice(),
        });
    }
    Ok(Plan {
        container_id: req.container_id.clone(),
        name: req.name.clone(),
        netns: req.persistent_netns.then(|| req.netns.to_path_buf()),
        networks,
        cni: req.cni,
        secret: secret.map(<[u8]>::to_vec),
    })
}

fn routes(net: &Network) -> Routes {
    match net.driver().default_route() {
        DefaultRoute::OnLink if net.internal => {
            Routes::OtherSubnets(net.pools.iter().map(|p| p.subnet).collect())
        }
        _ if net.internal => Routes::None,
        DefaultRoute::OnLink => Routes::OnLink,
        DefaultRoute::ViaGateway => Routes::ViaGateway,
    }
}

impl PlannedNetwork<'_> {
    /// The endpoint record of this network, as an attach writes it before its first change
    /// (the parent's index and the link's own are filled in as they become known). The kind
    /// recorded is the kernel's, from the link spec: detach recognises the link by it.
    pub(crate) fn recorded(&self) -> RecordedEndpoint {
        RecordedEndpoint {
            network: self.network.clone(),
            ifname: self.link.name.clone(),
            mac: self.link.mac.own(),
            kind: Some(self.link.kind.name().to_owned()),
            lower: None,
            index: None,
            host_link: self.host_link.clone(),
            store: Some(self.store.clone()),
            dhcp: None,
        }
    }
}

impl Plan<'_> {
    /// The endpoint record an attach writes before its first change.
    pub(crate) fn record(&self) -> Record {
        Record {
            container_id: self.container_id.clone(),
            name: self.name.clone(),
            netns: self.netns.clone(),
            liveness: None,
            endpoints: self.networks.iter().map(PlannedNetwork::recorded).collect(),
            cni: self.cni,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use oci_macvlan_netlink_core::{Link, MacvlanMode};

    use super::*;
    use crate::NetworkSpec;

    /// A driver whose name is not the kind of the links it makes: the record keeps the link
    /// spec's kind, so detach (`RecordedEndpoint::is`) still knows its link; recorded under the
    /// driver's name, it would not.
    #[test]
    fn a_link_is_recorded_under_its_kernel_kind_not_its_drivers_name() {
        let net = NetworkSpec {
            name: "lan".into(),
            driver: "macvlan".into(),
            subnets: vec!["10.1.0.0/24".into()],
            options: vec!["parent=eth0".into()],
            ..Default::default()
        }
        .validate("a".repeat(64), "2026-11-30T00:00:00Z".into())
        .unwrap();
        let mac: MacAddr = "02:00:00:00:00:01".parse().unwrap();
        let planned = PlannedNetwork {
            network: "lan".into(),
            definition: &net,
            driver: "fakevlan",
            mode: "bridge".into(),
            link: LinkSpec {
                kind: ChildKind::Macvlan {
                    mode: MacvlanMode::Bridge,
                    source_macs: &[],
                },
                name: "eth0".into(),
                mac: Mac::Own(mac),
                mtu: None,
            },
            parent: ParentSpec {
                name: "eth0".into(),
                made_if_missing: false,
            },
            addresses: AddressRequest {
                static_ips: Vec::new(),
                ipv6: false,
            },
            routes: Routes::ViaGateway,
            host_link: None,
            store: StoreChoice::Local,
        };
        let recorded = planned.recorded();
        assert_eq!(recorded.kind.as_deref(), Some("macvlan"));
        let link = Link {
            index: 3,
            name: "eth0".into(),
            mac: Some(mac),
            mtu: None,
            up: true,
            loopback: false,
            kind: Some("macvlan".into()),
            alias: None,
            lower: None,
            vlan_id: None,
            promiscuity: 0,
            carrier: None,
            mode: None,
        };
        assert!(recorded.is(&link));
        let by_driver_name = RecordedEndpoint {
            kind: Some(planned.driver.to_owned()),
            ..recorded
        };
        assert!(!by_driver_name.is(&link), "the check can fail");
    }
}
