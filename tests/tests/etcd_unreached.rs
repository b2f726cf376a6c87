//! Privileged tier: `gc` and `verify` on a host with a local network and an etcd network whose
//! cluster does not answer do everything that does not need that cluster (a local container is
//! taken back, local leases are checked), name the cluster on one line, leave alone what needs
//! it (a gone container's record is kept, never "holds no lease") and exit 1; the cluster back,
//! `gc` finishes and `verify` is clean.

#![allow(clippy::unwrap_used)]

use oci_macvlan_tests::etcd_network::{ANN, assert_nothing_left, attach, on, one_host};
use oci_macvlan_tests::{Lan, TestNetns};

const LOCAL: &str = "local";

/// Container `id` attached to the local network in `ns`, on host A.
fn attach_local(lan: &Lan, id: &str, ns: &TestNetns) {
    let state = lan.fake_bundle(id, &[(ANN, LOCAL)], &ns.path(), "creating");
    let out = on(lan, "hostA", &["hook"], &state);
    assert_eq!(out.code, 0, "{id}: {}", out.stderr);
}

/// The lines of `text` that name the unreached cluster.
fn unreached_lines<'a>(text: &'a str, endpoints: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| l.starts_with("not reached: ") && l.contains(endpoints))
        .collect()
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "privileged tier: run `cargo xtask ci` as root"
)]
fn gc_takes_back_local_containers_while_etcd_is_down() {
    let (lan, mut etcd) = one_host();
    lan.create_network(LOCAL, &[]);
    let local = TestNetns::new("omt-unr-");
    let shared = TestNetns::new("omt-unr-");
    attach_local(&lan, "c1", &local);
    let out = attach(&lan, "hostA", "c2", &shared, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(lan.records(), ["c1.json", "c2.json"]);
    // Both containers are gone, their namespaces with them.
    drop(local);
    drop(shared);
    etcd.kill(0);

    let out = on(&lan, "hostA", &["gc"], "");
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("(container c1: "),
        "the local container is taken back: {}",
        out.stdout
    );
    assert!(
        out.stdout.contains("kept container c2: "),
        "the etcd container is reported: {}",
        out.stdout
    );
    assert_eq!(
        unreached_lines(&out.stdout, &etcd.endpoints()).len(),
        1,
        "one line names the cluster: {}",
        out.stdout
    );
    assert!(
        out.stderr.contains("gc could not reach 1 lease stores"),
        "{}",
        out.stderr
    );
    assert_eq!(lan.leased(LOCAL), 0);
    assert_eq!(
        lan.records(),
        ["c2.json"],
        "the etcd container's record is kept"
    );
    assert!(
        !lan.locks().iter().any(|l| l.starts_with("c1")),
        "{:?}",
        lan.locks()
    );

    etcd.restart(0);
    let out = on(&lan, "hostA", &["gc"], "");
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("(container c2: "), "{}", out.stdout);
    let out = on(&lan, "hostA", &["verify"], "");
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let shared = TestNetns::new("omt-unr-");
    assert_nothing_left(&lan, &etcd, &shared, "etcd back");
    lan.assert_no_residue(&[LOCAL], "etcd back");
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "privileged tier: run `cargo xtask ci` as root"
)]
fn verify_checks_local_leases_while_etcd_is_down() {
    let (lan, mut etcd) = one_host();
    lan.create_network(LOCAL, &[]);
    let local = TestNetns::new("omt-unr-");
    let shared = TestNetns::new("omt-unr-");
    attach_local(&lan, "c1", &local);
    let out = attach(&lan, "hostA", "c2", &shared, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // A local problem verify must still find: a lease whose record is gone.
    std::fs::remove_file(lan.state_dir().join("endpoints/c1.json")).unwrap();
    etcd.kill(0);

    let out = on(&lan, "hostA", &["verify"], "");
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("container c1 holds leases but has no endpoint record"),
        "the local store is checked: {}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("record of container c2"),
        "a record of the unreached cluster is not judged: {}",
        out.stdout
    );
    assert_eq!(
        unreached_lines(&out.stdout, &etcd.endpoints()).len(),
        1,
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("verify could not reach 1 lease stores"),
        "{}",
        out.stderr
    );
}
