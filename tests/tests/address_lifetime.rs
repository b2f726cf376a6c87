//! Privileged tier: an address added with a lease's lifetime (review 27, finding 7) leaves the
//! link by itself when the lifetime runs out, and one added again with a longer lifetime stays.

#![allow(clippy::unwrap_used)]

use std::{net::IpAddr, time::Duration};

use oci_macvlan_netlink_core::Handle;
use oci_macvlan_tests::{TestNetns, privileged};

#[privileged]
fn an_address_with_a_lifetime_leaves_the_link_when_it_runs_out() {
    let ns = TestNetns::new("lft");
    ns.ip(&[
        "link", "add", "lft0", "type", "veth", "peer", "name", "lft1",
    ]);
    ns.ip(&["link", "set", "lft0", "up"]);
    ns.block_on_inside(|| async {
        let handle = Handle::current().unwrap();
        let link = handle.link_by_name("lft0").await.unwrap().unwrap();
        let add = |ip: &str, prefix, secs| {
            let ip: IpAddr = ip.parse().unwrap();
            let handle = &handle;
            let link = &link;
            async move {
                handle
                    .add_address_for(link, ip, prefix, Some(Duration::from_secs(secs)))
                    .await
                    .unwrap();
            }
        };
        add("10.77.0.5", 24, 2).await;
        add("fd77::5", 64, 2).await;
        // Another subnet: a secondary address goes with its subnet's primary.
        add("10.78.0.6", 24, 2).await;
        // Added again with a longer lifetime: extended, not refused.
        add("10.78.0.6", 24, 60).await;
    });
    let all = ns.addresses("lft0");
    for ip in ["10.77.0.5/24", "fd77::5/64", "10.78.0.6/24"] {
        assert!(all.contains(&ip.to_owned()), "{ip} not in {all:?}");
    }
    std::thread::sleep(Duration::from_millis(3500));
    let left = ns.addresses("lft0");
    assert_eq!(left, ["10.78.0.6/24"], "after the 2 s lifetimes ran out");
}
