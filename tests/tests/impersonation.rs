//! A static address must not impersonate anything on the LAN (DESIGN.md, rule 9): an address
//! that the host itself, a router of the host, a neighbour the host knows, or anyone answering
//! an address-conflict probe holds is refused before anything is written or announced (exit 5,
//! one line naming the address, the network and the holder), on every network, for annotations,
//! `network connect --ip` and `-o host_access`. `-o static_ips` narrows what a container may ask
//! for (exit 3).
//!
//! The LAN: a host namespace (`lan0`, with addresses of its own, and a second link `side0`), the
//! router namespace behind it, and a third machine on the segment (`Lan::add_host`) that holds
//! addresses the host has never talked to: only the probe finds it.

#![allow(clippy::unwrap_used)]

use std::time::Instant;

#[path = "impersonation/common.rs"]
mod common;

use common::*;
use oci_macvlan_tests::host_access::{HOST_V4, HOST_V6};
use oci_macvlan_tests::{Lan, TestNetns, privileged};

/// Each holder, by annotation: the host's own addresses (on the parent and on another link,
/// both families), its router (by a route's gateway and by a nexthop object with
/// `nexthop_compat_mode=0`), its neighbours (permanent, stale), the third machine (only the
/// probe sees it, both families). A failed neighbour entry holds nothing, and a free address
/// still attaches.
#[privileged]
fn a_static_address_the_lan_holds_is_refused_before_anything_is_made() {
    let (lan, other) = lan();
    lan.host.ip(&[
        "route",
        "add",
        "default",
        "via",
        Lan::GATEWAY,
        "dev",
        Lan::PARENT,
    ]);
    lan.host.sysctl("net/ipv4/nexthop_compat_mode", "0");
    lan.host.ip(&[
        "nexthop",
        "add",
        "id",
        "7",
        "via",
        NEXTHOP_ROUTER,
        "dev",
        "lan0",
    ]);
    lan.host.ip(&["route", "add", "10.70.0.0/24", "nhid", "7"]);
    lan.host.ip(&[
        "nexthop",
        "add",
        "id",
        "8",
        "via",
        GROUP_ROUTER,
        "dev",
        "lan0",
    ]);
    lan.host.ip(&["nexthop", "add", "id", "9", "group", "8"]);
    lan.host.ip(&["route", "add", "10.71.0.0/24", "nhid", "9"]);
    lan.host.ip(&[
        "-6",
        "nexthop",
        "add",
        "id",
        "10",
        "via",
        NEXTHOP_ROUTER_V6,
        "dev",
        "lan0",
    ]);
    lan.host
        .ip(&["-6", "route", "add", "fd00:70::/64", "nhid", "10"]);
    let shown = lan.host.ip(&["route", "show", "10.70.0.0/24"]);
    assert!(
        !shown.contains(NEXTHOP_ROUTER),
        "compat mode is off: {shown}"
    );
    let out = create(&lan, NET, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let links = lan.host_link_names();
    let ns = TestNetns::new("omt-ctr-");
    let cases: &[(&str, &str, &str)] = &[
        (
            "oci-macvlan.ip",
            Lan::GATEWAY,
            "the router of the host's default route on lan0",
        ),
        (
            "oci-macvlan.ip",
            NEXTHOP_ROUTER,
            "a router of the host's route to 10.70.0.0/24 on lan0",
        ),
        (
            "oci-macvlan.ip",
            GROUP_ROUTER,
            "a router of the host's route to 10.71.0.0/24 on lan0",
        ),
        (
            "oci-macvlan.ip6",
            NEXTHOP_ROUTER_V6,
            "a router of the host's route to fd00:70::/64 on lan0",
        ),
        ("oci-macvlan.ip", HOST_V4, "the host's link lan0"),
        ("oci-macvlan.ip6", HOST_V6, "the host's link lan0"),
        ("oci-macvlan.ip", SIDE_V4, "the host's link side0"),
        ("oci-macvlan.ip6", SIDE_V6, "the host's link side0"),
        (
            "oci-macvlan.ip",
            NEIGH_PERMANENT,
            "a neighbour 02:00:00:00:00:60 on lan0",
        ),
        (
            "oci-macvlan.ip6",
            NEIGH_STALE,
            "a neighbour 02:00:00:00:00:61 on lan0",
        ),
        ("oci-macvlan.ip", OTHER_V4, "answered the ARP probe"),
        (
            "oci-macvlan.ip6",
            OTHER_V6,
            "answered the neighbour solicitation",
        ),
    ];
    let other_mac = other.host.link("lan0").unwrap()["address"]
        .as_str()
        .unwrap()
        .to_owned();
    // Every row is tried, and those that fail are named together.
    let mut failed = Vec::new();
    for (key, ip, holder) in cases {
        let out = attach(&lan, &ns, "thief", NET, &[(key, ip)]);
        let mut says = vec![*ip, NET, *holder];
        if holder.contains("probe") || holder.contains("solicitation") {
            says.push(&other_mac);
        }
        let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            assert_refused(&lan, &ns, &out, 5, &says, &links, ip);
        }));
        if checked.is_err() {
            failed.push(format!(
                "{ip} ({holder}): exit {} {}",
                out.code,
                out.stderr.trim()
            ));
            if out.code == 0 {
                detach(&lan, &ns, "thief", NET, &[(key, ip)]);
            }
        }
    }
    assert!(
        failed.is_empty(),
        "not refused as they should be:\n{}",
        failed.join("\n")
    );
    // A failed entry is nobody's; a free address attaches (and is probed for, within bounds).
    for ip in [NEIGH_FAILED, "192.168.77.100"] {
        let started = Instant::now();
        let out = attach(&lan, &ns, "free", NET, &[("oci-macvlan.ip", ip)]);
        let took = started.elapsed();
        assert_eq!(out.code, 0, "{ip}: {}", out.stderr);
        assert!(took.as_millis() < 2000, "{ip}: the attach took {took:?}");
        assert!(ns.addresses("eth0").iter().any(|a| a.starts_with(ip)));
        detach(&lan, &ns, "free", NET, &[("oci-macvlan.ip", ip)]);
    }
    // Re-running an attach does not find the container's own address taken.
    let free = [("oci-macvlan.ip", "192.168.77.101")];
    assert_eq!(attach(&lan, &ns, "again", NET, &free).code, 0);
    let twice = attach(&lan, &ns, "again", NET, &free);
    assert_eq!(twice.code, 0, "{}", twice.stderr);
    detach(&lan, &ns, "again", NET, &free);
}

