//! VM tier: 802.1q and dummy parents, on a kernel that has them. `cargo xtask vm` (and `cargo
//! xtask ci`) boots Debian's kernel under qemu and runs this file inside; it is never built for
//! the host, whose kernel has neither.
//!
//! The LAN is the usual one: the host namespace's `lan0` is a veth whose peer `rtr` sits in a
//! router namespace. `lan0` is the trunk: VLAN parents are `lan0.VID`, and the router has
//! `rtr.VID` with an address on each VLAN, so reaching it proves the VLAN carries frames.

#![allow(clippy::unwrap_used)]

use oci_macvlan_tests::{Lan, TestNetns};
use serde_json::Value;

/// The CNI plugin on this kernel: ipvlan, 802.1q parents.
#[path = "vm/cni.rs"]
mod cni;
/// What the modules share.
#[path = "vm/common.rs"]
mod common;
/// DHCP on ipvlan: dnsmasq on the LAN, two containers on one MAC, release, DHCPv6.
#[path = "vm/dhcp.rs"]
mod dhcp;
/// ipvlan on this kernel: the driver's own cases.
#[path = "vm/ipvlan.rs"]
mod ipvlan;
/// Docker's ipvlan integration cases.
#[path = "vm/ipvlan_docker.rs"]
mod ipvlan_docker;
/// The fault-injection and poststop suites for ipvlan.
#[path = "vm/suites.rs"]
mod suites;

use common::{ANN, OWNER_ALIAS, attach, create, details, host_link, router_vlan};

#[test]
fn an_owned_vlan_parent_is_created_and_recreated_after_a_reboot() {
    let lan = Lan::new();
    router_vlan(&lan, 60, "10.60.0.1/24");
    create(
        &lan,
        "v60",
        "10.60.0.0/24",
        Some("lan0.60"),
        &["--gateway", "10.60.0.1"],
    );
    let link = details(&lan, "lan0.60");
    assert_eq!(link["linkinfo"]["info_kind"], "vlan", "{link}");
    assert_eq!(link["linkinfo"]["info_data"]["id"], 60, "{link}");
    assert_eq!(link["ifalias"], OWNER_ALIAS, "{link}");
    assert!(link["flags"].as_array().unwrap().contains(&"UP".into()));

    let (c1, state) = attach(&lan, "c1", &[(ANN, "v60")]);
    assert_eq!(c1.addresses("eth0"), ["10.60.0.2/24"]);
    assert!(c1.ping("10.60.0.1"), "no way to the router over VLAN 60");
    lan.cli_ok(&["hook", "poststop"], &state);

    // A reboot: the kernel forgets the link, the state dir (a tmpfs) is empty.
    lan.host.ip(&["link", "del", "lan0.60"]);
    std::fs::remove_dir_all(lan.state_dir()).unwrap();
    let (c2, _) = attach(&lan, "c2", &[(ANN, "v60")]);
    assert_eq!(details(&lan, "lan0.60")["ifalias"], OWNER_ALIAS);
    assert_eq!(c2.addresses("eth0"), ["10.60.0.2/24"]);
    assert!(
        c2.ping("10.60.0.1"),
        "no way to the router after the re-creation"
    );
}

