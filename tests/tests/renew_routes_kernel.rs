//! Privileged tier: the netlink-core calls the DHCP renewer moves a link's routes with.
//! `delete_route` (the routes a lease no longer names) deletes only routes of the protocol it
//! adds them with (`static`), never the kernel's connected route of the link's own subnet: a
//! server whose option 121 once named that subnet, and then dropped it, must not cut the link
//! off its LAN. `replace_default_route` (another router) moves the default route in one step,
//! and leaves the old one when the kernel refuses the new one. `remove_addresses_on` (a lease's
//! address taken off its link) leaves the same address on another link of the namespace.

#![allow(clippy::unwrap_used)]

use std::net::IpAddr;

use oci_macvlan_netlink_core::Handle;
use oci_macvlan_tests::{TestNetns, privileged};

/// A namespace with a veth pair `NAME0`/`NAME1`, both up, `address` on `NAME0`.
fn veth(prefix: &str, name: &str, address: &str) -> TestNetns {
    let ns = TestNetns::new(prefix);
    let (a, b) = (format!("{name}0"), format!("{name}1"));
    ns.ip(&["link", "add", &a, "type", "veth", "peer", "name", &b]);
    ns.ip(&["link", "set", &a, "up"]);
    ns.ip(&["link", "set", &b, "up"]);
    ns.ip(&["addr", "add", address, "dev", &a]);
    ns
}

#[privileged]
fn delete_route_leaves_the_kernels_connected_route_and_takes_its_own() {
    let ns = veth("rtdel", "rtd", "10.79.0.2/24");
    ns.ip(&[
        "route",
        "add",
        "10.80.0.0/16",
        "dev",
        "rtd0",
        "proto",
        "static",
    ]);
    let routes = || ns.ip(&["-4", "route", "show", "dev", "rtd0"]);
    assert!(
        routes().contains("10.79.0.0/24 proto kernel"),
        "{}",
        routes()
    );
    let deleted = ns.block_on_inside(|| async {
        let handle = Handle::current().unwrap();
        let link = handle.link_by_name("rtd0").await.unwrap().unwrap();
        let net = |ip: &str, prefix: u8| (ip.parse::<IpAddr>().unwrap(), prefix);
        (
            handle
                .delete_route(&link, net("10.79.0.0", 24), None)
                .await
                .unwrap(),
            handle
                .delete_route(&link, net("10.80.0.0", 16), None)
                .await
                .unwrap(),
        )
    });
    assert_eq!(deleted, (false, true), "{}", routes());
    let left = routes();
    assert!(left.contains("10.79.0.0/24 proto kernel"), "{left}");
    assert!(!left.contains("10.80.0.0/16"), "{left}");
}

#[privileged]
fn replace_default_route_moves_it_in_one_step_and_keeps_it_on_a_refusal() {
    let ns = veth("rtrep", "rtr", "10.81.0.2/24");
    ns.ip(&[
        "route",
        "add",
        "default",
        "via",
        "10.81.0.1",
        "proto",
        "static",
    ]);
    let defaults = || ns.ip(&["-4", "route", "show", "default"]);
    let replace = |gateway: &str| {
        let gateway: IpAddr = gateway.parse().unwrap();
        ns.block_on_inside(|| async {
            let handle = Handle::current().unwrap();
            let link = handle.link_by_name("rtr0").await.unwrap().unwrap();
            handle.replace_default_route(&link, gateway).await.is_ok()
        })
    };
    assert!(replace("10.81.0.9"), "{}", defaults());
    assert_eq!(defaults().lines().count(), 1, "{}", defaults());
    assert!(defaults().contains("via 10.81.0.9"), "{}", defaults());
    // A gateway the link cannot reach: refused, and the default route stays.
    assert!(!replace("10.99.0.1"), "{}", defaults());
    assert!(defaults().contains("via 10.81.0.9"), "{}", defaults());
}

#[privileged]
fn remove_addresses_on_a_link_leaves_the_same_address_on_another() {
    let ns = veth("rtadr", "rta", "10.82.0.5/24");
    ns.ip(&["addr", "add", "10.82.0.5/24", "dev", "rta1"]);
    ns.ip(&["addr", "add", "10.83.0.6/24", "dev", "rta0"]);
    let on = |dev: &str| ns.ip(&["-4", "addr", "show", "dev", dev]);
    assert!(on("rta1").contains("10.82.0.5/24"), "{}", on("rta1"));
    let removed = ns.block_on_inside(|| async {
        let handle = Handle::current().unwrap();
        let link = handle.link_by_name("rta0").await.unwrap().unwrap();
        let ip: IpAddr = "10.82.0.5".parse().unwrap();
        handle.remove_addresses_on(&link, &[ip]).await.unwrap()
    });
    assert_eq!(removed, ["10.82.0.5".parse::<IpAddr>().unwrap()]);
    let (rta0, rta1) = (on("rta0"), on("rta1"));
    assert!(!rta0.contains("10.82.0.5/"), "{rta0}");
    assert!(rta0.contains("10.83.0.6/24"), "{rta0}");
    assert!(
        rta1.contains("10.82.0.5/24"),
        "another link's address went: {rta1}"
    );
}
