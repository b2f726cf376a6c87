//! The container's requests, read from its annotations:
//! `oci-macvlan.networks`, `oci-macvlan.<network>.{ip,ip6,mac,ifname}` and the shorthands
//! `oci-macvlan.{ip,ip6,mac}` for the first network.

use std::{
    collections::{HashMap, HashSet},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use oci_macvlan_macvlan::MacAddr;

use crate::error::{Error, Result, echo};

pub const PREFIX: &str = "oci-macvlan.";
pub const NETWORKS: &str = "oci-macvlan.networks";
/// Longest value of any `oci-macvlan.*` annotation: the longest meaningful one is a list of
/// [`MAX_NETWORKS`] names; anything near a page is a mistake or an attack, refused before use.
pub const MAX_VALUE: usize = 4096;
/// Most networks one container may join: each becomes an interface in its namespace.
pub const MAX_NETWORKS: usize = 32;

/// What a container asks of one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRequest {
    pub network: String,
    pub ifname: String,
    pub static_ips: Vec<IpAddr>,
    pub mac: Option<MacAddr>,
}

/// The container's requests, or `None` when it did not opt in (no `oci-macvlan.networks`).
///
/// Annotations come from a less-trusted party, so every bound is checked before the work it
/// bounds: each value's length before any value is read, the number of networks before any name
/// is; and the work is linear in the number of names and keys (hash lookups).
pub fn parse(annotations: &HashMap<String, String>) -> Result<Option<Vec<NetworkRequest>>> {
    let Some(list) = annotations.get(NETWORKS) else {
        return Ok(None);
    };
    let mut keys: Vec<(&str, &str)> = annotations
        .iter()
        .filter(|(k, _)| k.starts_with(PREFIX))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    // The order of the report, whatever the map's order: the first bad key by name.
    keys.sort_unstable();
    if let Some((key, value)) = keys.iter().find(|(_, value)| value.len() > MAX_VALUE) {
        return Err(bad(key, value, &format!("longer than {MAX_VALUE} bytes")));
    }
    if list.split(',').nth(MAX_NETWORKS).is_some() {
        return Err(bad(
            NETWORKS,
            list,
            &format!(
                "more than {MAX_NETWORKS} networks (each one is an interface of the container)"
            ),
        ));
    }

    let mut requests: Vec<NetworkRequest> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (n, name) in list.split(',').map(str::trim).enumerate() {
        if name.is_empty() {
            return Err(bad(NETWORKS, list, "a network name is empty"));
        }
        if index.insert(name, n).is_some() {
            return Err(bad(
                NETWORKS,
                list,
                &format!("network {} is listed twice", echo(name)),
            ));
        }
        requests.push(NetworkRequest {
            network: name.to_owned(),
            ifname: format!("eth{n}"),
            static_ips: Vec::new(),
            mac: None,
        });
    }

    let mut seen: HashSet<(usize, &str)> = HashSet::new();
    for (key, value) in keys {
        if key == NETWORKS {
            continue;
        }
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
                let Some(&index) = index.get(network) else {
                    return Err(bad(
                        key,
                        value,
                        &format!("network {} is not in {NETWORKS}", echo(network)),
                    ));
                };
                (index, field)
            }
        };
        if !seen.insert((index, field)) {
            let network = echo(&requests[index].network);
            return Err(bad(
                key,
                value,
                &format!(
                    "{PREFIX}{field} and {PREFIX}{network}.{field} both set it for network {network}"
                ),
            ));
        }
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
            _ => request.ifname = value.to_owned(),
        }
    }
    Ok(Some(requests))
}

