//! What the DHCPv6 client's tests against Kea share (`dhcp6.rs`, `dhcp6_hostile.rs`): the LAN
//! and client namespaces, Kea 6's configuration, the client's config and socket.

#![allow(dead_code)]

use std::time::{Duration, Instant, SystemTime};

use oci_macvlan_dhcp::{
    ClientId,
    v6::{self, Config, OnLink6, UdpLink},
};
use oci_macvlan_tests::{TestNetns, dhcp_pair::server_and_client, kea6::Kea6Config};

pub const SUBNET: &str = "2001:db8:91::/64";
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A LAN namespace holding `srv` (the server's link) and a client namespace holding `cl0`,
/// its peer, prepared by the client's library before it is up.
pub fn lan() -> (TestNetns, TestNetns) {
    let (lan, client) = server_and_client("omt-d6lan-", "omt-d6cl-");
    // Kea binds the link's link-local address: usable at once, not after DAD.
    lan.sysctl("net/ipv6/conf/srv/accept_dad", "0");
    lan.ip(&["addr", "add", "2001:db8:91::1/64", "dev", "srv", "nodad"]);
    lan.ip(&["link", "set", "srv", "up"]);
    client.inside(|| v6::prepare_link("cl0")).unwrap();
    assert_eq!(client.sysctl_value("net/ipv6/conf/cl0/accept_dad"), "0");
    client.ip(&["link", "set", "cl0", "up"]);
    (lan, client)
}

pub fn kea_config() -> Kea6Config {
    Kea6Config {
        interface: "srv".into(),
        subnet: SUBNET.into(),
        pool: "2001:db8:91::100-2001:db8:91::1ff".into(),
        preferred_lifetime: 20,
        valid_lifetime: 30,
        renew_timer: 2,
        rebind_timer: 15,
        unicast: None,
    }
}

pub fn config(secret: &[u8], container: &str) -> Config {
    Config {
        client_id: ClientId::derive(secret, "lan6", container),
        hostname: Some("web1".into()),
        subnet: Some(("2001:db8:91::".parse().unwrap(), 64)),
    }
}

pub fn open(ns: &TestNetns) -> UdpLink {
    ns.inside(|| {
        let link = OnLink6::named("cl0").unwrap();
        UdpLink::open(&link, Duration::from_secs(3))
    })
    .unwrap()
}

pub fn hex(bytes: &[u8]) -> String {
    let parts: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(":")
}

pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(5), "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn seed() -> u32 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}