#[test]
fn concurrent_attaches_that_need_the_same_missing_parent_all_succeed() {
    let lan = Lan::new();
    router_vlan(&lan, 61, "10.61.0.1/24");
    create(&lan, "v61", "10.61.0.0/24", Some("lan0.61"), &[]);
    lan.host.ip(&["link", "del", "lan0.61"]);
    let namespaces: Vec<TestNetns> = (0..6).map(|_| TestNetns::new("omt-ctr-")).collect();
    let states: Vec<String> = namespaces
        .iter()
        .enumerate()
        .map(|(i, ns)| lan.fake_bundle(&format!("c{i}"), &[(ANN, "v61")], &ns.path(), "creating"))
        .collect();
    for out in lan.cli_together(&["hook"], &states) {
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    let vlans: Vec<String> = lan
        .host_link_names()
        .into_iter()
        .filter(|n| n.starts_with("lan0."))
        .collect();
    assert_eq!(vlans, ["lan0.61"]);
    for ns in &namespaces {
        assert!(ns.ping("10.61.0.1"), "{} cannot reach the router", ns.name);
    }
    assert_eq!(lan.leased("v61"), 6);
}

/// Plan, then apply: every parent of a request is found (or known to be makeable) before any is
/// made. A container asks for an owned 802.1q network whose VLAN is gone (attach would re-create
/// it) and, second, a network whose parent is missing: the host's link, or the base of another
/// owned VLAN. The attach fails naming the missing link, and nothing at all changed: no VLAN
/// re-created, no lease, no link in the container, no record, no lock. Once the link is back the
/// same request succeeds.
#[test]
fn a_missing_parent_on_a_later_network_changes_nothing() {
    let lan = Lan::new();
    router_vlan(&lan, 62, "10.62.0.1/24");
    create(&lan, "v62", "10.62.0.0/24", Some("lan0.62"), &[]);
    let dummy_up = |name: &str| {
        lan.host.ip(&["link", "add", name, "type", "dummy"]);
        lan.host.ip(&["link", "set", name, "up"]);
    };
    dummy_up("ex0");
    create(&lan, "onex", "10.65.0.0/24", Some("ex0"), &[]);
    dummy_up("tr7");
    create(&lan, "v64", "10.64.0.0/24", Some("tr7.64"), &[]);
    // A reboot took the VLANs; the host's ex0 and the trunk tr7 are gone too.
    for link in ["lan0.62", "ex0", "tr7.64", "tr7"] {
        lan.host.ip(&["link", "del", link]);
    }
    let before = lan.host_link_names();
    for (second, missing) in [("onex", "ex0"), ("v64", "tr7")] {
        let ns = TestNetns::new("omt-ctr-");
        let state = lan.fake_bundle(
            "c1",
            &[(ANN, &format!("v62,{second}"))],
            &ns.path(),
            "creating",
        );
        let out = lan.cli(&["hook"], &state);
        assert_ne!(out.code, 0, "{second}: the attach succeeded");
        assert!(out.stderr.contains(missing), "{second}: {}", out.stderr);
        assert_eq!(lan.host_link_names(), before, "{second}: a link was made");
        for net in ["v62", second] {
            assert_eq!(lan.leased(net), 0, "{second}: a lease is left on {net}");
        }
        let links: Vec<Value> = ns.links();
        assert_eq!(
            links.len(),
            1,
            "{second}: the container got a link: {links:?}"
        );
        assert_eq!(lan.records(), Vec::<String>::new(), "{second}: a record");
        assert_eq!(lan.locks(), Vec::<String>::new(), "{second}: a lock");
    }
    dummy_up("ex0");
    let (c1, _) = attach(&lan, "c1", &[(ANN, "v62,onex")]);
    assert_eq!(c1.addresses("eth0"), ["10.62.0.2/24"]);
    assert_eq!(c1.addresses("eth1"), ["10.65.0.2/24"]);
    assert!(c1.ping("10.62.0.1"), "no way to the router over VLAN 62");
}

#[test]
fn a_preexisting_vlan_is_used_as_it_is_and_outlives_its_network() {
    let lan = Lan::new();
    router_vlan(&lan, 20, "10.20.0.1/24");
    lan.host.ip(&[
        "link", "add", "link", "lan0", "name", "lan0.20", "type", "vlan", "id", "20",
    ]);
    lan.host.ip(&["link", "set", "lan0.20", "up"]);
    create(&lan, "v20", "10.20.0.0/24", Some("lan0.20"), &[]);
    assert!(details(&lan, "lan0.20").get("ifalias").is_none());
    let (c, state) = attach(&lan, "c", &[(ANN, "v20")]);
    assert!(c.ping("10.20.0.1"));
    lan.cli_ok(&["hook", "poststop"], &state);
    lan.cli_ok(&["network", "rm", "v20"], "");
    assert!(
        host_link(&lan, "lan0.20").is_some(),
        "the host's VLAN was deleted"
    );

    // Not ours, so never re-created: gone is an error that names it.
    create(&lan, "v20b", "10.20.0.0/24", Some("lan0.20"), &[]);
    lan.host.ip(&["link", "del", "lan0.20"]);
    let ns = TestNetns::new("omt-ctr-");
    let out = lan.cli(
        &["hook"],
        &lan.fake_bundle("d", &[(ANN, "v20b")], &ns.path(), "creating"),
    );
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert_eq!(
        out.stderr.trim(),
        "oci-macvlan: error: attach of container d: parent interface lan0.20 not found"
    );
    assert!(host_link(&lan, "lan0.20").is_none());
    assert_eq!(lan.leased("v20b"), 0);
}

#[test]
fn a_same_named_link_that_is_not_the_vlan_is_a_conflict() {
    let lan = Lan::new();
    // VLAN 31 named like VLAN 30, and a dummy named like a VLAN.
    lan.host.ip(&[
        "link", "add", "link", "lan0", "name", "lan0.30", "type", "vlan", "id", "31",
    ]);
    lan.host.ip(&["link", "add", "lan0.32", "type", "dummy"]);
    let mut report = Vec::new();
    for parent in ["lan0.30", "lan0.32"] {
        let opt = format!("parent={parent}");
        let out = lan.cli(
            &[
                "network",
                "create",
                "--subnet",
                "10.30.0.0/24",
                "-o",
                &opt,
                "bad",
            ],
            "",
        );
        assert_eq!(out.code, 5, "{}", out.stderr);
        report.push(out.stderr.trim().to_owned());
    }
    assert_eq!(
        report,
        [
            "oci-macvlan: error: parent interface lan0.30 exists but is VLAN 31, not VLAN 30 on lan0: oci-macvlan will not use it",
            "oci-macvlan: error: parent interface lan0.32 exists but is a dummy link, not VLAN 32 on lan0: oci-macvlan will not use it",
        ]
    );
    assert!(lan.cli_ok(&["network", "ls"], "").lines().count() == 1);
    assert_eq!(details(&lan, "lan0.30")["linkinfo"]["info_data"]["id"], 31);
}

#[test]
fn a_shared_owned_parent_goes_with_the_last_network_in_either_order() {
    for creator_removed_first in [true, false] {
        let lan = Lan::new();
        create(&lan, "a", "10.40.0.0/24", Some("lan0.40"), &[]);
        create(&lan, "b", "10.41.0.0/24", Some("lan0.40"), &[]);
        let (first, second) = if creator_removed_first {
            ("a", "b")
        } else {
            ("b", "a")
        };
        lan.cli_ok(&["network", "rm", first], "");
        assert!(
            host_link(&lan, "lan0.40").is_some(),
            "removed with {second} still on it (creator first: {creator_removed_first})"
        );
        lan.cli_ok(&["network", "rm", second], "");
        assert!(
            host_link(&lan, "lan0.40").is_none(),
            "left behind (creator first: {creator_removed_first})"
        );
        assert!(
            host_link(&lan, "lan0").is_some(),
            "the base link was deleted"
        );
    }
}

#[test]
fn two_vlans_on_one_trunk_are_isolated() {
    let lan = Lan::new();
    // The same subnet on both VLANs, its addresses in two namespaces at the far end of the trunk
    // (VLAN 60's end moved to a peer namespace): reaching an address means reaching its VLAN.
    router_vlan(&lan, 50, "10.55.0.50/24");
    router_vlan(&lan, 60, "10.55.0.60/24");
    let peer = TestNetns::new("omt-peer-");
    lan.router
        .ip(&["link", "set", "rtr.60", "netns", &peer.name]);
    peer.ip(&["addr", "add", "10.55.0.60/24", "dev", "rtr.60"]);
    peer.ip(&["link", "set", "rtr.60", "up"]);
    create(&lan, "v50", "10.55.0.0/24", Some("lan0.50"), &[]);
    create(&lan, "v60", "10.55.0.0/24", Some("lan0.60"), &[]);
    let (c50, _) = attach(
        &lan,
        "c50",
        &[(ANN, "v50"), ("oci-macvlan.ip", "10.55.0.5")],
    );
    let (c60, _) = attach(
        &lan,
        "c60",
        &[(ANN, "v60"), ("oci-macvlan.ip", "10.55.0.6")],
    );
    assert!(c50.ping("10.55.0.50"), "VLAN 50 to its far end");
    assert!(c60.ping("10.55.0.60"), "VLAN 60 to its far end");
    assert!(!c50.ping("10.55.0.60"), "VLAN 50 reached VLAN 60's far end");
    assert!(!c60.ping("10.55.0.50"), "VLAN 60 reached VLAN 50's far end");
    assert!(
        !c50.ping("10.55.0.6"),
        "VLAN 50 reached a container on VLAN 60"
    );
}

#[test]
fn a_network_without_parent_lives_on_its_own_dummy() {
    let lan = Lan::new();
    let id = create(
        &lan,
        "island",
        "10.90.0.0/24",
        None,
        &["--gateway", "10.90.0.1"],
    );
    let dummy = format!("dm-{}", &id[..12]);
    let link = details(&lan, &dummy);
    assert_eq!(link["linkinfo"]["info_kind"], "dummy", "{link}");
    assert_eq!(link["ifalias"], OWNER_ALIAS);
    let inspect = &lan.inspect("island")[0];
    assert_eq!(inspect["Internal"], true);

    let (a, sa) = attach(&lan, "a", &[(ANN, "island")]);
    let (b, sb) = attach(&lan, "b", &[(ANN, "island")]);
    assert!(a.ping("10.90.0.3"), "a cannot reach b");
    assert!(b.ping("10.90.0.2"), "b cannot reach a");
    assert!(
        a.routes(false).iter().all(|r| r["dst"] != "default"),
        "an internal network has no default route"
    );
    lan.cli_ok(&["hook", "poststop"], &sa);
    lan.cli_ok(&["hook", "poststop"], &sb);
    lan.cli_ok(&["network", "rm", "island"], "");
    assert!(
        host_link(&lan, &dummy).is_none(),
        "the dummy outlived its network"
    );
}

#[test]
fn dual_stack_static_addresses_on_a_vlan_parent_and_on_none() {
    for parent in [Some("lan0.70"), None] {
        let lan = Lan::new();
        router_vlan(&lan, 70, "10.70.0.1/24");
        lan.router
            .ip(&["addr", "add", "fd70::1/64", "dev", "rtr.70", "nodad"]);
        create(
            &lan,
            "ds",
            "10.70.0.0/24",
            parent,
            &[
                "--gateway",
                "10.70.0.1",
                "--subnet",
                "fd70::/64",
                "--gateway",
                "fd70::1",
            ],
        );
        let (c, state) = attach(
            &lan,
            "c",
            &[
                (ANN, "ds"),
                ("oci-macvlan.ip", "10.70.0.7"),
                ("oci-macvlan.ip6", "fd70::7"),
            ],
        );
        let mut addresses = c.addresses("eth0");
        addresses.retain(|a| !a.starts_with("fe80"));
        assert_eq!(
            addresses,
            ["10.70.0.7/24", "fd70::7/64"],
            "parent {parent:?}"
        );
        let on_vlan = parent.is_some();
        assert_eq!(c.ping("10.70.0.1"), on_vlan, "parent {parent:?}");
        assert_eq!(c.ping("fd70::1"), on_vlan, "parent {parent:?}");
        assert_eq!(
            c.routes(false).iter().any(|r| r["dst"] == "default"),
            on_vlan,
            "parent {parent:?}"
        );
        lan.cli_ok(&["hook", "poststop"], &state);
        assert_eq!(lan.leased("ds"), 0);
    }
}

#[test]
fn doctor_on_a_kernel_with_8021q() {
    let lan = Lan::new();
    let out = lan.cli(&["doctor", "--json", "-o", "parent=lan0.80"], "");
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(out.code, 0, "{report:#}");
    let status = |name: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == name)
            .map(|c| c["status"].clone())
    };
    assert_eq!(status("802.1q"), Some("ok".into()));
    assert_eq!(status("macvlan"), Some("ok".into()));
    assert!(
        host_link(&lan, "lan0.80").is_none(),
        "doctor created the parent"
    );
}

