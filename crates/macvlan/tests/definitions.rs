//! Definition files on disk: those written before the driver seam (`fixtures/definitions-0.1`,
//! written by that version's `NetworkSpec::validate` and serialisation) still load, typed, and
//! are written back with the same content.

#![allow(clippy::unwrap_used)]

use std::{fs, path::Path};

use oci_macvlan_macvlan::{
    Networks, ParentLink,
    driver::{self, macvlan::Mode},
};
use serde_json::Value;

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/definitions-0.1")
}

/// A config dir holding the fixture files, as `network create` of that version left them.
fn config_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("networks")).unwrap();
    for entry in fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        fs::copy(
            &path,
            dir.path().join("networks").join(path.file_name().unwrap()),
        )
        .unwrap();
    }
    dir
}

#[test]
fn definitions_of_the_version_before_the_driver_seam_load_typed() {
    let dir = config_dir();
    let networks = Networks::new(dir.path());
    let listed: Vec<String> = networks
        .list()
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert_eq!(listed, ["inner", "lan50", "pt", "src"]);

    let macvlan = |name: &str| match networks.load(name).unwrap().driver {
        driver::Options::Macvlan(options) => options,
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!(macvlan("lan50").mode, Mode::Private);
    assert_eq!(macvlan("pt").mode, Mode::Passthru);
    assert_eq!(macvlan("inner").mode, Mode::Bridge);
    let src = macvlan("src");
    assert_eq!(src.mode, Mode::Source);
    let macs: Vec<String> = src.source_macs.iter().map(|m| m.to_string()).collect();
    assert_eq!(macs, ["02:aa:bb:00:00:01", "02:00:00:00:00:02"]);

    let lan50 = networks.load("lan50").unwrap();
    assert_eq!(lan50.parent_link, ParentLink::Owned);
    assert_eq!(lan50.mtu, Some(1400));
    assert_eq!(lan50.driver().name(), "macvlan");
    assert_eq!(
        networks.load("inner").unwrap().parent_link,
        ParentLink::Dummy
    );
}

#[test]
fn a_loaded_old_definition_is_written_back_with_the_same_content() {
    let dir = config_dir();
    let networks = Networks::new(dir.path());
    for network in networks.list().unwrap() {
        let old: Value = serde_json::from_slice(
            &fs::read(fixtures().join(format!("{}.json", network.name))).unwrap(),
        )
        .unwrap();
        let new = serde_json::to_value(&network).unwrap();
        assert_eq!(new, old, "{}", network.name);
    }
}

/// A hand-edited source MAC gets the check `network create` makes.
#[test]
fn a_definition_with_a_bad_source_mac_is_refused() {
    let mut json: Value =
        serde_json::from_slice(&fs::read(fixtures().join("src.json")).unwrap()).unwrap();
    json["source_macs"][0] = "01:00:5e:00:00:01".into();
    let err = serde_json::from_value::<oci_macvlan_macvlan::Network>(json).unwrap_err();
    insta::assert_snapshot!(err.to_string(), @r#"invalid -o source_macs "01:00:5e:00:00:01": a source MAC must be a unicast station address"#);
}

/// The parent is typed too: read once with the definition, never re-parsed by attach. A
/// hand-edited parent that `network create` refuses fails to load with create's words, and the
/// 802.1q parent of the fixture is known as one.
#[test]
fn a_definitions_parent_is_parsed_when_it_is_read() {
    let dir = config_dir();
    let networks = Networks::new(dir.path());
    assert_eq!(
        networks.load("lan50").unwrap().parent(),
        oci_macvlan_vlan::Parent::parse("eth0.50").unwrap()
    );
    assert!(matches!(
        networks.load("inner").unwrap().parent(),
        oci_macvlan_vlan::Parent::Dummy(_)
    ));
    for (parent, words) in [
        (
            "eth0.5000",
            "vlan id must be between 1-4094, received: 5000",
        ),
        ("lo.5", "loopback interface is not a valid parent link"),
        ("eth%d", "'%' makes the kernel pick a name of its own"),
    ] {
        let mut json: Value =
            serde_json::from_slice(&fs::read(fixtures().join("lan50.json")).unwrap()).unwrap();
        json["parent"] = parent.into();
        let err = serde_json::from_value::<oci_macvlan_macvlan::Network>(json)
            .unwrap_err()
            .to_string();
        assert!(err.contains(words), "{parent}: {err}");
    }
}

/// `--label KEY[=VALUE]`: kept in the definition (written only when there are some, so files
/// of earlier versions read and write back the same), a key given twice or empty refused.
#[test]
fn labels_are_kept_and_checked() {
    use oci_macvlan_macvlan::NetworkSpec;
    let spec = |labels: &[&str]| NetworkSpec {
        name: "lan50".into(),
        driver: "macvlan".into(),
        subnets: vec!["192.168.50.0/24".into()],
        options: vec!["parent=eth0".into()],
        labels: labels.iter().map(|l| (*l).to_owned()).collect(),
        ..Default::default()
    };
    let net = spec(&["env=prod", "site", "note=a=b"])
        .validate("a".repeat(64), "now".into())
        .unwrap();
    let labels: Vec<(&str, &str)> = net
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(labels, [("env", "prod"), ("note", "a=b"), ("site", "")]);
    let json = serde_json::to_value(&net).unwrap();
    assert_eq!(json["labels"]["env"], "prod");
    let none = spec(&[]).validate("a".repeat(64), "now".into()).unwrap();
    assert!(serde_json::to_value(&none).unwrap().get("labels").is_none());
    for (bad, reason) in [
        (&["env=a", "env=b"][..], "given twice"),
        (&["=x"][..], "expected KEY=VALUE"),
        (&["a\u{7}=x"][..], "control characters"),
    ] {
        let err = spec(bad)
            .validate("a".repeat(64), "now".into())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--label") && err.contains(reason),
            "{bad:?}: {err}"
        );
    }
}

/// A shared network's definition, as every build since etcd wrote it: its cluster under
/// `"etcd"` beside the definition's own fields. It loads as an opaque locator of the `etcd`
/// backend and is written back with the same content; a definition without it is local.
#[test]
fn a_shared_networks_etcd_field_loads_as_its_store() {
    let mut json: Value =
        serde_json::from_slice(&fs::read(fixtures().join("lan50.json")).unwrap()).unwrap();
    let cluster = serde_json::json!({
        "endpoints": ["http://10.0.0.5:2379"],
        "prefix": "/oci-macvlan",
        "timeout_ms": 2000
    });
    json["etcd"] = cluster.clone();
    let network: oci_macvlan_macvlan::Network = serde_json::from_value(json.clone()).unwrap();
    let locator = network.store.shared().expect("a shared store");
    assert_eq!((locator.backend(), locator.config()), ("etcd", &cluster));
    assert_eq!(serde_json::to_value(&network).unwrap(), json);
    let local: oci_macvlan_macvlan::Network =
        serde_json::from_slice(&fs::read(fixtures().join("lan50.json")).unwrap()).unwrap();
    assert!(local.store.is_local());
}
