//! A lease store knows the boot it was made in (`leases/boot_id`): a store of an earlier boot is
//! set aside whole (renamed, never deleted) and a new one takes its place, once however many
//! processes open it at the same time; a store of this boot is kept; a store of an earlier
//! version, which names no boot, is kept and marked.

#![allow(clippy::unwrap_used)]

use std::{
    fs,
    io::Read,
    net::{IpAddr, Ipv4Addr},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use oci_macvlan_ipam::{Lease, LeaseSet, LeaseStoreExt, LmdbStore, Owner, Pool, Request, allocate};

const ANOTHER_BOOT: &str = "0123abcd-1111-2222-3333-444444444444";

fn this_boot() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .unwrap()
        .trim()
        .to_owned()
}

fn pools() -> Vec<Pool> {
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

/// Leases the lowest free address to `id`.
fn lease(store: &mut LmdbStore, id: &str) -> IpAddr {
    let owner = Owner {
        container_id: id.into(),
        ifname: "eth0".into(),
    };
    let pools = pools();
    let request = Request {
        network: "big",
        owner: &owner,
        pools: &pools,
        static_ips: &[],
        ipv6: false,
        undeclared_router: false,
    };
    let leases = store.transaction(|txn| allocate(txn, &request)).unwrap();
    assert_eq!(leases.len(), 1);
    leases[0].ip
}

fn nth(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 20, 0, 2)) + n))
}

fn holders(store: &mut LmdbStore) -> Vec<String> {
    let mut ids: Vec<String> = store
        .all_leases()
        .unwrap()
        .into_iter()
        .map(|l: Lease| l.owner.container_id)
        .collect();
    ids.sort();
    ids
}

/// The state dir's entries whose name starts with `leases.boot-`.
fn set_aside(state: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("leases.boot-")
        })
        .collect();
    out.sort();
    out
}

/// A state dir whose store holds the leases of `ids`, made in `boot`.
fn store_of(boot: &str, ids: &[&str]) -> tempfile::TempDir {
    let state = tempfile::tempdir().unwrap();
    let mut store = LmdbStore::open(state.path()).unwrap();
    for id in ids {
        lease(&mut store, id);
    }
    drop(store);
    fs::write(state.path().join("leases/boot_id"), format!("{boot}\n")).unwrap();
    state
}

#[test]
fn a_new_store_names_this_boot() {
    let state = tempfile::tempdir().unwrap();
    drop(LmdbStore::open(state.path()).unwrap());
    assert_eq!(
        fs::read_to_string(state.path().join("leases/boot_id")).unwrap(),
        format!("{}\n", this_boot())
    );
    // Made under a temporary name: none is left.
    let names: Vec<String> = fs::read_dir(state.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["leases"]);
}

#[test]
fn a_store_of_this_boot_is_kept() {
    let state = store_of(&this_boot(), &["a", "b"]);
    let mut store = LmdbStore::open(state.path()).unwrap();
    assert_eq!(holders(&mut store), ["a", "b"]);
    assert_eq!(lease(&mut store, "c"), nth(2));
    assert_eq!(set_aside(state.path()), Vec::<PathBuf>::new());
}

#[test]
fn a_store_of_another_boot_is_set_aside_with_its_leases_and_a_new_one_made() {
    let state = store_of(ANOTHER_BOOT, &["a", "b"]);
    let mut store = LmdbStore::open(state.path()).unwrap();
    // The new store is empty, this boot's, and usable: the old leases hold no address.
    assert_eq!(holders(&mut store), Vec::<String>::new());
    assert_eq!(lease(&mut store, "c"), nth(0));
    drop(store);
    assert_eq!(
        fs::read_to_string(state.path().join("leases/boot_id")).unwrap(),
        format!("{}\n", this_boot())
    );
    // The old store is all there, under a name that says whose boot it was.
    let aside = set_aside(state.path());
    assert_eq!(aside.len(), 1, "{aside:?}");
    let name = aside[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("leases.boot-0123abcd-"), "{name}");
    assert_eq!(
        fs::read_to_string(aside[0].join("boot_id")).unwrap(),
        format!("{ANOTHER_BOOT}\n")
    );
    // Its leases are intact: moved back into a state dir of its own (and marked as this
    // boot's, as an operator might), it opens with them.
    let elsewhere = tempfile::tempdir().unwrap();
    fs::rename(&aside[0], elsewhere.path().join("leases")).unwrap();
    fs::write(
        elsewhere.path().join("leases/boot_id"),
        format!("{}\n", this_boot()),
    )
    .unwrap();
    let mut old = LmdbStore::open(elsewhere.path()).unwrap();
    assert_eq!(holders(&mut old), ["a", "b"]);
    // A second open of the new store sets nothing aside.
    drop(LmdbStore::open(state.path()).unwrap());
    assert_eq!(set_aside(state.path()), Vec::<PathBuf>::new());
}