/// On this kernel too, an interface name the host namespace also has is no obstacle for the
/// container's macvlan (a kernel that checks the name where the link is made reports it taken,
/// and the macvlan is made under a temporary name and renamed inside the container).
#[test]
fn an_interface_name_the_host_also_has() {
    let lan = Lan::new();
    create(
        &lan,
        "lan",
        "10.91.0.0/24",
        Some("lan0"),
        &["--gateway", "10.91.0.1"],
    );
    lan.host.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "eth0peer",
    ]);
    let (ns, state) = attach(&lan, "a", &[(ANN, "lan")]);
    let eth0 = ns.link("eth0").expect("eth0 in the container");
    assert_eq!(eth0["linkinfo"]["info_kind"], "macvlan", "{eth0}");
    assert_eq!(ns.addresses("eth0"), ["10.91.0.2/24"]);
    assert_eq!(
        host_link(&lan, "eth0").unwrap()["linkinfo"]["info_kind"],
        "veth"
    );
    let names: Vec<Value> = ns.links().iter().map(|l| l["ifname"].clone()).collect();
    assert_eq!(names, ["lo", "eth0"], "no temporary name left");
    lan.cli_ok(&["hook", "poststop"], &state);
    lan.host.ip(&["link", "del", "eth0"]);
}

