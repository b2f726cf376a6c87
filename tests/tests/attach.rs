//! Privileged tier: attach into a plain network namespace and detach, checked in the kernel's
//! own view (`ip -j`), for each macvlan mode.

#![allow(clippy::unwrap_used)]

use oci_macvlan_tests::{Lan, TestNetns, privileged};
use serde_json::{Value, json};

const NET: &str = "lan77";
const ANN: &str = "oci-macvlan.networks";

#[privileged]
fn attach_and_detach_in_each_mode() {
    for mode in ["bridge", "private", "vepa", "passthru"] {
        let lan = Lan::new();
        let container = TestNetns::new("omt-ctr-");
        let parent_before = lan.parent_view();
        lan.create_network(NET, &["-o", &format!("macvlan_mode={mode}")]);
        let state = lan.fake_bundle("c1", &[(ANN, NET)], &container.path(), "creating");

        lan.cli_ok(&["hook"], &state);

        let eth0 = container
            .link("eth0")
            .unwrap_or_else(|| panic!("{mode}: no eth0 in the container"));
        let parent_index = parent_before["ifindex"].as_u64().unwrap();
        assert_eq!(eth0["linkinfo"]["info_kind"], "macvlan", "{mode}: {eth0}");
        assert_eq!(
            eth0["linkinfo"]["info_data"]["mode"], mode,
            "{mode}: {eth0}"
        );
        assert_eq!(
            eth0["link_index"].as_u64(),
            Some(parent_index),
            "{mode}: macvlan not on lan0: {eth0}"
        );
        assert!(
            eth0["flags"]
                .as_array()
                .unwrap()
                .contains(&Value::from("UP")),
            "{mode}: eth0 is down"
        );
        assert_eq!(container.addresses("eth0"), ["192.168.77.2/24"], "{mode}");
        let default: Vec<Value> = container
            .routes(false)
            .into_iter()
            .filter(|r| r["dst"] == "default")
            .collect();
        assert_eq!(default.len(), 1, "{mode}: {default:?}");
        assert_eq!(default[0]["gateway"], Lan::GATEWAY);
        assert_eq!(default[0]["dev"], "eth0");
        let lo = container.link("lo").unwrap();
        assert!(
            lo["flags"].as_array().unwrap().contains(&Value::from("UP")),
            "lo is up"
        );
        assert!(
            container.ping(Lan::GATEWAY),
            "{mode}: container cannot reach the router"
        );

        let host_links = lan.host_link_names();
        assert_eq!(
            host_links,
            ["lo", Lan::PARENT],
            "{mode}: nothing of ours in the host namespace"
        );
        assert_eq!(lan.leased(NET), 1);
        assert_eq!(lan.records(), ["c1.json"]);

        let stopped = lan.fake_bundle("c1", &[(ANN, NET)], &container.path(), "stopped");
        lan.cli_ok(&["hook"], &stopped);
        assert!(
            container.link("eth0").is_none(),
            "{mode}: detach left eth0 in a namespace that outlives the container"
        );
        assert_eq!(lan.leased(NET), 0, "{mode}: lease left after detach");
        assert!(lan.records().is_empty(), "{mode}: record left after detach");

        // A second detach, with an empty environment and no bundle: a no-op that succeeds.
        lan.cli_ok(
            &["hook", "poststop"],
            r#"{"ociVersion":"1.0.2","id":"c1","status":"stopped"}"#,
        );
        if mode != "passthru" {
            // passthru puts the parent in promiscuous mode while the macvlan exists.
            assert_eq!(
                lan.parent_view(),
                parent_before,
                "{mode}: the parent was modified"
            );
        }
    }
}

