//! Host access (`-o host_access`): in the simulated host (the namespace that runs runc and owns
//! the parent, with its own addresses on it), the host and its containers reach each other
//! through the network's host link, while the LAN's router and the host reach each other as
//! before; the host's own addresses and routes are never changed. Two networks on one parent;
//! 64 concurrent attaches and detaches; refusals at `network create`. The link lost, set down or
//! flushed and repaired is in `host_access_repair.rs`; the shared setup in
//! `oci_macvlan_tests::host_access`.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use oci_macvlan_tests::host_access::{
    ACCESS, NET, assert_lan_and_host_reach_each_other, create_dual_stack, host_link,
    host_own_routes, lan_with_host_addresses, on_lan0, ping, runc,
};
use oci_macvlan_tests::{Lan, Monitor, TestNetns, privileged};

#[privileged]
fn the_host_and_its_runc_container_reach_each_other_and_the_lan_is_untouched() {
    let lan = lan_with_host_addresses();
    let routes_before = host_own_routes(&lan.host);
    let addresses_before = lan.host.addresses(Lan::PARENT);
    let parent_before = lan.parent_view();
    assert_lan_and_host_reach_each_other(&lan, "before");
    let monitor = Monitor::start(&lan, &["link", "address", "route"]);

    create_dual_stack(&lan, NET, &["-o", ACCESS]);
    let link = host_link(&lan, NET);
    let view = lan
        .host
        .link(&link)
        .expect("network create makes the host link");
    assert_eq!(view["ifalias"], "created by oci-macvlan", "{view}");
    assert_eq!(view["linkinfo"]["info_kind"], "macvlan", "{view}");
    assert_eq!(view["linkinfo"]["info_data"]["mode"], "bridge", "{view}");
    assert_eq!(
        lan.host.addresses(&link),
        ["192.168.77.3/32", "fd00:77::3/128"]
    );
    for (key, value) in [
        ("ipv4/conf/LINK/arp_ignore", "1"),
        ("ipv4/conf/LINK/arp_notify", "1"),
        ("ipv6/conf/LINK/accept_ra", "0"),
        ("ipv6/conf/LINK/autoconf", "0"),
    ] {
        let key = format!("net/{}", key.replace("LINK", &link));
        assert_eq!(lan.host.sysctl_value(&key), value, "{key}");
    }
    assert_eq!(
        lan.inspect(NET)[0]["HostAccess"]["Addresses"],
        serde_json::json!(["192.168.77.3", "fd00:77::3"])
    );

    let c = runc(&lan, NET);
    let (ok, addrs) = c.exec(&["ip", "addr", "show", "dev", "eth0"]);
    assert!(
        ok && addrs.contains("192.168.77.2/24") && addrs.contains("fd00:77::2/64"),
        "{addrs}"
    );
    assert_eq!(lan.host.routes_via(&link), ["192.168.77.2", "fd00:77::2"]);
    assert!(
        lan.host.ping("192.168.77.2"),
        "the host cannot ping its container"
    );
    assert!(
        lan.host.ping("fd00:77::2"),
        "the host cannot ping its container (v6)"
    );
    ping(&c, "192.168.77.3");
    ping(&c, "fd00:77::3");
    ping(&c, Lan::GATEWAY);
    assert_lan_and_host_reach_each_other(&lan, "during");
    assert_eq!(
        host_own_routes(&lan.host),
        routes_before,
        "the host's routes changed"
    );
    assert_eq!(lan.host.addresses(Lan::PARENT), addresses_before);
    let verify = lan.cli(&["verify"], "");
    assert_eq!(verify.code, 0, "{}", verify.stdout);

    c.stop().unwrap();
    assert_eq!(
        lan.host.routes_via(&link),
        Vec::<String>::new(),
        "poststop left routes"
    );
    assert!(!lan.host.ping("192.168.77.2"));
    assert_lan_and_host_reach_each_other(&lan, "after");

    lan.cli_ok(&["network", "rm", NET], "");
    assert!(
        lan.host.link(&link).is_none(),
        "network rm left the host link"
    );
    assert_eq!(lan.host_link_names(), ["lo", Lan::PARENT]);
    assert_eq!(host_own_routes(&lan.host), routes_before);
    assert_eq!(lan.host.addresses(Lan::PARENT), addresses_before);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while lan.parent_view() != parent_before && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(lan.parent_view(), parent_before, "the parent was modified");
    // Nothing appeared in the host namespace but the host link, its addresses and routes (and
    // the parent's promiscuity, which its macvlans change).
    let events = monitor.events();
    assert!(events.iter().any(|e| e.contains(&link)), "{events:#?}");
    let others: Vec<&String> = events
        .iter()
        .filter(|e| !e.contains(&link) && !e.contains(&format!(": {}@", Lan::PARENT)))
        .collect();
    assert!(
        others.is_empty(),
        "events beside the host link's: {others:#?}"
    );
}

