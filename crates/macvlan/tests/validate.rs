//! `network create` validation: every rejected input and its exact message. Each driver's
//! definitions (ipvlan, static MACs, L3 routes, host access) are in `validate_drivers.rs`.

#![allow(clippy::unwrap_used)]

mod common;

use common::spec;
use oci_macvlan_macvlan::{
    ParentLink,
    driver::{self, macvlan::Mode},
};

#[test]
fn rejected_inputs() {
    let base = ["--subnet 192.168.50.0/24", "-o parent=eth0"];
    let cases: &[&[&str]] = &[
        &["--name ", "--subnet 10.0.0.0/24", "-o parent=eth0"],
        &["--name ../etc", "--subnet 10.0.0.0/24", "-o parent=eth0"],
        &["--name lan/50", "--subnet 10.0.0.0/24", "-o parent=eth0"],
        &["-d bridge", "--subnet 10.0.0.0/24", "-o parent=eth0"],
        &["-o parent=eth0"],
        &["--subnet 10.0.0.0", "-o parent=eth0"],
        &["--subnet 10.0.0.0/33", "-o parent=eth0"],
        &["--subnet banana/24", "-o parent=eth0"],
        &["--subnet 10.0.0.1/24", "-o parent=eth0"],
        &["--subnet 10.0.0.0/32", "-o parent=eth0"],
        &[
            "--subnet 10.0.0.0/24",
            "--subnet 10.0.0.128/25",
            "-o parent=eth0",
        ],
        &[
            "--subnet 10.0.0.0/24",
            "--gateway 10.1.0.1",
            "-o parent=eth0",
        ],
        &[
            "--subnet 10.0.0.0/24",
            "--gateway 10.0.0.1",
            "--gateway 10.0.0.2",
            "-o parent=eth0",
        ],
        &[
            "--subnet 10.0.0.0/24",
            "--subnet 10.1.0.0/24",
            "--gateway 10.2.0.1",
            "-o parent=eth0",
        ],
        &["--subnet 10.0.0.0/24", "--gateway nope", "-o parent=eth0"],
        &[
            "--subnet 10.0.0.0/24",
            "--ip-range 10.0.0.0/16",
            "-o parent=eth0",
        ],
        &[
            "--subnet 10.0.0.0/24",
            "--ip-range 10.1.0.0/25",
            "-o parent=eth0",
        ],
        &[
            "--subnet 10.0.0.0/24",
            "--aux-address router2",
            "-o parent=eth0",
        ],
        &[
            "--subnet 10.0.0.0/24",
            "--aux-address router2=10.9.0.2",
            "-o parent=eth0",
        ],
        &["--subnet 10.0.0.0/24", "-o parent=lo"],
        &["--subnet 10.0.0.0/24", "-o parent=eth0.4095"],
        &[
            "--subnet 10.0.0.0/24",
            "-o parent=eth0",
            "-o macvlan_mode=bridged",
        ],
        &[
            "--subnet 10.0.0.0/24",
            "-o parent=eth0",
            "-o macvlan_mode=source",
        ],
        &[
            "--subnet 10.0.0.0/24",
            "-o parent=eth0",
            "-o macvlan_mode=source",
            "-o source_macs=02:00:00:00:00:01,02:00:00:00:00",
        ],
        &[
            "--subnet 10.0.0.0/24",
            "-o parent=eth0",
            "-o macvlan_mode=source",
            "-o source_macs=00:00:00:00:00:00",
        ],
        &[
            "--subnet 10.0.0.0/24",
            "-o parent=eth0",
            "-o macvlan_mode=private",
            "-o source_macs=02:00:00:00:00:01",
        ],
        &["--subnet 10.0.0.0/24", "-o parent=eth0", "-o mtu=9"],
        &["--subnet 10.0.0.0/24", "-o parent=eth0", "-o mtu=big"],
        &["--subnet 10.0.0.0/24", "-o parent=eth0", "-o vlan=5"],
        &["--subnet 10.0.0.0/24", "-o parent"],
        // Blocks no LAN can use, and subnets that overlap one.
        &["--subnet ::ffff:10.1.0.0/120", "-o parent=eth0"],
        &["--subnet ::/0", "-o parent=eth0"],
        &["--subnet 0.0.0.0/0", "-o parent=eth0"],
        &["--subnet 127.0.0.0/8", "-o parent=eth0"],
        &["--subnet 224.0.0.0/24", "-o parent=eth0"],
        &["--subnet 240.0.0.0/24", "-o parent=eth0"],
        &["--subnet 0.0.0.0/24", "--gateway 0.0.0.1", "-o parent=eth0"],
        &["--subnet fe80::/64", "-o parent=eth0"],
        &["--subnet ff02::/64", "-o parent=eth0"],
        &["--subnet ::1/128", "-o parent=eth0"],
        &[
            "--subnet 10.0.0.0/24",
            "--subnet 127.0.0.0/24",
            "--gateway 127.0.0.1",
            "-o parent=eth0",
        ],
        // A key given twice is an error, never last-wins.
        &["--subnet 10.0.0.0/24", "-o parent=eth0", "-o parent=eth1"],
        &["--subnet 10.0.0.0/24", "-o parent=eth0", "-o parent=eth0"],
        &[
            "--subnet 10.0.0.0/24",
            "-o parent=eth0",
            "-o macvlan_mode=private",
            "-o macvlan_mode=bridge",
        ],
        &[
            "--subnet 10.0.0.0/24",
            "-o parent=eth0",
            "-o mtu=1400",
            "-o mtu=1500",
        ],
        &[
            "--subnet 10.0.0.0/24",
            "--aux-address router2=10.0.0.2",
            "--aux-address router2=10.0.0.3",
            "-o parent=eth0",
        ],
        &[
            "--subnet 10.0.0.0/24",
            "--subnet fd00::/64",
            "--aux-address router=10.0.0.2",
            "--aux-address router=fd00::2",
            "-o parent=eth0",
        ],
        &[
            "--subnet 10.0.0.0/24",
            "--aux-address router2=10.0.0.2",
            "--aux-address printer=10.0.0.2",
            "-o parent=eth0",
        ],
        // ipvlan: Docker's words for its modes and flags; the other driver's keys are unknown.
        &["-d ipvlan", "--subnet 10.0.0.0/24", "-o ipvlan_mode=l4"],
        &["-d ipvlan", "--subnet 10.0.0.0/24", "-o ipvlan_flag=open"],
        &["-d ipvlan", "--subnet 10.0.0.0/24", "-o ipvlan_mode=L2"],
        &[
            "-d ipvlan",
            "--subnet 10.0.0.0/24",
            "-o ipvlan_mode=l2",
            "-o ipvlan_mode=l3",
        ],
        &[
            "-d ipvlan",
            "--subnet 10.0.0.0/24",
            "-o macvlan_mode=bridge",
        ],
        &[
            "-d ipvlan",
            "--subnet 10.0.0.0/24",
            "-o source_macs=02:00:00:00:00:01",
        ],
        &[
            "--subnet 10.0.0.0/24",
            "-o parent=eth0",
            "-o ipvlan_mode=l2",
        ],
        &["-d ipvlan", "--subnet 10.0.0.0/24", "-o parent=lo"],
        &["-d ipvlan", "-o parent=eth0"],
    ];
    let mut report = Vec::new();
    for args in cases {
        let err = spec(args)
            .validate("id".into(), "now".into())
            .expect_err(&format!("{args:?} must be rejected"));
        report.push(format!(
            "{}\n  -> {}",
            args.join(" "),
            oci_macvlan_macvlan::one_line(&err)
        ));
    }
    insta::assert_snapshot!(report.join("\n"));
    assert!(spec(&base).validate("id".into(), "now".into()).is_ok());
}

