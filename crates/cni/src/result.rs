//! The result a plugin prints after ADD (and a runtime replays as `prevResult`), in the shape
//! of the config's version.

use std::{net::IpAddr, path::Path};

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use oci_macvlan_macvlan::check::Expected;

use crate::{Error, Result, Version};

/// One interface a result lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// Its name.
    pub name: String,
    /// Its MAC, if it has one of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// The namespace path it is in; `None` for the host's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
}

/// One address a result lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpConfig {
    /// The address with its prefix.
    pub address: IpNetwork,
    /// The gateway of its subnet, if the network routes through one.
    pub gateway: Option<IpAddr>,
    /// The index in `interfaces` of the interface it is on.
    pub interface: Option<usize>,
}

/// One route a result lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The destination.
    pub dst: IpNetwork,
    /// The next hop; `None` for the interface's default gateway.
    pub gw: Option<IpAddr>,
}

/// What ADD made, to print.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniResult {
    /// The interfaces: the parent on the host, then the container's link.
    pub interfaces: Vec<Interface>,
    /// The container's addresses.
    pub ips: Vec<IpConfig>,
    /// The container's routes.
    pub routes: Vec<Route>,
}

impl CniResult {
    /// The result of one attachment: the parent `parent` on the host (index 0), the
    /// container's link `ifname` with `mac` (if known) in `sandbox` (index 1) holding `addresses`, a
    /// default route through each gateway in `gateways` (those of its addresses' subnets).
    pub fn attached(
        parent: &str,
        ifname: &str,
        mac: Option<&str>,
        sandbox: &Path,
        addresses: &[IpNetwork],
        gateways: &[IpAddr],
    ) -> Self {
        let gateway_of = |address: &IpNetwork| {
            gateways
                .iter()
                .copied()
                .find(|gw| address.contains(*gw))
                .or_else(|| {
                    gateways
                        .iter()
                        .copied()
                        .find(|gw| gw.is_ipv4() == address.is_ipv4())
                })
        };
        let default = |gw: &IpAddr| match gw {
            IpAddr::V4(_) => IpNetwork::new(IpAddr::V4(0.into()), 0),
            IpAddr::V6(_) => IpNetwork::new(IpAddr::V6(0u128.into()), 0),
        };
        Self {
            interfaces: vec![
                Interface {
                    name: parent.to_owned(),
                    mac: None,
                    sandbox: None,
                },
                Interface {
                    name: ifname.to_owned(),
                    mac: mac.map(str::to_owned),
                    sandbox: Some(sandbox.to_string_lossy().into_owned()),
                },
            ],
            ips: addresses
                .iter()
                .map(|address| IpConfig {
                    address: *address,
                    gateway: gateway_of(address),
                    interface: Some(1),
                })
                .collect(),
            routes: gateways
                .iter()
                .filter_map(|gw| default(gw).ok().map(|dst| Route { dst, gw: Some(*gw) }))
                .collect(),
        }
    }

    /// The result as JSON in `version`'s shape: before 1.0.0 each address says its
    /// `version` ("4" or "6").
    pub fn to_json(&self, version: Version) -> Value {
        let ips: Vec<Value> = self
            .ips
            .iter()
            .map(|ip| {
                let mut o = Map::new();
                if version.ips_have_version() {
                    let v = if ip.address.is_ipv4() { "4" } else { "6" };
                    o.insert("version".into(), json!(v));
                }
                o.insert("address".into(), json!(ip.address.to_string()));
                if let Some(gw) = ip.gateway {
                    o.insert("gateway".into(), json!(gw.to_string()));
                }
                if let Some(i) = ip.interface {
                    o.insert("interface".into(), json!(i));
                }
                Value::Object(o)
            })
            .collect();
        let routes: Vec<Value> = self
            .routes
            .iter()
            .map(|r| {
                let mut o = Map::new();
                o.insert("dst".into(), json!(r.dst.to_string()));
                if let Some(gw) = r.gw {
                    o.insert("gw".into(), json!(gw.to_string()));
                }
                Value::Object(o)
            })
            .collect();
        json!({
            "cniVersion": version.as_str(),
            "interfaces": self.interfaces,
            "ips": ips,
            "routes": routes,
            "dns": {},
        })
    }
}

/// What CHECK compares with: the interfaces, addresses and routes of a `prevResult`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrevResult {
    /// Its interfaces.
    pub interfaces: Vec<Interface>,
    /// Its addresses, each with the index of its interface.
    pub ips: Vec<(IpNetwork, Option<usize>)>,
    /// Its routes.
    pub routes: Vec<Route>,
}

#[derive(Deserialize)]
struct RawPrev {
    #[serde(default)]
    interfaces: Vec<Interface>,
    #[serde(default)]
    ips: Vec<RawIp>,
    #[serde(default)]
    routes: Vec<RawRoute>,
}

#[derive(Deserialize)]
struct RawRoute {
    dst: String,
    gw: Option<String>,
}

#[derive(Deserialize)]
struct RawIp {
    address: String,
    interface: Option<usize>,
}

