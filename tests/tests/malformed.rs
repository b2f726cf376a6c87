//! Privileged tier: the malformed-input corpus of the hook (the CLI's and the rest of the hook's
//! bad inputs are in `errors.rs`). Each input exits with its documented code and one line on
//! stderr naming what is wrong (snapshotted), appends one `error` record with that line to the
//! hook journal, and leaves nothing: no lease, record, lock, or link anywhere. No input makes the
//! hook wait: each run has a deadline far beyond any real run, and a hook past it fails the test.
//! The journal's own hostile conditions (a full state dir, a planted symlink) are in `journal.rs`.

#![allow(clippy::unwrap_used)]

use std::{fs, io::Write, path::Path, sync::mpsc, time::Duration};

use oci_macvlan_tests::{
    DRIVERS, Driver, Lan, Outcome, TestNetns, binary, privileged, run, run_ok,
};

const NET: &str = "lan77";
const ANN: &str = "oci-macvlan.networks";
/// A hook that has not exited after this long is taken to hang on its input: real runs take
/// milliseconds, and a hang is for ever.
const HANG: Duration = Duration::from_secs(120);
/// The longest error line the hook prints: its prefix and 1 KiB of error, cut with `…`.
const MAX_LINE: usize = "oci-macvlan: error: ".len() + 1024 + '…'.len_utf8();