#[test]
fn a_store_of_an_earlier_version_is_kept_and_marked_as_this_boots() {
    let state = store_of(&this_boot(), &["a"]);
    fs::remove_file(state.path().join("leases/boot_id")).unwrap();
    let mut store = LmdbStore::open(state.path()).unwrap();
    assert_eq!(holders(&mut store), ["a"]);
    assert_eq!(
        fs::read_to_string(state.path().join("leases/boot_id")).unwrap(),
        format!("{}\n", this_boot())
    );
    assert_eq!(set_aside(state.path()), Vec::<PathBuf>::new());
}

#[test]
fn a_temporary_store_left_by_a_killed_process_is_removed() {
    let state = tempfile::tempdir().unwrap();
    // Above any pid_max: a process that is gone.
    let stale = state.path().join("leases.tmp-999999999");
    fs::create_dir(&stale).unwrap();
    fs::write(stale.join("data.mdb"), b"half made").unwrap();
    drop(LmdbStore::open(state.path()).unwrap());
    assert!(!stale.exists());
}

/// Set by the test below in the processes it starts: the state dir to open, and the container
/// to lease an address to.
const CHILD_STATE: &str = "OCI_MACVLAN_IPAM_TEST_STATE";
const CHILD_ID: &str = "OCI_MACVLAN_IPAM_TEST_ID";
const CHILDREN: usize = 8;

/// In a child: waits for its stdin to close (all are started first, then all let go at once),
/// opens the store and takes one lease. In the test: starts `CHILDREN` of them on a store of
/// another boot, and on no store at all.
#[test]
fn many_processes_opening_at_once_set_aside_once_and_share_one_new_store() {
    if let Some(state) = std::env::var_os(CHILD_STATE) {
        std::io::stdin().read_to_end(&mut Vec::new()).unwrap();
        let mut store = LmdbStore::open(Path::new(&state)).unwrap();
        lease(&mut store, &std::env::var(CHILD_ID).unwrap());
        return;
    }
    for (case, state) in [
        ("a store of another boot", store_of(ANOTHER_BOOT, &["old"])),
        ("no store", tempfile::tempdir().unwrap()),
    ] {
        let mut children: Vec<_> = (0..CHILDREN)
            .map(|i| {
                Command::new(std::env::current_exe().unwrap())
                    .args([
                        "--exact",
                        "many_processes_opening_at_once_set_aside_once_and_share_one_new_store",
                        "--test-threads=1",
                    ])
                    .env(CHILD_STATE, state.path())
                    .env(CHILD_ID, format!("child-{i}"))
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in &mut children {
            drop(child.stdin.take());
        }
        for mut child in children {
            assert!(child.wait().unwrap().success(), "{case}: a child failed");
        }
        let aside = set_aside(state.path());
        let mut store = LmdbStore::open(state.path()).unwrap();
        let expected: Vec<String> = (0..CHILDREN).map(|i| format!("child-{i}")).collect();
        assert_eq!(holders(&mut store), expected, "{case}");
        let mut ips: Vec<IpAddr> = store.all_leases().unwrap().iter().map(|l| l.ip).collect();
        ips.sort();
        assert_eq!(
            ips,
            (0..CHILDREN as u32).map(nth).collect::<Vec<_>>(),
            "{case}"
        );
        if case == "no store" {
            assert_eq!(aside, Vec::<PathBuf>::new(), "{case}");
        } else {
            assert_eq!(aside.len(), 1, "{case}: {aside:?}");
            assert_eq!(
                fs::read_to_string(aside[0].join("boot_id")).unwrap(),
                format!("{ANOTHER_BOOT}\n")
            );
        }
        let left: Vec<String> = fs::read_dir(state.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("leases.tmp-"))
            .collect();
        assert_eq!(left, Vec::<String>::new(), "{case}: temporary stores left");
    }
}
