//! Privileged tier: a take-back's RELEASEs (review 27, finding 10) run under one deadline for
//! the whole container, its endpoints' at once. A container on three DHCP networks of one LAN
//! whose server has gone out of reach (its link down: no ARP answer) is stopped: poststop
//! gives up each RELEASE after one ARP wait, not three in a row, and leaves nothing here.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use oci_macvlan_tests::{
    Lan, TestNetns,
    dhcp_lan::{create_dhcp_network_named, kea_config, live_leases},
    kea::Kea,
    privileged,
};

const ANN: &str = "oci-macvlan.networks";
const NETS: [&str; 3] = ["da", "db", "dc"];
/// One ARP wait (1.5 s) and the scratch links' making, with room for a loaded host: under the
/// three waits (4.5 s) that endpoints released one after another take.
const WITHIN: Duration = Duration::from_millis(3500);

#[privileged]
fn a_containers_releases_run_at_once_under_one_deadline() {
    let lan = Lan::new();
    let kea = Kea::start(&lan.router, &kea_config());
    for net in NETS {
        create_dhcp_network_named(&lan, net, &[]);
    }
    let container = TestNetns::new("omt-ctr-");
    let networks = NETS.join(",");
    lan.cli_ok(
        &["hook"],
        &lan.fake_bundle("c1", &[(ANN, &networks)], &container.path(), "creating"),
    );
    assert_eq!(live_leases(&kea).len(), 3, "three leases at Kea");
    // The server out of reach: no ARP answer for it.
    lan.router.ip(&["link", "set", "rtr", "down"]);
    let start = Instant::now();
    lan.cli_ok(
        &["hook"],
        &lan.fake_bundle("c1", &[(ANN, &networks)], &container.path(), "stopped"),
    );
    let took = start.elapsed();
    assert!(took < WITHIN, "poststop took {took:?}");
    lan.assert_no_residue(&NETS, "after the poststop");
}
