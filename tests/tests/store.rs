//! Privileged tier: a damaged lease store fails closed. With one container attached, the store
//! is damaged in each way of the table below; then an attach of another container, the first
//! one's poststop, `verify` and `network inspect` each exit 1 (never a signal) with one line
//! on stderr naming the damaged file, each hook appends its `error` record to the journal, and
//! the store's files are left exactly as they were: nothing re-created, nothing set aside.
//! (Before: an empty `data.mdb` was taken for a new store, which handed the first container's
//! address to the second; a truncated one killed every command with SIGBUS.)

#![allow(clippy::unwrap_used)]

use std::{
    collections::BTreeMap,
    fs,
    io::{Seek, SeekFrom, Write},
    os::unix::fs::{FileTypeExt, MetadataExt},
    path::{Path, PathBuf},
};

use oci_macvlan_tests::{Lan, TestNetns, privileged, run_ok};

const NET: &str = "lan77";
const ANN: &str = "oci-macvlan.networks";
const PAGE: u64 = 4096;

fn truncate(path: &Path, len: impl Fn(u64) -> u64) {
    let file = fs::OpenOptions::new().write(true).open(path).unwrap();
    let size = file.metadata().unwrap().len();
    file.set_len(len(size)).unwrap();
}

fn garbage(path: &Path, at: u64, len: u64) {
    let mut file = fs::OpenOptions::new().write(true).open(path).unwrap();
    file.seek(SeekFrom::Start(at)).unwrap();
    file.write_all(&vec![0xa5; usize::try_from(len).unwrap()])
        .unwrap();
}

fn fifo(path: &Path) {
    fs::remove_file(path).unwrap();
    run_ok("mkfifo", &[&path.display().to_string()]);
}

/// Each entry of the state dir named `leases…`, and everything under them: kind, and a regular
/// file's size, inode and bytes, a symlink's target.
fn store_files(state: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut todo: Vec<PathBuf> = fs::read_dir(state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("leases")
        })
        .collect();
    while let Some(path) = todo.pop() {
        let meta = fs::symlink_metadata(&path).unwrap();
        let kind = meta.file_type();
        let what = if kind.is_symlink() {
            format!("symlink to {}", fs::read_link(&path).unwrap().display())
        } else if kind.is_dir() {
            todo.extend(fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            "dir".into()
        } else if kind.is_fifo() {
            "fifo".into()
        } else {
            let bytes = fs::read(&path).unwrap();
            format!("file ino {} {:?}", meta.ino(), bytes)
        };
        out.insert(path, what);
    }
    out
}

type Corrupt = fn(&Path);