#[test]
fn accepted_definition() {
    let network = spec(&[
        "--subnet 192.168.50.0/24",
        "--gateway 192.168.50.1",
        "--ip-range 192.168.50.128/25",
        "--aux-address router2=192.168.50.2",
        "--subnet 2001:db8:50::/64",
        "--gateway 2001:db8:50::1",
        "-o parent=eth0.50",
        "-o macvlan_mode=private",
        "-o mtu=1400",
    ])
    .validate("0123".into(), "2026-01-01T00:00:00Z".into())
    .unwrap();
    assert_eq!(
        network.driver,
        driver::Options::Macvlan(driver::macvlan::Options {
            mode: Mode::Private,
            source_macs: Vec::new(),
        })
    );
    assert!(network.ipv6, "an IPv6 subnet enables IPv6");
    insta::assert_json_snapshot!(network);
}

#[test]
fn gateways_match_subnets_by_containment_not_order() {
    let network = spec(&[
        "--subnet 10.0.0.0/24",
        "--subnet 10.1.0.0/24",
        "--gateway 10.1.0.1",
        "--gateway 10.0.0.1",
        "-o parent=eth0",
    ])
    .validate("id".into(), "now".into())
    .unwrap();
    assert_eq!(network.pools[0].gateway, Some("10.0.0.1".parse().unwrap()));
    assert_eq!(network.pools[1].gateway, Some("10.1.0.1".parse().unwrap()));
}

