//! ipvlan in the VM tier (`cargo xtask vm ipvlan` runs this module alone): the guide's example,
//! the modes and flags, the routes the LAN's router needs for L3, and Docker's own ipvlan
//! integration cases (moby's `integration/network/ipvlan`) expressed with our CLI and hook.

use oci_macvlan_tests::{Lan, TestNetns};
use serde_json::Value;

use super::{ANN, OWNER_ALIAS, attach, details, host_link, router_vlan};

/// `ip -d -j link show eth0` in a container: the ipvlan's kind, mode and flag as the kernel has
/// them.
fn ipvlan_info(ns: &TestNetns) -> Value {
    let out = ns.ip(&["-d", "-j", "link", "show", "eth0"]);
    let link = serde_json::from_str::<Vec<Value>>(&out).unwrap().remove(0);
    assert_eq!(link["linkinfo"]["info_kind"], "ipvlan", "{link}");
    link["linkinfo"]["info_data"].clone()
}

/// The default route of a container's IPv4 table, if any.
fn default_route(ns: &TestNetns) -> Option<Value> {
    ns.routes(false).into_iter().find(|r| r["dst"] == "default")
}

/// Docker's guide: one ipvlan L2 network with two subnets on one parent, each with its gateway.
/// Containers with static `.10` and `.9` on each subnet reach each other and their gateway, and
/// each has its own subnet's gateway as its default route. The links share the parent's MAC.
#[test]
fn ipvlan_l2_the_guides_two_subnets_on_one_parent() {
    let lan = Lan::new();
    for gw in ["192.168.210.254/24", "192.168.212.254/24"] {
        lan.router.ip(&["addr", "add", gw, "dev", "rtr"]);
    }
    lan.cli_ok(
        &[
            "network",
            "create",
            "-d",
            "ipvlan",
            "--subnet",
            "192.168.210.0/24",
            "--subnet",
            "192.168.212.0/24",
            "--gateway",
            "192.168.210.254",
            "--gateway",
            "192.168.212.254",
            "-o",
            "ipvlan_mode=l2",
            "-o",
            "parent=lan0",
            "ipvlan210",
        ],
        "",
    );
    let inspect = &lan.inspect("ipvlan210")[0];
    assert_eq!(inspect["Driver"], "ipvlan", "{inspect}");
    assert_eq!(inspect["Options"]["ipvlan_mode"], "l2", "{inspect}");
    let parent_mac = host_link(&lan, "lan0").unwrap()["address"].clone();
    let mut containers = Vec::new();
    for (id, ip) in [
        ("a10", "192.168.210.10"),
        ("a9", "192.168.210.9"),
        ("b10", "192.168.212.10"),
        ("b9", "192.168.212.9"),
    ] {
        let (ns, _) = attach(&lan, id, &[(ANN, "ipvlan210"), ("oci-macvlan.ip", ip)]);
        assert_eq!(ns.addresses("eth0"), [format!("{ip}/24")]);
        assert_eq!(ns.link("eth0").unwrap()["address"], parent_mac);
        assert_eq!(ipvlan_info(&ns)["mode"], "l2");
        containers.push(ns);
    }
    let [a10, a9, b10, b9] = &containers[..] else {
        unreachable!()
    };
    assert!(a10.ping("192.168.210.9"), ".10 cannot reach .9 on 210");
    assert!(b10.ping("192.168.212.9"), ".10 cannot reach .9 on 212");
    for (ns, gw) in [
        (a10, "192.168.210.254"),
        (a9, "192.168.210.254"),
        (b10, "192.168.212.254"),
        (b9, "192.168.212.254"),
    ] {
        let route = default_route(ns).unwrap();
        assert_eq!(route["gateway"], gw, "{route}");
        assert!(ns.ping(gw), "{} cannot reach its gateway {gw}", ns.name);
    }
}