/// `network connect --ip/--ip6` is refused the same way; a free address connects.
#[privileged]
fn connect_with_an_address_the_lan_holds_is_refused() {
    let (lan, _other) = lan();
    assert_eq!(create(&lan, NET, &[]).code, 0);
    let links = lan.host_link_names();
    let ns = TestNetns::new("omt-ctr-");
    let path = ns.path().display().to_string();
    for (flag, ip, holder) in [
        ("--ip", OTHER_V4, "answered the ARP probe"),
        ("--ip", Lan::GATEWAY, "answered the ARP probe"),
        ("--ip6", HOST_V6, "the host's link lan0"),
    ] {
        let out = lan.cli(
            &["network", "connect", flag, ip, NET, "web", "--netns", &path],
            "",
        );
        assert_refused(&lan, &ns, &out, 5, &[ip, NET, holder], &links, ip);
    }
    lan.cli_ok(
        &[
            "network",
            "connect",
            "--ip",
            "192.168.77.102",
            NET,
            "web",
            "--netns",
            &path,
        ],
        "",
    );
    lan.cli_ok(&["network", "disconnect", NET, "web"], "");
}

/// `-o host_access=` the LAN's router (no `--gateway`: the host has no route through it, and it
/// answers the probe), or a neighbour, or the third machine: refused, no host link, no network.
#[privileged]
fn host_access_at_an_address_the_lan_holds_is_refused() {
    let (lan, _other) = lan();
    let links = lan.host_link_names();
    for (access, holder) in [
        (Lan::GATEWAY, "answered the ARP probe"),
        (NEIGH_PERMANENT, "a neighbour 02:00:00:00:00:60 on lan0"),
        (OTHER_V6, "answered the neighbour solicitation"),
    ] {
        let out = create(&lan, "refused", &[&format!("host_access={access}")]);
        assert_eq!(out.code, 5, "{access}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        for word in [access, "refused", holder] {
            assert!(out.stderr.contains(word), "{access}: {}", out.stderr);
        }
        assert_eq!(lan.host_link_names(), links, "{access}: a link was left");
        let ls = lan.cli_ok(&["network", "ls", "-q"], "");
        assert_eq!(ls.trim(), "", "{access}: a network was stored");
    }
    let out = create(&lan, "ok", &["host_access=192.168.77.3"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// `-o static_ips`: `none` refuses every static address, a range refuses those outside it (exit
/// 3, naming the option); a bad value is refused at create; `address_probe=off` skips the probe
/// (the third machine's address is then not seen: the operator's choice).
#[privileged]
fn static_ips_restricts_what_a_container_may_ask_for() {
    let (lan, _other) = lan();
    for (value, says) in [
        ("some", "expected any, none"),
        ("10.0.0.0/8", "outside every --subnet"),
    ] {
        let out = create(&lan, "bad", &[&format!("static_ips={value}")]);
        assert_eq!(out.code, 3, "{value}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{value}: {}", out.stderr);
    }
    let out = create(&lan, "bad", &["address_probe=maybe"]);
    assert_eq!(out.code, 3, "{}", out.stderr);

    let links = lan.host_link_names();
    let ns = TestNetns::new("omt-ctr-");
    assert_eq!(create(&lan, NET, &["static_ips=none"]).code, 0);
    let out = attach(&lan, &ns, "c", NET, &[("oci-macvlan.ip", "192.168.77.150")]);
    assert_refused(
        &lan,
        &ns,
        &out,
        3,
        &["192.168.77.150", NET, "-o static_ips is none"],
        &links,
        "none",
    );
    // A dynamic address is still given.
    assert_eq!(attach(&lan, &ns, "c", NET, &[]).code, 0);
    detach(&lan, &ns, "c", NET, &[]);
    lan.cli_ok(&["network", "rm", NET], "");

    assert_eq!(create(&lan, NET, &["static_ips=192.168.77.128/25"]).code, 0);
    for ip in ["192.168.77.100", "fd00:77::100"] {
        let key = if ip.contains(':') {
            "oci-macvlan.ip6"
        } else {
            "oci-macvlan.ip"
        };
        let out = attach(&lan, &ns, "c", NET, &[(key, ip)]);
        assert_refused(
            &lan,
            &ns,
            &out,
            3,
            &[ip, "-o static_ips is 192.168.77.128/25"],
            &links,
            ip,
        );
    }
    let inside = [("oci-macvlan.ip", "192.168.77.150")];
    let out = attach(&lan, &ns, "c", NET, &inside);
    assert_eq!(out.code, 0, "{}", out.stderr);
    detach(&lan, &ns, "c", NET, &inside);
    // Inside the range, the LAN's machines are still refused.
    let out = attach(&lan, &ns, "c", NET, &[("oci-macvlan.ip", HOST_V4)]);
    assert_refused(
        &lan,
        &ns,
        &out,
        5,
        &[HOST_V4, "the host's link lan0"],
        &links,
        "host",
    );
    lan.cli_ok(&["network", "rm", NET], "");

    assert_eq!(create(&lan, NET, &["address_probe=off"]).code, 0);
    let unprobed = [("oci-macvlan.ip", OTHER_V4)];
    let out = attach(&lan, &ns, "c", NET, &unprobed);
    assert_eq!(out.code, 0, "{}", out.stderr);
    detach(&lan, &ns, "c", NET, &unprobed);
    let out = attach(&lan, &ns, "c", NET, &[("oci-macvlan.ip", HOST_V4)]);
    assert_refused(
        &lan,
        &ns,
        &out,
        5,
        &[HOST_V4, "the host's link lan0"],
        &links,
        "off",
    );
}

/// Item 1 of the issue: on a network with host access, a static address another machine on the
/// LAN holds (its DNS server, say) would get a host route through the host link, taking the
/// host's own traffic to that machine. Refused; no route, and the host still reaches it.
#[privileged]
fn on_a_host_access_network_another_machines_address_gets_no_host_route() {
    let (lan, _other) = lan();
    assert_eq!(create(&lan, NET, &["host_access=192.168.77.3"]).code, 0);
    let link = oci_macvlan_tests::host_access::host_link(&lan, NET);
    let links = lan.host_link_names();
    let ns = TestNetns::new("omt-ctr-");
    let out = attach(&lan, &ns, "dns", NET, &[("oci-macvlan.ip", OTHER_V4)]);
    assert_refused(
        &lan,
        &ns,
        &out,
        5,
        &[OTHER_V4, NET, "answered the ARP probe"],
        &links,
        "host access",
    );
    assert_eq!(lan.host.routes_via(&link), Vec::<String>::new());
    assert!(
        lan.host.ping(OTHER_V4),
        "the host no longer reaches {OTHER_V4}"
    );
}