#[privileged]
fn a_damaged_store_fails_every_command_with_one_line_and_is_left_as_it_is() {
    let data = |store: &Path| store.join("data.mdb");
    let cases: Vec<(&str, Corrupt, &str)> = vec![
        (
            "data.mdb empty",
            |s| truncate(&s.join("data.mdb"), |_| 0),
            "data.mdb",
        ),
        (
            "data.mdb truncated to 4096 bytes",
            |s| truncate(&s.join("data.mdb"), |_| PAGE),
            "data.mdb",
        ),
        (
            "data.mdb truncated to 8192 bytes",
            |s| truncate(&s.join("data.mdb"), |_| 2 * PAGE),
            "data.mdb",
        ),
        (
            "data.mdb truncated to half",
            |s| truncate(&s.join("data.mdb"), |size| size / 2),
            "data.mdb",
        ),
        (
            "garbage in meta page 0",
            |s| garbage(&s.join("data.mdb"), 0, PAGE),
            "data.mdb",
        ),
        (
            "garbage in both meta pages",
            |s| garbage(&s.join("data.mdb"), 0, 2 * PAGE),
            "data.mdb",
        ),
        (
            "data.mdb a directory",
            |s| {
                fs::remove_file(s.join("data.mdb")).unwrap();
                fs::create_dir(s.join("data.mdb")).unwrap();
            },
            "data.mdb",
        ),
        ("data.mdb a FIFO", |s| fifo(&s.join("data.mdb")), "data.mdb"),
        ("lock.mdb a FIFO", |s| fifo(&s.join("lock.mdb")), "lock.mdb"),
        (
            "leases a symbolic link to a sound store",
            |s| {
                let sound = s.with_file_name("sound-store");
                fs::rename(s, &sound).unwrap();
                std::os::unix::fs::symlink(&sound, s).unwrap();
            },
            "",
        ),
    ];
    let mut report = Vec::new();
    for (name, corrupt, file) in cases {
        let lan = Lan::new();
        lan.create_network(NET, &[]);
        let first = TestNetns::new("omt-ctr-");
        let second = TestNetns::new("omt-ctr-");
        lan.cli_ok(
            &["hook"],
            &lan.fake_bundle("first", &[(ANN, NET)], &first.path(), "creating"),
        );
        assert_eq!(lan.leased(NET), 1, "{name}");
        let state = lan.state_dir();
        let store = state.join("leases");
        // The file the message must name: the store's directory itself, or a file in it.
        let at_fault = if file.is_empty() {
            store.clone()
        } else {
            store.join(file)
        };
        assert!(data(&store).exists(), "{name}");
        corrupt(&store);
        let files = store_files(&state);
        let hook = |id: &str, ns: &TestNetns, status: &str| {
            (
                true,
                vec!["hook".to_owned()],
                lan.fake_bundle(id, &[(ANN, NET)], &ns.path(), status),
            )
        };
        let commands = [
            (
                "attach of another container",
                hook("second", &second, "creating"),
            ),
            (
                "poststop of the attached one",
                hook("first", &first, "stopped"),
            ),
            ("verify", (false, vec!["verify".to_owned()], String::new())),
            (
                "network inspect",
                (
                    false,
                    vec!["network".into(), "inspect".into(), NET.into()],
                    String::new(),
                ),
            ),
        ];
        let mut lines = Vec::new();
        for (what, (is_hook, args, stdin)) in commands {
            let context = format!("{name}: {what}");
            let before = lan.journal().len();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = lan.cli(&args, &stdin);
            // A process killed by a signal has no exit code (`-1` here).
            assert_eq!(out.code, 1, "{context}: stderr: {}", out.stderr);
            assert!(out.stdout.is_empty(), "{context}: stdout: {}", out.stdout);
            assert_eq!(out.stderr.lines().count(), 1, "{context}: {}", out.stderr);
            let line = out.stderr.trim_end();
            assert!(
                line.contains(&format!("lease store {} is damaged", at_fault.display())),
                "{context}: {line}"
            );
            let journal = lan.journal();
            if is_hook {
                assert_eq!(journal.len(), before + 1, "{context}: one journal record");
                let record = &journal[before];
                assert_eq!(record["outcome"], "error", "{context}: {record}");
                assert_eq!(record["exit"], 1, "{context}: {record}");
                assert_eq!(
                    record["error"]
                        .as_str()
                        .map(|e| format!("oci-macvlan: error: {e}")),
                    Some(line.to_owned()),
                    "{context}: the journal's error is stderr's"
                );
            } else {
                assert_eq!(journal.len(), before, "{context}: journal");
            }
            assert_eq!(
                store_files(&state),
                files,
                "{context}: the store's files changed"
            );
            // A hook's line says first what it was doing ("attach of container second: "):
            // what follows is the same line as every other command's.
            let said = match line.split_once(" of container ") {
                Some((_, rest)) if is_hook => {
                    let (_, cause) = rest.split_once(": ").unwrap();
                    format!("oci-macvlan: error: {cause}")
                }
                _ => line.to_owned(),
            };
            lines.push(said);
        }
        assert!(
            lines.iter().all(|l| *l == lines[0]),
            "{name}: the commands disagree: {lines:#?}"
        );
        let tmp = lan.tmp().display().to_string();
        report.push(format!("{name}\n  {}", lines[0].replace(&tmp, "[TMP]")));
        let links: Vec<String> = second
            .links()
            .iter()
            .filter_map(|l| l["ifname"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(links, ["lo"], "{name}: the failed attach made a link");
    }
    insta::assert_snapshot!(report.join("\n"));
}
