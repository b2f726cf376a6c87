//! Privileged tier: fault injection on a network of the DHCP source, against Kea on the LAN.
//! The hook (built with `failpoints`) dies or fails at each step of an attach to a DHCP
//! network; then poststop runs. Whatever the step, nothing is left: no link, lease, record or
//! lock here, and no lease at the server (the undo of a failed attach, or the poststop after a
//! killed one, sends the RELEASE of a lease the record holds).

#![allow(clippy::unwrap_used)]

use std::{
    io::Write,
    path::Path,
    process::Child,
    time::{Duration, Instant},
};

use oci_macvlan_tests::{
    ContainerProcess, Lan, TestNetns,
    dhcp_lan::{NET, create_dhcp_network, kea_config, keepers, live_leases, state_with_hostname},
    failpoints_binary,
    kea::Kea,
    kea6::Kea6,
    privileged,
    renewal::wait_until,
};

#[path = "dhcp6/attach.rs"]
mod attach;

/// The steps an attach to one network passes (`failpoint::ALL`, but host access's, which a
/// DHCP network has not, and `failpoint::DHCP`, which only a DHCP network has).
const POINTS: &[&str] = &[
    "attach:locked",
    "attach:claimed",
    "attach:recorded",
    "attach:net:parent",
    "attach:net:created",
    // The server's ACK read, the full record not yet written: the record names the offer.
    "attach:net:dhcp-acked",
    "attach:net:record-lease",
    "attach:net:leased",
    "attach:net:addressed",
    "attach:net:configured",
    "attach:net:up",
    "attach:net:routed",
    "attach:done",
];

#[privileged]
fn an_attach_dying_or_failing_at_any_step_leaves_no_lease_at_the_server() {
    let lan = Lan::new();
    let kea = Kea::start(&lan.router, &kea_config());
    create_dhcp_network(&lan, &[]);
    let faulty = failpoints_binary();
    let mut n = 0;
    for point in POINTS {
        for action in ["error", "kill"] {
            n += 1;
            let id = format!("fd{n}");
            let what = format!("{point}={action}");
            let container = TestNetns::new("omt-ctr-");
            let creating = state_with_hostname(&lan, &id, &container, "creating", "web");
            let out = lan.cli_with(
                &faulty,
                &[("OCI_MACVLAN_FAILPOINTS", &what)],
                &["hook"],
                creating.as_bytes(),
            );
            match action {
                "kill" => assert_eq!(out.code, -1, "{what}: not killed: {}", out.stderr),
                _ => assert!(
                    out.code != 0 && out.stderr.contains(point),
                    "{what}: did not fail there: {}",
                    out.stderr
                ),
            }
            lan.cli_ok(
                &["hook"],
                &state_with_hostname(&lan, &id, &container, "stopped", "web"),
            );
            let start = Instant::now();
            while !live_leases(&kea).is_empty() && start.elapsed() < Duration::from_secs(3) {
                std::thread::sleep(Duration::from_millis(50));
            }
            assert_eq!(
                live_leases(&kea),
                Vec::<String>::new(),
                "{what}: Kea still leases"
            );
            assert!(container.link("eth0").is_none(), "{what}: eth0 left");
            lan.assert_no_residue(&[NET], &what);
        }
    }
}

/// A hook killed between the server's ACK and the full record (review 27, 1c), whose
/// container then goes without a poststop: `gc` takes it back, and the offer noted on the
/// record before the REQUEST gets its RELEASE.
#[privileged]
fn a_hook_killed_after_the_ack_leaves_gc_a_lease_to_release() {
    let lan = Lan::new();
    let kea = Kea::start(&lan.router, &kea_config());
    create_dhcp_network(&lan, &[]);
    let container = killed_after_the_ack(&lan, "k1");
    assert_eq!(live_leases(&kea).len(), 1, "Kea leased nothing");
    drop(container);
    lan.cli_ok(&["gc"], "");
    let start = Instant::now();
    while !live_leases(&kea).is_empty() && start.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(live_leases(&kea), Vec::<String>::new(), "Kea still leases");
    lan.assert_no_residue(&[NET], "after gc");
}

/// The same on a `--ipv6` network: the v6 lease whose REQUEST went out is noted on the record
/// beside the v4 offer, so `gc` releases it at Kea 6 too (before, the record named the v4
/// offer alone until the full record, and Kea 6 kept its lease to its expiry).
#[privileged]
fn a_hook_killed_after_the_replies_leaves_gc_both_leases_to_release() {
    let lan = Lan::new();
    attach::router_v6(&lan);
    let kea = Kea::start(&lan.router, &kea_config());
    let kea6 = Kea6::start(&lan.router, &attach::kea6_config());
    create_dhcp_network(&lan, &["--ipv6"]);
    let container = killed_after_the_ack(&lan, "k6");
    assert_eq!(live_leases(&kea).len(), 1, "Kea leased nothing");
    let given = kea6
        .rows()
        .first()
        .map(|row| row.address.clone())
        .unwrap_or_else(|| panic!("Kea 6 gave no lease: {}", kea6.log()));
    assert!(kea6.lease(&given).is_some(), "{:?}", kea6.rows());
    drop(container);
    lan.cli_ok(&["gc"], "");
    assert!(
        attach::released6(&kea6, &given),
        "Kea 6 still holds {given}: {:?}",
        kea6.rows()
    );
    assert!(
        wait_until(Duration::from_secs(3), || live_leases(&kea).is_empty()),
        "Kea still leases: {:?}",
        live_leases(&kea)
    );
    lan.assert_no_residue(&[NET], "after gc");
}

