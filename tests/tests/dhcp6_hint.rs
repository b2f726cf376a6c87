//! Privileged tier: a container stopped (its DHCPv6 lease released) and started again gets its
//! v6 address back from Kea 6, which would otherwise give its pool's first free one: the
//! SOLICIT asks for the address this identity was last given (an IA_NA hint, kept in
//! `<state-dir>/dhcp6-hints`).

#![allow(clippy::unwrap_used)]

use oci_macvlan_tests::{
    Lan, TestNetns,
    dhcp_lan::{NET, create_dhcp_network, kea_config},
    kea::Kea,
    kea6::Kea6,
    privileged,
};

#[path = "dhcp6/attach.rs"]
mod attach;
use attach::{hook, kea6_config, released6, router_v6, v6_addresses};

#[privileged]
fn a_restarted_container_asks_for_and_gets_its_v6_address_back() {
    let lan = Lan::new();
    router_v6(&lan);
    let _kea = Kea::start(&lan.router, &kea_config());
    let kea6 = Kea6::start(&lan.router, &kea6_config());
    create_dhcp_network(&lan, &["--ipv6"]);
    // c1 takes the pool's first address, c2 the next one.
    let (first, second) = (TestNetns::new("omt-ctr-"), TestNetns::new("omt-ctr-"));
    assert_eq!(hook(&lan, "c1", &first, "creating").code, 0);
    assert_eq!(hook(&lan, "c2", &second, "creating").code, 0);
    let c2 = v6_addresses(&second);
    assert_eq!(c2.len(), 1, "{c2:?}");
    // Both stop: both leases released, the pool all free again.
    for (id, netns) in [("c1", &first), ("c2", &second)] {
        let held = v6_addresses(netns);
        assert_eq!(hook(&lan, id, netns, "stopped").code, 0);
        let address = held[0].split('/').next().unwrap();
        assert!(released6(&kea6, address), "{id}: {:?}", kea6.rows());
    }
    drop((first, second));

    // c2 starts again first: without the hint it would get the pool's first free address.
    let again = TestNetns::new("omt-ctr-");
    let out = hook(&lan, "c2", &again, "creating");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(v6_addresses(&again), c2, "{:?}", kea6.rows());
    assert_eq!(hook(&lan, "c2", &again, "stopped").code, 0);
    lan.assert_no_residue(&[NET], "at the end");
}
