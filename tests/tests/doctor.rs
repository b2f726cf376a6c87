//! Privileged tier: `oci-macvlan doctor` against a parent in a test host namespace. What it says
//! about link kinds is compared with what `ip link add` can do in a namespace of the test's own.

#![allow(clippy::unwrap_used)]

use oci_macvlan_tests::{
    Lan, TestNetns,
    doctor::{self, check},
    privileged,
};
use serde_json::Value;

/// Whether this kernel creates 802.1q links, asked independently of the tool under test.
fn kernel_has_8021q() -> bool {
    let ns = TestNetns::new("omt-probe-");
    ns.ip(&["link", "add", "p0", "type", "veth", "peer", "name", "p1"]);
    let net = format!("--net={}", ns.path().display());
    oci_macvlan_tests::run(
        "nsenter",
        &[
            &net, "ip", "link", "add", "link", "p0", "name", "p0.9", "type", "vlan", "id", "9",
        ],
    )
    .status
    .success()
}

#[privileged]
fn doctor_reports_link_kinds_and_the_parent_and_touches_nothing() {
    let lan = Lan::new();
    let vlan_expected = if kernel_has_8021q() { "ok" } else { "warn" };

    let (code, report) = doctor::run(&lan, &["-o", "parent=lan0"]);
    assert_eq!(code, 0, "{report:#}");
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(
        check(&report, "kernel")["detail"],
        format!("Linux {}", release.trim())
    );
    assert_eq!(check(&report, "macvlan")["status"], "ok");
    assert_eq!(check(&report, "802.1q")["status"], vlan_expected);
    assert_eq!(check(&report, "parent")["detail"], "lan0: veth, mtu 1500");
    assert_eq!(check(&report, "parent up")["status"], "ok");
    assert_eq!(check(&report, "promiscuous")["status"], "info");
    assert_eq!(report["failed"], 0);
    // The probes ran in a namespace of their own: the host namespace has what it had.
    assert_eq!(lan.host_link_names(), ["lo", Lan::PARENT]);

    // The table names the same checks, in the same order, with advice under a warning.
    let table = lan.cli_ok(&["doctor", "-o", "parent=lan0"], "");
    let names: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    let rows: Vec<&str> = table.lines().filter(|l| !l.contains("  -> ")).collect();
    assert!(rows[0].starts_with("CHECK "), "{table}");
    assert_eq!(rows.len(), names.len() + 1, "{table}");
    for (row, name) in rows[1..].iter().zip(&names) {
        assert!(row.starts_with(name), "{row:?} is not {name}");
    }

    // A parent that is down fails, and says what to run.
    lan.host.ip(&["link", "set", Lan::PARENT, "down"]);
    let (code, report) = doctor::run(&lan, &["-o", "parent=lan0"]);
    assert_eq!(code, 1);
    let up = check(&report, "parent up");
    assert_eq!(up["status"], "fail");
    assert_eq!(up["advice"], "ip link set lan0 up");
    assert_eq!(report["failed"], 1);
    lan.host.ip(&["link", "set", Lan::PARENT, "up"]);

    // A missing plain parent fails; a missing VLAN parent on an existing base is fine (network
    // create makes it), with the VLAN name's length, unless the kernel cannot make VLANs.
    let (code, report) = doctor::run(&lan, &["-o", "parent=eth7"]);
    assert_eq!(code, 1);
    assert_eq!(
        check(&report, "parent")["detail"],
        "parent interface eth7 not found"
    );
    let (code, report) = doctor::run(&lan, &["-o", "parent=lan0.50"]);
    assert_eq!(
        check(&report, "vlan name")["detail"],
        "lan0.50: 7 of 15 bytes (VLAN 50 on lan0)"
    );
    let parent = check(&report, "parent");
    assert_eq!(parent["status"], "ok", "{parent}");
    assert_eq!(
        parent["detail"],
        "lan0.50 does not exist yet: network create makes it, VLAN 50 on lan0"
    );
    let vlan = check(&report, "802.1q");
    if vlan_expected == "ok" {
        assert_eq!(code, 0, "{report:#}");
    } else {
        assert_eq!(code, 1, "{report:#}");
        assert_eq!(vlan["status"], "fail");
        assert!(
            vlan["advice"].as_str().unwrap().contains("modprobe 8021q"),
            "{vlan}"
        );
    }
    let (code, report) = doctor::run(&lan, &["-o", "parent=lo.5"]);
    assert_eq!(code, 1);
    assert_eq!(
        check(&report, "parent")["detail"],
        "loopback interface is not a valid parent link"
    );
    let out = lan.cli(&["doctor", "-o", "mode=bridge"], "");
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(lan.host_link_names(), ["lo", Lan::PARENT]);
}

