//! Property tests of the hook's parsers: the OCI state on stdin and the annotations take any
//! input without a panic, and what they accept holds its promises.

use std::collections::HashMap;

use proptest::prelude::*;

use crate::{annotations, oci::State};

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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

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
