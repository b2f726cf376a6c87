//! The container's requests, read from its annotations:
//! `oci-macvlan.networks`, `oci-macvlan.<network>.{ip,ip6,mac,ifname}` and the shorthands
//! `oci-macvlan.{ip,ip6,mac}` for the first network.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use oci_macvlan_macvlan::MacAddr;

use crate::error::{Error, Result};

pub const PREFIX: &str = "oci-macvlan.";
pub const NETWORKS: &str = "oci-macvlan.networks";

/// What a container asks of one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRequest {
    pub network: String,
    pub ifname: String,
    pub static_ips: Vec<IpAddr>,
    pub mac: Option<MacAddr>,
}

/// The container's requests, or `None` when it did not opt in (no `oci-macvlan.networks`).
pub fn parse(annotations: &HashMap<String, String>) -> Result<Option<Vec<NetworkRequest>>> {
    let Some(list) = annotations.get(NETWORKS) else {
        return Ok(None);
    };
    let mut requests: Vec<NetworkRequest> = Vec::new();
    for (n, name) in list.split(',').map(str::trim).enumerate() {
        let bad = |reason: &str| bad(NETWORKS, list, reason);
        if name.is_empty() {
            return Err(bad("a network name is empty"));
        }
        if requests.iter().any(|r| r.network == name) {
            return Err(bad(&format!("network {name} is listed twice")));
        }
        requests.push(NetworkRequest {
            network: name.to_owned(),
            ifname: format!("eth{n}"),
            static_ips: Vec::new(),
            mac: None,
        });
    }

    let mut keys: Vec<(&String, &String)> = annotations
        .iter()
        .filter(|(k, _)| k.starts_with(PREFIX) && k.as_str() != NETWORKS)
        .collect();
    keys.sort();
    let mut seen: Vec<(usize, &str)> = Vec::new();
    for (key, value) in keys {
        let rest = &key[PREFIX.len()..];
        let (index, field) = match rest {
            "ip" | "ip6" | "mac" => (0, rest),
            _ => {
                let Some((network, field)) = rest.rsplit_once('.') else {
                    return Err(bad(key, value, "unknown oci-macvlan annotation"));
                };
                if !matches!(field, "ip" | "ip6" | "mac" | "ifname") {
                    return Err(bad(
                        key,
                        value,
                        "unknown oci-macvlan annotation (known fields: ip, ip6, mac, ifname)",
                    ));
                }
                let Some(index) = requests.iter().position(|r| r.network == network) else {
                    return Err(bad(
                        key,
                        value,
                        &format!("network {network} is not in {NETWORKS}"),
                    ));
                };
                (index, field)
            }
        };
        if seen.contains(&(index, field)) {
            let network = &requests[index].network;
            return Err(bad(
                key,
                value,
                &format!(
                    "{PREFIX}{field} and {PREFIX}{network}.{field} both set it for network {network}"
                ),
            ));
        }
        seen.push((index, field));
        let request = &mut requests[index];
        match field {
            "ip" => {
                let ip: Ipv4Addr = value
                    .parse()
                    .map_err(|_| bad(key, value, "not an IPv4 address"))?;
                request.static_ips.push(IpAddr::V4(ip));
            }
            "ip6" => {
                let ip: Ipv6Addr = value
                    .parse()
                    .map_err(|_| bad(key, value, "not an IPv6 address"))?;
                request.static_ips.push(IpAddr::V6(ip));
            }
            "mac" => {
                let mac: MacAddr = value.parse().map_err(|_| {
                    bad(
                        key,
                        value,
                        "not a MAC address (expected six hex octets separated by ':')",
                    )
                })?;
                request.mac = Some(mac);
            }
            _ => request.ifname = value.clone(),
        }
    }
    Ok(Some(requests))
}

fn bad(key: &str, value: &str, reason: &str) -> Error {
    Error::Annotation {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn without_networks_the_container_is_not_ours() {
        assert_eq!(
            parse(&ann(&[("other", "x"), ("oci-macvlan.ip", "10.0.0.5")])).unwrap(),
            None
        );
    }

    #[test]
    fn networks_get_eth_n_and_their_requests() {
        let requests = parse(&ann(&[
            ("oci-macvlan.networks", "lan50, lan.60"),
            ("oci-macvlan.ip", "192.168.50.10"),
            ("oci-macvlan.mac", "02:00:00:00:00:10"),
            ("oci-macvlan.lan.60.ip6", "2001:db8::60"),
            ("oci-macvlan.lan.60.ifname", "uplink"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            requests,
            vec![
                NetworkRequest {
                    network: "lan50".into(),
                    ifname: "eth0".into(),
                    static_ips: vec!["192.168.50.10".parse().unwrap()],
                    mac: Some("02:00:00:00:00:10".parse().unwrap()),
                },
                NetworkRequest {
                    network: "lan.60".into(),
                    ifname: "uplink".into(),
                    static_ips: vec!["2001:db8::60".parse().unwrap()],
                    mac: None,
                },
            ]
        );
    }

    #[test]
    fn bad_annotations_name_key_and_value() {
        let cases: &[&[(&str, &str)]] = &[
            &[("oci-macvlan.networks", "")],
            &[("oci-macvlan.networks", "a,,b")],
            &[("oci-macvlan.networks", "a,a")],
            &[
                ("oci-macvlan.networks", "a"),
                ("oci-macvlan.ip", "10.0.0.300"),
            ],
            &[
                ("oci-macvlan.networks", "a"),
                ("oci-macvlan.ip", "2001:db8::1"),
            ],
            &[
                ("oci-macvlan.networks", "a"),
                ("oci-macvlan.ip6", "10.0.0.1"),
            ],
            &[
                ("oci-macvlan.networks", "a"),
                ("oci-macvlan.mac", "02:00:00:00:00"),
            ],
            &[
                ("oci-macvlan.networks", "a"),
                ("oci-macvlan.b.ip", "10.0.0.1"),
            ],
            &[
                ("oci-macvlan.networks", "a"),
                ("oci-macvlan.a.gateway", "10.0.0.1"),
            ],
            &[
                ("oci-macvlan.networks", "a"),
                ("oci-macvlan.ipaddr", "10.0.0.1"),
            ],
            &[
                ("oci-macvlan.networks", "a"),
                ("oci-macvlan.ip", "10.0.0.1"),
                ("oci-macvlan.a.ip", "10.0.0.2"),
            ],
        ];
        let report: Vec<String> = cases
            .iter()
            .map(|pairs| format!("{pairs:?}\n  -> {}", parse(&ann(pairs)).unwrap_err()))
            .collect();
        insta::assert_snapshot!(report.join("\n"));
    }
}