#[privileged]
fn two_networks_with_host_access_on_one_parent_and_a_container_on_both() {
    let lan = lan_with_host_addresses();
    create_dual_stack(&lan, NET, &["-o", ACCESS]);
    lan.cli_ok(
        &on_lan0("lan10", "10.77.0.0/24", &["host_access=10.77.0.3"]),
        "",
    );
    let (a, b) = (host_link(&lan, NET), host_link(&lan, "lan10"));
    assert_ne!(a, b);
    let both = runc(&lan, &format!("{NET},lan10"));
    let one = runc(&lan, "lan10");
    assert_eq!(lan.host.routes_via(&a), ["192.168.77.2", "fd00:77::2"]);
    assert_eq!(lan.host.routes_via(&b), ["10.77.0.2", "10.77.0.4"]);
    for ip in ["192.168.77.2", "fd00:77::2", "10.77.0.2", "10.77.0.4"] {
        assert!(lan.host.ping(ip), "the host cannot ping {ip}");
    }
    ping(&both, "192.168.77.3");
    ping(&both, "10.77.0.3");
    ping(&one, "10.77.0.3");
    both.stop().unwrap();
    assert_eq!(lan.host.routes_via(&a), Vec::<String>::new());
    assert_eq!(lan.host.routes_via(&b), ["10.77.0.4"]);
    one.stop().unwrap();
    assert_eq!(lan.host.routes_via(&b), Vec::<String>::new());
    lan.cli_ok(&["network", "rm", NET, "lan10"], "");
    assert_eq!(lan.host_link_names(), ["lo", Lan::PARENT]);
}

/// `network create` refuses a host access address the host or a container has already, and
/// the modes where it cannot work, with the exit code of each, and makes nothing.
#[privileged]
fn network_create_refuses_what_cannot_work_and_makes_nothing() {
    let lan = lan_with_host_addresses();
    create_dual_stack(&lan, NET, &["-o", ACCESS]);
    // A container on an overlapping network holds .2 in the shared address space.
    lan.cli_ok(&on_lan0("plain", "192.168.77.0/25", &[]), "");
    let ns = TestNetns::new("omt-ctr-");
    let state = lan.fake_bundle(
        "holder",
        &[
            ("oci-macvlan.networks", "plain"),
            ("oci-macvlan.ip", "192.168.77.20"),
        ],
        &ns.path(),
        "creating",
    );
    lan.cli_ok(&["hook"], &state);
    let cases: &[(&str, &[&str], i32, &str)] = &[
        (
            "on the host",
            &["-o", "host_access=192.168.77.254"],
            5,
            "the host's link lan0 has it; pick a free address of the network, outside the LAN's DHCP pool and the network's --ip-range",
        ),
        (
            "another network's",
            &["-o", "host_access=192.168.77.3"],
            5,
            "it is the host_access of network lan77",
        ),
        (
            "leased",
            &["-o", "host_access=192.168.77.20"],
            5,
            "container holder holds it on network plain",
        ),
        (
            "private",
            &[
                "-o",
                "host_access=192.168.77.9",
                "-o",
                "macvlan_mode=private",
            ],
            3,
            "needs macvlan_mode=bridge",
        ),
        (
            "outside",
            &["-o", "host_access=10.9.9.9"],
            3,
            "outside every --subnet",
        ),
        (
            "gateway",
            &["-o", "host_access=192.168.77.1"],
            3,
            "it is the gateway",
        ),
    ];
    let links = lan.host_link_names();
    for (what, extra, code, says) in cases {
        let mut args = vec![
            "network",
            "create",
            "--subnet",
            "192.168.77.0/24",
            "--gateway",
            Lan::GATEWAY,
            "-o",
            "parent=lan0",
        ];
        args.extend_from_slice(extra);
        args.push("refused");
        let out = lan.cli(&args, "");
        assert_eq!(out.code, *code, "{what}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{what}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{what}: {}", out.stderr);
        assert_eq!(lan.host_link_names(), links, "{what}: a link was left");
        assert!(
            !lan.config_dir().join("networks/refused.json").exists(),
            "{what}"
        );
    }
    lan.cli_ok(
        &["hook", "poststop"],
        &lan.fake_bundle(
            "holder",
            &[("oci-macvlan.networks", "plain")],
            &ns.path(),
            "stopped",
        ),
    );
}

