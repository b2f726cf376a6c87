//! Privileged tier: `gc` and `verify` on a host with a local network and an etcd network whose
//! cluster does not answer do everything that does not need that cluster (a local container is
//! taken back, local leases are checked), name the cluster on one line, leave alone what needs
//! it (a gone container's record is kept, never "holds no lease") and exit 1; the cluster back,
//! `gc` finishes and `verify` is clean.

#![allow(clippy::unwrap_used)]

use oci_macvlan_tests::etcd_network::{
    ANN, assert_nothing_left, attach, create_local, on, one_host,
};
use oci_macvlan_tests::{Etcd, Lan, Outcome, TestNetns, privileged};

const LOCAL: &str = "local";

/// Host A with a local network and the etcd one, container c1 on the local one and c2 on the
/// etcd one, each in its namespace (returned in that order).
fn local_and_etcd() -> (Lan, Etcd, TestNetns, TestNetns) {
    let (lan, etcd) = one_host();
    create_local(&lan, LOCAL);
    let local = TestNetns::new("omt-unr-");
    let shared = TestNetns::new("omt-unr-");
    let state = lan.fake_bundle("c1", &[(ANN, LOCAL)], &local.path(), "creating");
    let out = on(&lan, "hostA", &["hook"], &state);
    assert_eq!(out.code, 0, "c1: {}", out.stderr);
    let out = attach(&lan, "hostA", "c2", &shared, &[]);
    assert_eq!(out.code, 0, "c2: {}", out.stderr);
    assert_eq!(lan.records(), ["c1.json", "c2.json"]);
    (lan, etcd, local, shared)
}

/// `command` ended as one that could not reach `etcd`: exit 1, one line on stdout naming the
/// cluster, and the error saying so.
fn assert_unreached(out: &Outcome, etcd: &Etcd, command: &str) {
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let lines: Vec<&str> = (out.stdout.lines())
        .filter(|l| l.starts_with("not reached: ") && l.contains(&etcd.endpoints()))
        .collect();
    assert_eq!(lines.len(), 1, "one line names the cluster: {}", out.stdout);
    let error = format!("{command} could not reach 1 lease stores");
    assert!(out.stderr.contains(&error), "{}", out.stderr);
}

/// Both containers gone and etcd killed: gc takes the local one back (lease, record, lock),
/// keeps the etcd one's record, names the cluster once and exits 1 (`gc --forget-host`, which
/// needs the cluster, fails naming it); etcd back, gc takes the
/// etcd one back and verify is clean.
#[privileged]
fn gc_takes_back_local_containers_while_etcd_is_down() {
    let (lan, mut etcd, local, shared) = local_and_etcd();
    // Both containers are gone, their namespaces with them.
    drop(local);
    drop(shared);
    etcd.kill(0);

    let out = on(&lan, "hostA", &["gc"], "");
    assert_unreached(&out, &etcd, "gc");
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

    // Forgetting a host needs its cluster: it fails, naming it.
    let out = on(&lan, "hostA", &["gc", "--forget-host", "hostB"], "");
    assert_eq!(out.code, 1, "{}", out.stderr);
    let named = format!("lease store etcd {} unavailable", etcd.endpoints());
    assert!(out.stderr.contains(&named), "{}", out.stderr);

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

/// etcd killed: verify still checks the local store (finds a local lease without a record),
/// does not call the etcd container's record leaseless, names the cluster once and exits 1.
#[privileged]
fn verify_checks_local_leases_while_etcd_is_down() {
    let (lan, mut etcd, _local, _shared) = local_and_etcd();
    // A local problem verify must still find: a lease whose record is gone.
    std::fs::remove_file(lan.state_dir().join("endpoints/c1.json")).unwrap();
    etcd.kill(0);

    let out = on(&lan, "hostA", &["verify"], "");
    assert_unreached(&out, &etcd, "verify");
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
}
