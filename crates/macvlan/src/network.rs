use std::{collections::BTreeMap, net::IpAddr};

use ipnetwork::IpNetwork;
use oci_macvlan_ipam::{Backends, Pool, StoreChoice};
use oci_macvlan_vlan::Parent;
use serde::{Deserialize, Serialize};

use crate::{
    DefinitionError, Result,
    driver::{self, DefaultRoute, Driver},
};

mod dhcp;
mod host_link;
mod parent;
mod parse;
mod static_ips;

pub use dhcp::{DhcpIpam, IPAM_DRIVERS};
pub use host_link::link_name;
pub use parent::{ParentLink, ParentName};
pub use parse::check_network_name;
pub(crate) use parse::invalid;
use parse::{assign, duplicate, parse_cidr, parse_ip};
pub use static_ips::StaticIps;

/// The `-o` keys every driver takes; the rest are the driver's own.
pub(crate) const CORE_OPTIONS: &[&str] = &[
    "parent",
    "mtu",
    "host_access",
    "static_ips",
    "address_probe",
    dhcp::SLAAC_KEY,
];

fn probe_on() -> bool {
    true
}

fn is_on(on: &bool) -> bool {
    *on
}

/// A validated network definition, as stored in `<config-dir>/networks/<name>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// The network's name.
    pub name: String,
    /// The network's id: 64 hex digits, made at `network create`.
    pub id: String,
    /// When it was created (RFC 3339, UTC, in seconds).
    pub created: String,
    /// `"driver"` and the driver's typed options, beside the core's fields.
    #[serde(flatten)]
    pub driver: driver::Options,
    /// The parent link (`-o parent`).
    pub parent: ParentName,
    /// Whether oci-macvlan made the parent (a VLAN, a dummy) and so removes it with
    /// the network, or uses a link that was there.
    #[serde(default, skip_serializing_if = "ParentLink::is_existing")]
    pub parent_link: ParentLink,
    /// The containers' links' MTU (`-o mtu`); the parent's when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Whether the network is cut off from the outside (`--internal`): no default route.
    #[serde(default)]
    pub internal: bool,
    /// Whether containers get IPv6 addresses dynamically (`--ipv6`).
    #[serde(default)]
    pub ipv6: bool,
    /// Its subnets and their addresses' rules, one pool per subnet.
    pub pools: Vec<Pool>,
    /// The host's own addresses on the network (`-o host_access`, at most one per family),
    /// held by its host-side link ([`crate::host_access`]); reserved in their pools.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_access: Vec<IpAddr>,
    /// The static addresses a container may ask for (`-o static_ips`; see [`crate::occupied`]).
    #[serde(default, skip_serializing_if = "StaticIps::is_any")]
    pub static_ips: StaticIps,
    /// Whether a static address is probed for on the LAN before it is taken (`-o
    /// address_probe=on|off`, on unless turned off).
    #[serde(default = "probe_on", skip_serializing_if = "is_on")]
    pub address_probe: bool,
    /// The `-o KEY=VALUE` options as given, for `inspect`.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Where the leases live (`--ipam-opt`): this host's store, or a shared one, kept as its
    /// backend's locator under the backend's name (`"etcd": {…}`). Definitions written before
    /// it load as local networks.
    #[serde(flatten, with = "oci_macvlan_ipam::locator::in_definition")]
    pub store: StoreChoice,
    /// `--label KEY[=VALUE]`, as Docker keeps them: metadata for `ls --filter label=…` and
    /// `inspect`, never read by attach. Definitions written before them load without any.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// `--ipam-driver dhcp`: addresses from the LAN's DHCP server, not from `pools` (which is
    /// empty). Definitions written before it load as networks of our allocator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dhcp: Option<DhcpIpam>,
}

impl Network {
    /// The parent, as attach finds or makes it: the network's own dummy, or the parsed name.
    pub fn parent(&self) -> Parent {
        match self.parent_link {
            ParentLink::Dummy => Parent::Dummy(self.parent.as_str().to_owned()),
            _ => self.parent.0.clone(),
        }
    }

    /// Where the network's leases live.
    pub fn store_choice(&self) -> StoreChoice {
        self.store.clone()
    }

    /// The network's driver.
    pub fn driver(&self) -> &dyn Driver {
        self.driver.driver()
    }

