//! The SQLite store from inside: a /16 holding 10,000 leases, what one allocation costs as the store
//! grows (counted in SQLite virtual-machine steps, which are deterministic, never in time), and the
//! index of leased runs kept in step with the leases.

#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr};

use rusqlite::StatementStatus;

use crate::{LeaseStore, Owner, Pool, Request, SqliteStore, allocate, runs};

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

fn lease(store: &mut SqliteStore, pools: &[Pool], i: usize) -> IpAddr {
    let owner = owner(i);
    let req = Request {
        network: "big",
        owner: &owner,
        pools,
        static_ips: &[],
        ipv6: false,
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

fn filled(n: usize) -> (tempfile::TempDir, SqliteStore, Vec<Pool>) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
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

/// VM steps spent finding free addresses while one container is released from the middle of
/// the leased run and two allocations follow (one fills the hole, one extends the run).
fn steps_of_churn(n: usize) -> i32 {
    let (_dir, mut store, pools) = filled(n);
    let covering = || {
        let conn = store.connection();
        let stmt = conn.prepare_cached(runs::COVERING).unwrap();
        (
            stmt.reset_status(StatementStatus::VmStep),
            stmt.reset_status(StatementStatus::FullscanStep),
        )
    };
    covering();
    store.release("big", &owner(n / 2)).unwrap();
    assert_eq!(lease(&mut store, &pools, n + 1), nth(n / 2));
    assert_eq!(lease(&mut store, &pools, n + 2), nth(n));
    let stmt = store.connection().prepare_cached(runs::COVERING).unwrap();
    assert_eq!(stmt.get_status(StatementStatus::FullscanStep), 0);
    stmt.get_status(StatementStatus::VmStep)
}

#[test]
fn finding_a_free_address_costs_the_same_with_100_or_10000_leases() {
    let small = steps_of_churn(100);
    let large = steps_of_churn(10_000);
    eprintln!("VM steps to find free addresses: {small} with 100 leases, {large} with 10000");
    assert!(small > 0);
    // A walk over the leased run would cost ~100 times more; a B-tree probe costs the same.
    assert!(large <= small + small / 4, "{large} steps vs {small}");
}

#[test]
fn hot_statements_are_index_searches() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    for sql in runs::HOT {
        let mut stmt = store
            .connection()
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let unbound = vec![rusqlite::types::Null; stmt.parameter_count()];
        let plan: Vec<String> = stmt
            .query_map(rusqlite::params_from_iter(unbound), |row| {
                row.get::<_, String>(3)
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(!plan.is_empty(), "{sql}");
        for step in &plan {
            assert!(step.starts_with("SEARCH"), "{sql}: {step}");
        }
    }
}

#[test]
fn a_hand_edited_index_is_reported_and_repaired_from_the_leases() {
    let (_dir, mut store, pools) = filled(10);
    assert!(
        !store.repair_index().unwrap(),
        "a sound index is left alone"
    );
    store.connection().execute("DELETE FROM runs", []).unwrap();
    let problems = store.integrity_problems().unwrap();
    insta::assert_snapshot!(problems.join("\n"), @"the index of free addresses disagrees with the leases (0 runs stored, 1 expected); `oci-macvlan gc` rebuilds it");
    assert!(store.repair_index().unwrap());
    assert_eq!(store.integrity_problems().unwrap(), Vec::<String>::new());
    assert_eq!(lease(&mut store, &pools, 10), nth(10));
    assert_eq!(store.all_leases().unwrap().len(), 11);
}

/// `.cargo/config.toml` builds the bundled SQLite for short-lived processes (no preallocated
/// caches, none of the unused extensions); a build that loses those options is slower at every
/// hook, which nothing else would notice.
#[test]
fn built_with_the_hooks_options() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let mut stmt = store
        .connection()
        .prepare("PRAGMA compile_options")
        .unwrap();
    let options: Vec<String> = stmt
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    for wanted in [
        "DEFAULT_PCACHE_INITSZ=0",
        "DEFAULT_LOOKASIDE=0,0",
        "DEFAULT_MEMSTATUS=0",
        "OMIT_JSON",
    ] {
        assert!(
            options.iter().any(|o| o == wanted),
            "{wanted} not in {options:?}"
        );
    }
    for unwanted in ["ENABLE_FTS5", "ENABLE_FTS3", "ENABLE_RTREE", "ENABLE_STAT4"] {
        assert!(
            !options.iter().any(|o| o == unwanted),
            "{unwanted} in {options:?}"
        );
    }
}
