//! Privileged tier: a detach finds a container's lease stores in its endpoint record, where the
//! attach wrote them (`RecordedEndpoint::store`), never in the network definitions, which may
//! have been removed or edited by hand since: poststop, `network disconnect` and `gc` release an
//! etcd lease whose definition is gone, a local detach never waits on a cluster its definition
//! names now, and a record an earlier build wrote (no store) is still detached through the
//! definition. And `network disconnect` from an etcd network, which opens the local store and the
//! cluster together, finds the container's leases in both. An attach that takes back the record
//! of an earlier container of its id, gone without its poststop, releases that one's leases in
//! the store its record names, not in the new attach's.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use oci_macvlan_tests::etcd_network::{
    ANN, NET, assert_nothing_left, attach, create_local, detach, etcd_leases, on, on_ok, one_host,
};
use oci_macvlan_tests::{Lan, TestNetns, privileged};

fn definition(lan: &Lan, network: &str) -> PathBuf {
    lan.config_dir().join(format!("networks/{network}.json"))
}

/// The definition of an etcd network removed by hand while a container holds a lease there:
/// its poststop releases that lease (not only the local store's), deletes its link and leaves
/// no record or lock; so does `network disconnect`, and `gc` once a container is gone.
#[privileged]
fn an_etcd_lease_is_released_when_its_definition_is_gone() {
    let (lan, etcd) = one_host();
    let [poststopped, disconnected, collected] =
        ["c1", "c2", "c3"].map(|_| TestNetns::new("omt-rec-"));
    for (id, ns) in [
        ("c1", &poststopped),
        ("c2", &disconnected),
        ("c3", &collected),
    ] {
        let out = attach(&lan, "hostA", id, ns, &[]);
        assert_eq!(out.code, 0, "{id}: {}", out.stderr);
    }
    assert_eq!(etcd_leases(&etcd).len(), 3);
    std::fs::remove_file(definition(&lan, NET)).unwrap();

    let out = detach(&lan, "hostA", "c1", &poststopped);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(poststopped.link("eth0").is_none());
    let holders: Vec<String> = etcd_leases(&etcd).into_iter().map(|l| l.2).collect();
    assert_eq!(holders, ["c2", "c3"]);

    let out = on(&lan, "hostA", &["network", "disconnect", NET, "c2"], "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(disconnected.link("eth0").is_none());
    let holders: Vec<String> = etcd_leases(&etcd).into_iter().map(|l| l.2).collect();
    assert_eq!(holders, ["c3"]);

    drop(collected); // the container is gone, and its namespace with it
    let out = on(&lan, "hostA", &["gc"], "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("(container c3: "), "{}", out.stdout);
    assert_nothing_left(&lan, &etcd, &poststopped, "definition gone");
}

/// A local network's definition edited by hand, after an attach, to name an etcd cluster that
/// nobody runs: the container's poststop releases its local lease at once, exit 0, and never
/// tries the cluster (the record says its leases are local; the definition is not read).
#[privileged]
fn a_local_detach_reads_no_definition() {
    let lan = Lan::new();
    lan.create_network("local", &[]);
    let ns = TestNetns::new("omt-rec-");
    let state = |status| lan.fake_bundle("c1", &[(ANN, "local")], &ns.path(), status);
    lan.cli_ok(&["hook"], &state("creating"));
    assert_eq!(lan.leased("local"), 1);
    let path = definition(&lan, "local");
    let saved = std::fs::read(&path).unwrap();
    let mut edited: serde_json::Value = serde_json::from_slice(&saved).unwrap();
    edited["etcd"] = serde_json::json!({
        "endpoints": ["http://127.0.0.1:9"],
        "prefix": "/oci-macvlan",
        "timeout_ms": 500,
    });
    std::fs::write(&path, edited.to_string()).unwrap();

    let out = lan.cli(
        &["--host-id", "hostA", "hook", "poststop"],
        &state("stopped"),
    );
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    assert!(ns.link("eth0").is_none());
    std::fs::write(&path, saved).unwrap();
    lan.assert_no_residue(&["local"], "definition edited to name etcd");
}

/// A record an earlier build wrote names no store: its poststop finds the cluster through the
/// network's definition, as that build did, and releases the etcd lease.
#[privileged]
fn a_record_of_an_earlier_build_is_detached_through_the_definition() {
    let (lan, etcd) = one_host();
    let ns = TestNetns::new("omt-rec-");
    let out = attach(&lan, "hostA", "c1", &ns, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let path = lan.state_dir().join("endpoints/c1.json");
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for endpoint in record["endpoints"].as_array_mut().unwrap() {
        assert!(endpoint["store"]["etcd"].is_object(), "{endpoint}");
        endpoint.as_object_mut().unwrap().remove("store");
    }
    std::fs::write(&path, record.to_string()).unwrap();

    let out = detach(&lan, "hostA", "c1", &ns);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_nothing_left(&lan, &etcd, &ns, "record without store");
}

/// `network disconnect` from an etcd network, its definition in place: the local store and the
/// cluster are opened together (a container may hold leases in both), and the leases it had are
/// found in both without a transaction over the two (which a union of stores refuses).
#[privileged]
fn a_disconnect_from_an_etcd_network_releases_its_lease() {
    let (lan, etcd) = one_host();
    let ns = TestNetns::new("omt-rec-");
    let out = attach(&lan, "hostA", "c1", &ns, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = on(&lan, "hostA", &["network", "disconnect", NET, "c1"], "");
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    assert_nothing_left(&lan, &etcd, &ns, "disconnected");
}

/// Container `c1` on the etcd network, gone without its poststop (its namespace deleted), then a
/// new `c1` on a local network: its attach takes the earlier record back and releases the lease
/// in etcd (not only in the local store it leases from), and `verify` finds nothing amiss. Then
/// the reverse: that one gone too, a `c1` on the etcd network releases the local lease.
#[privileged]
fn an_attach_takes_back_a_gone_containers_leases_from_the_store_it_recorded() {
    let (lan, etcd) = one_host();
    create_local(&lan, "local");
    let hook = |ns: &TestNetns, network: &str| {
        let state = lan.fake_bundle("c1", &[(ANN, network)], &ns.path(), "creating");
        on(&lan, "hostA", &["hook"], &state)
    };
    let on_etcd = TestNetns::new("omt-rec-");
    let out = hook(&on_etcd, NET);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(etcd_leases(&etcd).len(), 1);
    drop(on_etcd);

    let on_local = TestNetns::new("omt-rec-");
    let out = hook(&on_local, "local");
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    assert_eq!(etcd_leases(&etcd), [], "the gone container's etcd lease");
    assert_eq!(lan.leased("local"), 1);
    assert!(on_ok(&lan, "hostA", &["verify"], "").starts_with("ok: 1 leases"));
    drop(on_local);

    let on_etcd = TestNetns::new("omt-rec-");
    let out = hook(&on_etcd, NET);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    assert_eq!(lan.leased("local"), 0, "the gone container's local lease");
    let holders: Vec<String> = etcd_leases(&etcd).into_iter().map(|l| l.2).collect();
    assert_eq!(holders, ["c1"]);
    assert!(on_ok(&lan, "hostA", &["verify"], "").starts_with("ok: 1 leases"));

    let out = detach(&lan, "hostA", "c1", &on_etcd);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_nothing_left(&lan, &etcd, &on_etcd, "taken back across stores");
}
