//! The LAN-impersonation guard's edges, each from an adversarial review of it: the host link
//! made again, a parent that cannot be probed through, `static_ips` before the store, `noarp`
//! neighbours, peer and AnyIP addresses, routers given with `RTA_VIA`, the host's own addresses
//! in a pool, and a static address taken again right after its container stopped. The LAN and
//! helpers are `impersonation.rs`'s (`impersonation/common.rs`).

#![allow(clippy::unwrap_used)]

#[path = "impersonation/common.rs"]
mod common;

use common::*;
use oci_macvlan_tests::host_access::{HOST_V4, HOST_V6, lan_with_host_addresses};
use oci_macvlan_tests::{Lan, TestNetns, privileged};

/// The host link deleted (as after a reboot) while another machine took the host access
/// address: an attach (which makes the link again) is refused naming the holder (exit 5), `gc`
/// says so and fails; neither announces the address. Once the machine lets it go, the attach
/// makes the link again.
#[privileged]
fn a_host_link_made_again_is_checked_first() {
    let (lan, other) = lan();
    let access = "192.168.77.3";
    assert_eq!(
        create(&lan, NET, &[&format!("host_access={access}")]).code,
        0
    );
    let link = oci_macvlan_tests::host_access::host_link(&lan, NET);
    lan.host.ip(&["link", "del", &link]);
    other
        .host
        .ip(&["addr", "add", &format!("{access}/24"), "dev", "lan0"]);
    let mac = mac_of(&other);
    let ns = TestNetns::new("omt-ctr-");
    let out = attach(&lan, &ns, "c", NET, &[]);
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    for word in [access, NET, mac.as_str(), "answered the ARP probe"] {
        assert!(out.stderr.contains(word), "no {word:?} in {}", out.stderr);
    }
    assert!(lan.host.link(&link).is_none(), "the host link was made");
    let gc = lan.cli(&["gc"], "");
    assert_eq!(gc.code, 1, "{}{}", gc.stdout, gc.stderr);
    let said = format!("{}{}", gc.stdout, gc.stderr);
    assert!(said.contains(access) && said.contains(&mac), "{said}");
    assert!(lan.host.link(&link).is_none(), "gc made the host link");
    other
        .host
        .ip(&["addr", "del", &format!("{access}/24"), "dev", "lan0"]);
    let out = attach(&lan, &ns, "c", NET, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(lan.host.link(&link).is_some(), "the host link was not made");
    detach(&lan, &ns, "c", NET, &[]);
}

/// A probe is due but the parent cannot be answered through (down, or up without a carrier):
/// the static address (or `-o host_access` at create) is refused in one line that says why and
/// what to do, rather than taken unprobed. Once the parent is back, it attaches.
#[privileged]
fn a_parent_that_cannot_be_probed_through_refuses_a_static_address() {
    let (lan, _other) = lan();
    assert_eq!(create(&lan, NET, &[]).code, 0);
    let links = lan.host_link_names();
    let ns = TestNetns::new("omt-ctr-");
    let ip = [("oci-macvlan.ip", "192.168.77.100")];
    let way_out = "-o address_probe=off";
    lan.host.ip(&["link", "set", Lan::PARENT, "down"]);
    let out = attach(&lan, &ns, "c", NET, &ip);
    let says = ["192.168.77.100", NET, "lan0 is down", way_out];
    assert_refused(&lan, &ns, &out, 1, &says, &links, "down");
    let out = create(&lan, "ha", &["host_access=192.168.77.3"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    for word in ["192.168.77.3", "lan0 is down", way_out] {
        assert!(out.stderr.contains(word), "no {word:?} in {}", out.stderr);
    }
    assert_eq!(lan.host_link_names(), links, "a host link was left");
    lan.host.ip(&["link", "set", Lan::PARENT, "up"]);
    lan.router.ip(&["link", "set", "rtr", "down"]);
    let out = attach(&lan, &ns, "c", NET, &ip);
    let says = ["192.168.77.100", "lan0 is up without a carrier", way_out];
    assert_refused(&lan, &ns, &out, 1, &says, &links, "no carrier");
    lan.router.ip(&["link", "set", "rtr", "up"]);
    let out = attach(&lan, &ns, "c", NET, &ip);
    assert_eq!(out.code, 0, "{}", out.stderr);
    detach(&lan, &ns, "c", NET, &ip);
}

/// `-o static_ips` is applied before the store is read: a tenant asking for an address outside
/// the range that another container holds is told the range (exit 3), not who holds it.
#[privileged]
fn static_ips_is_applied_before_the_store_names_a_holder() {
    let (lan, _other) = lan();
    assert_eq!(create(&lan, NET, &["static_ips=192.168.77.128/25"]).code, 0);
    let held_ns = TestNetns::new("omt-ctr-");
    assert_eq!(attach(&lan, &held_ns, "c11", NET, &[]).code, 0);
    let held = held_ns
        .addresses("eth0")
        .into_iter()
        .find(|a| a.starts_with("192.168.77."))
        .unwrap();
    let held = held.split('/').next().unwrap().to_owned();
    let ns = TestNetns::new("omt-ctr-");
    let out = attach(&lan, &ns, "tenant", NET, &[("oci-macvlan.ip", &held)]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("-o static_ips is 192.168.77.128/25"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("c11"),
        "a holder leaked: {}",
        out.stderr
    );
    detach(&lan, &held_ns, "c11", NET, &[]);
}

/// A `nud noarp` neighbour entry with a hardware address (the administrator's, never checked)
/// holds its address as a permanent one does.
#[privileged]
fn a_noarp_neighbour_holds_its_address() {
    let (lan, _other) = lan();
    let ip = "192.168.77.63";
    lan.host.ip(&[
        "neigh",
        "replace",
        ip,
        "lladdr",
        "02:00:00:00:00:63",
        "dev",
        "lan0",
        "nud",
        "noarp",
    ]);
    assert_eq!(create(&lan, NET, &[]).code, 0);
    let links = lan.host_link_names();
    let ns = TestNetns::new("omt-ctr-");
    let out = attach(&lan, &ns, "c", NET, &[("oci-macvlan.ip", ip)]);
    let says = [ip, NET, "a neighbour 02:00:00:00:00:63 on lan0"];
    assert_refused(&lan, &ns, &out, 5, &says, &links, "noarp");
}

/// The host's own addresses include a point-to-point address (its `local`, not its `peer`) and
/// the addresses of a `local` route (AnyIP: the host answers for a whole prefix on `lo`).
#[privileged]
fn a_peer_address_and_an_anyip_route_are_the_hosts() {
    let (lan, _other) = lan();
    lan.host.ip(&[
        "addr",
        "add",
        "192.168.77.210",
        "peer",
        "192.168.77.211",
        "dev",
        "side0",
    ]);
    lan.host
        .ip(&["route", "add", "local", "192.168.77.220/30", "dev", "lo"]);
    lan.host.ip(&[
        "-6",
        "route",
        "add",
        "local",
        "fd00:77::220/126",
        "dev",
        "lo",
    ]);
    assert_eq!(create(&lan, NET, &[]).code, 0);
    let links = lan.host_link_names();
    let ns = TestNetns::new("omt-ctr-");
    let mut failed = Vec::new();
    for (key, ip, holder) in [
        ("oci-macvlan.ip", "192.168.77.210", "the host's link side0"),
        ("oci-macvlan.ip", "192.168.77.221", "the host's link lo"),
        ("oci-macvlan.ip6", "fd00:77::222", "the host's link lo"),
    ] {
        let out = attach(&lan, &ns, "c", NET, &[(key, ip)]);
        let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            assert_refused(&lan, &ns, &out, 5, &[ip, NET, holder], &links, ip);
        }));
        if checked.is_err() {
            failed.push(format!("{ip}: exit {} {}", out.code, out.stderr.trim()));
            if out.code == 0 {
                detach(&lan, &ns, "c", NET, &[(key, ip)]);
            }
        }
    }
    assert!(failed.is_empty(), "not refused:\n{}", failed.join("\n"));
}

/// A router of the other family (`RTA_VIA`: an IPv4 route via an IPv6 router), on a route and
/// on a multipath hop, is a router.
#[privileged]
fn a_router_given_with_via_is_a_router() {
    let (lan, _other) = lan();
    lan.host.ip(&[
        "route",
        "add",
        "10.11.0.0/24",
        "via",
        "inet6",
        "fd00:77::83",
        "dev",
        "lan0",
    ]);
    lan.host.ip(&[
        "route",
        "add",
        "10.12.0.0/24",
        "nexthop",
        "via",
        "inet6",
        "fd00:77::84",
        "dev",
        "lan0",
        "nexthop",
        "via",
        "192.168.77.85",
        "dev",
        "lan0",
    ]);
    assert_eq!(create(&lan, NET, &[]).code, 0);
    let links = lan.host_link_names();
    let ns = TestNetns::new("omt-ctr-");
    let mut failed = Vec::new();
    for (ip, route) in [
        ("fd00:77::83", "10.11.0.0/24"),
        ("fd00:77::84", "10.12.0.0/24"),
    ] {
        let key = [("oci-macvlan.ip6", ip)];
        let out = attach(&lan, &ns, "c", NET, &key);
        let holder = format!("a router of the host's route to {route} on lan0");
        let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            assert_refused(&lan, &ns, &out, 5, &[ip, NET, &holder], &links, ip);
        }));
        if checked.is_err() {
            failed.push(format!("{ip}: exit {} {}", out.code, out.stderr.trim()));
            if out.code == 0 {
                detach(&lan, &ns, "c", NET, &key);
            }
        }
    }
    assert!(failed.is_empty(), "not refused:\n{}", failed.join("\n"));
}

