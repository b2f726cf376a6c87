//! Privileged tier: what issue 27's review found in the DHCP source, pinned against Kea on the
//! LAN. A lease the server gave is given back when the attach is refused after the exchange:
//! here because another container of this host (on a static network of the same LAN) holds
//! the address the server leased.

#![allow(clippy::unwrap_used)]

use oci_macvlan_tests::{
    Lan, TestNetns,
    dhcp_lan::{NET, create_dhcp_network, kea_config, last_leased, released, state_with_hostname},
    kea::{Kea, KeaConfig},
    privileged,
};

const ANN: &str = "oci-macvlan.networks";
/// The one address Kea's pool has.
const ONLY: &str = "192.168.77.100";

#[privileged]
fn an_address_held_here_refuses_the_attach_and_gives_the_lease_back() {
    let lan = Lan::new();
    let kea = Kea::start(
        &lan.router,
        &KeaConfig {
            pool: format!("{ONLY} - {ONLY}"),
            ..kea_config()
        },
    );
    // A static network on the same LAN, whose container holds the address Kea will lease.
    lan.create_network("slan", &[]);
    let holder = TestNetns::new("omt-ctr-");
    lan.cli_ok(
        &["hook"],
        &lan.fake_bundle(
            "holder",
            &[(ANN, "slan"), ("oci-macvlan.ip", ONLY)],
            &holder.path(),
            "creating",
        ),
    );
    create_dhcp_network(&lan, &[]);
    let container = TestNetns::new("omt-ctr-");
    let out = lan.cli(
        &["hook"],
        &state_with_hostname(&lan, "c1", &container, "creating", "web"),
    );
    assert_ne!(out.code, 0, "the attach was not refused");
    assert!(
        out.stderr.contains(ONLY) && out.stderr.contains("holder"),
        "{}",
        out.stderr
    );
    // The server did lease it (the exchange ran), and has it back.
    assert_eq!(last_leased(&kea), ONLY);
    assert!(released(&kea, ONLY), "Kea still leases {ONLY}");
    assert!(container.link("eth0").is_none(), "eth0 left");
    lan.cli_ok(
        &["hook"],
        &lan.fake_bundle(
            "holder",
            &[(ANN, "slan"), ("oci-macvlan.ip", ONLY)],
            &holder.path(),
            "stopped",
        ),
    );
    lan.assert_no_residue(&["slan", NET], "after the refused attach");
}
