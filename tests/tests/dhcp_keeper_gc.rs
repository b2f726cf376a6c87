//! Privileged tier: `gc` and the keeper slots (`<state-dir>/keepers/`) a pair killed together
//! leaves behind: a live container's slot stays (a hook re-run starts its pair again in it),
//! and once the container's record is gone `gc` removes the slot; another container's slot,
//! whose keepers run, is left alone and its keepers live on.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use oci_macvlan_tests::{
    ContainerProcess, Lan,
    dhcp_lan::{NET, create_dhcp_network, kea_config, keepers},
    kea::Kea,
    privileged,
};

const ANN: &str = "oci-macvlan.networks";

fn wait_until(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    done()
}

/// Attaches container `id` (process `process`) and waits for its keeper pair.
fn attach(lan: &Lan, id: &str, process: &ContainerProcess) {
    let state = lan.pid_bundle(id, &[(ANN, NET)], process.pid(), "creating");
    lan.cli_ok(&["hook"], &state);
    assert!(
        wait_until(Duration::from_secs(5), || keepers(lan, Some(id)).len() == 2),
        "{id}: no keeper pair: {:?}",
        keepers(lan, Some(id))
    );
}

#[privileged]
fn gc_removes_the_slot_of_a_pair_killed_together_once_its_container_is_gone() {
    let lan = Lan::new();
    let _kea = Kea::start(&lan.router, &kea_config());
    create_dhcp_network(&lan, &[]);
    let (p1, p2) = (ContainerProcess::start(), ContainerProcess::start());
    attach(&lan, "c1", &p1);
    attach(&lan, "c2", &p2);
    let slot = |id: &str| lan.state_dir().join(format!("keepers/{id}.{NET}"));
    assert!(slot("c1").is_dir() && slot("c2").is_dir());

    // Both of c1's keepers killed together: neither removes the slot. Both are stopped
    // first (one killed alone is replaced by the other at once).
    let pair = keepers(&lan, Some("c1"));
    for signal in [Signal::SIGSTOP, Signal::SIGKILL] {
        for pid in &pair {
            kill(Pid::from_raw(*pid as i32), signal).unwrap();
        }
    }
    assert!(
        wait_until(Duration::from_secs(5), || keepers(&lan, Some("c1"))
            .is_empty()),
        "c1's keepers survived SIGKILL"
    );
    assert!(slot("c1").is_dir());

    // c1 lives: its slot is left.
    let out = lan.cli_ok(&["gc"], "");
    assert!(!out.contains("keeper slots"), "{out}");
    assert!(slot("c1").is_dir(), "gc removed a live container's slot");

    // c1 ends (poststop takes its record back): gc removes the slot, and only that one.
    p1.kill();
    lan.cli_ok(
        &["hook"],
        r#"{"ociVersion":"1.0.2","id":"c1","status":"stopped"}"#,
    );
    assert!(slot("c1").is_dir(), "the slot went without gc");
    let out = lan.cli_ok(&["gc"], "");
    assert!(
        out.contains("removed 1 keeper slots of leases no longer held"),
        "{out}"
    );
    assert!(!slot("c1").exists(), "gc left the stale slot: {out}");
    assert!(slot("c2").is_dir(), "gc removed a held slot");
    let mut still = keepers(&lan, Some("c2"));
    still.sort_unstable();
    assert_eq!(still.len(), 2, "c2's keepers: {still:?}");

    // c2 ends: its pair removes its own slot.
    p2.kill();
    lan.cli_ok(
        &["hook"],
        r#"{"ociVersion":"1.0.2","id":"c2","status":"stopped"}"#,
    );
    assert!(
        wait_until(Duration::from_secs(5), || !slot("c2").exists()),
        "c2's pair left its slot"
    );
    lan.assert_no_residue(&[NET], "after both containers");
}