/// Host access on an 802.1q parent that `network create` makes: the host link goes on the VLAN;
/// after a reboot (the VLAN, the host link and the state dir gone) the first attach makes the
/// VLAN, then the host link, then the container's route, and the host reaches the container
/// again; `network rm` of the last network deletes both links.
#[test]
fn host_access_on_an_owned_vlan_parent_is_made_again_after_a_reboot() {
    let lan = Lan::new();
    router_vlan(&lan, 61, "10.61.0.1/24");
    let id = create(
        &lan,
        "v61",
        "10.61.0.0/24",
        Some("lan0.61"),
        &["--gateway", "10.61.0.1", "-o", "host_access=10.61.0.3"],
    );
    let link = format!("ha-{}", &id[..12]);
    let made = details(&lan, &link);
    assert_eq!(made["link"], "lan0.61", "{made}");
    assert_eq!(made["ifalias"], OWNER_ALIAS, "{made}");
    let (c1, state) = attach(&lan, "c1", &[(ANN, "v61")]);
    assert!(
        lan.host.ping("10.61.0.2"),
        "the host cannot ping its container"
    );
    assert!(c1.ping("10.61.0.3"), "the container cannot ping the host");
    lan.cli_ok(&["hook", "poststop"], &state);

    // A reboot: the kernel forgets both links, the state dir (a tmpfs) is empty.
    lan.host.ip(&["link", "del", "lan0.61"]);
    assert!(host_link(&lan, &link).is_none());
    std::fs::remove_dir_all(lan.state_dir()).unwrap();
    let (c2, _) = attach(&lan, "c2", &[(ANN, "v61")]);
    assert_eq!(details(&lan, "lan0.61")["ifalias"], OWNER_ALIAS);
    let again = details(&lan, &link);
    assert_eq!(again["link"], "lan0.61", "{again}");
    assert_eq!(lan.host.routes_via(&link), ["10.61.0.2"]);
    assert!(
        lan.host.ping("10.61.0.2"),
        "the host cannot ping after the reboot"
    );
    assert!(
        c2.ping("10.61.0.3"),
        "the container cannot ping the host after the reboot"
    );
    let stopped = lan.fake_bundle("c2", &[(ANN, "v61")], &c2.path(), "stopped");
    lan.cli_ok(&["hook", "poststop"], &stopped);
    lan.cli_ok(&["network", "rm", "v61"], "");
    assert_eq!(lan.host_link_names(), ["lo", Lan::PARENT]);
}