/// L3: no ARP on the LAN, the default route is the link itself (`default dev eth0`, whatever
/// gateway was given), and containers on two subnets of one parent reach each other through
/// the parent. l3s attaches and pings likewise.
#[test]
fn ipvlan_l3_and_l3s_route_on_the_link_and_reach_across_subnets() {
    for mode in ["l3", "l3s"] {
        let lan = Lan::new();
        lan.cli_ok(
            &[
                "network",
                "create",
                "-d",
                "ipvlan",
                "--subnet",
                "10.30.0.0/24",
                "--gateway",
                "10.30.0.1",
                "--subnet",
                "10.31.0.0/24",
                "-o",
                &format!("ipvlan_mode={mode}"),
                "-o",
                "parent=lan0",
                "routed",
            ],
            "",
        );
        let (c1, _) = attach(
            &lan,
            "c1",
            &[(ANN, "routed"), ("oci-macvlan.ip", "10.30.0.10")],
        );
        let (c2, _) = attach(
            &lan,
            "c2",
            &[(ANN, "routed"), ("oci-macvlan.ip", "10.31.0.10")],
        );
        for ns in [&c1, &c2] {
            assert_eq!(ipvlan_info(ns)["mode"], mode);
            let route = default_route(ns).unwrap();
            assert_eq!(route["dev"], "eth0", "{route}");
            assert!(route.get("gateway").is_none(), "{mode}: {route}");
        }
        assert!(c1.ping("10.31.0.10"), "{mode}: no way from 10.30 to 10.31");
        assert!(c2.ping("10.30.0.10"), "{mode}: no way from 10.31 to 10.30");
    }
}

/// `ipvlan_flag=private`: two containers on one parent do not reach each other, though both
/// reach the router; `bridge` (the default): they do. `vepa` as the kernel shows it. The kernel
/// keeps one flag per parent, so each network has the parent to itself in turn.
#[test]
fn ipvlan_private_flag_separates_containers_and_bridge_does_not() {
    let lan = Lan::new();
    lan.router
        .ip(&["addr", "add", "10.40.0.1/24", "dev", "rtr"]);
    for flag in ["private", "bridge", "vepa"] {
        lan.cli_ok(
            &[
                "network",
                "create",
                "-d",
                "ipvlan",
                "--subnet",
                "10.40.0.0/24",
                "--gateway",
                "10.40.0.1",
                "-o",
                &format!("ipvlan_flag={flag}"),
                "-o",
                "parent=lan0",
                flag,
            ],
            "",
        );
        let (c1, s1) = attach(&lan, "c1", &[(ANN, flag)]);
        let (c2, s2) = attach(&lan, "c2", &[(ANN, flag)]);
        let info = ipvlan_info(&c1);
        assert_eq!(info["mode"], "l2", "{info}");
        let c2_ip = c2.addresses("eth0")[0]
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        match flag {
            "private" => {
                assert_eq!(info["private"], true, "{info}");
                assert!(c1.ping("10.40.0.1"), "private: the router is out of reach");
                assert!(!c1.ping(&c2_ip), "private: the containers reach each other");
            }
            "bridge" => {
                assert!(
                    info.get("private").is_none() && info.get("vepa").is_none(),
                    "{info}"
                );
                assert!(
                    c1.ping(&c2_ip),
                    "bridge: the containers do not reach each other"
                );
            }
            _ => assert_eq!(info["vepa"], true, "{info}"),
        }
        lan.cli_ok(&["hook", "poststop"], &s1);
        lan.cli_ok(&["hook", "poststop"], &s2);
        lan.cli_ok(&["network", "rm", flag], "");
    }
}

/// `network create -d ipvlan -o ipvlan_mode=MODE [-o parent=PARENT] ARGS… NAME`: the id.
fn ipvlan(lan: &Lan, name: &str, mode: &str, parent: Option<&str>, args: &[&str]) -> String {
    let mode = format!("ipvlan_mode={mode}");
    let parent = parent.map(|p| format!("parent={p}"));
    let mut all = vec!["network", "create", "-d", "ipvlan", "-o", &mode];
    if let Some(parent) = &parent {
        all.extend(["-o", parent]);
    }
    all.extend_from_slice(args);
    all.push(name);
    lan.cli_ok(&all, "").trim().to_owned()
}

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

