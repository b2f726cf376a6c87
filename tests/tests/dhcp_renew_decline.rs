//! Privileged tier: a new lease the renewer refuses is declined at its server (review 27,
//! finding 2). The container's lease runs out with its server gone; the server that comes
//! back leases only the host's own address on the parent: the renewer refuses it (as the
//! attach would), sends a DHCPDECLINE, and the container never gets the address.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use oci_macvlan_tests::{
    ContainerProcess, Lan,
    dhcp_lan::{NET, create_dhcp_network, kea_config, record},
    kea::{Kea, KeaConfig},
    privileged,
    renewal::wait_until,
};

const ANN: &str = "oci-macvlan.networks";
/// The host's address on the parent, the only one the second server leases.
const HOSTS: &str = "192.168.77.120";
/// What Kea logs for a DECLINE it takes.
const DECLINED: &str = "DHCP4_DECLINE_LEASE Received";

#[privileged]
fn a_renewal_that_leases_the_hosts_address_declines_it() {
    let lan = Lan::new();
    lan.host
        .ip(&["addr", "add", &format!("{HOSTS}/24"), "dev", Lan::PARENT]);
    let quick = KeaConfig {
        valid_lifetime: 6,
        renew_timer: 2,
        rebind_timer: 4,
        pool: "192.168.77.100 - 192.168.77.100".into(),
        ..kea_config()
    };
    let kea = Kea::start(&lan.router, &quick);
    create_dhcp_network(&lan, &[]);
    let process = ContainerProcess::start();
    lan.cli_ok(
        &["hook"],
        &lan.pid_bundle("c1", &[(ANN, NET)], process.pid(), "creating"),
    );
    drop(kea.stop());
    let kea = Kea::start(
        &lan.router,
        &KeaConfig {
            pool: format!("{HOSTS} - {HOSTS}"),
            ..quick
        },
    );
    assert!(
        wait_until(Duration::from_secs(25), || kea.log().contains(DECLINED)),
        "no DECLINE: {}",
        kea.log()
    );
    assert!(
        kea.declined(HOSTS),
        "Kea's lease of {HOSTS} is not declined"
    );
    let dhcp = &record(&lan, "c1")["endpoints"][0]["dhcp"];
    assert_ne!(dhcp["lease"]["address"], HOSTS, "{dhcp}");
    assert_eq!(lan.leased(NET), 0, "the store holds the refused lease");
    let pid = process.pid();
    process.kill();
    let state = lan.pid_bundle("c1", &[(ANN, NET)], pid, "stopped");
    lan.cli_ok(&["hook", "poststop"], &state);
    lan.assert_no_residue(&[NET], "after poststop");
}
