//! How many requests a hook sends etcd: an attach and a detach are each one read and one
//! transaction (the read decides, the transaction's compare makes the decision safe). Counted by
//! the member itself (its gRPC metrics), not timed.

use oci_macvlan_tests::{Etcd, Lan, TestNetns, etcd_network::*, privileged};

/// (Range, Txn) requests member 0 answered so far.
fn requests(etcd: &Etcd) -> (u64, u64) {
    (etcd.handled(0, "Range"), etcd.handled(0, "Txn"))
}

#[privileged]
fn an_attach_and_a_detach_are_each_one_range_and_one_transaction() {
    let lan = Lan::new();
    let etcd = Etcd::start(&lan, 1);
    etcd.reach_from(&lan, "192.168.77.250");
    create_shared(&lan, &etcd.endpoints(), &[]);

    let ns = TestNetns::new("omt-rt-");
    let before = requests(&etcd);
    let out = attach(&lan, "hostA", "c1", &ns, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let after = requests(&etcd);
    assert_eq!((after.0 - before.0, after.1 - before.1), (1, 1), "attach");

    // The namespace died with the container (runc, crun): nothing is read from the store
    // before the release.
    let path = ns.path();
    drop(ns);
    let before = requests(&etcd);
    let state = lan.fake_bundle("c1", &[(ANN, NET)], &path, "stopped");
    let out = on(&lan, "hostA", &["hook", "poststop"], &state);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let after = requests(&etcd);
    assert_eq!((after.0 - before.0, after.1 - before.1), (1, 1), "detach");
    assert_eq!(etcd_leases(&etcd), []);
}
