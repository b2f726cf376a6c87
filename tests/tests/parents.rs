//! Privileged tier: what a parent allows, on this kernel (a veth parent): passthru has its parent
//! to itself, macvlan and ipvlan networks do not share one (`network create` refuses it before
//! any container needs a link, so this runs on a kernel without ipvlan), and `--internal` takes
//! the default route away but not the LAN. The VLAN and dummy
//! parents are the VM tier's (`vm.rs`).

#![allow(clippy::unwrap_used)]

use oci_macvlan_tests::{Lan, TestNetns, privileged};

const ANN: &str = "oci-macvlan.networks";

fn create(lan: &Lan, name: &str, subnet: &str, extra: &[&str]) -> oci_macvlan_tests::Outcome {
    let mut args = vec!["network", "create", "--subnet", subnet, "-o", "parent=lan0"];
    args.extend_from_slice(extra);
    args.push(name);
    lan.cli(&args, "")
}

#[privileged]
fn macvlan_and_ipvlan_networks_do_not_share_a_parent_either_way() {
    let lan = Lan::new();
    let ipvlan = ["-d", "ipvlan"];
    for (first, second, other_name) in [
        (&[][..], &ipvlan[..], "macvlan"),
        (&ipvlan[..], &[][..], "ipvlan"),
    ] {
        assert_eq!(create(&lan, "one", "10.1.0.0/24", first).code, 0);
        assert_eq!(create(&lan, "two", "10.2.0.0/24", first).code, 0);
        let out = create(&lan, "three", "10.3.0.0/24", second);
        assert_eq!(out.code, 5, "{}", out.stderr);
        let this_name = if other_name == "macvlan" {
            "ipvlan"
        } else {
            "macvlan"
        };
        assert_eq!(
            out.stderr.trim(),
            format!(
                "oci-macvlan: error: parent interface lan0 has {other_name} network(s) one, two: the kernel gives a parent {other_name} or {this_name} links, not both"
            )
        );
        // Nothing made: no definition, no link.
        let listed = lan.cli_ok(&["network", "ls"], "");
        assert!(!listed.contains("three"), "{listed}");
        assert!(!lan.config_dir().join("networks/three.json").exists());
        assert_eq!(lan.host_link_names(), ["lo", Lan::PARENT]);
        lan.cli_ok(&["network", "rm", "one", "two"], "");
    }
}

#[privileged]
fn passthru_has_its_parent_to_itself_both_ways() {
    let lan = Lan::new();
    assert_eq!(create(&lan, "shared", "10.1.0.0/24", &[]).code, 0);
    let out = create(&lan, "pt", "10.2.0.0/24", &["-o", "macvlan_mode=passthru"]);
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert_eq!(
        out.stderr.trim(),
        "oci-macvlan: error: cannot use mode passthru, macvlan network shared is already using parent interface lan0"
    );

    lan.cli_ok(&["network", "rm", "shared"], "");
    assert_eq!(
        create(&lan, "pt", "10.2.0.0/24", &["-o", "macvlan_mode=passthru"]).code,
        0
    );
    let out = create(&lan, "late", "10.3.0.0/24", &[]);
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert_eq!(
        out.stderr.trim(),
        "oci-macvlan: error: macvlan network pt is already using parent interface lan0 in mode passthru"
    );
    let names: Vec<String> = lan
        .cli_ok(&["network", "ls"], "")
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(1).unwrap().to_owned())
        .collect();
    assert_eq!(names, ["pt"]);
    // The veth parent is the host's: removing the network leaves it.
    lan.cli_ok(&["network", "rm", "pt"], "");
    assert_eq!(lan.host_link_names(), ["lo", Lan::PARENT]);
}

#[privileged]
fn an_internal_network_has_no_default_route_and_peers_still_talk() {
    let lan = Lan::new();
    let out = create(
        &lan,
        "inner",
        Lan::SUBNET,
        &["--gateway", Lan::GATEWAY, "--internal"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let a = TestNetns::new("omt-ctr-");
    let b = TestNetns::new("omt-ctr-");
    for (id, ns) in [("a", &a), ("b", &b)] {
        lan.cli_ok(
            &["hook"],
            &lan.fake_bundle(id, &[(ANN, "inner")], &ns.path(), "creating"),
        );
        assert!(
            ns.routes(false).iter().all(|r| r["dst"] != "default"),
            "{id}: {:?}",
            ns.routes(false)
        );
    }
    assert!(a.ping("192.168.77.3"), "a cannot reach b");
    // The subnet is on the link, so the LAN itself stays reachable; only the way out is gone.
    assert!(a.ping(Lan::GATEWAY), "a cannot reach its LAN");
}

/// An ipvlan has its parent's MAC: a container's static MAC on an ipvlan network is invalid input
/// (exit 3), refused before anything is made. This kernel has no ipvlan: the refusal comes first.
#[privileged]
fn a_static_mac_on_an_ipvlan_network_is_refused_before_anything_is_made() {
    let lan = Lan::new();
    assert_eq!(
        create(&lan, "ipv", "10.5.0.0/24", &["-d", "ipvlan"]).code,
        0
    );
    let ns = TestNetns::new("omt-ctr-");
    for (key, net) in [("oci-macvlan.mac", "ipv"), ("oci-macvlan.ipv.mac", "ipv")] {
        let state = lan.fake_bundle(
            "c1",
            &[(ANN, net), (key, "02:00:00:00:00:42")],
            &ns.path(),
            "creating",
        );
        let out = lan.cli(&["hook"], &state);
        assert_eq!(out.code, 3, "{}", out.stderr);
        assert_eq!(
            out.stderr.trim(),
            "oci-macvlan: error: attach of container c1: invalid MAC address 02:00:00:00:00:42 for network ipv: an ipvlan network's container shares its parent's MAC"
        );
        lan.assert_no_residue(&["ipv"], key);
        assert_eq!(ns.links().len(), 1, "only lo in the container");
    }
}