#[privileged]
fn rerun_create_runtime_returns_the_same_endpoint() {
    let lan = Lan::new();
    let container = TestNetns::new("omt-ctr-");
    lan.create_network(NET, &[]);
    let state = lan.fake_bundle(
        "c1",
        &[(ANN, NET), ("oci-macvlan.mac", "02:aa:bb:cc:dd:01")],
        &container.path(),
        "created",
    );
    lan.cli_ok(&["hook", "createRuntime"], &state);
    lan.cli_ok(&["hook", "createRuntime"], &state);
    assert_eq!(container.addresses("eth0"), ["192.168.77.2/24"]);
    assert_eq!(
        container.link("eth0").unwrap()["address"],
        "02:aa:bb:cc:dd:01"
    );
    assert_eq!(lan.leased(NET), 1);
    lan.cli_ok(&["hook", "poststop"], &state);
    assert_eq!(lan.leased(NET), 0);
}

#[privileged]
fn default_mac_is_stable_across_restarts() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    let mut macs = Vec::new();
    for _ in 0..2 {
        let container = TestNetns::new("omt-ctr-");
        let state = lan.fake_bundle("web", &[(ANN, NET)], &container.path(), "creating");
        lan.cli_ok(&["hook"], &state);
        let mac = container.link("eth0").unwrap()["address"]
            .as_str()
            .unwrap()
            .to_owned();
        let first_octet = u8::from_str_radix(&mac[..2], 16).unwrap();
        assert_eq!(
            first_octet & 0x03,
            0x02,
            "locally administered unicast: {mac}"
        );
        macs.push(mac);
        lan.cli_ok(&["hook", "poststop"], &state);
    }
    assert_eq!(macs[0], macs[1]);
}

#[privileged]
fn inspect_shows_the_network_and_its_endpoints() {
    let lan = Lan::new();
    let container = TestNetns::new("omt-ctr-");
    lan.cli_ok(
        &[
            "network",
            "create",
            "--subnet",
            Lan::SUBNET,
            "--gateway",
            Lan::GATEWAY,
            "--ip-range",
            "192.168.77.128/25",
            "--aux-address",
            "router2=192.168.77.2",
            "-o",
            "parent=lan0",
            "-o",
            "macvlan_mode=bridge",
            NET,
        ],
        "",
    );
    let state = lan.fake_bundle("c1", &[(ANN, NET)], &container.path(), "creating");
    lan.cli_ok(&["hook"], &state);
    let mut inspect = lan.inspect(NET);
    // Docker's shape: keyed by endpoint id (which hashes the random network id), with the
    // container's MAC as its record has it.
    let containers = inspect[0]["Containers"].as_object().unwrap().clone();
    let (key, endpoint) = containers.iter().next().unwrap();
    assert_eq!(
        (containers.len(), &endpoint["EndpointID"]),
        (1, &json!(key))
    );
    assert_eq!(
        endpoint["MacAddress"],
        container.link("eth0").unwrap()["address"]
    );
    inspect[0]["Containers"] = json!({ "[endpoint-id]": endpoint });
    insta::assert_json_snapshot!(inspect, {
        "[].Id" => "[id]",
        "[].Created" => "[created]",
        "[].Containers.*.EndpointID" => "[endpoint-id]",
    });
    let ls = lan.cli_ok(&["network", "ls"], "");
    assert!(ls.lines().nth(1).unwrap().contains("lan77"), "{ls}");
    lan.cli_ok(&["hook", "poststop"], &state);
    assert_eq!(lan.cli_ok(&["network", "rm", NET], "").trim(), NET);
    assert_eq!(lan.cli(&["network", "inspect", NET], "").code, 4);
}