impl PrevResult {
    /// Reads a `prevResult` (of any version this plugin speaks).
    pub fn parse(value: &Value) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidConfig {
            field: "prevResult",
            reason,
        };
        let raw: RawPrev =
            serde_json::from_value(value.clone()).map_err(|err| invalid(err.to_string()))?;
        let ips = raw
            .ips
            .into_iter()
            .map(|ip| {
                ip.address
                    .parse::<IpNetwork>()
                    .map(|a| (a, ip.interface))
                    .map_err(|_| {
                        invalid(format!(
                            "{:?} is not an address/prefix",
                            crate::error::echo(&ip.address)
                        ))
                    })
            })
            .collect::<Result<_>>()?;
        let routes = raw
            .routes
            .into_iter()
            .map(|route| {
                let dst = route.dst.parse::<IpNetwork>().map_err(|_| {
                    invalid(format!(
                        "route {:?} is not an address/prefix",
                        crate::error::echo(&route.dst)
                    ))
                })?;
                let gw = route
                    .gw
                    .map(|gw| {
                        gw.parse::<IpAddr>().map_err(|_| {
                            invalid(format!(
                                "gateway {:?} is not an address",
                                crate::error::echo(&gw)
                            ))
                        })
                    })
                    .transpose()?;
                Ok(Route { dst, gw })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            interfaces: raw.interfaces,
            ips,
            routes,
        })
    }

    /// What the container interface `ifname` is said to be, for the core's check: its MAC,
    /// its addresses and the result's routes. `None` if no interface of that name is in a
    /// sandbox.
    pub fn expected(&self, ifname: &str) -> Result<Option<Expected>> {
        let Some((index, link)) = self.container_interface(ifname) else {
            return Ok(None);
        };
        let mac = link
            .mac
            .as_deref()
            .map(|mac| {
                mac.parse().map_err(|_| Error::InvalidConfig {
                    field: "prevResult",
                    reason: format!("MAC {:?} is not a MAC address", crate::error::echo(mac)),
                })
            })
            .transpose()?;
        Ok(Some(Expected {
            mac,
            addresses: self.addresses_of(index),
            routes: self.routes.iter().map(|r| (r.dst, r.gw)).collect(),
        }))
    }

    /// The container interface named `ifname` (one with a sandbox), with its index.
    pub fn container_interface(&self, ifname: &str) -> Option<(usize, &Interface)> {
        self.interfaces
            .iter()
            .enumerate()
            .find(|(_, i)| i.name == ifname && i.sandbox.is_some())
    }

    /// The addresses on the interface of index `index`.
    pub fn addresses_of(&self, index: usize) -> Vec<IpNetwork> {
        self.ips
            .iter()
            .filter(|(_, i)| *i == Some(index))
            .map(|(a, _)| *a)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CniResult {
        CniResult::attached(
            "eth0.50",
            "net1",
            Some("02:42:c0:a8:32:0a"),
            Path::new("/run/netns/c1"),
            &[
                "192.168.50.10/24".parse().unwrap(),
                "fd00:50::a/64".parse().unwrap(),
            ],
            &[
                "192.168.50.1".parse().unwrap(),
                "fd00:50::1".parse().unwrap(),
            ],
        )
    }

    #[test]
    fn a_result_in_the_1_x_shape() {
        insta::assert_json_snapshot!(sample().to_json(Version::V1_1_0));
    }

    #[test]
    fn a_result_in_the_0_x_shape_says_each_address_version() {
        let json = sample().to_json(Version::V0_3_1);
        assert_eq!(json["cniVersion"], "0.3.1");
        assert_eq!(json["ips"][0]["version"], "4");
        assert_eq!(json["ips"][1]["version"], "6");
        assert!(
            sample().to_json(Version::V1_0_0)["ips"][0]
                .get("version")
                .is_none()
        );
    }

    #[test]
    fn a_result_read_back_as_prev_result_finds_the_container_link_and_its_addresses() {
        for version in [Version::V0_3_0, Version::V0_4_0, Version::V1_1_0] {
            let prev = PrevResult::parse(&sample().to_json(version)).unwrap();
            let (index, link) = prev.container_interface("net1").unwrap();
            assert_eq!(index, 1);
            assert_eq!(link.mac.as_deref(), Some("02:42:c0:a8:32:0a"));
            assert_eq!(prev.addresses_of(index).len(), 2);
            assert!(prev.container_interface("eth0.50").is_none());
        }
        let err = PrevResult::parse(&json!({"ips": [{"address": "nope"}]})).unwrap_err();
        assert_eq!(err.code(), crate::code::INVALID_CONFIG);
    }

    /// What CHECK expects of the container's link: the MAC, the addresses and the routes of
    /// ADD's result, read back in every shape; hostile routes and MACs are refused.
    #[test]
    fn a_prev_result_gives_what_check_expects() {
        for version in [Version::V0_4_0, Version::V1_1_0] {
            let prev = PrevResult::parse(&sample().to_json(version)).unwrap();
            let expected = prev.expected("net1").unwrap().unwrap();
            assert_eq!(expected.mac, Some("02:42:c0:a8:32:0a".parse().unwrap()));
            assert_eq!(expected.addresses.len(), 2);
            assert_eq!(
                expected.routes,
                [
                    (
                        "0.0.0.0/0".parse().unwrap(),
                        Some("192.168.50.1".parse().unwrap())
                    ),
                    ("::/0".parse().unwrap(), Some("fd00:50::1".parse().unwrap())),
                ]
            );
            assert_eq!(prev.expected("eth0.50").unwrap(), None);
        }
        for hostile in [
            json!({"routes": [{"dst": "x"}]}),
            json!({"routes": [{"dst": "0.0.0.0/0", "gw": "nope"}]}),
        ] {
            let err = PrevResult::parse(&hostile).unwrap_err();
            assert_eq!(err.code(), crate::code::INVALID_CONFIG, "{hostile}");
        }
        let bad_mac = json!({"interfaces": [{"name": "eth0", "mac": "zz", "sandbox": "/x"}]});
        let err = PrevResult::parse(&bad_mac)
            .unwrap()
            .expected("eth0")
            .unwrap_err();
        assert!(err.to_string().contains("not a MAC address"), "{err}");
    }
}
