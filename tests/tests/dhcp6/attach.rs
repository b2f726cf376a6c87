//! What the DHCPv6 attach tests (`dhcp6_attach.rs`, `dhcp6_hint.rs`) share: the router's link
//! ready for Kea 6, its configuration, the hook run, the container's v6 addresses.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use oci_macvlan_tests::{
    Lan, TestNetns,
    dhcp_lan::state_with_hostname,
    kea6::{Kea6, Kea6Config},
};

pub const SUBNET6: &str = "2001:db8:77::/64";

/// The router's link ready for Kea 6: its link-local address usable at once (no DAD), and an
/// address of `SUBNET6`.
pub fn router_v6(lan: &Lan) {
    lan.router.sysctl("net/ipv6/conf/rtr/accept_dad", "0");
    // Made again on link-up, now without DAD.
    lan.router.ip(&["link", "set", "rtr", "down"]);
    lan.router.ip(&["link", "set", "rtr", "up"]);
    lan.router
        .ip(&["addr", "add", "2001:db8:77::1/64", "dev", "rtr", "nodad"]);
}

pub fn kea6_config() -> Kea6Config {
    Kea6Config {
        interface: "rtr".into(),
        subnet: SUBNET6.into(),
        pool: "2001:db8:77::100-2001:db8:77::1ff".into(),
        preferred_lifetime: 300,
        valid_lifetime: 600,
        renew_timer: 150,
        rebind_timer: 240,
        unicast: None,
    }
}

pub fn hook(lan: &Lan, id: &str, netns: &TestNetns, status: &str) -> oci_macvlan_tests::Outcome {
    lan.cli(
        &["hook"],
        &state_with_hostname(lan, id, netns, status, "web1"),
    )
}

/// The container's global v6 addresses on `eth0` (`ADDR/PREFIX`).
pub fn v6_addresses(netns: &TestNetns) -> Vec<String> {
    netns
        .addresses("eth0")
        .into_iter()
        .filter(|a| a.contains(':'))
        .collect()
}

/// Waits up to 5 s for Kea 6 to hold no lease of `address`.
pub fn released6(kea: &Kea6, address: &str) -> bool {
    let start = Instant::now();
    while kea.lease(address).is_some() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    kea.lease(address).is_none()
}