    /// Whether the network reaches a LAN: it has a parent link (not its own dummy) and is not
    /// internal.
    pub fn reaches_lan(&self) -> bool {
        self.parent_link != ParentLink::Dummy && !self.internal
    }

    /// Whether a subnet of the network may hold a router of the LAN it was not told about: it
    /// reaches a LAN, and its containers are on the LAN's subnets (not routed to by the host,
    /// as ipvlan L3's are). Where no router can be, nothing is kept for one (a /31 without
    /// parent, or an L3 /31, holds two containers). See [`oci_macvlan_ipam::Request`].
    pub fn undeclared_router(&self) -> bool {
        self.reaches_lan() && !self.driver().routed_by_host()
    }

    /// The pools whose first host address is kept free for a router the network was not told
    /// about ([`Pool::kept_for_router`]): their containers get no default route from this network.
    pub fn pools_without_gateway(&self) -> impl Iterator<Item = &Pool> {
        let undeclared = self.undeclared_router();
        self.pools
            .iter()
            .filter(move |p| p.kept_for_router(undeclared).is_some())
    }

    /// The routes the LAN's router needs to reach this network's subnets, one per subnet, via
    /// the first of `parent_addresses` (the host's global addresses on the parent, the kernel's
    /// primary first) of the subnet's family. Empty unless the driver routes through the host
    /// (ipvlan L3) and the network reaches a LAN (a parent of the host's or ours, not internal).
    pub fn lan_routes(&self, parent_addresses: &[IpAddr]) -> Vec<LanRoute> {
        if !self.driver().routed_by_host() || !self.reaches_lan() {
            return Vec::new();
        }
        self.pools
            .iter()
            .map(|pool| LanRoute {
                subnet: pool.subnet,
                via: parent_addresses
                    .iter()
                    .find(|a| a.is_ipv4() == pool.subnet.is_ipv4())
                    .copied(),
            })
            .collect()
    }

    /// The gateway a container's default route goes via, for its address `ip`: that of the pool
    /// that contains `ip`, unless the network is internal or its driver routes straight onto
    /// the link (ipvlan L3: [`DefaultRoute::OnLink`]).
    pub fn gateway_for(&self, ip: IpAddr) -> Option<IpAddr> {
        if self.internal || self.driver().default_route() != DefaultRoute::ViaGateway {
            return None;
        }
        self.pools
            .iter()
            .find(|p| p.contains(ip))
            .and_then(|p| p.gateway)
    }
}

/// A route the LAN's router needs to reach a subnet of a network whose driver routes through
/// the host ([`Driver::routed_by_host`]): `ip route add SUBNET via VIA` on the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LanRoute {
    /// The subnet the router must route.
    pub subnet: IpNetwork,
    /// The host's address of the subnet's family on the parent; `None` when it has none (the
    /// LAN cannot reach that subnet until the parent has one).
    pub via: Option<IpAddr>,
}

/// `network create` input as typed by the user, before validation.
#[derive(Debug, Clone, Default)]
pub struct NetworkSpec {
    /// The network's name (`NAME`).
    pub name: String,
    /// The driver (`-d`).
    pub driver: String,
    /// `--subnet`s, in the order given.
    pub subnets: Vec<String>,
    /// `--gateway`s, each for the subnet that contains it.
    pub gateways: Vec<String>,
    /// `--ip-range`s, each for the subnet that contains it.
    pub ip_ranges: Vec<String>,
    /// `NAME=IP`
    pub aux_addresses: Vec<String>,
    /// `--ipv6`.
    pub ipv6: bool,
    /// `--internal`.
    pub internal: bool,
    /// `KEY=VALUE`
    pub options: Vec<String>,
    /// `--ipam-opt KEY=VALUE`: where the leases live, as `backends` read them.
    pub ipam_options: Vec<String>,
    /// The kinds of shared store `ipam_options` may name (the store policy's list): none, and
    /// every `--ipam-opt` is unknown.
    pub backends: Backends,
    /// `--label KEY[=VALUE]`
    pub labels: Vec<String>,
    /// `--ipam-driver`: `default` (or empty), our allocator; `dhcp`, the LAN's DHCP server.
    pub ipam_driver: String,
}

