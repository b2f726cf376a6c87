//! Privileged tier: a DHCP server on the container's own host (netavark#690's scar). The kernel
//! passes no frame between a macvlan and its parent's host, so a server there never hears a
//! container's DISCOVER and the exchange times out: the attach's one line and `doctor` name
//! the likely cause (something listens on UDP port 67 on this host) instead of a bare timeout,
//! and say nothing of it when no server runs on the host.

#![allow(clippy::unwrap_used)]

use oci_macvlan_tests::{
    Lan, TestNetns,
    dhcp_lan::{NET, create_dhcp_network, state_with_hostname},
    dnsmasq::Dnsmasq,
    doctor::{self, check},
    privileged,
};

/// What both say when a server listens on the host.
const NOTE: &str = "listens on this host (UDP port 67)";

/// The attach's error line (asserted to be one line) on `lan`'s DHCP network.
fn failed_attach(lan: &Lan, id: &str) -> String {
    let container = TestNetns::new("omt-ctr-");
    let out = lan.cli(
        &["hook"],
        &state_with_hostname(lan, id, &container, "creating", "web1"),
    );
    assert_ne!(out.code, 0, "attached with no server on the LAN");
    let line = out.stderr.trim().to_owned();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.contains("eth0") && line.contains("2s"), "{line}");
    assert!(container.link("eth0").is_none(), "the link was left");
    lan.assert_no_residue(&[NET], "after a DHCP timeout");
    line
}

/// doctor's "dhcp" check of the parent: warned, and its advice.
fn doctor_advice(lan: &Lan) -> String {
    let parent = format!("parent={}", Lan::PARENT);
    let (_, report) = doctor::run(lan, &["-o", &parent, "-o", "dhcp_timeout=1s"]);
    let dhcp = check(&report, "dhcp");
    assert_eq!(dhcp["status"], "warn", "{dhcp}");
    dhcp["advice"].as_str().unwrap().to_owned()
}

#[privileged]
fn a_server_on_the_containers_own_host_is_named_as_the_likely_cause() {
    let lan = Lan::new();
    // The host serves its own LAN from its parent, as a home router or a lab box does.
    lan.host
        .ip(&["addr", "add", "192.168.77.2/24", "dev", Lan::PARENT]);
    let server = Dnsmasq::start(
        &lan.host,
        Lan::PARENT,
        "192.168.77.100",
        "192.168.77.150",
        Lan::GATEWAY,
        "2m",
    );
    create_dhcp_network(&lan, &["--ipam-opt", "dhcp_timeout=2s"]);

    let line = failed_attach(&lan, "c1");
    assert!(line.contains(NOTE), "{line}");
    assert!(line.contains("cannot reach its own host"), "{line}");
    let advice = doctor_advice(&lan);
    assert!(
        advice.contains(NOTE) && advice.contains(Lan::PARENT),
        "{advice}"
    );
    assert!(
        server.leases().is_empty(),
        "the host's server leased: {:?}",
        server.leases()
    );

    // With no server on the host, neither says so.
    drop(server);
    let line = failed_attach(&lan, "c2");
    assert!(!line.contains("on this host"), "{line}");
    let advice = doctor_advice(&lan);
    assert!(!advice.contains("on this host"), "{advice}");
}
