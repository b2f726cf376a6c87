//! Privileged tier: the poststop suite's cases (`suites/poststop.rs`) on a DHCP network,
//! against Kea on the LAN. Whatever poststop finds — run twice, eight at once, the namespace
//! gone, the process gone with pid 0 in the state, the bundle and the network's definition
//! gone — it exits 0, the server has the lease back (a RELEASE it took), and nothing is left
//! here: no link, lease, record, lock or renewer.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use oci_macvlan_tests::{
    ContainerProcess, Lan, TestNetns,
    dhcp_lan::{NET, create_dhcp_network, kea_config, record, released},
    kea::Kea,
    privileged,
    renewal::{keepers, wait_until},
};

const ANN: &str = "oci-macvlan.networks";

/// The v4 address container `id`'s record holds.
fn leased(lan: &Lan, id: &str) -> String {
    record(lan, id)["endpoints"][0]["dhcp"]["lease"]["address"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn poststop(lan: &Lan, state: &str, context: &str) {
    let out = lan.cli(&["hook", "poststop"], state);
    assert_eq!(out.code, 0, "{context}: {}", out.stderr);
}

/// Attaches `id` in `ns`; its poststop state and its leased address.
fn attached(lan: &Lan, id: &str, ns: &TestNetns) -> (String, String) {
    let creating = lan.fake_bundle(id, &[(ANN, NET)], &ns.path(), "creating");
    lan.cli_ok(&["hook"], &creating);
    let address = leased(lan, id);
    let stopped = lan.fake_bundle(id, &[(ANN, NET)], &ns.path(), "stopped");
    (stopped, address)
}

fn given_back(lan: &Lan, kea: &Kea, address: &str, context: &str) {
    assert!(
        released(kea, address),
        "{context}: Kea still holds {address}: {:?}",
        kea.rows()
    );
    lan.assert_no_residue(&[NET], context);
}

#[privileged]
fn poststop_gives_a_dhcp_lease_back_whatever_it_finds() {
    let lan = Lan::new();
    let kea = Kea::start(&lan.router, &kea_config());
    create_dhcp_network(&lan, &[]);
    let ns = TestNetns::new("omt-ctr-");

    // Twice.
    let (stopped, address) = attached(&lan, "twice", &ns);
    poststop(&lan, &stopped, "first poststop");
    assert_eq!(ns.links().len(), 1, "the link was left");
    poststop(&lan, &stopped, "second poststop");
    given_back(&lan, &kea, &address, "twice");

    // Eight at once.
    let (stopped, address) = attached(&lan, "eight", &ns);
    for out in lan.cli_together(&["hook", "poststop"], &vec![stopped; 8]) {
        assert_eq!(out.code, 0, "concurrent poststop: {}", out.stderr);
    }
    given_back(&lan, &kea, &address, "eight at once");

    // The namespace gone: the RELEASE goes from a scratch namespace.
    let gone = TestNetns::new("omt-ctr-");
    let (stopped, address) = attached(&lan, "nsgone", &gone);
    drop(gone);
    poststop(&lan, &stopped, "namespace gone");
    given_back(&lan, &kea, &address, "namespace gone");

    // The process gone, the state with pid 0 (as podman passes it); its renewer ends too.
    let process = ContainerProcess::start();
    let creating = lan.pid_bundle("pidgone", &[(ANN, NET)], process.pid(), "creating");
    lan.cli_ok(&["hook"], &creating);
    let address = leased(&lan, "pidgone");
    drop(process);
    let stopped = lan.pid_bundle("pidgone", &[(ANN, NET)], 0, "stopped");
    poststop(&lan, &stopped, "process gone, pid 0");
    given_back(&lan, &kea, &address, "process gone");
    assert!(
        wait_until(Duration::from_secs(5), || keepers(&lan).is_empty()),
        "the renewer outlived its container: {:?}",
        keepers(&lan)
    );

    // The bundle and the network's definition gone: the record holds all a RELEASE needs.
    let (stopped, address) = attached(&lan, "nobundle", &ns);
    std::fs::remove_dir_all(lan.tmp().join("bundle-nobundle")).unwrap();
    let definition = lan.config_dir().join(format!("networks/{NET}.json"));
    let saved = std::fs::read(&definition).unwrap();
    std::fs::remove_file(&definition).unwrap();
    poststop(&lan, &stopped, "bundle and definition gone");
    std::fs::write(&definition, saved).unwrap();
    given_back(&lan, &kea, &address, "bundle and definition gone");
}
