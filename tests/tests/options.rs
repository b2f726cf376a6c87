//! Privileged tier: endpoint options in the kernel's view — bridge against private mode between
//! two containers on one parent, several networks per container with a custom interface name,
//! a network MTU, and the first host address of a subnet without gateway kept for the LAN's
//! router.

#![allow(clippy::unwrap_used)]

use oci_macvlan_tests::{Lan, TestNetns, privileged};
use serde_json::Value;

const ANN: &str = "oci-macvlan.networks";

#[privileged]
fn bridge_mode_lets_siblings_talk_and_private_mode_does_not() {
    for (mode, siblings_talk) in [("bridge", true), ("private", false)] {
        let lan = Lan::new();
        lan.create_network("m", &["-o", &format!("macvlan_mode={mode}")]);
        let a = TestNetns::new("omt-ctr-");
        let b = TestNetns::new("omt-ctr-");
        lan.cli_ok(
            &["hook"],
            &lan.fake_bundle("a", &[(ANN, "m")], &a.path(), "creating"),
        );
        lan.cli_ok(
            &["hook"],
            &lan.fake_bundle("b", &[(ANN, "m")], &b.path(), "creating"),
        );
        // Both reach the LAN either way.
        assert!(a.ping(Lan::GATEWAY), "{mode}: a cannot reach the router");
        assert!(b.ping(Lan::GATEWAY), "{mode}: b cannot reach the router");
        assert_eq!(
            a.ping("192.168.77.3"),
            siblings_talk,
            "{mode}: a -> b on the same parent"
        );
    }
}

#[privileged]
fn several_networks_per_container_with_a_custom_ifname_and_an_mtu() {
    let lan = Lan::new();
    lan.create_network("front", &[]);
    lan.cli_ok(
        &[
            "network",
            "create",
            "--subnet",
            "10.77.0.0/24",
            "--gateway",
            "10.77.0.1",
            "-o",
            "parent=lan0",
            "-o",
            "mtu=1400",
            "back",
        ],
        "",
    );
    let c = TestNetns::new("omt-ctr-");
    let annotations = [
        (ANN, "front,back"),
        ("oci-macvlan.back.ifname", "data0"),
        ("oci-macvlan.back.ip", "10.77.0.9"),
    ];
    let state = lan.fake_bundle("c", &annotations, &c.path(), "creating");
    lan.cli_ok(&["hook"], &state);

    assert_eq!(c.addresses("eth0"), ["192.168.77.2/24"]);
    assert_eq!(c.addresses("data0"), ["10.77.0.9/24"]);
    assert_eq!(c.link("eth0").unwrap()["mtu"], 1500);
    assert_eq!(c.link("data0").unwrap()["mtu"], 1400);
    // Both are macvlans of lan0; the first network with a gateway gives the default route.
    let parent = lan.parent_view()["ifindex"].clone();
    for ifname in ["eth0", "data0"] {
        assert_eq!(c.link(ifname).unwrap()["link_index"], parent, "{ifname}");
    }
    let defaults: Vec<Value> = c
        .routes(false)
        .into_iter()
        .filter(|r| r["dst"] == "default")
        .collect();
    assert_eq!(defaults.len(), 1, "{defaults:?}");
    assert_eq!(defaults[0]["dev"], "eth0");
    assert_eq!(lan.leased("front"), 1);
    assert_eq!(lan.leased("back"), 1);

    lan.cli_ok(&["hook", "poststop"], &state);
    assert!(c.link("eth0").is_none() && c.link("data0").is_none());
    assert_eq!(lan.leased("front") + lan.leased("back"), 0);
}

