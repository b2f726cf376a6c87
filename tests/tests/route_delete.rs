//! Privileged tier: netlink-core's `delete_route`, which the DHCP renewer uses to take back the
//! routes a lease no longer names, deletes only routes of the protocol it adds them with
//! (`static`), never the kernel's connected route of the link's own subnet: a server whose
//! option 121 once named that subnet, and then dropped it, must not cut the link off its LAN.

#![allow(clippy::unwrap_used)]

use std::net::IpAddr;

use oci_macvlan_netlink_core::Handle;
use oci_macvlan_tests::{TestNetns, privileged};

#[privileged]
fn delete_route_leaves_the_kernels_connected_route_and_takes_its_own() {
    let ns = TestNetns::new("rtdel");
    ns.ip(&[
        "link", "add", "rtd0", "type", "veth", "peer", "name", "rtd1",
    ]);
    ns.ip(&["link", "set", "rtd0", "up"]);
    ns.ip(&["link", "set", "rtd1", "up"]);
    ns.ip(&["addr", "add", "10.79.0.2/24", "dev", "rtd0"]);
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
    let deleted = ns.inside(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
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
            })
    });
    assert_eq!(deleted, (false, true), "{}", routes());
    let left = routes();
    assert!(left.contains("10.79.0.0/24 proto kernel"), "{left}");
    assert!(!left.contains("10.80.0.0/16"), "{left}");
}