/// An ipvlan L3 network (created without any ipvlan link, so on this kernel too): `inspect` gives
/// the route the LAN's router needs per subnet, via the host's address of its family on the
/// parent as the kernel has it now, and `doctor -o parent=` says the same; where the parent has
/// no address of a family, `inspect` says `null` and doctor warns.
#[privileged]
fn inspect_and_doctor_give_the_routes_the_lan_router_needs_for_ipvlan_l3() {
    let lan = Lan::new();
    lan.host
        .ip(&["addr", "add", "192.168.77.2/24", "dev", "lan0"]);
    lan.host
        .ip(&["addr", "add", "fd77::2/64", "dev", "lan0", "nodad"]);
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
            "fd30::/64",
            "-o",
            "ipvlan_mode=l3",
            "-o",
            "parent=lan0",
            "routed",
        ],
        "",
    );
    let routes = &lan.inspect("routed")[0]["LanRouterRoutes"];
    assert_eq!(
        *routes,
        serde_json::json!([
            {"Subnet": "10.30.0.0/24", "Via": "192.168.77.2"},
            {"Subnet": "fd30::/64", "Via": "fd77::2"},
        ])
    );
    let lan_routes = |report: &Value| -> Vec<(String, String)> {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["check"] == "lan route")
            .map(|c| {
                (
                    c["status"].as_str().unwrap().to_owned(),
                    c["detail"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let (code, report) = doctor::run(&lan, &["-o", "parent=lan0"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        lan_routes(&report),
        [
            ("info".to_owned(), "network routed (ipvlan l3/bridge): the LAN's router needs: ip route add 10.30.0.0/24 via 192.168.77.2".to_owned()),
            ("info".to_owned(), "network routed (ipvlan l3/bridge): the LAN's router needs: ip route add fd30::/64 via fd77::2".to_owned()),
        ]
    );
    // Another parent's doctor says nothing of this network.
    let (_, report) = doctor::run(&lan, &["-o", "parent=lan0.9"]);
    assert_eq!(lan_routes(&report), []);

    lan.host.ip(&["addr", "del", "fd77::2/64", "dev", "lan0"]);
    let routes = &lan.inspect("routed")[0]["LanRouterRoutes"];
    assert_eq!(
        routes[1],
        serde_json::json!({"Subnet": "fd30::/64", "Via": null})
    );
    let (code, report) = doctor::run(&lan, &["-o", "parent=lan0"]);
    assert_eq!(code, 0, "a warning is no failure: {report:#}");
    assert_eq!(
        lan_routes(&report)[1],
        ("warn".to_owned(), "network routed (ipvlan l3/bridge): lan0 has no IPv6 address, so the LAN cannot reach fd30::/64".to_owned())
    );
    assert_eq!(lan.host_link_names(), ["lo", Lan::PARENT]);
}

/// On a network with host access, doctor says whether the host forwards (its containers can then
/// use it as a router to its other networks), per family the network has a host address in.
#[privileged]
fn doctor_says_whether_a_host_with_host_access_forwards() {
    use oci_macvlan_tests::host_access::{ACCESS, NET, create_dual_stack, lan_with_host_addresses};
    let lan = lan_with_host_addresses();
    create_dual_stack(&lan, NET, &["-o", ACCESS]);
    let forwarding = |lan: &Lan| -> (String, String) {
        let (_, report) = doctor::run(lan, &["-o", "parent=lan0"]);
        let c = check(&report, "ip_forward");
        (
            c["status"].as_str().unwrap().to_owned(),
            c["detail"].as_str().unwrap().to_owned(),
        )
    };
    lan.host.sysctl("net/ipv4/ip_forward", "0");
    lan.host.sysctl("net/ipv6/conf/all/forwarding", "0");
    let (status, detail) = forwarding(&lan);
    assert_eq!(status, "ok", "{detail}");
    assert!(detail.contains("forwarding is off"), "{detail}");
    lan.host.sysctl("net/ipv4/ip_forward", "1");
    let (status, detail) = forwarding(&lan);
    assert_eq!(status, "warn", "{detail}");
    assert!(
        detail.contains("on for IPv4 (net.ipv4.ip_forward)") && !detail.contains("IPv6"),
        "{detail}"
    );
    lan.host.sysctl("net/ipv6/conf/all/forwarding", "1");
    let (_, detail) = forwarding(&lan);
    assert!(
        detail.contains("IPv4 (net.ipv4.ip_forward) and IPv6"),
        "{detail}"
    );
    // A parent without host-access networks gets no such check.
    let (_, report) = doctor::run(&lan, &["-o", "parent=lan0.9"]);
    assert!(
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["check"] != "ip_forward"),
        "{report:#}"
    );
}