/// 64 attaches at once, with the host link deleted beforehand: every one succeeds, the link is
/// made once, and the host has exactly 64 routes through it; 64 detaches at once leave none.
#[privileged]
fn sixty_four_concurrent_attaches_and_detaches_leave_exactly_their_routes() {
    const HOOKS: usize = 64;
    let lan = lan_with_host_addresses();
    lan.create_network(NET, &["-o", "host_access=192.168.77.3"]);
    let link = host_link(&lan, NET);
    lan.host.ip(&["link", "del", &link]);
    let containers: Vec<TestNetns> = (0..HOOKS).map(|_| TestNetns::new("omt-race-")).collect();
    let states = |status: &str| -> Vec<String> {
        containers
            .iter()
            .enumerate()
            .map(|(i, ns)| {
                lan.fake_bundle(
                    &format!("race{i}"),
                    &[("oci-macvlan.networks", NET)],
                    &ns.path(),
                    status,
                )
            })
            .collect()
    };
    for out in lan.cli_together(&["hook"], &states("creating")) {
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    let routes = lan.host.routes_via(&link);
    assert_eq!(routes.len(), HOOKS, "{routes:?}");
    assert_eq!(
        routes
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len(),
        HOOKS
    );
    assert_eq!(lan.cli(&["verify"], "").code, 0);
    for out in lan.cli_together(&["hook", "poststop"], &states("stopped")) {
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    assert_eq!(lan.host.routes_via(&link), Vec::<String>::new());
    assert!(lan.host.link(&link).is_some());
    assert_eq!(lan.cli(&["verify"], "").code, 0);
}

/// On a network with host access and no `--gateway`, a container may not ask for the address
/// of a router the host sends through (its default route's): the host route to the container
/// would take the host's own traffic to that router. Refused, and nothing is left.
#[privileged]
fn a_container_may_not_take_the_address_of_the_hosts_router() {
    let lan = lan_with_host_addresses();
    lan.host.ip(&[
        "route",
        "add",
        "default",
        "via",
        Lan::GATEWAY,
        "dev",
        Lan::PARENT,
    ]);
    lan.cli_ok(
        &on_lan0(NET, "192.168.77.0/24", &["host_access=192.168.77.3"]),
        "",
    );
    let link = host_link(&lan, NET);
    let ns = TestNetns::new("omt-ctr-");
    let state = |status| {
        lan.fake_bundle(
            "thief",
            &[
                ("oci-macvlan.networks", NET),
                ("oci-macvlan.ip", Lan::GATEWAY),
            ],
            &ns.path(),
            status,
        )
    };
    let out = lan.cli(&["hook"], &state("creating"));
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert!(out.stderr.contains(Lan::GATEWAY), "{}", out.stderr);
    assert_eq!(lan.host.routes_via(&link), Vec::<String>::new());
    assert!(
        lan.host
            .ip(&["route", "get", Lan::GATEWAY])
            .contains("dev lan0")
    );
    assert_eq!(lan.leased(NET), 0);
    assert_eq!(lan.records(), Vec::<String>::new());

    // A router the host's operator reaches through the host link is a container: its own.
    lan.host.ip(&[
        "route",
        "add",
        "10.8.0.0/24",
        "via",
        "192.168.77.50",
        "dev",
        &link,
        "onlink",
    ]);
    let router = |status| {
        lan.fake_bundle(
            "router",
            &[
                ("oci-macvlan.networks", NET),
                ("oci-macvlan.ip", "192.168.77.50"),
            ],
            &ns.path(),
            status,
        )
    };
    lan.cli_ok(&["hook"], &router("creating"));
    assert_eq!(lan.host.routes_via(&link), ["10.8.0.0/24", "192.168.77.50"]);
    lan.cli_ok(&["hook", "poststop"], &router("stopped"));
}

/// A dual-stack network with an IPv4 host access address only: its containers attach (the
/// host link, without IPv6, takes no IPv6 route: the kernel refuses one there), the host
/// reaches them over IPv4, and `verify` and `gc` ask for no IPv6 route.
#[privileged]
fn a_dual_stack_network_with_ipv4_host_access_only() {
    let lan = lan_with_host_addresses();
    create_dual_stack(&lan, NET, &["-o", "host_access=192.168.77.3"]);
    let link = host_link(&lan, NET);
    let a = runc(&lan, NET);
    assert_eq!(lan.host.routes_via(&link), ["192.168.77.2"]);
    assert!(lan.host.ping("192.168.77.2"));
    ping(&a, "192.168.77.3");
    let verify = lan.cli(&["verify"], "");
    assert_eq!(verify.code, 0, "{}", verify.stdout);
    lan.cli_ok(&["gc"], "");
    assert_eq!(lan.host.routes_via(&link), ["192.168.77.2"]);
    a.stop().unwrap();
    assert_eq!(lan.host.routes_via(&link), Vec::<String>::new());
    assert_eq!(lan.records(), Vec::<String>::new());
    assert_eq!(lan.leased(NET), 0);
}

/// A container id is the caller's to choose: one named like a network's host link (`ha-` and 12
/// characters of the id), on that network, gets a MAC of its own, not the host link's (which
/// would keep its link from coming up, or the host link from being made again).
#[privileged]
fn a_container_named_like_the_host_link_does_not_get_its_mac() {
    let lan = Lan::new();
    lan.create_network(NET, &["-o", "host_access=192.168.77.3"]);
    let link = host_link(&lan, NET);
    let host_mac = lan.host.link(&link).unwrap()["address"].clone();
    let ns = TestNetns::new("omt-ctr-");
    let state = lan.fake_bundle(
        &link,
        &[("oci-macvlan.networks", NET)],
        &ns.path(),
        "creating",
    );
    let out = lan.cli(&["hook"], &state);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_ne!(ns.link("eth0").unwrap()["address"], host_mac);
    lan.cli_ok(&["hook", "poststop"], &state);
}
