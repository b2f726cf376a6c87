//! Property tests: every parser of user input below the binary — network create's flags and
//! options, the network definition JSON, container ids, interface and parent names, MACs — takes
//! any input without a panic, and what it accepts holds its promises.

#![allow(clippy::unwrap_used)]

use oci_macvlan_macvlan::{
    MacAddr, Network, NetworkSpec, check_container_id, default_mac, ifname_problem,
};
use oci_macvlan_vlan::Parent;
use proptest::prelude::*;

/// Strings that look like what users type: addresses, CIDRs, names, `KEY=VALUE`, and junk.
fn wordish() -> impl Strategy<Value = String> {
    prop_oneof![
        "10\\.[0-9]{1,2}\\.0\\.0/(16|2[0-9]|3[0-2])",
        "10\\.[0-9]{1,2}\\.0\\.[0-9]{1,3}",
        "fd[0-9]{2}::(/6[0-9]|/12[0-8]|[0-9a-f]{1,4})",
        "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}(/[0-9]{1,3})?",
        "[0-9a-f]{0,4}(:[0-9a-f]{0,4}){1,8}(/[0-9]{1,3})?",
        "(parent|macvlan_mode|mtu|source_macs|ipvlan_mode|ipvlan_flag|x)=[a-z0-9.:,/-]{0,20}",
        "[a-z]{1,4}=[0-9.:]{0,16}",
        ".{0,24}",
    ]
}

/// Mostly plausible, sometimes anything: so that many specs pass and the rest probe the errors.
fn plausible(valid: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(valid).prop_map(str::to_owned),
        1 => wordish(),
    ]
}

const SUBNETS: &[&str] = &[
    "10.1.0.0/16",
    "10.1.2.0/24",
    "10.1.2.0/31",
    "fd00::/64",
    "fd00:1::/120",
];
const ADDRESSES: &[&str] = &[
    "10.1.2.1",
    "10.1.2.255",
    "10.1.0.0",
    "fd00::1",
    "fd00:1::ff",
    "10.9.9.9",
];
const RANGES: &[&str] = &["10.1.2.128/25", "10.1.0.0/17", "fd00::/80", "10.2.0.0/24"];
const AUX: &[&str] = &["r=10.1.2.2", "r=fd00::2", "r=10.1.2.1", "bad", "s=10.1.2.3"];
const OPTIONS: &[&str] = &[
    "parent=eth0",
    "parent=eth0.50",
    "parent=lo",
    "macvlan_mode=private",
    "macvlan_mode=passthru",
    "macvlan_mode=source",
    "source_macs=02:00:00:00:00:01",
    "ipvlan_mode=l3",
    "ipvlan_mode=l3s",
    "ipvlan_flag=private",
    "mtu=1400",
    "mtu=70000",
];

fn spec() -> impl Strategy<Value = NetworkSpec> {
    (
        prop_oneof!["[a-z][a-z0-9_.-]{0,12}", ".{0,16}"],
        prop_oneof![
            3 => Just("macvlan".to_owned()),
            2 => Just("ipvlan".to_owned()),
            1 => ".{0,8}",
        ],
        prop::collection::vec(plausible(SUBNETS), 1..3),
        prop::collection::vec(plausible(ADDRESSES), 0..2),
        prop::collection::vec(plausible(RANGES), 0..2),
        prop::collection::vec(plausible(AUX), 0..2),
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(plausible(OPTIONS), 0..3),
    )
        .prop_map(
            |(
                name,
                driver,
                subnets,
                gateways,
                ip_ranges,
                aux_addresses,
                ipv6,
                internal,
                options,
            )| {
                NetworkSpec {
                    name,
                    driver,
                    subnets,
                    gateways,
                    ip_ranges,
                    aux_addresses,
                    ipv6,
                    internal,
                    options,
                    ipam_options: Vec::new(),
                    backends: oci_macvlan_ipam::Backends::default(),
                    labels: Vec::new(),
                    ipam_driver: String::new(),
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn network_create_input_never_panics_and_what_passes_round_trips(spec in spec()) {
        if let Ok(network) = spec.validate("id".into(), "now".into()) {
            prop_assert!(!network.pools.is_empty());
            for pool in &network.pools {
                if let Some(gateway) = pool.gateway {
                    prop_assert!(pool.contains(gateway));
                }
            }
            let json = serde_json::to_vec(&network).unwrap();
            prop_assert_eq!(serde_json::from_slice::<Network>(&json).unwrap(), network);
        }
    }

    #[test]
    fn network_json_of_any_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = serde_json::from_slice::<Network>(&bytes);
    }

    #[test]
    fn a_mutated_definition_is_parsed_or_refused_never_panics(
        field in prop::sample::select(vec![
            "name", "parent", "parent_link", "mode", "mtu", "pools", "subnet", "gateway",
            "ip_range", "aux_addresses", "source_macs", "ipv6", "driver", "ipvlan_mode",
            "ipvlan_flag",
        ]),
        value in prop_oneof![
            Just(serde_json::Value::Null),
            any::<i64>().prop_map(serde_json::Value::from),
            wordish().prop_map(serde_json::Value::from),
            Just(serde_json::json!([])),
            Just(serde_json::json!({})),
        ],
    ) {
        let mut json = serde_json::json!({
            "name": "lan", "id": "x", "created": "now", "driver": "macvlan",
            "parent": "eth0", "mode": "bridge",
            "pools": [{"subnet": "10.0.0.0/24", "gateway": "10.0.0.1"}],
        });
        if json.get(field).is_some()
            || ["parent_link", "mtu", "source_macs", "ipv6", "ipvlan_mode", "ipvlan_flag"]
                .contains(&field)
        {
            json[field] = value;
        } else {
            json["pools"][0][field] = value;
        }
        if let Ok(network) = serde_json::from_value::<Network>(json) {
            let _ = network.parent();
            let driver = network.driver();
            let _ = (driver.child(), driver.mode(), driver.mac("lan", "c", None));
        }
    }

    #[test]
    fn ids_and_names_never_panic(s in ".{0,40}") {
        let id_ok = check_container_id(&s).is_ok();
        if id_ok {
            prop_assert!(!s.contains('/') && s != "." && s != "..");
            let mac = default_mac(&s, "net");
            prop_assert!(mac.is_station());
        }
        if ifname_problem(&s).is_none() {
            prop_assert!(!s.is_empty() && s.len() <= 15 && !s.contains(['/', ':', '%']));
            prop_assert!(s.bytes().all(|b| b.is_ascii_graphic()), "{s:?}");
            prop_assert!(!["all", "default", ".", ".."].contains(&s.as_str()), "{s:?}");
        }
        if let Ok(parent) = Parent::parse(&s) {
            prop_assert!(ifname_problem(&s).is_none(), "{parent:?}");
        }
    }

    #[test]
    fn mac_parsing_never_panics_and_round_trips(s in "([0-9a-fA-F]{1,3}[:-]?){0,7}|.{0,20}") {
        if let Ok(mac) = s.parse::<MacAddr>() {
            prop_assert_eq!(mac.to_string().parse::<MacAddr>().unwrap(), mac);
            prop_assert_eq!(mac.to_string(), s.to_ascii_lowercase());
        }
    }
}
