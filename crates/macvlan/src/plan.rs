//! Plan, then apply. [`plan`] resolves an attach request into a plain value before anything is
//! touched: each network's driver, link, interface name, MAC, parent, static addresses and
//! default routes, decided from the request and the definitions alone (no kernel, no store),
//! so a request that cannot be carried out is refused whole and the plan can be snapshot-tested
//! without root. Applying it (`endpoint.rs`) then looks every parent up before it makes any
//! (see [`crate::endpoint`]): a parent missing for the second network changes nothing at all.

use std::{net::IpAddr, path::PathBuf};

use crate::ifname::ifname_problem;
use ipnetwork::IpNetwork;
use oci_macvlan_ipam::StoreChoice;
use serde::Serialize;

use crate::{
    AttachRequest, Error, Network, ParentLink, Result,
    driver::DefaultRoute,
    record::{Record, RecordedEndpoint, check_container_id},
};

/// An attach, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub container_id: String,
    /// Set when the namespace outlives the container (detach deletes the links itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netns: Option<PathBuf>,
    pub networks: Vec<PlannedNetwork>,
}

/// What one network gives the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedNetwork {
    pub network: String,
    /// The driver, which is also the kind of the link.
    pub driver: &'static str,
    /// The driver's mode, as `network ls` shows it.
    pub mode: String,
    pub ifname: String,
    /// `None`: the link has its parent's MAC (ipvlan, passthru).
    #[serde(serialize_with = "mac_text")]
    pub mac: Option<oci_macvlan_netlink_core::MacAddr>,
    pub parent: String,
    /// Whether attach may make the parent when it is missing (an 802.1q link or dummy
    /// oci-macvlan owns), or must find it.
    pub parent_made_if_missing: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    pub static_ips: Vec<IpAddr>,
    pub default_routes: Routes,
    /// The network's host-side link (`-o host_access`): the host gets a route to each of the
    /// container's addresses through it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_link: Option<String>,
    /// Where the leases live (the network's `--ipam-opt`); the record keeps it for detach.
    #[serde(skip_serializing_if = "StoreChoice::is_local")]
    pub store: StoreChoice,
}

/// Where the container's default routes on a network go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Routes {
    /// An internal network: none.
    None,
    /// Via the gateways of its subnets (those that have one).
    Via(Vec<IpAddr>),
    /// Straight onto the link (`default dev IFNAME`), whatever gateway was given.
    OnLink,
    /// An internal network whose driver routes on the link (ipvlan L3): no default route, but
    /// one onto the link for each of its subnets (`SUBNET dev IFNAME`), so containers on its
    /// different subnets reach each other and nothing else, as in Docker.
    Subnets(Vec<IpNetwork>),
}

fn mac_text<S: serde::Serializer>(
    mac: &Option<oci_macvlan_netlink_core::MacAddr>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match mac {
        Some(mac) => s.collect_str(mac),
        None => s.serialize_str("the parent's"),
    }
}

/// Resolves `req`. Pure: the same request and definitions give the same plan, or the same
/// error, and nothing is touched either way.
pub fn plan(req: &AttachRequest<'_>) -> Result<Plan> {
    check_container_id(req.container_id)?;
    let mut networks: Vec<PlannedNetwork> = Vec::with_capacity(req.attachments.len());
    for att in &req.attachments {
        let net = att.network;
        if let Some(reason) = ifname_problem(&att.ifname).or_else(|| {
            networks
                .iter()
                .any(|p| p.ifname == att.ifname)
                .then_some("two networks of the container ask for it")
        }) {
            return Err(Error::InvalidIfname {
                name: att.ifname.clone(),
                network: net.name.clone(),
                reason,
            });
        }
        let driver = net.driver();
        networks.push(PlannedNetwork {
            network: net.name.clone(),
            driver: driver.name(),
            mode: driver.mode(),
            ifname: att.ifname.clone(),
            mac: driver.mac(&net.name, req.container_id, att.mac)?,
            parent: net.parent.to_string(),
            parent_made_if_missing: net.parent_link != ParentLink::Existing,
            mtu: net.mtu,
            static_ips: att.static_ips.clone(),
            default_routes: routes(net),
            host_link: net.host_link(),
            store: net.store_choice(),
        });
    }
    Ok(Plan {
        container_id: req.container_id.to_owned(),
        netns: req.persistent_netns.then(|| req.netns.to_path_buf()),
        networks,
    })
}

fn routes(net: &Network) -> Routes {
    match net.driver().default_route() {
        DefaultRoute::OnLink if net.internal => {
            Routes::Subnets(net.pools.iter().map(|p| p.subnet).collect())
        }
        _ if net.internal => Routes::None,
        DefaultRoute::OnLink => Routes::OnLink,
        DefaultRoute::ViaGateway => {
            Routes::Via(net.pools.iter().filter_map(|p| p.gateway).collect())
        }
    }
}

impl Plan {
    /// The endpoint record an attach writes before its first change (the parents' indexes and
    /// the links' own are filled in as they become known).
    pub(crate) fn record(&self) -> Record {
        Record {
            container_id: self.container_id.clone(),
            netns: self.netns.clone(),
            liveness: None,
            endpoints: self
                .networks
                .iter()
                .map(|p| RecordedEndpoint {
                    network: p.network.clone(),
                    ifname: p.ifname.clone(),
                    mac: p.mac,
                    kind: Some(p.driver.to_owned()),
                    lower: None,
                    index: None,
                    host_link: p.host_link.clone(),
                    store: Some(p.store.clone()),
                })
                .collect(),
        }
    }
}