#[privileged]
fn neighbours_learn_the_address_without_traffic() {
    let lan = Lan::new();
    let container = TestNetns::new("omt-ctr-");
    // Let the router create entries from gratuitous ARP and unsolicited NA, as a LAN peer that
    // tracks them would, and give it an IPv6 address on the LAN.
    lan.router.ip(&["link", "set", "rtr", "down"]);
    lan.router.sysctl("net/ipv4/conf/rtr/arp_accept", "1");
    lan.router.ip(&["link", "set", "rtr", "up"]);
    lan.router
        .ip(&["-6", "addr", "add", "fd77::1/64", "dev", "rtr", "nodad"]);
    // The kernel honours accept_untracked_na only on a forwarding interface (a router's).
    lan.router.sysctl("net/ipv6/conf/rtr/forwarding", "1");
    lan.router
        .sysctl("net/ipv6/conf/rtr/accept_untracked_na", "1");
    lan.create_network(NET, &["--subnet", "fd77::/64", "--gateway", "fd77::1"]);
    let mac = "02:aa:bb:cc:dd:07";
    let state = lan.fake_bundle(
        "c1",
        &[(ANN, NET), ("oci-macvlan.mac", mac)],
        &container.path(),
        "creating",
    );
    lan.cli_ok(&["hook"], &state);
    for (ip, what) in [
        ("192.168.77.2", "gratuitous ARP"),
        ("fd77::2", "unsolicited NA"),
    ] {
        let mut learned = String::new();
        for _ in 0..50 {
            learned = lan.router.ip(&["neigh", "show", ip, "dev", "rtr"]);
            if learned.contains(mac) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(
            learned.contains(mac),
            "router did not learn {ip} from a {what}: {learned:?}"
        );
    }
    // The network's addresses are the configuration: no RA, no SLAAC.
    assert_eq!(container.sysctl_value("net/ipv6/conf/eth0/accept_ra"), "0");
    assert_eq!(container.sysctl_value("net/ipv6/conf/eth0/autoconf"), "0");
    assert_eq!(
        container.sysctl_value("net/ipv6/conf/eth0/disable_ipv6"),
        "0"
    );
    lan.cli_ok(&["hook", "poststop"], &state);
}

#[privileged]
fn ipv6_is_off_on_a_link_whose_network_has_no_ipv6() {
    let lan = Lan::new();
    let container = TestNetns::new("omt-ctr-");
    lan.create_network(NET, &[]);
    let state = lan.fake_bundle("c1", &[(ANN, NET)], &container.path(), "creating");
    lan.cli_ok(&["hook"], &state);
    assert_eq!(
        container.sysctl_value("net/ipv6/conf/eth0/disable_ipv6"),
        "1"
    );
    let v6 = container.ip(&["-6", "-o", "addr", "show", "dev", "eth0"]);
    assert_eq!(v6.trim(), "", "no IPv6 address, not even link-local");
    lan.cli_ok(&["hook", "poststop"], &state);
}

#[privileged]
fn a_container_without_the_annotation_is_left_alone() {
    let lan = Lan::new();
    let container = TestNetns::new("omt-ctr-");
    lan.create_network(NET, &[]);
    let links_before = container.links().len();

    // Opted out in its config (the state carries no annotations): exit 0, nothing done.
    let state = lan.fake_bundle(
        "plain",
        &[("org.example.role", "web")],
        &container.path(),
        "creating",
    );
    lan.cli_ok(&["hook"], &state);

    // The state's annotations say it is not ours: the config is not even read.
    std::fs::remove_file(lan.tmp().join("bundle-plain/config.json")).unwrap();
    let mut with_annotations: Value = serde_json::from_str(&state).unwrap();
    with_annotations["annotations"] = serde_json::json!({"org.example.role": "web"});
    lan.cli_ok(&["hook"], &with_annotations.to_string());

    assert_eq!(container.links().len(), links_before, "a link was created");
    assert_eq!(lan.leased(NET), 0);
    assert!(lan.records().is_empty());
}

#[privileged]
fn dual_stack_with_an_ipv6_slash_64_and_a_static_ip6() {
    let lan = Lan::new();
    lan.router
        .ip(&["-6", "addr", "add", "fd77::1/64", "dev", "rtr", "nodad"]);
    lan.create_network(
        NET,
        &["--ipv6", "--subnet", "fd77::/64", "--gateway", "fd77::1"],
    );
    let a = TestNetns::new("omt-ctr-");
    let b = TestNetns::new("omt-ctr-");
    let static_ip6 = [(ANN, NET), ("oci-macvlan.ip6", "fd77::ffff:a")];
    lan.cli_ok(
        &["hook"],
        &lan.fake_bundle("a", &static_ip6, &a.path(), "creating"),
    );
    lan.cli_ok(
        &["hook"],
        &lan.fake_bundle("b", &[(ANN, NET)], &b.path(), "creating"),
    );

    assert_eq!(a.addresses("eth0"), ["192.168.77.2/24", "fd77::ffff:a/64"]);
    assert_eq!(b.addresses("eth0"), ["192.168.77.3/24", "fd77::2/64"]);
    for ns in [&a, &b] {
        let default: Vec<Value> = ns
            .routes(true)
            .into_iter()
            .filter(|r| r["dst"] == "default")
            .collect();
        assert_eq!(default.len(), 1, "{default:?}");
        assert_eq!(default[0]["gateway"], "fd77::1");
        assert_eq!(default[0]["dev"], "eth0");
    }
    assert!(a.ping("fd77::1"), "a cannot reach the router over IPv6");
    assert!(b.ping("fd77::ffff:a"), "b cannot reach a over IPv6");
    let usage = &lan.inspect(NET)[0]["Usage"];
    assert_eq!(usage[1]["Subnet"], "fd77::/64");
    assert_eq!(
        usage[1]["InUse"],
        serde_json::json!(["fd77::2", "fd77::ffff:a"])
    );
    // 2^64 addresses, less the subnet-router anycast, the gateway and the two leases.
    assert_eq!(usage[1]["DynamicAvailable"], u64::MAX - 3);

    for (id, ns) in [("a", &a), ("b", &b)] {
        lan.cli_ok(&["hook"], &lan.fake_bundle(id, &[], &ns.path(), "stopped"));
        assert!(ns.link("eth0").is_none(), "{id}: eth0 left after detach");
    }
    assert_eq!(lan.leased(NET), 0);
}

/// The container's interface name may be taken in the host namespace (this kernel creates the
/// macvlan in the container's directly; one that checks the host's names too, as Debian's 6.1 in
/// the VM tier does, gets it under a temporary name, renamed inside) but not in the container: a link there that is not ours is
/// refused, untouched, and nothing is left of the attach.
#[privileged]
fn an_interface_name_taken_in_the_host_or_the_container() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    lan.host.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "eth0peer",
    ]);
    let a = TestNetns::new("omt-ctr-");
    lan.cli_ok(
        &["hook"],
        &lan.fake_bundle("a", &[(ANN, NET)], &a.path(), "creating"),
    );
    let eth0 = a.link("eth0").expect("eth0 in the container");
    assert_eq!(eth0["linkinfo"]["info_kind"], "macvlan", "{eth0}");
    assert_eq!(a.addresses("eth0"), ["192.168.77.2/24"]);
    assert_eq!(
        lan.host.link("eth0").unwrap()["linkinfo"]["info_kind"],
        "veth"
    );
    lan.cli_ok(&["hook"], &lan.fake_bundle("a", &[], &a.path(), "stopped"));
    lan.host.ip(&["link", "del", "eth0"]);

    let b = TestNetns::new("omt-ctr-");
    b.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "other",
    ]);
    let out = lan.cli(
        &["hook"],
        &lan.fake_bundle("b", &[(ANN, NET)], &b.path(), "creating"),
    );
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert_eq!(
        out.stderr.trim(),
        "oci-macvlan: error: attach of container b: interface eth0 already exists in the container's network namespace"
    );
    assert_eq!(b.link("eth0").unwrap()["linkinfo"]["info_kind"], "veth");
    let names: Vec<Value> = b.links().iter().map(|l| l["ifname"].clone()).collect();
    assert_eq!(names, ["lo", "other", "eth0"]);
    lan.assert_no_residue(&[NET], "eth0 taken in the container");
}