/// Runs `oci-macvlan hook` as [`Lan::cli_with`] does, but kills it and fails the test if it has
/// not exited within [`HANG`].
fn hook_within_deadline(lan: &Lan, name: &str, stdin: &[u8]) -> Outcome {
    let mut child = lan.spawn_with(&binary(), &[], &["hook"], true);
    let pid = child.id();
    let mut input = child.stdin.take().unwrap();
    // A hook may stop reading early (input too large): a broken pipe is its answer.
    let _ = input.write_all(stdin);
    drop(input);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(HANG) {
        Ok(out) => {
            let out = out.unwrap();
            Outcome {
                code: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
        }
        Err(_) => {
            // `nsenter` execs the binary: the child's pid is the hook's.
            let _ = run("kill", &["-KILL", &pid.to_string()]);
            panic!("{name}: the hook still runs after {HANG:?}: it blocks on its input");
        }
    }
}

/// The corpus is the same for every driver (each input is refused before any link is made,
/// so an ipvlan network's run needs no ipvlan in this kernel) and so is what the hook says.
#[privileged]
fn malformed_hook_input_fails_with_one_line_and_one_journal_record_and_leaves_nothing() {
    let reports: Vec<(Driver, String)> = DRIVERS.iter().map(|d| (*d, corpus(*d))).collect();
    insta::assert_snapshot!(reports[0].1);
    for (driver, report) in &reports[1..] {
        assert_eq!(report, &reports[0].1, "{} says otherwise", driver.name);
    }
}

/// Runs the corpus against a network of `driver`; returns the report the snapshot holds.
fn corpus(driver: Driver) -> String {
    let lan = Lan::new();
    let container = TestNetns::new("omt-ctr-");
    lan.create_network(NET, driver.create);
    let ns = container.path();
    let bundle = |id: &str, ann: &[(&str, &str)]| lan.fake_bundle(id, ann, &ns, "creating");
    // Above any pid_max: never a live process, so never a namespace the test did not make.
    let dead_pid = 999_999_999;
    let big = format!(
        r#"{{"ociVersion":"1.0.2","id":"big","status":"creating","pad":"{}"}}"#,
        "x".repeat(1 << 20)
    );
    // A bundle whose `config.json` is replaced by what `make` puts at its path.
    let config_is = |id: &str, make: &dyn Fn(&Path)| {
        let state = bundle(id, &[(ANN, NET)]);
        let config = lan.tmp().join(format!("bundle-{id}/config.json"));
        fs::remove_file(&config).unwrap();
        make(&config);
        state.into_bytes()
    };
    let mkfifo = |path: &Path| {
        run_ok("mkfifo", &[&path.display().to_string()]);
    };
    // A bundle whose config names as the namespace what `make` puts at a path of the test's.
    let netns_is = |id: &str, make: &dyn Fn(&Path)| {
        let path = lan.tmp().join(format!("netns-{id}"));
        make(&path);
        lan.fake_bundle(id, &[(ANN, NET)], &path, "creating")
            .into_bytes()
    };
    let huge = "9".repeat(20 << 20);
    let long = "9".repeat(3 << 20);
    let long_ifname = "i".repeat(4000);
    let many: Vec<String> = (0..40_000).map(|n| format!("lan{n}")).collect();
    let many = many.join(",");
    let over_cap: Vec<String> = (0..33).map(|n| format!("lan{n}")).collect();
    let over_cap = over_cap.join(",");

    let cases: Vec<(&str, Vec<u8>, i32)> = vec![
        ("stdin empty", Vec::new(), 3),
        ("stdin not JSON", b"id: c1".to_vec(), 3),
        (
            "stdin truncated",
            br#"{"ociVersion":"1.0.2","id":"c1","status":"crea"#.to_vec(),
            3,
        ),
        (
            "stdin not UTF-8",
            b"{\"ociVersion\":\"1.0.2\",\"id\":\"c\xff\xfe1\",\"status\":\"creating\"}".to_vec(),
            3,
        ),
        ("stdin over 1 MiB", big.into_bytes(), 3),
        (
            "id of the wrong type",
            br#"{"ociVersion":"1.0.2","id":17,"status":"creating"}"#.to_vec(),
            3,
        ),
        (
            "pid of the wrong type",
            br#"{"ociVersion":"1.0.2","id":"c1","status":"creating","pid":"12"}"#.to_vec(),
            3,
        ),
        (
            "annotations of the wrong type",
            br#"{"ociVersion":"1.0.2","id":"c1","status":"creating","annotations":["a"]}"#.to_vec(),
            3,
        ),
        (
            "JSON that is not an object",
            br#"["ociVersion","1.0.2"]"#.to_vec(),
            3,
        ),
        (
            "pid not alive",
            lan.pid_bundle("c2", &[(ANN, NET)], dead_pid, "creating")
                .into_bytes(),
            4,
        ),
        (
            "IP outside the subnet",
            bundle("c3", &[(ANN, NET), ("oci-macvlan.ip", "192.168.78.9")]).into_bytes(),
            3,
        ),
        (
            "IPv4 address given as ip6",
            bundle("c4", &[(ANN, NET), ("oci-macvlan.ip6", "192.168.77.9")]).into_bytes(),
            3,
        ),
        (
            "gateway as static IP",
            bundle(
                "c5",
                &[(ANN, NET), (&format!("oci-macvlan.{NET}.ip"), Lan::GATEWAY)],
            )
            .into_bytes(),
            3,
        ),
        (
            "broadcast as static IP",
            bundle("c6", &[(ANN, NET), ("oci-macvlan.ip", "192.168.77.255")]).into_bytes(),
            3,
        ),
        (
            "bad MAC",
            bundle(
                "c7",
                &[(ANN, NET), ("oci-macvlan.mac", "02:zz:00:00:00:01")],
            )
            .into_bytes(),
            3,
        ),
        (
            "ifname with a slash",
            bundle(
                "c8",
                &[(ANN, NET), (&format!("oci-macvlan.{NET}.ifname"), "eth/0")],
            )
            .into_bytes(),
            3,
        ),
        (
            "ifname too long",
            bundle(
                "c9",
                &[
                    (ANN, NET),
                    (&format!("oci-macvlan.{NET}.ifname"), "eth0123456789abc"),
                ],
            )
            .into_bytes(),
            3,
        ),
        (
            "unknown network",
            bundle("c10", &[(ANN, "lan99")]).into_bytes(),
            4,
        ),
        (
            "network name with a slash",
            bundle("c11", &[(ANN, "../lan77")]).into_bytes(),
            3,
        ),
        (
            "network name with a slash inside",
            bundle("c17", &[(ANN, "lan/77")]).into_bytes(),
            3,
        ),
        (
            "network name ..",
            bundle("c12", &[(ANN, "..")]).into_bytes(),
            3,
        ),
        (
            "empty network list",
            bundle("c13", &[(ANN, " , ")]).into_bytes(),
            3,
        ),
        (
            "network listed twice",
            bundle("c14", &[(ANN, "lan77,lan77")]).into_bytes(),
            3,
        ),
        (
            "unknown annotation key",
            bundle(
                "c15",
                &[(ANN, NET), ("oci-macvlan.lan77.addr", "192.168.77.9")],
            )
            .into_bytes(),
            3,
        ),
        (
            "per-network annotation for a network not listed",
            bundle(
                "c16",
                &[(ANN, NET), ("oci-macvlan.lan78.ip", "192.168.77.9")],
            )
            .into_bytes(),
            3,
        ),
        (
            "config.json a FIFO",
            config_is("c20", &|path| mkfifo(path)),
            3,
        ),
        (
            "config.json a symlink to /dev/zero",
            config_is("c21", &|path| {
                std::os::unix::fs::symlink("/dev/zero", path).unwrap();
            }),
            3,
        ),
        (
            "config.json a 300 MiB sparse file",
            config_is("c22", &|path| {
                fs::File::create(path).unwrap().set_len(300 << 20).unwrap();
            }),
            3,
        ),
        (
            "config.json a directory",
            config_is("c23", &|path| fs::create_dir(path).unwrap()),
            3,
        ),
        (
            "netns path a FIFO",
            netns_is("c24", &|path| mkfifo(path)),
            3,
        ),
        (
            "netns path a regular file",
            netns_is("c25", &|path| fs::write(path, b"").unwrap()),
            3,
        ),
        (
            "netns path a directory",
            netns_is("c26", &|path| fs::create_dir(path).unwrap()),
            3,
        ),
        (
            "annotation value of 20 MiB (config.json past its cap)",
            bundle("c27", &[(ANN, NET), ("oci-macvlan.ip", &huge)]).into_bytes(),
            3,
        ),
        (
            "annotation value of 3 MiB",
            bundle("c28", &[(ANN, NET), ("oci-macvlan.ip", &long)]).into_bytes(),
            3,
        ),
        (
            "ifname of 4000 bytes (the line's cap)",
            bundle(
                "c29",
                &[
                    (ANN, NET),
                    (&format!("oci-macvlan.{NET}.ifname"), &long_ifname),
                ],
            )
            .into_bytes(),
            3,
        ),
        (
            "40,000 network names",
            bundle("c30", &[(ANN, &many)]).into_bytes(),
            3,
        ),
        (
            "33 network names",
            bundle("c31", &[(ANN, &over_cap)]).into_bytes(),
            3,
        ),
    ];

    let tmp = lan.tmp().display().to_string();
    let mut report = Vec::new();
    for (name, stdin, code) in &cases {
        let before = lan.journal().len();
        let out = hook_within_deadline(&lan, name, stdin);
        assert_eq!(out.code, *code, "{name}: exit code; stderr: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{name}: wrote to stdout");
        assert_eq!(out.stderr.lines().count(), 1, "{name}: {}", out.stderr);
        let line = out.stderr.trim_end();
        assert!(
            line.len() <= MAX_LINE,
            "{name}: a line of {} bytes",
            line.len()
        );
        let journal = lan.journal();
        assert_eq!(journal.len(), before + 1, "{name}: one journal record");
        let record = &journal[before];
        assert_eq!(record["outcome"], "error", "{name}: {record}");
        assert_eq!(record["exit"], *code, "{name}: {record}");
        assert_eq!(
            record["error"]
                .as_str()
                .map(|e| format!("oci-macvlan: error: {e}")),
            Some(line.to_owned()),
            "{name}: the journal's error is stderr's"
        );
        // A line at the cap is shown by its start and its length.
        let shown = match line.char_indices().nth(160) {
            Some((end, _)) if line.len() > 300 => {
                format!("{}[…] ({} bytes)", &line[..end], line.len())
            }
            _ => line.to_owned(),
        };
        report.push(format!(
            "{name} (exit {code})\n  {}",
            shown.replace(&tmp, "[TMP]")
        ));
        lan.assert_no_residue(&[NET], name);
    }
    let links: Vec<String> = container
        .links()
        .iter()
        .filter_map(|l| l["ifname"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        links,
        ["lo"],
        "{}: a failed attach left a link in the container",
        driver.name
    );
    report.join("\n")
}
