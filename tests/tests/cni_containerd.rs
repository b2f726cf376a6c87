//! Real-client tier: containerd 1.6's `ctr run --cni` with a conflist naming our network
//! (tests/src/containerd.rs: containerd in the test's host namespace and a private mount
//! namespace, an image the test builds from busybox-static). The task gets its leg before it
//! starts and reaches the router; when it exits, ctr's DEL takes back the lease and nothing is
//! left. A task run with `-d` is never detached by ctr: `oci-macvlan gc` takes its lease back
//! once the task, and so its namespace, is gone.

#![allow(clippy::unwrap_used)]

use std::{
    thread,
    time::{Duration, Instant},
};

use oci_macvlan_tests::{Lan, containerd::Containerd, privileged, unique};

const NET: &str = "lan";

/// Polls `done` every 100 ms until it holds; panics with `what` after `secs` seconds.
fn wait_for(secs: u64, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(100));
    }
}

/// `ctr run --cni --rm`: the task's eth0 has the network's first address and a default route
/// through the gateway, it pings the router, the lease is held under ctr's CNI container id
/// (`NAMESPACE-ID`) and `verify` is clean. Killing the task ends `ctr run`, which runs DEL:
/// the journal says so, the lease is gone, nothing is left.
#[privileged]
fn ctr_run_cni_attaches_pings_the_router_and_releases_on_exit() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    let containerd = Containerd::start(&lan, NET);
    containerd.import_busybox();
    let id = unique("omt-ctr-");
    let cni_id = format!("omt-{id}");
    let mut run = containerd.run_cni(&id);
    wait_for(60, "the task to run", || {
        containerd.running(&id)
            || run.try_wait().unwrap().is_some_and(|status| {
                let out = run.stderr.take().map(std::io::read_to_string);
                panic!(
                    "ctr run exited with {status}: {out:?}\n{}",
                    containerd.log()
                )
            })
    });

    let (ok, addr) = containerd.exec(&id, &["ip", "-o", "-4", "addr", "show", "dev", "eth0"]);
    assert!(ok && addr.contains("inet 192.168.77.2/24"), "{addr}");
    let (ok, routes) = containerd.exec(&id, &["ip", "route"]);
    assert!(
        ok && routes.contains("default via 192.168.77.1 dev eth0"),
        "{routes}"
    );
    let (ok, out) = containerd.exec(&id, &["ping", "-c", "1", "-W", "2", Lan::GATEWAY]);
    assert!(ok, "the ctr task cannot reach the router: {out}");
    assert_eq!(lan.leased(NET), 1);
    let adds: Vec<_> = lan
        .journal()
        .into_iter()
        .filter(|l| l["stage"] == "cni:ADD" && l["container"] == cni_id.as_str())
        .collect();
    assert!(adds.len() == 1 && adds[0]["outcome"] == "ok", "{adds:?}");
    let verify = lan.cli(&["verify"], "");
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);

    let (ok, out) = containerd.ctr(&["task", "kill", "-s", "SIGKILL", &id]);
    assert!(ok, "ctr task kill: {out}");
    wait_for(30, "ctr run to return", || {
        run.try_wait().unwrap().is_some()
    });
    let dels: Vec<_> = lan
        .journal()
        .into_iter()
        .filter(|l| l["stage"] == "cni:DEL" && l["container"] == cni_id.as_str())
        .collect();
    assert!(
        !dels.is_empty() && dels.iter().all(|l| l["outcome"] == "ok"),
        "{dels:?}"
    );
    let (ok, out) = containerd.ctr(&["container", "ls", "-q"]);
    assert!(ok && out.trim().is_empty(), "ctr run --rm left {out}");
    lan.assert_no_residue(&[NET], "ctr run --cni --rm");
}

/// `ctr run --cni -d`: attached and ctr returns; after `ctr task kill` and `task delete` (ctr
/// runs no DEL) the lease stays until `oci-macvlan gc`, which finds the task's namespace gone
/// and releases it; nothing is left.
#[privileged]
fn a_detached_ctr_task_is_released_by_gc_once_gone() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    let containerd = Containerd::start(&lan, NET);
    containerd.import_busybox();
    let id = unique("omt-ctr-");
    let (ok, out) = containerd.run_cni_detached(&id);
    assert!(ok, "ctr run -d: {out}\n{}", containerd.log());
    let (ok, out) = containerd.exec(&id, &["ping", "-c", "1", "-W", "2", Lan::GATEWAY]);
    assert!(ok, "the ctr task cannot reach the router: {out}");
    assert_eq!(lan.leased(NET), 1);
    // Alive: gc keeps it.
    lan.cli_ok(&["gc"], "");
    assert_eq!(lan.leased(NET), 1, "gc released a running task's lease");

    let (ok, out) = containerd.ctr(&["task", "kill", "-s", "SIGKILL", &id]);
    assert!(ok, "ctr task kill: {out}");
    wait_for(30, "the task to stop", || !containerd.running(&id));
    let (ok, out) = containerd.ctr(&["task", "delete", &id]);
    assert!(ok, "ctr task delete: {out}");
    assert_eq!(lan.leased(NET), 1, "something ran DEL after all");
    let out = lan.cli_ok(&["gc"], "");
    assert!(out.contains("released 1 lease"), "{out}");
    let (ok, out) = containerd.ctr(&["container", "delete", &id]);
    assert!(ok, "ctr container delete: {out}");
    lan.assert_no_residue(&[NET], "ctr run -d, gc");
}
