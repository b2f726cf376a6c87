//! Privileged tier: a write etcd applied whose answer never came (`maybe_written`), injected by
//! the failpoint `etcd:write-unanswered` of the etcd client (`oci_macvlan_ipam_etcd::
//! WRITE_UNANSWERED`, in the `failpoints` build). The hook cannot know whether its write took
//! effect, so it says so, and takes back what may have been written: an attach's undo releases
//! the lease etcd did write; a detach's lost release is finished by a later poststop or `gc`.

#![allow(clippy::unwrap_used)]

use oci_macvlan_tests::etcd_network::{
    ANN, NET, assert_nothing_left, attach, detach, etcd_leases, one_host,
};
use oci_macvlan_tests::{Lan, Outcome, TestNetns, failpoints_binary, privileged};

const ENV: &str = "OCI_MACVLAN_FAILPOINTS";

/// The failpoints build run as host `hostA` with `spec`, on the state of container `id` in
/// `ns` at `status`.
fn faulty(lan: &Lan, spec: &str, id: &str, ns: &TestNetns, status: &str) -> Outcome {
    let state = lan.fake_bundle(id, &[(ANN, NET)], &ns.path(), status);
    let args: &[&str] = match status {
        "stopped" => &["--host-id", "hostA", "hook", "poststop"],
        _ => &["--host-id", "hostA", "hook"],
    };
    lan.cli_with(&failpoints_binary(), &[(ENV, spec)], args, state.as_bytes())
}

/// The one line of a command whose etcd write may have been applied.
fn assert_maybe_applied(out: &Outcome, context: &str) {
    assert_eq!(out.code, 1, "{context}: {}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{context}: {}", out.stderr);
    assert!(
        out.stderr
            .contains("kv/txn sent, no answer within etcd_timeout")
            && out.stderr.contains("it may still be applied")
            && out
                .stderr
                .contains("answer lost (failpoint etcd:write-unanswered)"),
        "{context}: {}",
        out.stderr
    );
}

/// An attach whose lease write etcd applied and whose answer was lost: exit 1, one line saying
/// it may still be applied, and the undo releases that lease: nothing left in etcd, no link,
/// no record. With that undo step failing too, the lease etcd wrote is there (the write did
/// take effect), the line says what the rollback left, and poststop releases it.
#[privileged]
fn an_attach_whose_lease_write_is_unanswered_releases_what_etcd_wrote() {
    let (lan, etcd) = one_host();
    let ns = TestNetns::new("omt-lost-");
    let out = faulty(&lan, "etcd:write-unanswered=error", "c1", &ns, "creating");
    assert_maybe_applied(&out, "attach");
    assert_nothing_left(&lan, &etcd, &ns, "attach unanswered");

    // The undo's first step (the release of what may have been leased) fails: what etcd wrote
    // stays, the record with it, until poststop.
    let spec = "etcd:write-unanswered=error,undo:step=error@1";
    let out = faulty(&lan, spec, "c2", &ns, "creating");
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("it may still be applied")
            && out.stderr.contains("; the rollback left "),
        "{}",
        out.stderr
    );
    assert_eq!(
        etcd_leases(&etcd),
        [("192.168.77.2".into(), "hostA".into(), "c2".into())]
    );
    let out = detach(&lan, "hostA", "c2", &ns);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_nothing_left(&lan, &etcd, &ns, "undo failed, then poststop");
}

/// A poststop whose release etcd applied and whose answer was lost: exit 1, one line saying it
/// may still be applied; the record stays, and the next poststop (or `gc`, once the container
/// is gone) finishes: no lease, no record, no lock, no link.
#[privileged]
fn a_detach_whose_release_is_unanswered_is_finished_by_poststop_or_gc() {
    let (lan, etcd) = one_host();
    for then in ["poststop", "gc"] {
        let ns = TestNetns::new("omt-lost-");
        let id = format!("then-{then}");
        let out = attach(&lan, "hostA", &id, &ns, &[]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let out = faulty(&lan, "etcd:write-unanswered=error", &id, &ns, "stopped");
        assert_maybe_applied(&out, then);
        // etcd applied the release; the record still names the container's link and store.
        assert_eq!(etcd_leases(&etcd), [], "{then}");
        assert_eq!(lan.records(), [format!("{id}.json")], "{then}");
        if then == "poststop" {
            let out = detach(&lan, "hostA", &id, &ns);
            assert_eq!(out.code, 0, "{}", out.stderr);
            assert_nothing_left(&lan, &etcd, &ns, then);
        } else {
            drop(ns); // the container is gone, and its namespace with it
            let out = lan.cli(&["--host-id", "hostA", "gc"], "");
            assert_eq!(out.code, 0, "{}", out.stderr);
            assert!(
                out.stdout
                    .contains(&format!("released container {id}, which held no lease")),
                "{}",
                out.stdout
            );
            assert!(lan.records().is_empty() && lan.locks().is_empty());
        }
    }
}
