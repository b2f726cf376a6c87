//! A damaged lease store fails closed: every open returns `Error::Damaged`, naming the file at
//! fault and what to do, and leaves every file as it was (nothing re-created, nothing set
//! aside). Before, an empty `data.mdb` was taken for a new store (the addresses of live
//! containers handed out again) and a truncated one killed the process with SIGBUS.

#![allow(clippy::unwrap_used)]

use std::{
    collections::BTreeMap,
    fs,
    io::{Read, Seek, SeekFrom, Write},
    net::{IpAddr, Ipv4Addr},
    os::unix::fs::{FileTypeExt, MetadataExt},
    path::{Path, PathBuf},
};

use oci_macvlan_ipam::{Damage, Error, Lease, LeaseSet, LeaseStoreExt, LmdbStore, Owner};

const LEASES: u32 = 200;

/// A state dir whose store holds `LEASES` leases.
fn state_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut store = LmdbStore::open(dir.path()).unwrap();
    store
        .transaction(|txn| {
            for i in 0..LEASES {
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
    // A second commit: the two meta pages name different snapshots.
    assert_eq!(store.release_container("c-7").unwrap().len(), 1);
    dir
}

/// Every entry under `dir`: its kind, and a regular file's bytes, a symlink's target.
fn listing(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(path) = todo.pop() {
        let meta = fs::symlink_metadata(&path).unwrap();
        let kind = meta.file_type();
        let what = if kind.is_symlink() {
            format!("symlink to {}", fs::read_link(&path).unwrap().display())
        } else if kind.is_dir() {
            for entry in fs::read_dir(&path).unwrap() {
                todo.push(entry.unwrap().path());
            }
            "dir".into()
        } else if kind.is_fifo() {
            "fifo".into()
        } else {
            let bytes = fs::read(&path).unwrap();
            // FNV-1a of the contents, the size and the inode: the same file, unchanged.
            let hash = oci_macvlan_ipam::fnv1a64(bytes.iter().copied());
            format!(
                "file {} bytes ino {} hash {hash:x}",
                bytes.len(),
                meta.ino()
            )
        };
        out.insert(path.strip_prefix(dir).unwrap().to_path_buf(), what);
    }
    out
}

fn data(state: &Path) -> PathBuf {
    state.join("leases/data.mdb")
}

fn truncate(path: &Path, len: impl Fn(u64) -> u64) {
    let file = fs::OpenOptions::new().write(true).open(path).unwrap();
    let size = file.metadata().unwrap().len();
    file.set_len(len(size)).unwrap();
}

/// Overwrites `len` bytes at `at` with a pattern no LMDB page starts with.
fn garbage(path: &Path, at: u64, len: usize) {
    let mut file = fs::OpenOptions::new().write(true).open(path).unwrap();
    file.seek(SeekFrom::Start(at)).unwrap();
    file.write_all(&vec![0xa5; len]).unwrap();
}

fn replace_with_dir(path: &Path) {
    fs::remove_file(path).unwrap();
    fs::create_dir(path).unwrap();
}

fn replace_with_fifo(path: &Path) {
    fs::remove_file(path).unwrap();
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
}

/// Moves `path` to `<state>/sound-copy-<name>` and puts a symlink to it in its place.
fn replace_with_symlink(state: &Path, path: &Path) {
    let name = path.file_name().unwrap().to_string_lossy();
    let target = state.join(format!("sound-copy-{name}"));
    fs::rename(path, &target).unwrap();
    std::os::unix::fs::symlink(&target, path).unwrap();
}

/// The page size of the store: the host's, which LMDB takes.
const PAGE: u64 = 4096;

type Corrupt = Box<dyn Fn(&Path)>;

#[test]
fn every_damaged_store_fails_to_open_naming_the_file_and_is_left_as_it_is() {
    let cases: Vec<(&str, Corrupt, &str)> = vec![
        (
            "data.mdb empty",
            Box::new(|s| truncate(&data(s), |_| 0)),
            "leases/data.mdb",
        ),
        (
            "data.mdb truncated to 100 bytes",
            Box::new(|s| truncate(&data(s), |_| 100)),
            "leases/data.mdb",
        ),
        (
            "data.mdb truncated to 4096 bytes",
            Box::new(|s| truncate(&data(s), |_| PAGE)),
            "leases/data.mdb",
        ),
        (
            "data.mdb truncated to 8192 bytes",
            Box::new(|s| truncate(&data(s), |_| 2 * PAGE)),
            "leases/data.mdb",
        ),
        (
            "data.mdb truncated to half",
            Box::new(|s| truncate(&data(s), |size| size / 2)),
            "leases/data.mdb",
        ),
        (
            "data.mdb truncated to half a page past its meta pages",
            Box::new(|s| truncate(&data(s), |_| 2 * PAGE + PAGE / 2)),
            "leases/data.mdb",
        ),
        (
            "garbage in meta page 0",
            Box::new(|s| garbage(&data(s), 0, PAGE as usize)),
            "leases/data.mdb",
        ),
        (
            "garbage in meta page 1",
            Box::new(|s| garbage(&data(s), PAGE, PAGE as usize)),
            "leases/data.mdb",
        ),
        (
            "garbage in both meta pages",
            Box::new(|s| garbage(&data(s), 0, 2 * PAGE as usize)),
            "leases/data.mdb",
        ),
        (
            "meta page 0 stamped but of another format version",
            Box::new(|s| {
                let mut file = fs::OpenOptions::new().write(true).open(data(s)).unwrap();
                file.seek(SeekFrom::Start(20)).unwrap();
                file.write_all(&999_u32.to_ne_bytes()).unwrap();
            }),
            "leases/data.mdb",
        ),
        (
            "meta page 1 with a page size LMDB never uses",
            Box::new(|s| {
                let mut file = fs::OpenOptions::new().write(true).open(data(s)).unwrap();
                file.seek(SeekFrom::Start(PAGE + 40)).unwrap();
                file.write_all(&3_u32.to_ne_bytes()).unwrap();
            }),
            "leases/data.mdb",
        ),
        (
            "data.mdb missing",
            Box::new(|s| fs::remove_file(data(s)).unwrap()),
            "leases/data.mdb",
        ),
        (
            "data.mdb a directory",
            Box::new(|s| replace_with_dir(&data(s))),
            "leases/data.mdb",
        ),
        (
            "data.mdb a FIFO",
            Box::new(|s| replace_with_fifo(&data(s))),
            "leases/data.mdb",
        ),
        (
            "data.mdb a symbolic link to a sound copy",
            Box::new(|s| replace_with_symlink(s, &data(s))),
            "leases/data.mdb",
        ),
        (
            "lock.mdb a FIFO",
            Box::new(|s| replace_with_fifo(&s.join("leases/lock.mdb"))),
            "leases/lock.mdb",
        ),
        (
            "lock.mdb a directory",
            Box::new(|s| replace_with_dir(&s.join("leases/lock.mdb"))),
            "leases/lock.mdb",
        ),
        (
            "boot_id a FIFO",
            Box::new(|s| replace_with_fifo(&s.join("leases/boot_id"))),
            "leases/boot_id",
        ),
        (
            "leases a symbolic link to a sound store",
            Box::new(|s| replace_with_symlink(s, &s.join("leases"))),
            "leases",
        ),
        (
            "leases a regular file",
            Box::new(|s| {
                fs::remove_dir_all(s.join("leases")).unwrap();
                fs::write(s.join("leases"), b"").unwrap();
            }),
            "leases",
        ),
        (
            "no boot_id (a store of an earlier version) and data.mdb empty",
            Box::new(|s| {
                fs::remove_file(s.join("leases/boot_id")).unwrap();
                truncate(&data(s), |_| 0);
            }),
            "leases/data.mdb",
        ),
    ];
    let mut report = Vec::new();
    for (name, corrupt, file) in &cases {
        let state = state_dir();
        corrupt(state.path());
        let before = listing(state.path());
        for attempt in 0..2 {
            let err = LmdbStore::open(state.path())
                .err()
                .unwrap_or_else(|| panic!("{name}: opened"));
            let Error::Damaged { path, store, .. } = &err else {
                panic!("{name}: {err}");
            };
            assert_eq!(path, &state.path().join(file), "{name}: {err}");
            assert_eq!(store, &state.path().join("leases"), "{name}");
            let message = err.to_string();
            assert_eq!(message.lines().count(), 1, "{name}: {message}");
            assert!(
                message.ends_with(&format!(
                    "move {} aside, and the next attach starts an empty store",
                    store.display()
                )),
                "{name}: {message}"
            );
            assert_eq!(
                listing(state.path()),
                before,
                "{name}: files changed by open {attempt}"
            );
            if attempt == 0 {
                report.push(format!(
                    "{name}\n  {}",
                    message.replace(&state.path().display().to_string(), "[STATE]")
                ));
            }
        }
    }
    insta::assert_snapshot!(report.join("\n"));
}

/// The meta pages' `mm_last_pg` (offset 136 of each), moved by `by` pages.
fn move_last_page(state: &Path, by: u64) {
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(data(state))
        .unwrap();
    for page in 0..2 {
        let at = page * PAGE + 136;
        let mut last = [0; 8];
        file.seek(SeekFrom::Start(at)).unwrap();
        file.read_exact(&mut last).unwrap();
        let moved = u64::from_ne_bytes(last) + by;
        file.seek(SeekFrom::Start(at)).unwrap();
        file.write_all(&moved.to_ne_bytes()).unwrap();
    }
}

/// LMDB may leave the last pages it counts unwritten when a transaction freed them: a file
/// shorter than its meta pages say is sound as long as every page its trees reach is in it.
/// (Made here by moving the meta pages' last page past the end of a sound file.)
#[test]
fn a_file_shorter_than_its_last_page_is_sound_when_its_trees_are_in_it() {
    let state = state_dir();
    move_last_page(state.path(), 3);
    let mut store = LmdbStore::open(state.path()).unwrap();
    assert_eq!(store.all_leases().unwrap().len(), LEASES as usize - 1);
    assert_eq!(store.integrity_problems().unwrap(), Vec::<String>::new());
    assert_eq!(store.release_container("c-8").unwrap().len(), 1);
    drop(store);
    let mut store = LmdbStore::open(state.path()).unwrap();
    assert_eq!(store.all_leases().unwrap().len(), LEASES as usize - 2);
}

/// The same file cut at its last page that a tree reaches is damaged: the walk that accepts a
/// short file finds the page past its end.
#[test]
fn a_short_file_whose_trees_reach_past_its_end_is_damaged() {
    let state = state_dir();
    let size = fs::metadata(data(state.path())).unwrap().len();
    // Cut one page at a time until the trees reach past the end (the last pages may be free).
    for pages in (3..size / PAGE).rev() {
        truncate(&data(state.path()), |_| pages * PAGE);
        match LmdbStore::open(state.path()) {
            Ok(store) => drop(store),
            Err(Error::Damaged {
                damage: Damage::Truncated { size, page },
                ..
            }) => {
                assert_eq!(size, pages * PAGE);
                assert!(page >= pages, "page {page} of {pages}");
                return;
            }
            Err(err) => panic!("{pages} pages: {err}"),
        }
    }
    panic!("no cut was found");
}

/// Set in the processes the test below starts: the state dir whose store they read.
const CHILD_STATE: &str = "OCI_MACVLAN_IPAM_TEST_DAMAGED_STATE";

/// A page of garbage inside the trees passes the checks made before the file is mapped (they
/// read the meta pages, not every page), and may lead LMDB past the end of the file: SIGBUS.
/// Each page of a store in turn is overwritten (with two patterns that LMDB's debug assertions
/// do not catch first) and read in a child process, as `verify` reads it: none dies of a signal,
/// and where LMDB faulted, the child printed the store's damage on one line and exited 1.
#[test]
fn a_garbage_page_inside_the_trees_never_kills_with_a_signal() {
    if let Some(state) = std::env::var_os(CHILD_STATE) {
        // The child: read everything; an error is an answer too.
        if let Ok(mut store) = LmdbStore::open(Path::new(&state)) {
            let _ = store.all_leases();
            let _ = store.integrity_problems();
        }
        return;
    }
    let mut faulted = 0;
    for pattern in [0xa5_u8, 0xff] {
        let pages = fs::metadata(data(state_dir().path())).unwrap().len() / PAGE;
        for page in 2..pages {
            let state = state_dir();
            let mut file = fs::OpenOptions::new()
                .write(true)
                .open(data(state.path()))
                .unwrap();
            file.seek(SeekFrom::Start(page * PAGE)).unwrap();
            file.write_all(&[pattern; PAGE as usize]).unwrap();
            drop(file);
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "a_garbage_page_inside_the_trees_never_kills_with_a_signal",
                    "--test-threads=1",
                ])
                .env(CHILD_STATE, state.path())
                .output()
                .unwrap();
            let case = format!("page {page} of {pages} filled with {pattern:#x}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.code().is_some(), "{case}: {:?}", out.status);
            if stderr.contains("led LMDB past the end of the file") {
                faulted += 1;
                assert_eq!(out.status.code(), Some(1), "{case}");
                assert_eq!(stderr.lines().count(), 1, "{case}: {stderr}");
                assert!(
                    stderr.starts_with(&format!(
                        "oci-macvlan: error: lease store {} is damaged",
                        data(state.path()).display()
                    )),
                    "{case}: {stderr}"
                );
            }
        }
    }
    assert!(faulted > 0, "no page led LMDB past the end of the file");
}

/// Set in the processes the test below starts: the state dir whose store they read thoroughly.
const CHILD_THOROUGH: &str = "OCI_MACVLAN_IPAM_TEST_THOROUGH_STATE";

/// What `verify`, `gc`, `network inspect` and `rm` open with: every page the trees reach is
/// checked before LMDB reads it. Each page in turn filled with zeros (which LMDB follows into a
/// segmentation fault, or an assertion, rather than a SIGBUS) or garbage: reading every lease
/// never dies of a signal, and every page the trees use is reported as damage naming the file.
#[test]
fn a_thorough_open_reports_any_page_of_the_trees_and_never_dies_of_a_signal() {
    if let Some(state) = std::env::var_os(CHILD_THOROUGH) {
        match LmdbStore::open_thorough(Path::new(&state)) {
            Ok(mut store) => {
                let _ = store.all_leases();
                let _ = store.integrity_problems();
                println!("opened");
            }
            Err(err) => println!("error: {err}"),
        }
        return;
    }
    let mut reported = 0;
    for pattern in [0x00_u8, 0xa5, 0xff] {
        let pages = fs::metadata(data(state_dir().path())).unwrap().len() / PAGE;
        for page in 2..pages {
            let state = state_dir();
            garbage_with(&data(state.path()), page * PAGE, pattern);
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "a_thorough_open_reports_any_page_of_the_trees_and_never_dies_of_a_signal",
                    "--test-threads=1",
                    "--nocapture",
                ])
                .env(CHILD_THOROUGH, state.path())
                .output()
                .unwrap();
            let case = format!("page {page} of {pages} filled with {pattern:#x}");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{case}: {:?} {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            if stdout.contains("error: ") {
                assert!(
                    stdout.contains(&format!(
                        "lease store {} is damaged",
                        data(state.path()).display()
                    )),
                    "{case}: {stdout}"
                );
                reported += 1;
            } else {
                assert!(stdout.contains("opened"), "{case}: {stdout}");
            }
        }
    }
    assert!(reported > 0, "no page was reported");
}

fn garbage_with(path: &Path, at: u64, pattern: u8) {
    let mut file = fs::OpenOptions::new().write(true).open(path).unwrap();
    file.seek(SeekFrom::Start(at)).unwrap();
    file.write_all(&[pattern; PAGE as usize]).unwrap();
}
