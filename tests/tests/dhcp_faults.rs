//! Privileged tier: fault injection on a network of the DHCP source, against Kea on the LAN.
//! The hook (built with `failpoints`) dies or fails at each step of an attach to a DHCP
//! network; then poststop runs. Whatever the step, nothing is left: no link, lease, record or
//! lock here, and no lease at the server (the undo of a failed attach, or the poststop after a
//! killed one, sends the RELEASE of a lease the record holds).

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use oci_macvlan_tests::{
    Lan, TestNetns,
    dhcp_lan::{NET, create_dhcp_network, kea_config, live_leases, state_with_hostname},
    failpoints_binary,
    kea::Kea,
    privileged,
};

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
    let container = TestNetns::new("omt-ctr-");
    let creating = state_with_hostname(&lan, "k1", &container, "creating", "web");
    let out = lan.cli_with(
        &failpoints_binary(),
        &[("OCI_MACVLAN_FAILPOINTS", "attach:net:dhcp-acked=kill")],
        &["hook"],
        creating.as_bytes(),
    );
    assert_eq!(out.code, -1, "not killed: {}", out.stderr);
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
