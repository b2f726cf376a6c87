//! `network create` validation: every rejected input and its exact message.

#![allow(clippy::unwrap_used)]

use oci_macvlan_macvlan::{
    NetworkSpec, ParentLink,
    driver::{self, DefaultRoute, ipvlan, macvlan::Mode},
};

fn spec(args: &[&str]) -> NetworkSpec {
    let mut spec = NetworkSpec {
        name: "lan50".into(),
        driver: "macvlan".into(),
        ..Default::default()
    };
    for arg in args {
        let (flag, value) = arg.split_once(' ').unwrap_or((arg, ""));
        let value = value.to_owned();
        match flag {
            "--name" => spec.name = value,
            "-d" => spec.driver = value,
            "--subnet" => spec.subnets.push(value),
            "--gateway" => spec.gateways.push(value),
            "--ip-range" => spec.ip_ranges.push(value),
            "--aux-address" => spec.aux_addresses.push(value),
            "-o" => spec.options.push(value),
            "--ipv6" => spec.ipv6 = true,
            "--internal" => spec.internal = true,
            other => panic!("unknown flag {other}"),
        }
    }
    spec
}

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

/// The guide's ipvlan example (two subnets, each with its gateway), and each mode and flag: the
/// definition as stored, and what the driver makes of it.
#[test]
fn accepted_ipvlan_definitions() {
    let guide = spec(&[
        "-d ipvlan",
        "--subnet 192.168.210.0/24",
        "--subnet 192.168.212.0/24",
        "--gateway 192.168.210.254",
        "--gateway 192.168.212.254",
        "-o ipvlan_mode=l2",
        "-o parent=eth0",
    ])
    .validate("0123".into(), "2026-01-01T00:00:00Z".into())
    .unwrap();
    insta::assert_json_snapshot!(guide);
    assert_eq!(
        guide.gateway_for("192.168.212.9".parse().unwrap()),
        Some("192.168.212.254".parse().unwrap())
    );

    let mut table = Vec::new();
    for opts in [
        &[][..],
        &["-o ipvlan_mode=l3"],
        &["-o ipvlan_mode=l3s", "-o ipvlan_flag=private"],
        &["-o ipvlan_flag=vepa"],
        &["-o ipvlan_mode=l2", "-o ipvlan_flag=bridge"],
    ] {
        let mut args = vec!["-d ipvlan", "--subnet 10.0.0.0/24", "--gateway 10.0.0.1"];
        args.push("-o parent=eth0");
        args.extend_from_slice(opts);
        let network = spec(&args).validate("id".into(), "now".into()).unwrap();
        let driver = network.driver();
        table.push(format!(
            "{:<45} -> {} {:?} mode {} route {:?} gateway {:?} mac {:?}",
            opts.join(" "),
            driver.name(),
            driver.child(),
            driver.mode(),
            driver.default_route(),
            network.gateway_for("10.0.0.5".parse().unwrap()),
            driver.mac("n", "c1", None).unwrap(),
        ));
    }
    insta::assert_snapshot!(table.join("\n"));
}

/// Each driver's answer to a container's static MAC: macvlan takes a station address, passthru
/// and ipvlan (whose links have their parent's MAC) refuse any.
#[test]
fn a_static_mac_per_driver() {
    let mac = "02:00:00:00:00:10".parse().unwrap();
    let multicast = "01:00:5e:00:00:10".parse().unwrap();
    let mut table = Vec::new();
    for opts in [
        &["-o macvlan_mode=bridge"][..],
        &["-o macvlan_mode=passthru"],
        &["-d ipvlan"],
        &["-d ipvlan", "-o ipvlan_mode=l3"],
    ] {
        let mut args = vec!["--subnet 10.0.0.0/24", "-o parent=eth0"];
        args.extend_from_slice(opts);
        let network = spec(&args).validate("id".into(), "now".into()).unwrap();
        for requested in [None, Some(mac), Some(multicast)] {
            let answer = match network.driver().mac("lan50", "c1", requested) {
                Ok(mac) => format!("{mac:?}"),
                Err(err) => format!("{:?}: {}", err.kind(), oci_macvlan_macvlan::one_line(&err)),
            };
            table.push(format!("{:<40} {requested:?} -> {answer}", opts.join(" ")));
        }
    }
    insta::assert_snapshot!(table.join("\n"));
}

