//! The DHCP source's tests share this: Kea on the [`Lan`]'s router link, serving its subnet
//! with a router and option-121 routes; a network of `--ipam-driver dhcp` on the LAN's parent;
//! a container's hook state with an OCI `hostname`; its record; Kea's lease file read back.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{
    Lan, TestNetns,
    kea::{Kea, KeaConfig},
};

/// The DHCP network's name.
pub const NET: &str = "dlan";
const ANN: &str = "oci-macvlan.networks";

/// Kea on the LAN's router link: its subnet, a pool of .100 to .150, the router, routes.
pub fn kea_config() -> KeaConfig {
    KeaConfig {
        interface: "rtr".into(),
        subnet: Lan::SUBNET.into(),
        pool: "192.168.77.100 - 192.168.77.150".into(),
        router: Lan::GATEWAY.into(),
        // Option 121: 10.5.0.0/16 via 192.168.77.1, and the default route via 192.168.77.1
        // (with option 121, RFC 3442 has the router option ignored).
        routes_hex: Some("100A05C0A84D0100C0A84D01".into()),
        valid_lifetime: 600,
        renew_timer: 300,
        rebind_timer: 500,
    }
}

/// `network create --ipam-driver dhcp -o parent=lan0 EXTRA… dlan`.
pub fn create_dhcp_network(lan: &Lan, extra: &[&str]) {
    create_dhcp_network_named(lan, NET, extra);
}

/// `network create --ipam-driver dhcp -o parent=lan0 EXTRA… NAME`.
pub fn create_dhcp_network_named(lan: &Lan, name: &str, extra: &[&str]) {
    let parent = format!("parent={}", Lan::PARENT);
    let mut args = vec!["network", "create", "--ipam-driver", "dhcp", "-o", &parent];
    args.extend_from_slice(extra);
    args.push(name);
    lan.cli_ok(&args, "");
}

/// The hook's state for container `id` in `netns`, its bundle's config given `hostname`.
pub fn state_with_hostname(
    lan: &Lan,
    id: &str,
    netns: &TestNetns,
    status: &str,
    hostname: &str,
) -> String {
    let state = lan.fake_bundle(id, &[(ANN, NET)], &netns.path(), status);
    set_hostname(lan, id, hostname);
    state
}

/// Sets `hostname` in the config of container `id`'s bundle (one [`Lan::pid_bundle`] or
/// [`Lan::fake_bundle`] wrote).
pub fn set_hostname(lan: &Lan, id: &str, hostname: &str) {
    let config_path = lan.tmp().join(format!("bundle-{id}/config.json"));
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    config["hostname"] = hostname.into();
    std::fs::write(&config_path, config.to_string()).unwrap();
}

/// The container's endpoint record.
pub fn record(lan: &Lan, id: &str) -> Value {
    let path = lan.state_dir().join(format!("endpoints/{id}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Waits up to 3 s for Kea to have no lease of `address`.
pub fn released(kea: &Kea, address: &str) -> bool {
    let start = Instant::now();
    while kea.lease(address).is_some() && start.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(50));
    }
    kea.lease(address).is_none()
}

/// The address Kea leased last (its lease file's last live row).
pub fn last_leased(kea: &Kea) -> String {
    kea.rows()
        .into_iter()
        .rfind(|row| row.valid_lifetime > 0)
        .expect("Kea leased nothing")
        .address
}

/// The addresses Kea holds a lease of now (each address's last row is not a removal).
pub fn live_leases(kea: &Kea) -> Vec<String> {
    let mut addresses: Vec<String> = kea.rows().into_iter().map(|r| r.address).collect();
    addresses.sort();
    addresses.dedup();
    addresses.retain(|a| kea.lease(a).is_some());
    addresses
}

/// The pids of this LAN's DHCP keepers, those of container `id` when given ([`Lan::keepers`]).
pub fn keepers(lan: &Lan, id: Option<&str>) -> Vec<u32> {
    lan.keepers(id)
}
