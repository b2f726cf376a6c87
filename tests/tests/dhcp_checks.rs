//! Privileged tier: a DHCP lease's address is checked as a named one is before the link gets
//! it (review 27, finding 2; DESIGN.md rule 9): Kea, misconfigured, offers the host's own
//! address on the parent, and the attach is refused naming the host's link, with nothing left
//! and Kea's lease given back (a RELEASE; no DHCPDECLINE is sent).

#![allow(clippy::unwrap_used)]

use oci_macvlan_tests::{
    Lan, TestNetns,
    dhcp_lan::{NET, create_dhcp_network, kea_config, released, state_with_hostname},
    kea::{Kea, KeaConfig},
    privileged,
};

/// The host's address on the parent, and the only one Kea's pool holds.
const HOSTS: &str = "192.168.77.120";

#[privileged]
fn a_lease_of_the_hosts_own_address_is_refused() {
    let lan = Lan::new();
    lan.host
        .ip(&["addr", "add", &format!("{HOSTS}/24"), "dev", Lan::PARENT]);
    let kea = Kea::start(
        &lan.router,
        &KeaConfig {
            pool: format!("{HOSTS} - {HOSTS}"),
            ..kea_config()
        },
    );
    create_dhcp_network(&lan, &["--ipam-opt", "dhcp_timeout=5s"]);
    let container = TestNetns::new("omt-ctr-");
    let out = lan.cli(
        &["hook"],
        &state_with_hostname(&lan, "c1", &container, "creating", "web1"),
    );
    assert_ne!(out.code, 0, "attached with the host's address");
    let line = out.stderr.trim();
    assert!(
        line.contains(HOSTS) && line.contains(Lan::PARENT) && line.contains(NET),
        "{line}"
    );
    assert!(container.link("eth0").is_none(), "the link was left");
    lan.assert_no_residue(&[NET], "after a lease of the host's address");
    assert!(released(&kea, HOSTS), "Kea still leases {HOSTS}");
}
