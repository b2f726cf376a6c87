//! The store from inside: a /16 holding 10,000 leases, what one allocation costs as the store
//! grows (counted in B-tree probes, which are deterministic, never in time), the indexes kept in
//! step with the leases.

#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr};

use crate::{LeaseSet, LeaseStoreExt, LmdbStore, Owner, Pool, Request, allocate, runs};

fn slash16() -> Vec<Pool> {
    vec![
        Pool::new(
            "10.20.0.0/16".parse().unwrap(),
            Some("10.20.0.1".parse().unwrap()),
            None,
            Default::default(),
        )
        .unwrap(),
    ]
}

fn owner(i: usize) -> Owner {
    Owner {
        container_id: format!("c-{i}"),
        ifname: "eth0".into(),
    }
}

fn lease(store: &mut LmdbStore, pools: &[Pool], i: usize) -> IpAddr {
    let owner = owner(i);
    let req = Request {
        network: "big",
        owner: &owner,
        pools,
        static_ips: &[],
        ipv6: false,
        undeclared_router: false,
    };
    let leases = store.transaction(|txn| allocate(txn, &req)).unwrap();
    assert_eq!(leases.len(), 1);
    leases[0].ip
}

/// The n-th dynamic address of 10.20.0.0/16: .0.0 is the network address, .0.1 the gateway.
fn nth(n: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(
        u32::from(Ipv4Addr::new(10, 20, 0, 2)) + u32::try_from(n).unwrap(),
    ))
}

fn filled(n: usize) -> (tempfile::TempDir, LmdbStore, Vec<Pool>) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = LmdbStore::open(dir.path()).unwrap();
    let pools = slash16();
    for i in 0..n {
        assert_eq!(lease(&mut store, &pools, i), nth(i), "lease {i}");
    }
    (dir, store, pools)
}

#[test]
fn a_slash_16_holds_10000_leases_lowest_free_first() {
    let (_dir, mut store, pools) = filled(10_000);
    assert_eq!(store.all_leases().unwrap().len(), 10_000);
    assert_eq!(store.integrity_problems().unwrap(), Vec::<String>::new());

    // Holes are refilled lowest first, whatever order they were made in.
    for i in [9_999, 17, 5_000] {
        let released = store.release("big", &owner(i)).unwrap();
        assert_eq!(released.len(), 1);
        assert_eq!(released[0].ip, nth(i));
    }
    assert_eq!(store.integrity_problems().unwrap(), Vec::<String>::new());
    for (j, i) in [17, 5_000, 9_999, 10_000].into_iter().enumerate() {
        assert_eq!(lease(&mut store, &pools, 20_000 + j), nth(i));
    }
    assert_eq!(store.all_leases().unwrap().len(), 10_001);
    assert_eq!(store.integrity_problems().unwrap(), Vec::<String>::new());
}

/// B-tree probes of the runs spent finding free addresses while one container is released from
/// the middle of the leased run and two allocations follow (one fills the hole, one extends the
/// run): counted, which is deterministic, never timed.
fn probes_of_churn(n: usize) -> u64 {
    let (_dir, mut store, pools) = filled(n);
    store.release("big", &owner(n / 2)).unwrap();
    runs::PROBES.with(|p| p.set(0));
    assert_eq!(lease(&mut store, &pools, n + 1), nth(n / 2));
    assert_eq!(lease(&mut store, &pools, n + 2), nth(n));
    runs::PROBES.with(std::cell::Cell::get)
}

#[test]
fn finding_a_free_address_costs_the_same_with_100_or_10000_leases() {
    let small = probes_of_churn(100);
    let large = probes_of_churn(10_000);
    eprintln!("run probes to find free addresses: {small} with 100 leases, {large} with 10000");
    assert!(small > 0);
    // A walk over the leased run would take ~100 times more probes.
    assert_eq!(large, small);
}

#[test]
fn a_hand_edited_index_is_reported_and_repaired_from_the_leases() {
    let (_dir, mut store, pools) = filled(10);
    assert!(
        !store.repair_index().unwrap(),
        "a sound index is left alone"
    );
    store.damage_runs();
    let problems = store.integrity_problems().unwrap();
    insta::assert_snapshot!(problems.join("\n"), @"the index of free addresses disagrees with the leases (0 runs stored, 1 expected); `oci-macvlan gc` rebuilds it");
    assert!(store.repair_index().unwrap());
    assert_eq!(store.integrity_problems().unwrap(), Vec::<String>::new());
    assert_eq!(lease(&mut store, &pools, 10), nth(10));
    assert_eq!(store.all_leases().unwrap().len(), 11);
}

#[test]
fn a_lost_index_entry_is_reported_and_repaired_from_the_leases() {
    let (_dir, mut store, pools) = filled(3);
    store.damage_owners("c-1", nth(1));
    let problems = store.integrity_problems().unwrap();
    insta::assert_snapshot!(problems.join("\n"), @"lease 10.20.0.3 of container c-1 is missing from the index of owners; `oci-macvlan gc` rebuilds it");
    assert!(store.repair_index().unwrap());
    assert_eq!(store.integrity_problems().unwrap(), Vec::<String>::new());
    // The repaired index finds the lease again: its owner gets it back, and releases it.
    assert_eq!(lease(&mut store, &pools, 1), nth(1));
    assert_eq!(store.release_container("c-1").unwrap().len(), 1);
    assert_eq!(store.all_leases().unwrap().len(), 2);
}

#[test]
fn one_process_may_hold_two_handles_of_one_store() {
    let (dir, mut first, pools) = filled(2);
    // Through a symlink: another name for the same directory.
    let alias = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(dir.path(), alias.path().join("state")).unwrap();
    let mut second = LmdbStore::open(&alias.path().join("state")).unwrap();
    assert_eq!(lease(&mut second, &pools, 2), nth(2));
    drop(second);
    assert_eq!(first.all_leases().unwrap().len(), 3);
    drop(first);
    assert_eq!(
        LmdbStore::open(dir.path())
            .unwrap()
            .all_leases()
            .unwrap()
            .len(),
        3
    );
}
