//! Privileged tier: the malformed-input corpus of the hook (the CLI's and the rest of the hook's
//! bad inputs are in `errors.rs`). Each input exits with its documented code and one line on
//! stderr naming what is wrong (snapshotted), appends one `error` record with that line to the
//! hook journal, and leaves nothing: no lease, record, lock, or link anywhere.

#![allow(clippy::unwrap_used)]

use oci_macvlan_tests::{Lan, TestNetns, binary};

const NET: &str = "lan77";
const ANN: &str = "oci-macvlan.networks";

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "privileged tier: run `cargo xtask ci` as root"
)]
fn malformed_hook_input_fails_with_one_line_and_one_journal_record_and_leaves_nothing() {
    let lan = Lan::new();
    let container = TestNetns::new("omt-ctr-");
    lan.create_network(NET, &[]);
    let ns = container.path();
    let bundle = |id: &str, ann: &[(&str, &str)]| lan.fake_bundle(id, ann, &ns, "creating");
    // Above any pid_max: never a live process, so never a namespace the test did not make.
    let dead_pid = 999_999_999;
    let big = format!(
        r#"{{"ociVersion":"1.0.2","id":"big","status":"creating","pad":"{}"}}"#,
        "x".repeat(1 << 20)
    );

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
    ];

    let tmp = lan.tmp().display().to_string();
    let mut report = Vec::new();
    for (name, stdin, code) in &cases {
        let before = lan.journal().len();
        let out = lan.cli_with(&binary(), &[], &["hook"], stdin);
        assert_eq!(out.code, *code, "{name}: exit code; stderr: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{name}: wrote to stdout");
        assert_eq!(out.stderr.lines().count(), 1, "{name}: {}", out.stderr);
        let line = out.stderr.trim_end();
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
        report.push(format!(
            "{name} (exit {code})\n  {}",
            line.replace(&tmp, "[TMP]")
        ));
        lan.assert_no_residue(&[NET], name);
    }
    insta::assert_snapshot!(report.join("\n"));
    let links: Vec<String> = container
        .links()
        .iter()
        .filter_map(|l| l["ifname"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        links,
        ["lo"],
        "a failed attach left a link in the container"
    );
}
