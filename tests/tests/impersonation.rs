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

use oci_macvlan_tests::host_access::{HOST_V4, HOST_V6, lan_with_host_addresses};
use oci_macvlan_tests::{Lan, Outcome, TestNetns};

const NET: &str = "lan77";
/// Held by the third machine only.
const OTHER_V4: &str = "192.168.77.53";
const OTHER_V6: &str = "fd00:77::53";
/// On the host's second link.
const SIDE_V4: &str = "192.168.77.201";
const SIDE_V6: &str = "fd00:77::201";
/// In the host's neighbour table only (nobody answers for them).
const NEIGH_PERMANENT: &str = "192.168.77.60";
const NEIGH_STALE: &str = "fd00:77::61";
const NEIGH_FAILED: &str = "192.168.77.62";
/// Gateways of nexthop objects only (nobody answers for them): one named by a route, one a
/// member of a group a route names, one IPv6.
const NEXTHOP_ROUTER: &str = "192.168.77.70";
const GROUP_ROUTER: &str = "192.168.77.71";
const NEXTHOP_ROUTER_V6: &str = "fd00:77::70";

/// A LAN as the module says, and a dual-stack network on it without `--gateway` (`extra`
/// options added).
fn lan() -> (Lan, Lan) {
    let lan = lan_with_host_addresses();
    let other = lan.add_host();
    other
        .host
        .ip(&["addr", "add", &format!("{OTHER_V4}/24"), "dev", "lan0"]);
    other.host.ip(&[
        "addr",
        "add",
        &format!("{OTHER_V6}/64"),
        "dev",
        "lan0",
        "nodad",
    ]);
    lan.host.ip(&[
        "link", "add", "side0", "type", "veth", "peer", "name", "side1",
    ]);
    lan.host
        .ip(&["addr", "add", &format!("{SIDE_V4}/32"), "dev", "side0"]);
    lan.host.ip(&[
        "addr",
        "add",
        &format!("{SIDE_V6}/128"),
        "dev",
        "side0",
        "nodad",
    ]);
    for (ip, mac, state) in [
        (NEIGH_PERMANENT, "02:00:00:00:00:60", "permanent"),
        (NEIGH_STALE, "02:00:00:00:00:61", "stale"),
        (NEIGH_FAILED, "02:00:00:00:00:62", "failed"),
    ] {
        lan.host.ip(&[
            "neigh", "replace", ip, "lladdr", mac, "dev", "lan0", "nud", state,
        ]);
    }
    (lan, other)
}

fn create(lan: &Lan, name: &str, extra: &[&str]) -> Outcome {
    let mut args = vec![
        "network",
        "create",
        "--subnet",
        "192.168.77.0/24",
        "--subnet",
        "fd00:77::/64",
        "-o",
        "parent=lan0",
    ];
    for option in extra {
        args.extend(["-o", option]);
    }
    args.push(name);
    lan.cli(&args, "")
}

/// The hook's attach of container `id` into `ns` on `net`, asking for `annotations`.
fn attach(lan: &Lan, ns: &TestNetns, id: &str, net: &str, annotations: &[(&str, &str)]) -> Outcome {
    let mut all = vec![("oci-macvlan.networks", net)];
    all.extend_from_slice(annotations);
    lan.cli(
        &["hook"],
        &lan.fake_bundle(id, &all, &ns.path(), "creating"),
    )
}

fn detach(lan: &Lan, ns: &TestNetns, id: &str, net: &str, annotations: &[(&str, &str)]) {
    let mut all = vec![("oci-macvlan.networks", net)];
    all.extend_from_slice(annotations);
    lan.cli_ok(
        &["hook", "poststop"],
        &lan.fake_bundle(id, &all, &ns.path(), "stopped"),
    );
}

/// Panics unless `out` is a refusal with `code` in one line that names `ip`, `net` and
/// `holder`, and nothing was made: no link in the container's namespace, no lease, no record,
/// no change to the host's links.
fn assert_refused(
    lan: &Lan,
    ns: &TestNetns,
    out: &Outcome,
    code: i32,
    says: &[&str],
    links: &[String],
    what: &str,
) {
    assert_eq!(out.code, code, "{what}: {}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{what}: {}", out.stderr);
    for word in says {
        assert!(
            out.stderr.contains(word),
            "{what}: no {word:?} in {}",
            out.stderr
        );
    }
    let names: Vec<String> = ns
        .links()
        .iter()
        .filter_map(|l| l["ifname"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(names, ["lo"], "{what}: a link was made in the container");
    assert_eq!(lan.leased(NET), 0, "{what}: a lease was taken");
    assert_eq!(
        lan.records(),
        Vec::<String>::new(),
        "{what}: a record was written"
    );
    assert_eq!(
        lan.host_link_names(),
        links,
        "{what}: the host's links changed"
    );
}

/// Each holder, by annotation: the host's own addresses (on the parent and on another link,
/// both families), its router (by a route's gateway and by a nexthop object with
/// `nexthop_compat_mode=0`), its neighbours (permanent, stale), the third machine (only the
/// probe sees it, both families). A failed neighbour entry holds nothing, and a free address
/// still attaches.
#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "privileged tier: run `cargo xtask ci` as root"
)]
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
#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "privileged tier: run `cargo xtask ci` as root"
)]
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
#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "privileged tier: run `cargo xtask ci` as root"
)]
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
#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "privileged tier: run `cargo xtask ci` as root"
)]
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
#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "privileged tier: run `cargo xtask ci` as root"
)]
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

/// The MAC of the third machine's `lan0`, as a message names it.
fn mac_of(other: &Lan) -> String {
    other.host.link("lan0").unwrap()["address"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The host link deleted (as after a reboot) while another machine took the host access
/// address: an attach (which makes the link again) is refused naming the holder (exit 5), `gc`
/// says so and fails; neither announces the address. Once the machine lets it go, the attach
/// makes the link again.
#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "privileged tier: run `cargo xtask ci` as root"
)]
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
#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "privileged tier: run `cargo xtask ci` as root"
)]
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
#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "privileged tier: run `cargo xtask ci` as root"
)]
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
#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "privileged tier: run `cargo xtask ci` as root"
)]
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
#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "privileged tier: run `cargo xtask ci` as root"
)]
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
#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "privileged tier: run `cargo xtask ci` as root"
)]
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
#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "privileged tier: run `cargo xtask ci` as root"
)]
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
#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "privileged tier: run `cargo xtask ci` as root"
)]
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
#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "privileged tier: run `cargo xtask ci` as root"
)]
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
