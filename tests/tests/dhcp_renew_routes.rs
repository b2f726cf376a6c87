//! Privileged tier: a renewal's routes keep out of the container's other networks. The
//! container is on a DHCP network (eth0) and on a static one (`side`, 10.6.0.0/16, eth1); the
//! server restarted mid-lease hands out option-121 routes, one of them inside `side`'s subnet.
//! The renewer applies the others but not that one, as the attach would (`wire`'s
//! `source_routes_among`): a LAN's DHCP server must not pull a part of another network's
//! traffic through its own router.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use oci_macvlan_tests::{
    ContainerProcess, Lan,
    dhcp_lan::{NET, create_dhcp_network, kea_config},
    kea::{Kea, KeaConfig},
    privileged,
    renewal::{gateway_routes as routes, wait_until},
};

const ANN: &str = "oci-macvlan.networks";

#[privileged]
fn a_renewed_route_into_another_networks_subnet_is_left_out() {
    let lan = Lan::new();
    let quick = KeaConfig {
        valid_lifetime: 30,
        renew_timer: 2,
        rebind_timer: 20,
        routes_hex: None,
        ..kea_config()
    };
    let kea = Kea::start(&lan.router, &quick);
    create_dhcp_network(&lan, &[]);
    let parent = format!("parent={}", Lan::PARENT);
    lan.cli_ok(
        &[
            "network",
            "create",
            "--subnet",
            "10.6.0.0/16",
            "-o",
            &parent,
            "side",
        ],
        "",
    );
    let process = ContainerProcess::start();
    let pid = process.pid();
    let networks = format!("{NET},side");
    lan.cli_ok(
        &["hook"],
        &lan.pid_bundle("c1", &[(ANN, &networks)], pid, "creating"),
    );
    assert_eq!(
        routes(pid),
        [("default".into(), Lan::GATEWAY.into(), "eth0".into())]
    );

    // Option 121: 10.6.5.0/24 via .2 (inside side's subnet), 10.7.0.0/16 via .2, the default
    // via .1.
    let routed = KeaConfig {
        routes_hex: Some("180A0605C0A84D02100A07C0A84D0200C0A84D01".into()),
        ..quick
    };
    let kea = Kea::start_again(kea.stop(), &lan.router, &routed);
    let applied = wait_until(Duration::from_secs(10), || {
        routes(pid).contains(&("10.7.0.0/16".into(), "192.168.77.2".into(), "eth0".into()))
    });
    assert!(
        applied,
        "the renewal's routes were not applied: {:?}\n{}",
        routes(pid),
        kea.log()
    );
    let found = routes(pid);
    assert!(
        !found.iter().any(|(dst, _, _)| dst.starts_with("10.6.")),
        "a route into side's subnet went through the DHCP server's router: {found:?}"
    );
    let verify = lan.cli(&["verify"], "");
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
    drop(process);
    let _ = kea;
}
