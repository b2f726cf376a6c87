//! Privileged tier: bad input. Each case exits with its documented code, prints exactly one
//! line on stderr naming the bad value, and leaves nothing behind: no link, no lease, no record,
//! no network definition.

#![allow(clippy::unwrap_used)]

use oci_macvlan_tests::{Lan, TestNetns, privileged};
use serde_json::{Value, json};

const NET: &str = "lan77";
const ANN: &str = "oci-macvlan.networks";

/// The CLI's bad inputs, run after the hook's.
#[path = "errors/cli.rs"]
mod cli;

use cli::case;

#[privileged]
fn bad_input_fails_with_one_line_and_leaves_nothing() {
    let lan = Lan::new();
    let container = TestNetns::new("omt-ctr-");
    lan.create_network(NET, &[]);
    let ns = container.path();
    let bundle = |id: &str, ann: &[(&str, &str)]| lan.fake_bundle(id, ann, &ns, "creating");
    // Fixed MACs, so the kernel's refusals of a taken MAC read the same in every run.
    lan.host
        .ip(&["link", "set", Lan::PARENT, "address", "02:77:00:00:00:01"]);
    let holder = bundle(
        "holder",
        &[
            (ANN, NET),
            ("oci-macvlan.ip", "192.168.77.20"),
            ("oci-macvlan.mac", "02:77:00:00:00:20"),
        ],
    );
    lan.cli_ok(&["hook"], &holder);
    let holder_ns_links = container.links().len();
    // Containers refused by the kernel need a namespace of their own: the holder has `eth0`.
    let other = TestNetns::new("omt-ctr-");
    let other_ns = other.path();
    let in_other = |id: &str, ann: &[(&str, &str)]| lan.fake_bundle(id, ann, &other_ns, "creating");

    let missing_config = {
        let state = bundle("nocfg", &[(ANN, NET)]);
        std::fs::remove_file(lan.tmp().join("bundle-nocfg/config.json")).unwrap();
        state
    };
    let mut cases = vec![
        case("empty stdin", &["hook"], String::new(), 3),
        case("stdin not JSON", &["hook"], "{not json".into(), 3),
        case(
            "state without id",
            &["hook"],
            r#"{"ociVersion":"1.0.2","status":"creating","bundle":"/nonexistent"}"#.into(),
            3,
        ),
        case(
            "state without bundle",
            &["hook"],
            r#"{"ociVersion":"1.0.2","id":"c9","status":"creating"}"#.into(),
            3,
        ),
        case(
            "unknown status",
            &["hook"],
            r#"{"ociVersion":"1.0.2","id":"c9","status":"paused","bundle":"/x"}"#.into(),
            3,
        ),
        case(
            "container id with a slash",
            &["hook"],
            r#"{"ociVersion":"1.0.2","id":"../x","status":"stopped"}"#.into(),
            3,
        ),
        case("missing config.json", &["hook"], missing_config, 4),
        case(
            "network namespace is the host's",
            &["hook"],
            lan.fake_bundle("hostns", &[(ANN, NET)], &lan.host.path(), "creating"),
            3,
        ),
        case(
            "unknown network",
            &["hook"],
            bundle("c2", &[(ANN, "nosuch")]),
            4,
        ),
        case(
            "static IP outside every subnet",
            &["hook"],
            bundle("c3", &[(ANN, NET), ("oci-macvlan.ip", "10.9.9.9")]),
            3,
        ),
        case(
            "static IP is the gateway",
            &["hook"],
            bundle("c4", &[(ANN, NET), ("oci-macvlan.ip", Lan::GATEWAY)]),
            3,
        ),
        case(
            "static IP already leased",
            &["hook"],
            bundle("c5", &[(ANN, NET), ("oci-macvlan.ip", "192.168.77.20")]),
            5,
        ),
        case(
            "invalid IP annotation",
            &["hook"],
            bundle("c6", &[(ANN, NET), ("oci-macvlan.ip", "192.168.77.300")]),
            3,
        ),
        case(
            "multicast MAC",
            &["hook"],
            bundle(
                "c7",
                &[(ANN, NET), ("oci-macvlan.mac", "01:00:5e:00:00:01")],
            ),
            3,
        ),
        case(
            "MAC of another container on the parent",
            &["hook"],
            in_other(
                "c10",
                &[(ANN, NET), ("oci-macvlan.mac", "02:77:00:00:00:20")],
            ),
            5,
        ),
        case(
            "MAC of the parent",
            &["hook"],
            in_other(
                "c11",
                &[(ANN, NET), ("oci-macvlan.mac", "02:77:00:00:00:01")],
            ),
            5,
        ),
        case(
            "MAC that is not a MAC",
            &["hook"],
            in_other("c12", &[(ANN, NET), ("oci-macvlan.mac", "02:77:00:00:00")]),
            3,
        ),
        case(
            "ifname too long",
            &["hook"],
            bundle(
                "c8",
                &[
                    (ANN, NET),
                    ("oci-macvlan.lan77.ifname", "averyveryverylongname"),
                ],
            ),
            3,
        ),
        // Names the kernel would reinterpret or refuse, each in a namespace of its own: `eth%d`
        // would become `eth0` there.
        case(
            "ifname eth%d",
            &["hook"],
            in_other("c13", &[(ANN, NET), ("oci-macvlan.lan77.ifname", "eth%d")]),
            3,
        ),
        case(
            "ifname a%sb",
            &["hook"],
            in_other("c14", &[(ANN, NET), ("oci-macvlan.lan77.ifname", "a%sb")]),
            3,
        ),
        case(
            "ifname all",
            &["hook"],
            in_other("c15", &[(ANN, NET), ("oci-macvlan.lan77.ifname", "all")]),
            3,
        ),
        case(
            "ifname default",
            &["hook"],
            in_other(
                "c16",
                &[(ANN, NET), ("oci-macvlan.lan77.ifname", "default")],
            ),
            3,
        ),
        case(
            "ifname with a non-ASCII letter",
            &["hook"],
            in_other(
                "c17",
                &[(ANN, NET), ("oci-macvlan.lan77.ifname", "eth\u{e9}")],
            ),
            3,
        ),
    ];
    cases.extend(cli::cases());

    let tmp = lan.tmp().display().to_string();
    let host_netns = lan.host.path().display().to_string();
    let mut report = Vec::new();
    for case in &cases {
        let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
        let out = lan.cli(&args, &case.stdin);
        assert_eq!(
            out.code, case.code,
            "{}: exit code; stderr: {}",
            case.name, out.stderr
        );
        assert!(
            out.stdout.is_empty(),
            "{}: wrote to stdout: {}",
            case.name,
            out.stdout
        );
        let line = if case.code == 2 {
            // clap's usage errors are several lines by design; their first line is the error.
            out.stderr.lines().next().unwrap_or_default().to_owned()
        } else {
            assert_eq!(
                out.stderr.lines().count(),
                1,
                "{}: not one line: {}",
                case.name,
                out.stderr
            );
            out.stderr.trim_end().to_owned()
        };
        report.push(format!(
            "{} (exit {})\n  {}",
            case.name,
            case.code,
            line.replace(&tmp, "[TMP]")
                .replace(&host_netns, "[HOST-NETNS]")
        ));
    }
    insta::assert_snapshot!(report.join("\n"));

    // Nothing left behind: only the holder's lease, record and link; only the one definition.
    let inspect = lan.inspect(NET);
    let containers = inspect[0]["Containers"].as_object().unwrap();
    let endpoints: Vec<(&Value, &Value)> = containers
        .values()
        .map(|c| (&c["Name"], &c["Interface"]))
        .collect();
    assert_eq!(endpoints, [(&json!("holder"), &json!("eth0"))]);
    assert_eq!(lan.records(), ["holder.json"]);
    assert_eq!(
        container.links().len(),
        holder_ns_links,
        "a failed attach left a link"
    );
    let defined: Vec<String> = std::fs::read_dir(lan.config_dir().join("networks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    assert_eq!(defined, ["lan77.json"]);
    assert_eq!(
        other.links().len(),
        1,
        "a refused MAC left a link: {:?}",
        other.links()
    );
    let host_links = lan.host_link_names();
    assert_eq!(host_links, ["lo", Lan::PARENT]);

    lan.cli_ok(&["hook", "poststop"], &holder);
    assert_eq!(lan.leased(NET), 0);
}