impl NetworkSpec {
    /// Checks everything that can be checked without the kernel, with Docker's wording where it
    /// is clear. `id` and `created` are the caller's (random and clock-derived).
    pub fn validate(&self, id: String, created: String) -> Result<Network> {
        check_network_name(&self.name)?;
        // Networks are named by id too (`inspect $(ls -q)`): a name that reads as one would
        // shadow another network's short id.
        if self.name.len() >= 12 && self.name.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(DefinitionError::InvalidNetworkName {
                name: self.name.clone(),
                reason: "12 or more hex digits read as a network id",
            }
            .into());
        }
        let Some(driver_name) = driver::NAMES.iter().copied().find(|n| *n == self.driver) else {
            return Err(DefinitionError::UnsupportedDriver {
                driver: self.driver.clone(),
                known: driver::NAMES.join(", "),
            }
            .into());
        };
        let dhcp = self.is_dhcp()?;
        if self.subnets.is_empty() && !dhcp {
            return Err(DefinitionError::NoSubnet {
                driver: driver_name,
            }
            .into());
        }
        let subnets = self
            .subnets
            .iter()
            .map(|s| parse_cidr("--subnet", s))
            .collect::<Result<Vec<_>>>()?;
        let (ipam_options, dhcp_timeout) = self.split_ipam_options(dhcp)?;
        let dhcp = if dhcp {
            Some(self.dhcp_ipam(&subnets, dhcp_timeout, &self.parse_options()?)?)
        } else {
            dhcp::check_slaac_without_dhcp(&self.parse_options()?)?;
            None
        };
        // A DHCP network's `--subnet` is a check of its leases, not a pool.
        let subnets = if dhcp.is_some() { Vec::new() } else { subnets };
        let mut gateways: Vec<Option<IpAddr>> = vec![None; subnets.len()];
        for value in &self.gateways {
            let ip = parse_ip("--gateway", value)?;
            let at = assign(&subnets, ip, "gateway", value)?;
            if gateways[at].replace(ip).is_some() {
                return Err(duplicate("gateway", subnets[at]));
            }
        }
        let mut ranges: Vec<Option<IpNetwork>> = vec![None; subnets.len()];
        for value in &self.ip_ranges {
            let range = parse_cidr("--ip-range", value)?;
            let at = assign(&subnets, range.network(), "ip-range", value)?;
            if ranges[at].replace(range).is_some() {
                return Err(duplicate("ip-range", subnets[at]));
            }
        }
        let mut aux: Vec<BTreeMap<String, IpAddr>> = vec![BTreeMap::new(); subnets.len()];
        for value in &self.aux_addresses {
            let (name, ip) = value
                .split_once('=')
                .filter(|(name, _)| !name.is_empty())
                .ok_or_else(|| invalid("--aux-address", value, "expected NAME=IP"))?;
            let ip = parse_ip("--aux-address", ip)?;
            // Names are keys, as in Docker's map of auxiliary addresses: one name, one address,
            // across all subnets. One address under two names is a slip as well.
            if aux.iter().any(|pool| pool.contains_key(name)) {
                return Err(DefinitionError::RepeatedAuxName {
                    name: name.to_owned(),
                }
                .into());
            }
            if let Some((first, _)) = aux.iter().flatten().find(|(_, held)| **held == ip) {
                return Err(DefinitionError::RepeatedAuxAddress {
                    ip,
                    first: first.clone(),
                    second: name.to_owned(),
                }
                .into());
            }
            let at = assign(&subnets, ip, "auxiliary address", value)?;
            aux[at].insert(name.to_owned(), ip);
        }
        let mut pools = subnets
            .iter()
            .zip(gateways)
            .zip(ranges)
            .zip(aux)
            .map(|(((subnet, gw), range), aux)| Pool::new(*subnet, gw, range, aux))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| DefinitionError::Pool(Box::new(err)))?;
        for (i, a) in subnets.iter().enumerate() {
            if subnets[..i]
                .iter()
                .any(|b| b.contains(a.network()) || a.contains(b.network()))
            {
                return Err(invalid(
                    "--subnet",
                    &a.to_string(),
                    "it overlaps another --subnet of this network",
                ));
            }
        }
        let options = self.parse_options()?;
        let host_access = host_link::reserve(options.get("host_access"), &mut pools)?;
        let store = self
            .backends
            .parse_options(&ipam_options)
            .map_err(|err| DefinitionError::Pool(Box::new(err)))?;
        // The core's keys out, the driver's left: the driver refuses what it does not know.
        let driver_options = options
            .iter()
            .filter(|(key, _)| !CORE_OPTIONS.contains(&key.as_str()))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        let driver = driver::Options::parse(&self.driver, &driver_options, CORE_OPTIONS)?;
        if !host_access.is_empty() {
            driver.driver().host_child()?;
        }
        if dhcp.is_some() {
            dhcp::check_driver(
                driver.driver().default_route(),
                driver.driver().exclusive_parent(),
                driver_name,
            )?;
        }
        // No parent: an internal network on a dummy link of its own, as Docker does it.
        let (parent, parent_link) = match options.get("parent") {
            // Docker's words, which name the driver.
            Some(parent) if parent == "lo" => {
                return Err(DefinitionError::LoopbackParent {
                    driver: driver_name,
                }
                .into());
            }
            Some(parent) => (ParentName::parse(parent)?, ParentLink::Existing),
            None => (
                ParentName::parse(Parent::dummy_for(&id).name())?,
                ParentLink::Dummy,
            ),
        };
        let internal = self.internal || parent_link == ParentLink::Dummy;
        let mtu = options
            .get("mtu")
            .map(|value| {
                value
                    .parse::<u32>()
                    .ok()
                    .filter(|mtu| (68..=65535).contains(mtu))
                    .ok_or_else(|| {
                        invalid("-o mtu", value, "must be a number between 68 and 65535")
                    })
            })
            .transpose()?;
        let ipv6 =
            self.ipv6 || subnets.iter().any(IpNetwork::is_ipv6) || dhcp.is_some_and(|d| d.ipv6);
        let labels = self.parse_labels()?;
        let static_ips = options
            .get("static_ips")
            .map(|value| StaticIps::parse(value, &subnets))
            .transpose()?
            .unwrap_or_default();
        let address_probe = match options.get("address_probe").map(String::as_str) {
            None | Some("on") => true,
            Some("off") => false,
            Some(value) => return Err(invalid("-o address_probe", value, "must be on or off")),
        };
        Ok(Network {
            name: self.name.clone(),
            id,
            created,
            driver,
            parent,
            parent_link,
            mtu,
            internal,
            ipv6,
            pools,
            host_access,
            static_ips,
            address_probe,
            options,
            store,
            labels,
            dhcp,
        })
    }

    /// `--label KEY[=VALUE]` (no value: an empty one, as in Docker). A key given twice is an
    /// error, never last-wins; keys and values are bounded, as a definition is read by every hook.
    fn parse_labels(&self) -> Result<BTreeMap<String, String>> {
        const MAX_LABELS: usize = 64;
        const MAX_KEY: usize = 128;
        const MAX_VALUE: usize = 1024;
        if self.labels.len() > MAX_LABELS {
            return Err(invalid(
                "--label",
                &self.labels[MAX_LABELS],
                "at most 64 labels",
            ));
        }
        let mut labels = BTreeMap::new();
        for label in &self.labels {
            let (key, value) = label.split_once('=').unwrap_or((label, ""));
            let reason = if key.is_empty() {
                Some("expected KEY=VALUE (or KEY)")
            } else if key.len() > MAX_KEY {
                Some("the key is longer than 128 bytes")
            } else if value.len() > MAX_VALUE {
                Some("the value is longer than 1024 bytes")
            } else if key.chars().chain(value.chars()).any(char::is_control) {
                Some("control characters are not allowed")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(invalid("--label", label, reason));
            }
            if labels.insert(key.to_owned(), value.to_owned()).is_some() {
                return Err(invalid("--label", label, "this key is given twice"));
            }
        }
        Ok(labels)
    }

    fn parse_options(&self) -> Result<BTreeMap<String, String>> {
        let mut options = BTreeMap::new();
        for opt in &self.options {
            let (key, value) = opt
                .split_once('=')
                .ok_or_else(|| invalid("-o", opt, "expected KEY=VALUE"))?;
            if options.insert(key.to_owned(), value.to_owned()).is_some() {
                return Err(DefinitionError::RepeatedOption {
                    key: key.to_owned(),
                }
                .into());
            }
        }
        Ok(options)
    }
}
