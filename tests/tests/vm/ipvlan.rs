//! ipvlan in the VM tier (`cargo xtask vm ipvlan` runs this module and `ipvlan_docker.rs`): the
//! guide's example, the modes and flags, an owned VLAN parent and host access. Docker's own ipvlan
//! integration cases are in `ipvlan_docker.rs`.

use oci_macvlan_tests::{Lan, TestNetns};
use serde_json::Value;

use super::{ANN, OWNER_ALIAS, attach, details, host_link, router_vlan};

/// `ip -d -j link show eth0` in a container: the ipvlan's kind, mode and flag as the kernel has
/// them.
pub(super) fn ipvlan_info(ns: &TestNetns) -> Value {
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
pub(super) fn ipvlan(
    lan: &Lan,
    name: &str,
    mode: &str,
    parent: Option<&str>,
    args: &[&str],
) -> String {
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
