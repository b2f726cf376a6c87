//! Privileged tier: what `gc` decides for each kind of container, and what it leaves alone.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};

use oci_macvlan_tests::{ContainerProcess, Lan, TestNetns, privileged};

const NET: &str = "gcnet";

#[privileged]
fn gc_judges_by_pid_and_by_namespace_and_leaves_what_it_cannot_judge() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    let networks = [("oci-macvlan.networks", NET)];

    // A container found through its pid, and one whose namespace is a path that outlives it.
    let by_pid = ContainerProcess::start();
    lan.cli_ok(
        &["hook"],
        &lan.pid_bundle("bypid", &networks, by_pid.pid(), "creating"),
    );
    let netns = TestNetns::new("omt-gc-");
    lan.cli_ok(
        &["hook"],
        &lan.fake_bundle("bypath", &networks, &netns.path(), "creating"),
    );
    // A container whose record was lost: its lease has no facts to be judged by.
    let other = ContainerProcess::start();
    lan.cli_ok(
        &["hook"],
        &lan.pid_bundle("norecord", &networks, other.pid(), "creating"),
    );
    std::fs::remove_file(lan.state_dir().join("endpoints/norecord.json")).unwrap();

    let out = lan.cli_ok(&["gc"], "");
    insta::assert_snapshot!(out, @"
    kept the leases of container norecord: it has no endpoint record to judge it by
    gc: released 0 leases of 0 gone containers; 2 still run; 1 undecided; 0 busy
    ");
    assert_eq!(lan.leased(NET), 3);

    // An attach or detach in progress holds the container's lock: gc does not judge it.
    let mut holder = Command::new("flock")
        .arg("--no-fork")
        .arg(lan.state_dir().join("locks/bypid.lock"))
        .args(["sleep", "60"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let lock_taken = std::time::Instant::now();
    while lan.cli_ok(&["gc"], "").contains("0 busy") {
        assert!(
            lock_taken.elapsed().as_secs() < 10,
            "flock never took the lock"
        );
    }
    let pid = by_pid.pid().to_string();
    by_pid.kill();
    let out = lan.cli_ok(&["gc"], "");
    assert!(
        out.contains("skipped container bypid: an attach or detach holds it"),
        "{out}"
    );
    assert_eq!(lan.leased(NET), 3);
    holder.kill().unwrap();
    holder.wait().unwrap();

    // Gone: the pid has exited; the namespace path was deleted.
    let netns_path = netns.path().display().to_string();
    drop(netns);
    let out = lan
        .cli_ok(&["gc"], "")
        .replace(&netns_path, "NETNS")
        .replace(&pid, "PID");
    insta::assert_snapshot!(out, @"
    released 192.168.77.3 on gcnet (container bypath: its network namespace NETNS is gone)
    released 192.168.77.2 on gcnet (container bypid: pid PID is gone)
    kept the leases of container norecord: it has no endpoint record to judge it by
    gc: released 2 leases of 2 gone containers; 0 still run; 1 undecided; 0 busy
    ");
    assert_eq!(lan.leased(NET), 1);
    // A second run finds nothing more to do.
    let out = lan.cli_ok(&["gc"], "");
    insta::assert_snapshot!(out, @"
    kept the leases of container norecord: it has no endpoint record to judge it by
    gc: released 0 leases of 0 gone containers; 0 still run; 1 undecided; 0 busy
    ");
}
