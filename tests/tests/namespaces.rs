//! Privileged tier: a container gets links only in a network namespace of its own. A path that
//! names a namespace of another kind, or one the container's process is not in (another
//! container's, one the bundle's author made), is invalid input and nothing appears there.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use oci_macvlan_tests::{ContainerProcess, Lan, privileged};

const NET: &str = "lan77";
const ANN: &str = "oci-macvlan.networks";

/// A namespace path that names a namespace of another kind (mount, user) is invalid input.
#[privileged]
fn a_namespace_of_another_kind_is_invalid_input() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    let process = ContainerProcess::start();
    for kind in ["mnt", "user", "uts"] {
        let path = format!("/proc/{}/ns/{kind}", process.pid());
        let out = lan.cli(
            &["hook"],
            &lan.fake_bundle("wrongkind", &[(ANN, NET)], Path::new(&path), "creating"),
        );
        assert_eq!(out.code, 3, "{kind}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{kind}: {}", out.stderr);
    }
    lan.assert_no_residue(&[NET], "namespaces of other kinds");
}

/// A bundle naming a namespace that is not the one the container's process is in (another
/// container's, one its author made) is refused, exit 3, and nothing appears there.
#[privileged]
fn a_namespace_the_containers_process_is_not_in_is_refused() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    let victim = ContainerProcess::start();
    let container = ContainerProcess::start();
    let bundle = lan.tmp().join("bundle-elsewhere");
    std::fs::create_dir_all(&bundle).unwrap();
    let path = format!("/proc/{}/ns/net", victim.pid());
    let config = serde_json::json!({
        "ociVersion": "1.0.2",
        "annotations": {ANN: NET, "oci-macvlan.lan77.ifname": "eth1"},
        "linux": {"namespaces": [{"type": "network", "path": path}]},
    });
    std::fs::write(bundle.join("config.json"), config.to_string()).unwrap();
    let state = serde_json::json!({
        "ociVersion": "1.0.2", "id": "elsewhere", "status": "creating",
        "bundle": bundle, "pid": container.pid(),
    });
    let out = lan.cli(&["hook"], &state.to_string());
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "is not the one container process {} is in",
            container.pid()
        )),
        "{}",
        out.stderr
    );
    let links = oci_macvlan_tests::run_ok(
        "nsenter",
        &[&format!("--net={path}"), "ip", "-o", "link", "show"],
    );
    assert!(!links.contains("eth1"), "{links}");
    lan.assert_no_residue(&[NET], "a namespace of another process");
}