/// An 802.1q parent made on demand for an ipvlan network carries frames to the router on its
/// VLAN, is shared by a second ipvlan network, and goes with the last `network rm`.
#[test]
fn ipvlan_on_an_owned_vlan_parent_shared_and_removed_with_the_last_network() {
    let lan = Lan::new();
    router_vlan(&lan, 72, "10.72.0.1/24");
    ipvlan(
        &lan,
        "v72a",
        "l2",
        Some("lan0.72"),
        &["--subnet", "10.72.0.0/24", "--gateway", "10.72.0.1"],
    );
    ipvlan(
        &lan,
        "v72b",
        "l2",
        Some("lan0.72"),
        &["--subnet", "10.73.0.0/24"],
    );
    let link = details(&lan, "lan0.72");
    assert_eq!(link["linkinfo"]["info_data"]["id"], 72, "{link}");
    assert_eq!(link["ifalias"], OWNER_ALIAS, "{link}");
    let (c, state) = attach(&lan, "c", &[(ANN, "v72a")]);
    assert_eq!(ipvlan_info(&c)["mode"], "l2");
    assert!(c.ping("10.72.0.1"), "no way to the router over VLAN 72");
    lan.cli_ok(&["hook", "poststop"], &state);
    lan.cli_ok(&["network", "rm", "v72a"], "");
    assert!(
        host_link(&lan, "lan0.72").is_some(),
        "removed with v72b still on it"
    );
    lan.cli_ok(&["network", "rm", "v72b"], "");
    assert!(host_link(&lan, "lan0.72").is_none(), "left behind");
    assert!(
        host_link(&lan, "lan0").is_some(),
        "the base link was deleted"
    );
}

/// Host access on ipvlan networks, L2 and L3, dual stack: the host link is an ipvlan in the
/// network's mode on the parent, tagged ours; the host reaches a container on each family, the
/// container reaches the host's host_access addresses, and poststop takes the routes back.
#[test]
fn ipvlan_host_access_in_l2_and_l3() {
    for mode in ["l2", "l3"] {
        let lan = Lan::new();
        let id = ipvlan(
            &lan,
            "ha",
            mode,
            Some("lan0"),
            &[
                "--subnet",
                "10.40.0.0/24",
                "--subnet",
                "fd40::/64",
                "-o",
                "host_access=10.40.0.3,fd40::3",
            ],
        );
        let link = format!("ha-{}", &id[..12]);
        let info = details(&lan, &link);
        assert_eq!(info["ifalias"], OWNER_ALIAS, "{mode}: {info}");
        assert_eq!(info["linkinfo"]["info_kind"], "ipvlan", "{mode}: {info}");
        assert_eq!(
            info["linkinfo"]["info_data"]["mode"], mode,
            "{mode}: {info}"
        );
        let ann = [(ANN, "ha"), ("oci-macvlan.ip", "10.40.0.10")];
        let (ns, _) = attach(&lan, "c1", &ann);
        let v6 = ns
            .addresses("eth0")
            .into_iter()
            .find(|a| a.contains(':'))
            .unwrap();
        let v6 = v6.split('/').next().unwrap().to_owned();
        assert_eq!(
            lan.host.routes_via(&link),
            vec!["10.40.0.10".to_owned(), v6.clone()]
        );
        assert!(
            lan.host.ping("10.40.0.10"),
            "{mode}: the host cannot ping its container"
        );
        assert!(
            lan.host.ping(&v6),
            "{mode}: the host cannot ping its container (v6)"
        );
        assert!(
            ns.ping("10.40.0.3"),
            "{mode}: the container cannot ping the host"
        );
        assert!(
            ns.ping("fd40::3"),
            "{mode}: the container cannot ping the host (v6)"
        );
        let stopped = lan.fake_bundle("c1", &ann, &ns.path(), "stopped");
        lan.cli_ok(&["hook", "poststop"], &stopped);
        assert_eq!(lan.host.routes_via(&link), Vec::<String>::new(), "{mode}");
        lan.cli_ok(&["network", "rm", "ha"], "");
        assert!(
            lan.host.link(&link).is_none(),
            "{mode}: network rm left {link}"
        );
    }
}

/// `-o host_access` with ipvlan's private flag is refused (the kernel keeps a parent's
/// ipvlans, the host's among them, from reaching each other), and nothing is made.
#[test]
fn ipvlan_host_access_with_the_private_flag_is_refused() {
    let lan = Lan::new();
    let out = lan.cli(
        &[
            "network",
            "create",
            "-d",
            "ipvlan",
            "--subnet",
            "10.40.0.0/24",
            "-o",
            "parent=lan0",
            "-o",
            "ipvlan_flag=private",
            "-o",
            "host_access=10.40.0.3",
            "ha",
        ],
        "",
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("ipvlan_flag=private"), "{}", out.stderr);
    assert_eq!(lan.host_link_names(), ["lo", Lan::PARENT]);
}
