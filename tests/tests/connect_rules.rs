//! Privileged tier: "already connected" is one rule, the core's, decided under the container's
//! lock before anything else about the container is looked at: a container whose process has
//! stopped is still on its networks, and `network connect` says so (exit 5), as it did when
//! the binary checked first.

#![allow(clippy::unwrap_used)]

use oci_macvlan_tests::{ContainerProcess, Lan, privileged};

const ANN: &str = "oci-macvlan.networks";

#[privileged]
fn connect_to_a_network_a_stopped_container_is_on_is_already_connected() {
    let lan = Lan::new();
    lan.create_network("first", &[]);
    let process = ContainerProcess::start();
    let pid = process.pid();
    let state = lan.pid_bundle("web", &[(ANN, "first")], pid, "creating");
    lan.cli_ok(&["hook"], &state);
    // The process is gone, its poststop not yet run: the record still holds `first`.
    process.kill();
    for args in [
        &["network", "connect", "first", "web"][..],
        &["network", "connect", "--ifname", "eth7", "first", "web"][..],
    ] {
        let again = lan.cli(args, "");
        assert_eq!(again.code, 5, "{args:?}: {}", again.stderr);
        assert!(
            again.stderr.contains("already connected to network first"),
            "{args:?}: {}",
            again.stderr
        );
    }
    // Nothing changed: the poststop takes back what the hook gave.
    let stopped = lan.pid_bundle("web", &[(ANN, "first")], pid, "stopped");
    lan.cli_ok(&["hook", "poststop"], &stopped);
    assert!(
        lan.inspect("first")[0]["Containers"]
            .as_object()
            .unwrap()
            .is_empty()
    );
}
