//! Privileged tier: `gc` and the keeper slots (`<state-dir>/keepers/`) a pair killed together
//! leaves behind: for a live container `gc` starts the pair again in it (its hook does not run
//! again), and once the container's record is gone `gc` removes the slot; another container's
//! slot, whose keepers run, is left alone and its keepers live on.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use oci_macvlan_tests::{
    ContainerProcess, Lan,
    dhcp_lan::{NET, create_dhcp_network, kea_config, keepers},
    kea::Kea,
    privileged,
    renewal::wait_until,
};

const ANN: &str = "oci-macvlan.networks";

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

/// Kills container `id`'s keeper pair together: both stopped first (one killed alone is
/// replaced by the other at once), then killed.
fn kill_pair(lan: &Lan, id: &str) {
    let pair = keepers(lan, Some(id));
    assert_eq!(pair.len(), 2, "{id}: {pair:?}");
    for signal in [Signal::SIGSTOP, Signal::SIGKILL] {
        for pid in &pair {
            kill(Pid::from_raw(*pid as i32), signal).unwrap();
        }
    }
    assert!(
        wait_until(Duration::from_secs(5), || keepers(lan, Some(id)).is_empty()),
        "{id}'s keepers survived SIGKILL"
    );
}

fn sorted(mut pids: Vec<u32>) -> Vec<u32> {
    pids.sort_unstable();
    pids
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

    // Both of c1's keepers killed together: neither removes the slot.
    kill_pair(&lan, "c1");
    assert!(slot("c1").is_dir());

    // c1 lives: gc starts its pair again in the slot, and leaves c2's alone.
    let c2_pair = sorted(keepers(&lan, Some("c2")));
    let out = lan.cli_ok(&["gc"], "");
    assert!(!out.contains("keeper slots"), "{out}");
    assert!(
        out.contains(&format!("started the renewer of container c1 on {NET}")),
        "{out}"
    );
    assert!(!out.contains("container c2 on"), "{out}");
    assert!(slot("c1").is_dir(), "gc removed a live container's slot");
    assert!(
        wait_until(Duration::from_secs(5), || keepers(&lan, Some("c1")).len()
            == 2),
        "gc started no pair: {:?}",
        keepers(&lan, Some("c1"))
    );
    assert_eq!(sorted(keepers(&lan, Some("c2"))), c2_pair);
    let out = lan.cli_ok(&["gc"], "");
    assert!(!out.contains("started the renewer"), "{out}");

    // The pair killed together again, and c1 ends.
    kill_pair(&lan, "c1");

    // c1 ends (poststop takes its record back): gc removes the slot, and only that one.
    p1.kill();
    lan.cli_ok(
        &["hook"],
        r#"{"ociVersion":"1.0.2","id":"c1","status":"stopped"}"#,
    );
    assert!(slot("c1").is_dir(), "the slot went without gc");
    // Changed in the last minute (its pair started seconds ago): left, as a slot a keeper
    // has just made for an attach whose record this gc may not have read yet.
    let out = lan.cli_ok(&["gc"], "");
    assert!(!out.contains("keeper slots"), "{out}");
    assert!(slot("c1").is_dir(), "gc removed a fresh slot: {out}");
    // A minute later it goes.
    std::fs::File::open(slot("c1"))
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(120))
        .unwrap();
    let out = lan.cli_ok(&["gc"], "");
    assert!(
        out.contains("removed 1 keeper slots of leases no longer held"),
        "{out}"
    );
    assert!(!slot("c1").exists(), "gc left the stale slot: {out}");
    assert!(slot("c2").is_dir(), "gc removed a held slot");
    assert_eq!(sorted(keepers(&lan, Some("c2"))), c2_pair);

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
