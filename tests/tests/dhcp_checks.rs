//! Privileged tier: a DHCP lease's address is checked as a named one is before the link gets
//! it (review 27, finding 2; DESIGN.md rule 9): Kea, misconfigured, offers the host's own
//! address on the parent, and the attach is refused naming the host's link, with nothing left
//! and Kea's lease declined (a DHCPDECLINE from 0.0.0.0: a RELEASE would go from the host's
//! own address with the container's MAC). With `-o address_probe=on`, a LAN machine that only
//! the conflict probe finds (RFC 2131, 4.4.1) is refused the same way; without it (the
//! default: the probe's wait), no probe.

#![allow(clippy::unwrap_used)]

use oci_macvlan_tests::{
    Lan, TestNetns,
    dhcp_lan::{NET, create_dhcp_network, kea_config, state_with_hostname},
    kea::{Kea, KeaConfig},
    privileged,
};

/// What Kea logs for a DECLINE it takes.
const DECLINED: &str = "DHCP4_DECLINE_LEASE Received";

/// The host's address on the parent, and the only one Kea's pool holds.
const HOSTS: &str = "192.168.77.120";

/// Kea leases only `address`, which the host holds on `link`: the attach is refused naming
/// both, the container has no link, and Kea's lease is declined, never released (a RELEASE would go
/// from the host's own address with the container's MAC).
fn refuses_the_hosts_address(lan: &Lan, address: &str, link: &str) {
    let kea = Kea::start(
        &lan.router,
        &KeaConfig {
            pool: format!("{address} - {address}"),
            ..kea_config()
        },
    );
    create_dhcp_network(lan, &["--ipam-opt", "dhcp_timeout=5s"]);
    let container = TestNetns::new("omt-ctr-");
    let out = lan.cli(
        &["hook"],
        &state_with_hostname(lan, "c1", &container, "creating", "web1"),
    );
    assert_ne!(out.code, 0, "attached with the host's address");
    let line = out.stderr.trim();
    assert!(
        line.contains(address) && line.contains(link) && line.contains(NET),
        "{line}"
    );
    assert!(container.link("eth0").is_none(), "the link was left");
    assert!(kea.log().contains(DECLINED), "no DECLINE: {}", kea.log());
    assert!(
        !kea.log().contains("DHCP4_RELEASE "),
        "a RELEASE from the host's address"
    );
    assert!(
        kea.declined(address),
        "Kea's lease of {address} is not declined"
    );
}

#[privileged]
fn a_lease_of_the_hosts_own_address_is_refused() {
    let lan = Lan::new();
    lan.host
        .ip(&["addr", "add", &format!("{HOSTS}/24"), "dev", Lan::PARENT]);
    refuses_the_hosts_address(&lan, HOSTS, Lan::PARENT);
    lan.assert_no_residue(&[NET], "after a lease of the host's address");
}

/// The host's address on a link that is down (not the parent).
const ON_A_DOWN_LINK: &str = "192.168.77.122";

/// The host's address on a link that is down is still the host's: the check of an IPv4 lease
/// finds it by its `local` route, which the kernel keeps while the link is down.
#[privileged]
fn a_lease_of_the_hosts_address_on_a_down_link_is_refused() {
    let lan = Lan::new();
    lan.host.ip(&[
        "link", "add", "omtdown0", "type", "veth", "peer", "name", "omtdown1",
    ]);
    lan.host.ip(&[
        "addr",
        "add",
        &format!("{ON_A_DOWN_LINK}/32"),
        "dev",
        "omtdown0",
    ]);
    refuses_the_hosts_address(&lan, ON_A_DOWN_LINK, "omtdown0");
    lan.host.ip(&["link", "del", "omtdown0"]);
    lan.assert_no_residue(&[NET], "after a lease of the host's address on a down link");
}

/// The host's address whose `local` route is gone (deleted by hand, or by a routing daemon).
const WITHOUT_ITS_ROUTE: &str = "192.168.77.123";

/// An address on a link of the host is the host's even without its `local` route: the host
/// still sends from it (review of the check that looked at the routes alone).
#[privileged]
fn a_lease_of_the_hosts_address_without_its_local_route_is_refused() {
    let lan = Lan::new();
    lan.host.ip(&[
        "addr",
        "add",
        &format!("{WITHOUT_ITS_ROUTE}/24"),
        "dev",
        Lan::PARENT,
    ]);
    lan.host
        .ip(&["route", "del", "local", WITHOUT_ITS_ROUTE, "table", "local"]);
    refuses_the_hosts_address(&lan, WITHOUT_ITS_ROUTE, Lan::PARENT);
    lan.assert_no_residue(
        &[NET],
        "after a lease of the host's address without its route",
    );
}

/// A machine of the LAN (here the router's namespace) holds the address Kea leases, and the
/// host never talked to it: only the probe finds it.
const NEIGHBOURS: &str = "192.168.77.121";

#[privileged]
fn a_lease_of_an_address_that_answers_the_probe_is_declined() {
    let lan = Lan::new();
    lan.router
        .ip(&["addr", "add", &format!("{NEIGHBOURS}/24"), "dev", "rtr"]);
    let kea = Kea::start(
        &lan.router,
        &KeaConfig {
            pool: format!("{NEIGHBOURS} - {NEIGHBOURS}"),
            ..kea_config()
        },
    );
    create_dhcp_network(&lan, &["-o", "address_probe=on"]);
    let container = TestNetns::new("omt-ctr-");
    let out = lan.cli(
        &["hook"],
        &state_with_hostname(&lan, "c1", &container, "creating", "web1"),
    );
    assert_ne!(out.code, 0, "attached with an address the LAN answers for");
    assert!(out.stderr.contains(NEIGHBOURS), "{}", out.stderr);
    assert!(container.link("eth0").is_none(), "the link was left");
    lan.assert_no_residue(&[NET], "after a lease of a neighbour's address");
    assert!(kea.log().contains(DECLINED), "no DECLINE: {}", kea.log());
    assert!(kea.declined(NEIGHBOURS), "not declined");
}

/// Without `-o address_probe=on` (and with `off`): no probe, the address is taken.
#[privileged]
fn no_probe_unless_the_network_asks() {
    let lan = Lan::new();
    lan.router
        .ip(&["addr", "add", &format!("{NEIGHBOURS}/24"), "dev", "rtr"]);
    let _kea = Kea::start(
        &lan.router,
        &KeaConfig {
            pool: format!("{NEIGHBOURS} - {NEIGHBOURS}"),
            ..kea_config()
        },
    );
    for extra in [&[][..], &["-o", "address_probe=off"]] {
        create_dhcp_network(&lan, extra);
        let container = TestNetns::new("omt-ctr-");
        lan.cli_ok(
            &["hook"],
            &state_with_hostname(&lan, "c1", &container, "creating", "web1"),
        );
        assert_eq!(container.addresses("eth0"), [format!("{NEIGHBOURS}/24")]);
        lan.cli_ok(
            &["hook"],
            &state_with_hostname(&lan, "c1", &container, "stopped", "web1"),
        );
        lan.cli_ok(&["network", "rm", NET], "");
    }
}
