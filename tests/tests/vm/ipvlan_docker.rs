//! Docker's own ipvlan integration cases (moby's `integration/network/ipvlan`) in the VM tier,
//! expressed with our CLI and hook: the routes the LAN's router needs for L3, multi-subnet dual
//! stack with and without a parent, internal modes, and overlapping subnets.

use oci_macvlan_tests::{Lan, TestNetns};
use serde_json::Value;

use super::ipvlan::{ipvlan, ipvlan_info};
use super::{ANN, OWNER_ALIAS, attach, details, host_link};

/// The default route of a container's table of one family, if any.
fn default_of(ns: &TestNetns, v6: bool) -> Option<Value> {
    ns.routes(v6).into_iter().find(|r| r["dst"] == "default")
}

/// `DynamicAvailable` of each subnet of a network, as `inspect`'s `Usage` has it.
fn available(lan: &Lan, network: &str) -> Vec<u64> {
    lan.inspect(network)[0]["Usage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["DynamicAvailable"].as_u64().unwrap())
        .collect()
}

/// L3: the LAN's router adds exactly the routes `inspect` prints (via the host's address on the
/// parent, one per subnet, IPv4 and IPv6) and then reaches a container on each family; before,
/// it has no way there.
#[test]
fn ipvlan_l3_the_lan_router_reaches_a_container_through_the_routes_inspect_prints() {
    let lan = Lan::new();
    lan.host
        .ip(&["addr", "add", "192.168.77.2/24", "dev", "lan0"]);
    lan.host
        .ip(&["addr", "add", "fd77::2/64", "dev", "lan0", "nodad"]);
    lan.router
        .ip(&["addr", "add", "fd77::1/64", "dev", "rtr", "nodad"]);
    ipvlan(
        &lan,
        "routed",
        "l3",
        Some("lan0"),
        &[
            "--subnet",
            "10.30.0.0/24",
            "--subnet",
            "fd30::/64",
            "--ipv6",
        ],
    );
    let (c, _) = attach(
        &lan,
        "c",
        &[
            (ANN, "routed"),
            ("oci-macvlan.ip", "10.30.0.10"),
            ("oci-macvlan.ip6", "fd30::10"),
        ],
    );
    assert!(!lan.router.ping("10.30.0.10"), "reached before any route");
    let routes = lan.inspect("routed")[0]["LanRouterRoutes"].clone();
    assert_eq!(
        routes,
        serde_json::json!([
            {"Subnet": "10.30.0.0/24", "Via": "192.168.77.2"},
            {"Subnet": "fd30::/64", "Via": "fd77::2"},
        ])
    );
    for route in routes.as_array().unwrap() {
        let (subnet, via) = (route["Subnet"].as_str(), route["Via"].as_str());
        lan.router
            .ip(&["route", "add", subnet.unwrap(), "via", via.unwrap()]);
    }
    assert!(
        lan.router.ping("10.30.0.10"),
        "the router cannot reach 10.30.0.10"
    );
    assert!(
        lan.router.ping("fd30::10"),
        "the router cannot reach fd30::10"
    );
    assert!(
        c.ping("192.168.77.1"),
        "the container cannot reach the router"
    );
}

/// Docker's L2 and L3 multi-subnet dual-stack cases, with and without a parent, and its L2/L3
/// addressing cases: two IPv4 and two IPv6 subnets, gateways for both IPv4 subnets and for one
/// IPv6 subnet; a pair of containers on each subnet pair pings each other over IPv4 and IPv6.
/// L2: each container's default route goes via its subnet's gateway, for each family that has
/// one and only for it. L3: `default dev eth0` for IPv4 and IPv6 whatever gateway was given,
/// and containers on different subnets of the parent reach each other. Without a parent the
/// network is internal (its own dummy, no default route), and `network rm` deletes the dummy.
#[test]
fn ipvlan_l2_and_l3_multi_subnet_dual_stack_with_and_without_a_parent() {
    for mode in ["l2", "l3"] {
        for parent in [Some("lan0"), None] {
            let case = format!("{mode}, parent {parent:?}");
            let lan = Lan::new();
            let id = ipvlan(
                &lan,
                "ms",
                mode,
                parent,
                &[
                    "--subnet",
                    "172.28.200.0/24",
                    "--subnet",
                    "172.28.202.0/24",
                    "--gateway",
                    "172.28.200.254",
                    "--gateway",
                    "172.28.202.254",
                    "--ipv6",
                    "--subnet",
                    "2001:db8:abc8::/64",
                    "--subnet",
                    "2001:db8:abc6::/64",
                    "--gateway",
                    "2001:db8:abc6::254",
                ],
            );
            let inspect = &lan.inspect("ms")[0];
            assert_eq!(inspect["Internal"], parent.is_none(), "{case}: {inspect}");
            let dummy = format!("dm-{}", &id[..12]);
            if parent.is_none() {
                assert_eq!(details(&lan, &dummy)["ifalias"], OWNER_ALIAS, "{case}");
            }
            // (container, IPv4, IPv6, its IPv4 gateway, its IPv6 gateway)
            let plan = [
                (
                    "a1",
                    "172.28.200.20",
                    "2001:db8:abc8::20",
                    "172.28.200.254",
                    None,
                ),
                (
                    "a2",
                    "172.28.200.21",
                    "2001:db8:abc8::21",
                    "172.28.200.254",
                    None,
                ),
                (
                    "b1",
                    "172.28.202.20",
                    "2001:db8:abc6::20",
                    "172.28.202.254",
                    Some("2001:db8:abc6::254"),
                ),
                (
                    "b2",
                    "172.28.202.21",
                    "2001:db8:abc6::21",
                    "172.28.202.254",
                    Some("2001:db8:abc6::254"),
                ),
            ];
            let mut containers = Vec::new();
            for (id, ip, ip6, gw, gw6) in plan {
                let (ns, state) = attach(
                    &lan,
                    id,
                    &[
                        (ANN, "ms"),
                        ("oci-macvlan.ip", ip),
                        ("oci-macvlan.ip6", ip6),
                    ],
                );
                assert_eq!(ipvlan_info(&ns)["mode"], mode, "{case}");
                let (v4, v6) = (default_of(&ns, false), default_of(&ns, true));
                match (mode, parent) {
                    (_, None) => assert_eq!((&v4, &v6), (&None, &None), "{case}: {id}"),
                    ("l2", Some(_)) => {
                        assert_eq!(
                            v4.as_ref().map(|r| r["gateway"].clone()),
                            Some(gw.into()),
                            "{case}: {id}"
                        );
                        assert_eq!(
                            v6.as_ref().map(|r| r["gateway"].clone()),
                            gw6.map(Value::from),
                            "{case}: {id}"
                        );
                    }
                    _ => {
                        for route in [&v4, &v6] {
                            let route = route
                                .as_ref()
                                .unwrap_or_else(|| panic!("{case}: {id}: no default"));
                            assert_eq!(route["dev"], "eth0", "{case}: {id}: {route}");
                            assert!(route.get("gateway").is_none(), "{case}: {id}: {route}");
                        }
                    }
                }
                containers.push((ns, state, ip, ip6));
            }
            for pair in containers.chunks(2) {
                let [(a, ..), (_, _, ip, ip6)] = pair else {
                    unreachable!()
                };
                assert!(a.ping(ip), "{case}: {} cannot reach {ip}", a.name);
                assert!(a.ping(ip6), "{case}: {} cannot reach {ip6}", a.name);
            }
            // Across subnets through the parent (L3). Without a parent the network is internal:
            // no default route, but one onto the link to each other subnet of the network, so
            // its containers reach each other across subnets and nothing else (Docker's
            // L3NilParent and L3InternalMode).
            if mode == "l3" {
                let (a1, b1) = (&containers[0].0, &containers[2]);
                assert!(
                    a1.ping(b1.2),
                    "{case}: no way from 172.28.200 to 172.28.202"
                );
                assert!(a1.ping(b1.3), "{case}: no way from abc8 to abc6");
            }
            if parent.is_none() {
                for (_, state, ..) in &containers {
                    lan.cli_ok(&["hook", "poststop"], state);
                }
                lan.cli_ok(&["network", "rm", "ms"], "");
                assert!(
                    host_link(&lan, &dummy).is_none(),
                    "{case}: the dummy outlived its network"
                );
            }
        }
    }
}

/// Docker's internal-mode cases (L2 and L3 with `--internal`): containers on one network reach
/// each other and nothing off the network (no default route); in L3, across the network's two
/// subnets too. Its point-to-point case: an L3 /31 holds two containers (no address kept for a
/// gateway) that ping each other. And a custom interface name: the second container's ipvlan is
/// `p2p0`.
#[test]
fn ipvlan_internal_modes_point_to_point_and_a_custom_ifname() {
    let lan = Lan::new();
    for mode in ["l2", "l3"] {
        let name = format!("int{mode}");
        // L3 routes between subnets on the parent; L2 would need a router.
        let (subnets, b_ip): (&[&str], &str) = if mode == "l3" {
            (
                &["--subnet", "10.34.0.0/24", "--subnet", "10.35.0.0/24"],
                "10.35.0.9",
            )
        } else {
            (&["--subnet", "10.34.0.0/24"], "10.34.0.9")
        };
        ipvlan(
            &lan,
            &name,
            mode,
            Some("lan0"),
            &[subnets, &["--internal"]].concat(),
        );
        assert_eq!(lan.inspect(&name)[0]["Internal"], true);
        let (a, sa) = attach(&lan, "a", &[(ANN, &name)]);
        let (b, sb) = attach(&lan, "b", &[(ANN, &name), ("oci-macvlan.ip", b_ip)]);
        assert_eq!(
            b.addresses("eth0"),
            [format!("{b_ip}/24")],
            "{mode} internal"
        );
        assert!(a.ping(b_ip), "{mode} internal: a cannot reach b");
        assert_eq!(default_of(&a, false), None, "{mode} internal");
        assert!(
            !a.ping(Lan::GATEWAY),
            "{mode} internal: reached off its subnet"
        );
        lan.cli_ok(&["hook", "poststop"], &sa);
        lan.cli_ok(&["hook", "poststop"], &sb);
        lan.cli_ok(&["network", "rm", &name], "");
    }

    ipvlan(
        &lan,
        "p2p",
        "l3",
        Some("lan0"),
        &["--subnet", "10.33.0.0/31"],
    );
    let (a, _) = attach(&lan, "pa", &[(ANN, "p2p")]);
    let (b, _) = attach(
        &lan,
        "pb",
        &[(ANN, "p2p"), ("oci-macvlan.p2p.ifname", "p2p0")],
    );
    assert_eq!(a.addresses("eth0"), ["10.33.0.0/31"]);
    assert_eq!(b.addresses("p2p0"), ["10.33.0.1/31"]);
    let link = b.link("p2p0").unwrap();
    assert_eq!(link["linkinfo"]["info_kind"], "ipvlan", "{link}");
    assert!(b.link("eth0").is_none(), "the custom name was not used");
    assert!(a.ping("10.33.0.1"), "point to point: a cannot reach b");
    assert!(b.ping("10.33.0.0"), "point to point: b cannot reach a");
}

/// Docker's overlapping-subnets case: several ipvlan networks with one subnet share one address
/// space (the lease store's): a container joining one of them takes its address from all of
/// them, as each network's `inspect` Usage shows, and a container of another gets another.
#[test]
fn ipvlan_overlapping_subnets_share_one_address_space() {
    let lan = Lan::new();
    let nets = ["ov1", "ov2", "ov3"];
    ipvlan(
        &lan,
        nets[0],
        "l2",
        Some("lan0"),
        &["--subnet", "10.50.0.0/24", "--gateway", "10.50.0.1"],
    );
    ipvlan(
        &lan,
        nets[1],
        "l2",
        Some("lan0"),
        &["--subnet", "10.50.0.0/24", "--gateway", "10.50.0.1"],
    );
    ipvlan(
        &lan,
        nets[2],
        "l2",
        None,
        &["--subnet", "10.50.0.0/24", "--gateway", "10.50.0.1"],
    );
    let before: Vec<u64> = nets.iter().map(|n| available(&lan, n)[0]).collect();
    let (a, _) = attach(&lan, "a", &[(ANN, "ov1")]);
    let after: Vec<u64> = nets.iter().map(|n| available(&lan, n)[0]).collect();
    assert_eq!(
        after,
        before.iter().map(|n| n - 1).collect::<Vec<_>>(),
        "a joined ov1"
    );
    assert_eq!(
        lan.inspect("ov1")[0]["Usage"][0]["InUse"],
        serde_json::json!(["10.50.0.2"])
    );
    assert_eq!(
        lan.inspect("ov2")[0]["Usage"][0]["InUse"],
        serde_json::json!([])
    );
    let (b, _) = attach(&lan, "b", &[(ANN, "ov2")]);
    let last: Vec<u64> = nets.iter().map(|n| available(&lan, n)[0]).collect();
    assert_eq!(
        last,
        before.iter().map(|n| n - 2).collect::<Vec<_>>(),
        "b joined ov2"
    );
    assert_eq!(a.addresses("eth0"), ["10.50.0.2/24"]);
    assert_eq!(b.addresses("eth0"), ["10.50.0.3/24"]);
    assert!(a.ping("10.50.0.3"), "a cannot reach b on one parent");
}