#[test]
fn source_macs_are_normalised_and_deduplicated() {
    let network = spec(&[
        "--subnet 10.0.0.0/24",
        "-o parent=eth0",
        "-o macvlan_mode=source",
        "-o source_macs=02:AA:bb:00:00:01, 02:aa:BB:00:00:01,02:00:00:00:00:02",
    ])
    .validate("id".into(), "now".into())
    .unwrap();
    let driver::Options::Macvlan(options) = &network.driver else {
        panic!("{:?}", network.driver);
    };
    assert_eq!(options.mode, Mode::Source);
    let macs: Vec<String> = options.source_macs.iter().map(|m| m.to_string()).collect();
    assert_eq!(macs, ["02:aa:bb:00:00:01", "02:00:00:00:00:02"]);
}

#[test]
fn a_network_without_parent_is_internal_on_its_own_dummy() {
    let network = spec(&["--subnet 10.0.0.0/24", "--gateway 10.0.0.1"])
        .validate("0123456789abcdef0123".into(), "now".into())
        .unwrap();
    assert_eq!(network.parent.as_str(), "dm-0123456789ab");
    assert_eq!(network.parent_link, ParentLink::Dummy);
    assert!(network.internal, "no parent means no way out: internal");
    assert_eq!(network.gateway_for("10.0.0.2".parse().unwrap()), None);
}

#[test]
fn distinct_aux_names_and_addresses_are_kept_all() {
    let network = spec(&[
        "--subnet 10.0.0.0/24",
        "--subnet fd00::/64",
        "--aux-address router2=10.0.0.2",
        "--aux-address printer=10.0.0.3",
        "--aux-address router6=fd00::2",
        "-o parent=eth0",
    ])
    .validate("id".into(), "now".into())
    .unwrap();
    let names: Vec<Vec<&str>> = network
        .pools
        .iter()
        .map(|p| p.aux_addresses.keys().map(String::as_str).collect())
        .collect();
    assert_eq!(names, [vec!["printer", "router2"], vec!["router6"]]);
}

#[test]
fn only_a_network_on_a_lan_keeps_the_first_host_of_a_subnet_without_gateway() {
    // (flags, subnets whose first host is kept)
    let cases: &[(&[&str], &[&str])] = &[
        (
            &[
                "--subnet 10.0.0.0/24",
                "--subnet fd00::/64",
                "-o parent=eth0",
            ],
            &["10.0.0.0/24", "fd00::/64"],
        ),
        (
            &[
                "--subnet 10.0.0.0/24",
                "--subnet fd00::/64",
                "--gateway fd00::1",
                "-o parent=eth0",
            ],
            &["10.0.0.0/24"],
        ),
        (
            &["--subnet 10.0.0.0/31", "-o parent=eth0"],
            &["10.0.0.0/31"],
        ),
        (
            &["--subnet 10.0.0.0/24", "-o parent=eth0", "--internal"],
            &[],
        ),
        // No parent: the network's own dummy, where no router can be.
        (&["--subnet 10.0.0.0/31"], &[]),
        (
            &[
                "--subnet 10.0.0.0/24",
                "--gateway 10.0.0.1",
                "-o parent=eth0",
            ],
            &[],
        ),
    ];
    for (args, kept) in cases {
        let network = spec(args).validate("id".into(), "now".into()).unwrap();
        let subnets: Vec<String> = network
            .pools_without_gateway()
            .map(|p| p.subnet.to_string())
            .collect();
        assert_eq!(&subnets, kept, "{args:?}");
        assert_eq!(
            network.undeclared_router(),
            args.contains(&"-o parent=eth0") && !network.internal
        );
    }
}

#[test]
fn a_definition_on_disk_with_a_subnet_no_lan_can_use_is_refused() {
    let json = serde_json::json!({
        "name": "lan", "id": "x", "created": "now", "driver": "macvlan",
        "parent": "eth0", "mode": "bridge",
        "pools": [
            {"subnet": "10.0.0.0/24", "gateway": "10.0.0.1"},
            {"subnet": "224.0.0.0/24"},
        ],
    });
    let err = serde_json::from_value::<oci_macvlan_macvlan::Network>(json).unwrap_err();
    insta::assert_snapshot!(err.to_string(), @"invalid subnet 224.0.0.0/24: it overlaps 224.0.0.0/4 (multicast), which no LAN can use");
}