/// The error for annotation `key`: both it and its value are cut to what a person can read.
fn bad(key: &str, value: &str, reason: &str) -> Error {
    Error::Annotation {
        key: echo(key).into_owned(),
        value: echo(value).into_owned(),
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

    /// A value past the cap is refused before it is read, and errors repeat only the start of
    /// a key or value: a 20 MiB annotation makes a short line.
    #[test]
    fn long_values_are_refused_and_errors_repeat_only_their_start() {
        let huge = "9".repeat(20 << 20);
        let err = parse(&ann(&[
            ("oci-macvlan.networks", "a"),
            ("oci-macvlan.ip", &huge),
        ]))
        .unwrap_err();
        let text = err.to_string();
        assert!(text.len() < 200, "{}", text.len());
        assert!(
            text.ends_with(&format!("…\": longer than {MAX_VALUE} bytes")),
            "{text}"
        );

        // At the cap, the value is read (and is not an address); the error repeats its start.
        let at_cap = "9".repeat(MAX_VALUE);
        let err = parse(&ann(&[
            ("oci-macvlan.networks", "a"),
            ("oci-macvlan.ip", &at_cap),
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.ends_with("…\": not an IPv4 address"), "{err}");
        assert!(err.len() < 200, "{err}");

        // A long key or network name is cut too.
        let long_name = "n".repeat(1000);
        let key = format!("oci-macvlan.{long_name}.ip");
        let err = parse(&ann(&[("oci-macvlan.networks", "a"), (&key, "10.0.0.1")]))
            .unwrap_err()
            .to_string();
        assert!(err.len() < 300, "{err}");
        assert!(err.contains("n… is not in oci-macvlan.networks"), "{err}");
        let twice = format!("{long_name},{long_name}");
        let err = parse(&ann(&[("oci-macvlan.networks", &twice)]))
            .unwrap_err()
            .to_string();
        assert!(err.len() < 300, "{err}");
    }

    /// The number of networks is checked before any name is: 33 names of which the first two
    /// are the same (and one is empty) are refused by the cap, not by a per-name check.
    #[test]
    fn the_number_of_networks_is_capped_before_any_name_is_read() {
        let names: Vec<String> = (0..MAX_NETWORKS).map(|n| format!("net{n}")).collect();
        let requests = parse(&ann(&[("oci-macvlan.networks", &names.join(","))]))
            .unwrap()
            .unwrap();
        assert_eq!(requests.len(), MAX_NETWORKS);
        assert_eq!(requests[MAX_NETWORKS - 1].ifname, "eth31");

        let mut over = vec!["a".to_owned(), "a".to_owned(), String::new()];
        over.extend((3..=MAX_NETWORKS).map(|n| format!("net{n}")));
        assert_eq!(over.len(), MAX_NETWORKS + 1);
        let err = parse(&ann(&[("oci-macvlan.networks", &over.join(","))])).unwrap_err();
        assert!(
            err.to_string()
                .ends_with(": more than 32 networks (each one is an interface of the container)"),
            "{err}"
        );
        assert_eq!(err.exit_code(), crate::error::exit::INVALID);

        // 40,000 names are over the value cap already.
        let many: Vec<String> = (0..40_000).map(|n| format!("n{n}")).collect();
        let err = parse(&ann(&[("oci-macvlan.networks", &many.join(","))])).unwrap_err();
        assert!(
            err.to_string().ends_with(": longer than 4096 bytes"),
            "{err}"
        );
    }

    /// Per-network requests are found by name among many networks, and a field set twice (by
    /// the shorthand and by the network's own key) is still caught.
    #[test]
    fn per_network_fields_find_their_network_among_many() {
        let names: Vec<String> = (0..MAX_NETWORKS).map(|n| format!("net{n}")).collect();
        let mut pairs: Vec<(String, String)> =
            vec![("oci-macvlan.networks".into(), names.join(","))];
        for (n, name) in names.iter().enumerate() {
            pairs.push((format!("oci-macvlan.{name}.ip"), format!("10.0.{n}.1")));
            pairs.push((format!("oci-macvlan.{name}.ifname"), format!("if{n}")));
        }
        let annotations: HashMap<String, String> = pairs.iter().cloned().collect();
        let requests = parse(&annotations).unwrap().unwrap();
        for (n, request) in requests.iter().enumerate() {
            assert_eq!(request.network, format!("net{n}"));
            assert_eq!(request.ifname, format!("if{n}"));
            assert_eq!(
                request.static_ips,
                [format!("10.0.{n}.1").parse::<IpAddr>().unwrap()]
            );
        }
        let mut twice = annotations.clone();
        twice.insert("oci-macvlan.ip".into(), "10.0.0.2".into());
        let err = parse(&twice).unwrap_err().to_string();
        assert!(err.ends_with("both set it for network net0"), "{err}");
    }
}