#[test]
fn an_l3_network_routes_on_the_link_whatever_gateway_was_given() {
    let network = spec(&[
        "-d ipvlan",
        "--subnet 10.0.0.0/24",
        "--gateway 10.0.0.1",
        "--subnet fd00::/64",
        "--gateway fd00::1",
        "-o parent=eth0",
        "-o ipvlan_mode=l3",
    ])
    .validate("id".into(), "now".into())
    .unwrap();
    assert_eq!(network.driver().default_route(), DefaultRoute::OnLink);
    assert_eq!(network.gateway_for("10.0.0.5".parse().unwrap()), None);
    assert_eq!(network.gateway_for("fd00::5".parse().unwrap()), None);
    assert_eq!(
        network.driver,
        driver::Options::Ipvlan(ipvlan::Options {
            ipvlan_mode: ipvlan::Mode::L3,
            ipvlan_flag: ipvlan::Flag::Bridge,
        })
    );
}

/// `-o host_access`: refused where the kernel cannot pass frames between the host's link and
/// the containers' (macvlan modes but bridge, ipvlan's private flag) and for addresses the host
/// cannot take (outside the subnets, reserved, two of a family); accepted, the addresses are
/// reserved in their pools (never leased) and the link is named after the network id.
#[test]
fn host_access_is_refused_where_it_cannot_work() {
    let base = [
        "--subnet 192.168.50.0/24",
        "--gateway 192.168.50.1",
        "--aux-address router2=192.168.50.2",
        "--subnet fd00:50::/64",
        "-o parent=eth0",
    ];
    let cases: &[&[&str]] = &[
        &["-o host_access=192.168.50.3", "-o macvlan_mode=private"],
        &["-o host_access=192.168.50.3", "-o macvlan_mode=vepa"],
        &["-o host_access=192.168.50.3", "-o macvlan_mode=passthru"],
        &[
            "-o host_access=192.168.50.3",
            "-o macvlan_mode=source",
            "-o source_macs=02:00:00:00:00:01",
        ],
        &[
            "-d ipvlan",
            "-o host_access=192.168.50.3",
            "-o ipvlan_flag=private",
        ],
        &["-o host_access=10.0.0.3"],
        &["-o host_access=192.168.50.1"],
        &["-o host_access=192.168.50.2"],
        &["-o host_access=192.168.50.0"],
        &["-o host_access=192.168.50.255"],
        &["-o host_access=fd00:50::"],
        &["-o host_access=192.168.50.3,192.168.50.4"],
        &["-o host_access=banana"],
        &["-o host_access="],
        &[
            "-o host_access=192.168.50.3",
            "--aux-address host_access=192.168.50.9",
        ],
    ];
    let mut report = Vec::new();
    for extra in cases {
        let mut args: Vec<&str> = base.to_vec();
        args.extend_from_slice(extra);
        let err = spec(&args)
            .validate("id".into(), "now".into())
            .expect_err(&format!("{extra:?} must be rejected"));
        report.push(format!(
            "{}\n  -> {:?}: {}",
            extra.join(" "),
            err.kind(),
            oci_macvlan_macvlan::one_line(&err)
        ));
    }
    insta::assert_snapshot!(report.join("\n"));

    let mut args: Vec<&str> = base.to_vec();
    args.push("-o host_access=192.168.50.3,fd00:50::3");
    let network = spec(&args)
        .validate("0123456789abcdef".into(), "now".into())
        .unwrap();
    assert_eq!(
        network.host_access,
        [
            "192.168.50.3".parse::<std::net::IpAddr>().unwrap(),
            "fd00:50::3".parse().unwrap()
        ]
    );
    assert_eq!(network.host_link().as_deref(), Some("ha-0123456789ab"));
    for (pool, ip) in network.pools.iter().zip(&network.host_access) {
        assert_eq!(
            pool.reservation(*ip).map(|r| r.to_string()).as_deref(),
            Some("auxiliary address host_access")
        );
    }
    let mut ipvlan: Vec<&str> = base.to_vec();
    ipvlan.extend([
        "-d ipvlan",
        "-o ipvlan_mode=l3",
        "-o host_access=192.168.50.3",
    ]);
    assert!(spec(&ipvlan).validate("id".into(), "now".into()).is_ok());
    assert_eq!(
        spec(&base)
            .validate("id".into(), "now".into())
            .unwrap()
            .host_link(),
        None
    );
}