/// A container `id` whose attach the failpoints build's hook died in, between the server's
/// answers and the full record.
fn killed_after_the_ack(lan: &Lan, id: &str) -> TestNetns {
    let container = TestNetns::new("omt-ctr-");
    let creating = state_with_hostname(lan, id, &container, "creating", "web");
    let out = lan.cli_with(
        &failpoints_binary(),
        &[("OCI_MACVLAN_FAILPOINTS", "attach:net:dhcp-acked=kill")],
        &["hook"],
        creating.as_bytes(),
    );
    assert_eq!(out.code, -1, "not killed: {}", out.stderr);
    container
}

/// Starts the failpoints build's hook with `failpoint` on container `id`'s state (of `process`,
/// on [`NET`]).
fn hook_with(lan: &Lan, failpoint: &str, id: &str, process: &ContainerProcess) -> Child {
    let state = lan.pid_bundle(
        id,
        &[("oci-macvlan.networks", NET)],
        process.pid(),
        "creating",
    );
    let mut hook = lan.spawn_with(
        &failpoints_binary(),
        &[("OCI_MACVLAN_FAILPOINTS", failpoint)],
        &["hook"],
        true,
    );
    hook.stdin
        .take()
        .unwrap()
        .write_all(state.as_bytes())
        .unwrap();
    hook
}

/// A lease's renewer starts beside its exchange, not after the attach: while the hook waits at
/// `attach:net:dhcp-acked` (paused a second, the container's lock held), the container's keeper
/// runs already; once the attach lets the lock go it reads the record and keeps the lease the
/// attach recorded (its pair, active and standby, until the container ends). A keeper started
/// for an attach that then dies finds no lease recorded in full and ends at once.
#[privileged]
fn a_renewer_starts_beside_the_exchange_and_keeps_only_a_lease_recorded_in_full() {
    let lan = Lan::new();
    let _kea = Kea::start(&lan.router, &kea_config());
    create_dhcp_network(&lan, &[]);

    let process = ContainerProcess::start();
    let mut hook = hook_with(&lan, "attach:net:dhcp-acked=pause", "p1", &process);
    let mut beside = false;
    while hook.try_wait().unwrap().is_none() {
        if !keepers(&lan, Some("p1")).is_empty() {
            beside = hook.try_wait().unwrap().is_none();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = hook.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(beside, "no keeper ran while the attach waited");
    assert!(
        wait_until(Duration::from_secs(5), || keepers(&lan, Some("p1")).len()
            == 2),
        "no active and standby keeper: {:?}",
        keepers(&lan, Some("p1"))
    );
    // Started without the hook waiting for its `execve` (every signal blocked until then), a
    // keeper takes its signals (a SIGTERM ends it) and holds none of the hook's streams. Read
    // until each is settled: a keeper inside its own `posix_spawn` of its twin has every
    // signal blocked for that moment (glibc's), and the twin, before its `execve`, is listed
    // as a keeper too.
    let settled = |pid: &u32| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let blocked = status.lines().find_map(|l| l.strip_prefix("SigBlk:"));
        blocked.map(str::trim) == Some("0000000000000000")
            && (0..3).all(|fd| {
                std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                    .ok()
                    .as_deref()
                    == Some(Path::new("/dev/null"))
            })
    };
    assert!(
        wait_until(Duration::from_secs(5), || keepers(&lan, Some("p1"))
            .iter()
            .all(settled)),
        "a keeper with signals blocked or a stream of the hook's: {:?}",
        keepers(&lan, Some("p1"))
            .iter()
            .map(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default())
            .collect::<Vec<_>>()
    );
    let stopped = lan.pid_bundle(
        "p1",
        &[("oci-macvlan.networks", NET)],
        process.pid(),
        "stopped",
    );
    process.kill();
    assert!(
        wait_until(Duration::from_secs(5), || keepers(&lan, Some("p1"))
            .is_empty()),
        "keepers outlived their container"
    );
    lan.cli_ok(&["hook"], &stopped);
    lan.assert_no_residue(&[NET], "after the paused attach");

    // The hook dies after its keeper was started, the record naming only the offer: the
    // keeper ends at once although the container lives; the take-back releases the offer.
    let process = ContainerProcess::start();
    let hook = hook_with(&lan, "attach:net:dhcp-acked=kill", "p2", &process);
    let out = hook.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        None,
        "the failpoint did not kill the hook"
    );
    assert!(
        wait_until(Duration::from_secs(5), || keepers(&lan, Some("p2"))
            .is_empty()),
        "a keeper of an attach that died lives on: {:?}",
        keepers(&lan, Some("p2"))
    );
    let stopped = lan.pid_bundle(
        "p2",
        &[("oci-macvlan.networks", NET)],
        process.pid(),
        "stopped",
    );
    process.kill();
    lan.cli_ok(&["hook"], &stopped);
    lan.assert_no_residue(&[NET], "after the attach that died");
}
