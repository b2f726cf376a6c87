//! Unit tests of `damage.rs`: the meta pages read as LMDB reports them, and the walk.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::{Lease, LeaseSet, LeaseStoreExt, LmdbStore, Owner};

/// A store in a temporary state dir holding `n` leases.
fn store(n: u32) -> (tempfile::TempDir, LmdbStore) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = LmdbStore::open(dir.path()).unwrap();
    store
        .transaction(|txn| {
            for i in 0..n {
                txn.insert(&Lease {
                    ip: IpAddr::V4(Ipv4Addr::from(0x0a14_0002 + i)),
                    subnet: "10.20.0.0/16".parse().unwrap(),
                    network: "big".into(),
                    owner: Owner {
                        container_id: format!("c-{i}"),
                        ifname: "eth0".into(),
                    },
                    host: None,
                })?;
            }
            Ok(())
        })
        .unwrap();
    (dir, store)
}

#[test]
fn the_meta_pages_read_as_lmdb_reports_them() {
    let (dir, mut store) = store(300);
    // A second commit: the two meta pages differ, the newest is the one LMDB reports.
    store.release_container("c-7").unwrap();
    let (last_page, txnid, page_size, _) = store.layout();
    let file = File::open(dir.path().join("leases").join(DATA_FILE)).unwrap();
    let mut metas = Vec::new();
    for page in 0..2 {
        let mut head = [0; META_END];
        read_full(&file, page * u64::from(page_size), &mut head).unwrap();
        metas.push(Meta::parse(&head).unwrap());
    }
    let newest = metas.iter().max_by_key(|m| m.txnid).unwrap();
    assert_eq!(newest.page_size, page_size);
    assert_eq!(newest.last_page, last_page);
    assert_eq!(newest.txnid, txnid);
    assert_eq!(metas[0].txnid.abs_diff(metas[1].txnid), 1);
}

#[test]
fn the_walk_reaches_every_page_of_the_trees_of_a_sound_store() {
    // Enough leases for branch pages in the trees.
    let (dir, store) = store(3_000);
    let (last_page, _, _, trees) = store.layout();
    drop(store);
    let visited = examine(&dir.path().join("leases"), true).unwrap();
    // Every page of the five trees LMDB counts, and the free pages' tree (a page or two).
    assert!(trees > 40, "{trees} pages");
    assert!(
        (trees..=trees + 2).contains(&visited),
        "{visited} pages walked, {trees} in the trees"
    );
    assert!(visited < last_page, "{visited} pages walked of {last_page}");
}