#[privileged]
fn source_mode_receives_only_from_the_listed_macs() {
    for (router_listed, reaches_router) in [(true, true), (false, false)] {
        let lan = Lan::new();
        let router_mac = lan.router.link("rtr").unwrap()["address"]
            .as_str()
            .unwrap()
            .to_owned();
        let listed = if router_listed {
            format!("02:00:00:00:00:99,{}", router_mac.to_uppercase())
        } else {
            "02:00:00:00:00:99".to_owned()
        };
        lan.create_network(
            "src",
            &[
                "-o",
                "macvlan_mode=source",
                "-o",
                &format!("source_macs={listed}"),
            ],
        );
        let stored = &lan.inspect("src")[0];
        let c = TestNetns::new("omt-ctr-");
        let state = lan.fake_bundle("c", &[(ANN, "src")], &c.path(), "creating");
        lan.cli_ok(&["hook"], &state);

        let eth0 = c.link("eth0").unwrap();
        assert_eq!(eth0["linkinfo"]["info_data"]["mode"], "source", "{eth0}");
        let expected: Vec<&str> = if router_listed {
            vec!["02:00:00:00:00:99", &router_mac]
        } else {
            vec!["02:00:00:00:00:99"]
        };
        assert_eq!(
            stored["SourceMacs"],
            serde_json::json!(expected),
            "{stored}"
        );
        assert_eq!(
            c.ping(Lan::GATEWAY),
            reaches_router,
            "router listed: {router_listed}"
        );
        lan.cli_ok(&["hook", "poststop"], &state);
        assert!(c.link("eth0").is_none());
    }
}

#[privileged]
fn without_gateway_the_first_host_is_kept_for_the_lans_router_unless_internal() {
    // (--internal, what the first container gets, what is left of the /24's dynamic range)
    for (internal, first, available) in [
        (false, ["10.77.0.2/24", "fd77::2/64"], 252),
        (true, ["10.77.0.1/24", "fd77::1/64"], 253),
    ] {
        let lan = Lan::new();
        let mut args = vec![
            "network",
            "create",
            "--subnet",
            "10.77.0.0/24",
            "--subnet",
            "fd77::/64",
            "-o",
            "parent=lan0",
        ];
        if internal {
            args.push("--internal");
        }
        args.push("n");
        let out = lan.cli(&args, "");
        assert_eq!(out.code, 0, "{}", out.stderr);
        if internal {
            assert_eq!(out.stderr, "", "internal: nothing to warn of");
        } else {
            assert_eq!(
                out.stderr,
                "oci-macvlan: warning: no --gateway for 10.77.0.0/24, fd77::/64: containers get \
                 no default route from network n; 10.77.0.1, fd77::1 (where a LAN's router \
                 usually is) will not be handed out dynamically\n"
            );
        }
        let a = TestNetns::new("omt-ctr-");
        let state = lan.fake_bundle("a", &[(ANN, "n")], &a.path(), "creating");
        lan.cli_ok(&["hook"], &state);
        let mut got = a.addresses("eth0");
        got.sort();
        assert_eq!(got, first, "internal: {internal}");
        let usage = &lan.inspect("n")[0]["Usage"][0];
        assert_eq!(usage["DynamicAvailable"], available, "internal: {internal}");

        // A static request may still take the first host: the admin says there is no router.
        let b = TestNetns::new("omt-ctr-");
        let statics = [(ANN, "n"), ("oci-macvlan.ip", "10.77.0.1")];
        let static_state = lan.fake_bundle("b", &statics, &b.path(), "creating");
        let out = lan.cli(&["hook"], &static_state);
        if internal {
            assert_eq!(out.code, 5, "taken by a: {}", out.stderr);
        } else {
            assert_eq!(out.code, 0, "{}", out.stderr);
            assert!(
                b.addresses("eth0").contains(&"10.77.0.1/24".to_owned()),
                "{:?}",
                b.addresses("eth0")
            );
            lan.cli_ok(&["hook", "poststop"], &static_state);
        }
        lan.cli_ok(&["hook", "poststop"], &state);
        lan.assert_no_residue(&["n"], &format!("internal: {internal}"));
    }
}
