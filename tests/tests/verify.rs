//! Privileged tier: `verify` reports every kind of inconsistency it checks for, planted directly
//! in the store (bypassing the allocator, which would refuse them), and exits 6.

#![allow(clippy::unwrap_used)]

use oci_macvlan_ipam::{Lease, LeaseStoreExt, LmdbStore, Owner};
use oci_macvlan_tests::{Lan, TestNetns, privileged};

fn plant(store: &mut LmdbStore, ip: &str, subnet: &str, network: &str, container_id: &str) {
    let lease = Lease {
        ip: ip.parse().unwrap(),
        subnet: subnet.parse::<ipnetwork::IpNetwork>().unwrap(),
        network: network.into(),
        owner: Owner {
            container_id: container_id.into(),
            ifname: "eth0".into(),
        },
        host: None,
    };
    store.transaction(|txn| txn.insert(&lease)).unwrap();
}

#[privileged]
fn verify_passes_on_a_sound_store_and_reports_each_planted_problem() {
    let lan = Lan::new();
    let container = TestNetns::new("omt-ctr-");
    lan.create_network("lan77", &["--aux-address", "router2=192.168.77.250"]);
    let state = lan.fake_bundle(
        "c1",
        &[("oci-macvlan.networks", "lan77")],
        &container.path(),
        "creating",
    );
    lan.cli_ok(&["hook"], &state);
    assert_eq!(
        lan.cli_ok(&["verify"], ""),
        "ok: 1 leases, 1 endpoint records, no problems\n"
    );

    let mut store = LmdbStore::open(&lan.state_dir()).unwrap();
    plant(
        &mut store,
        Lan::GATEWAY,
        Lan::SUBNET,
        "lan77",
        "gw-squatter",
    );
    plant(
        &mut store,
        "192.168.77.250",
        Lan::SUBNET,
        "lan77",
        "aux-squatter",
    );
    plant(&mut store, "10.1.0.5", "10.1.0.0/24", "ghost", "ghost-user");
    plant(&mut store, "192.168.77.99", Lan::SUBNET, "lan77", "c1");
    plant(
        &mut store,
        "192.168.77.98",
        "192.168.77.0/25",
        "lan77",
        "wrong-subnet",
    );
    plant(&mut store, "10.9.9.9", Lan::SUBNET, "lan77", "outsider");
    std::fs::write(
        lan.state_dir().join("endpoints/orphan.json"),
        r#"{"container_id":"orphan","endpoints":[]}"#,
    )
    .unwrap();

    let out = lan.cli(&["verify"], "");
    assert_eq!(out.code, 6, "{}", out.stderr);
    assert_eq!(
        out.stderr.trim(),
        "oci-macvlan: error: verify found 12 problems (listed on stdout)"
    );
    insta::assert_snapshot!(out.stdout);
}