/// A network whose pool covers the host's own addresses (no `--ip-range`) reserves each as an
/// auxiliary address `host-<link>`, with one warning line: the allocator never hands the host's
/// address to a container. Addresses outside the dynamic range are left alone.
#[privileged]
fn the_hosts_own_addresses_are_never_handed_out() {
    let (lan, _other) = lan();
    // The lowest free address after the one kept for the router: the first a container gets.
    lan.host
        .ip(&["addr", "add", "192.168.77.2/32", "dev", "side0"]);
    let out = create(&lan, NET, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let ns = TestNetns::new("omt-ctr-");
    assert_eq!(attach(&lan, &ns, "c", NET, &[]).code, 0);
    let given = ns.addresses("eth0");
    assert!(
        !given.iter().any(|a| a.starts_with("192.168.77.2/")),
        "the host's address was handed out: {given:?}"
    );
    detach(&lan, &ns, "c", NET, &[]);
    let warnings: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("reserved as auxiliary"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", out.stderr);
    for word in [
        NET,
        "192.168.77.2 (side0) as host-side0",
        &format!("{HOST_V4} (lan0) as host-lan0"),
        &format!("{HOST_V6} (lan0) as host-lan0"),
        "--ip-range",
    ] {
        assert!(warnings[0].contains(word), "no {word:?} in {}", warnings[0]);
    }
    // With an --ip-range that leaves the host's addresses out, nothing is reserved.
    lan.host
        .ip(&["addr", "add", "192.168.80.5/24", "dev", "side0"]);
    let out = lan.cli(
        &[
            "network",
            "create",
            "--subnet",
            "192.168.80.0/24",
            "--ip-range",
            "192.168.80.128/25",
            "-o",
            "parent=lan0",
            "ranged",
        ],
        "",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("reserved"), "{}", out.stderr);
}

/// `-o host_access` at an address the host takes through a `local` route (AnyIP) is the host's
/// own: refused at create, naming the link (exit 5).
#[privileged]
fn host_access_at_an_anyip_address_is_refused() {
    let (lan, _other) = lan();
    lan.host
        .ip(&["route", "add", "local", "192.168.77.230/32", "dev", "lo"]);
    let links = lan.host_link_names();
    let out = create(&lan, "refused", &["host_access=192.168.77.230"]);
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    for word in ["192.168.77.230", "the host's link lo has it"] {
        assert!(out.stderr.contains(word), "no {word:?} in {}", out.stderr);
    }
    assert_eq!(lan.host_link_names(), links, "a link was left");
}

/// A container stopped and the next one started at once with the same static address (a
/// restart under another id): the stopped one's namespace may still be torn down by the kernel,
/// its link still answering for the address on the parent's segment; the probe (out of the
/// parent) never hears it, and the next container gets its address, round after round.
#[privileged]
fn a_static_address_is_taken_again_right_after_its_container_stopped() {
    let lan = lan_with_host_addresses();
    assert_eq!(create(&lan, "restart", &[]).code, 0);
    let ip = [
        ("oci-macvlan.ip", "192.168.77.40"),
        ("oci-macvlan.ip6", "fd00:77::40"),
    ];
    for round in 0..10 {
        let id = format!("r{round}");
        let ns = TestNetns::new("omt-ctr-");
        let out = attach(&lan, &ns, &id, "restart", &ip);
        assert_eq!(out.code, 0, "round {round}: {}", out.stderr);
        // The namespace goes first, as when the container's last process dies; then poststop.
        let path = ns.path();
        drop(ns);
        let state = lan.fake_bundle(
            &id,
            &[("oci-macvlan.networks", "restart"), ip[0], ip[1]],
            &path,
            "stopped",
        );
        lan.cli_ok(&["hook", "poststop"], &state);
    }
}
