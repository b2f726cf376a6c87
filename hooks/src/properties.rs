//! Property tests of the hook's parsers: the OCI state on stdin and the annotations take any
//! input without a panic, and what they accept holds its promises; the hook's own argument
//! parser agrees with clap on everything it accepts.

use std::{collections::HashMap, ffi::OsString};

use clap::Parser;
use proptest::prelude::*;

use crate::{
    annotations,
    cli::{self, Cli},
    oci::State,
};

/// JSON values of any shape, with the keys of an OCI state among the random ones.
fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        ".{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("id".to_owned()),
                    Just("status".to_owned()),
                    Just("pid".to_owned()),
                    Just("bundle".to_owned()),
                    Just("annotations".to_owned()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn annotation_key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(annotations::NETWORKS.to_owned()),
        prop::sample::select(vec!["ip", "ip6", "mac"]).prop_map(|f| format!("oci-macvlan.{f}")),
        (
            "[a-z.]{0,6}",
            prop::sample::select(vec!["ip", "ip6", "mac", "ifname", "x", ""])
        )
            .prop_map(|(n, f)| format!("oci-macvlan.{n}.{f}")),
        ".{0,20}",
    ]
}

fn annotation_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,3}(,[a-z]{0,3}){0,3}",
        "[0-9]{1,3}(\\.[0-9]{1,3}){3}",
        "[0-9a-f:]{2,20}",
        "([0-9a-f]{2}:){5}[0-9a-f]{2}",
        ".{0,20}",
    ]
}

/// Command-line words: the hook's own, near misses, other subcommands, flags and random text.
fn arg() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "hook", "--config-dir", "--state-dir", "--log-level", "poststop", "createRuntime",
            "/etc/x", "/run/y z", "info", "debug", "error", "warn",
        ])
        .prop_map(str::to_owned),
        2 => (
            prop::sample::select(vec!["--config-dir", "--state-dir", "--log-level", "--stage", "-x"]),
            prop::sample::select(vec!["", "/d", "a=b", "-x", "info", "INFO", "trace"]),
        )
            .prop_map(|(name, value)| format!("{name}={value}")),
        1 => prop::sample::select(vec![
            "", "-", "--", "-h", "--help", "--version", "network", "ls", "verify", "gc", "HOOK",
            "--config", "--state-dir-x", "--log-level=", "hook=1",
        ])
        .prop_map(str::to_owned),
        1 => ".{0,8}",
    ]
}

/// Argument lists shaped like a hook's, options from near-miss pools: most are read without
/// clap, so the agreement below is tested on many accepted lists, not only on refusals.
fn hook_shaped() -> impl Strategy<Value = Vec<String>> {
    let option = (
        prop::sample::select(vec!["--config-dir", "--state-dir", "--log-level"]),
        prop::sample::select(vec![
            "/d", "/run/x y", "info", "warn", "debug", "error", "Debug",
        ]),
        any::<bool>(),
    )
        .prop_map(|(name, value, joined)| {
            if joined {
                vec![format!("{name}={value}")]
            } else {
                vec![name.to_owned(), value.to_owned()]
            }
        });
    (
        prop::collection::vec(option, 0..4),
        prop::collection::vec(
            prop::sample::select(vec!["poststop", "createRuntime", "prestart", "x"]),
            0..2,
        ),
    )
        .prop_map(|(options, stage)| {
            let mut words: Vec<String> = options.into_iter().flatten().collect();
            words.push("hook".to_owned());
            words.extend(stage.into_iter().map(str::to_owned));
            words
        })
}

/// `hook_args` as `main` calls it, with the test process's environment.
fn fast(args: &[OsString]) -> Option<Cli> {
    cli::hook_args(args, |name| std::env::var_os(name).is_some())
}

fn argv(words: &[&str]) -> Vec<OsString> {
    std::iter::once("oci-macvlan")
        .chain(words.iter().copied())
        .map(OsString::from)
        .collect()
}

/// What runtimes and `install` pass is read without clap, as clap would read it.
#[test]
fn the_hooks_own_command_lines_are_read_directly() {
    for words in [
        &["hook"][..],
        &["hook", "poststop"],
        &[
            "--config-dir",
            "/etc/om",
            "--state-dir",
            "/run/om",
            "hook",
            "createRuntime",
        ],
        &["--state-dir=/run/om", "--log-level=debug", "hook"],
        &["--log-level", "info", "--config-dir=/e", "hook", "poststop"],
    ] {
        let args = argv(words);
        let fast = fast(&args).unwrap_or_else(|| panic!("{words:?} went to clap"));
        let clap = Cli::try_parse_from(&args).expect("clap accepts it");
        assert_eq!(format!("{fast:?}"), format!("{clap:?}"), "{words:?}");
    }
}

/// Help, errors, other subcommands, options after `hook`, and anything when the environment
/// sets a directory: clap's.
#[test]
fn everything_else_goes_to_clap() {
    for words in [
        &[][..],
        &["--help"],
        &["hook", "--help"],
        &["hook", "poststop", "extra"],
        &["hook", "--state-dir", "/x"],
        &["--state-dir", "/a", "--state-dir", "/b", "hook"],
        &["--log-level", "INFO", "hook"],
        &["--config-dir", "hook"],
        &["--config-dir=", "hook"],
        &["network", "ls"],
        &["verify"],
    ] {
        assert!(fast(&argv(words)).is_none(), "{words:?}");
    }
    let with_env = cli::hook_args(&argv(&["hook"]), |name| name == "OCI_MACVLAN_STATE_DIR");
    assert!(with_env.is_none());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Every argument list the hook reads without clap, clap reads to the same `Cli`.
    #[test]
    fn the_hooks_argument_parser_agrees_with_clap(
        words in prop_oneof![hook_shaped(), prop::collection::vec(arg(), 0..7)]
    ) {
        let args: Vec<OsString> = std::iter::once("oci-macvlan".to_owned())
            .chain(words)
            .map(OsString::from)
            .collect();
        if let Some(fast) = fast(&args) {
            match Cli::try_parse_from(&args) {
                Ok(clap) => prop_assert_eq!(format!("{fast:?}"), format!("{clap:?}")),
                Err(err) => prop_assert!(false, "clap refuses {:?}: {}", args, err),
            }
        }
    }

    #[test]
    fn oci_state_of_any_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = State::read(bytes.as_slice());
    }

    #[test]
    fn oci_state_of_any_json_never_panics(value in json()) {
        let bytes = serde_json::to_vec(&value).unwrap_or_default();
        if let Ok(state) = State::read(bytes.as_slice()) {
            prop_assert!(value.is_object());
            prop_assert_eq!(Some(state.id.as_str()), value["id"].as_str());
            let _ = state.config_path();
            prop_assert!(state.pid().is_none_or(|pid| pid > 0));
        }
    }

    #[test]
    fn annotations_never_panic_and_accepted_requests_are_consistent(
        map in prop::collection::hash_map(annotation_key(), annotation_value(), 0..6)
    ) {
        let map: HashMap<String, String> = map;
        match annotations::parse(&map) {
            Ok(None) => prop_assert!(!map.contains_key(annotations::NETWORKS)),
            Ok(Some(requests)) => {
                prop_assert!(!requests.is_empty());
                for request in &requests {
                    prop_assert!(!request.network.is_empty());
                    prop_assert_eq!(
                        requests.iter().filter(|r| r.network == request.network).count(), 1
                    );
                    prop_assert!(request.static_ips.len() <= 2);
                }
            }
            Err(_) => {}
        }
    }
}
