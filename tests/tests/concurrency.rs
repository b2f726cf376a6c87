//! Privileged tier: many hook processes at once against one small pool. The lease store must
//! hand out each address once, fail the surplus cleanly, and leave nothing behind for them. And
//! `network rm` racing an attach: never both, never a lease of an undefined network.

#![allow(clippy::unwrap_used)]

use std::{collections::HashSet, io::Write};

use oci_macvlan_tests::{Lan, TestNetns, privileged};

const NET: &str = "small";
const ANN: &str = "oci-macvlan.networks";

#[privileged]
fn sixty_four_hooks_race_for_sixty_two_addresses() {
    const HOOKS: usize = 64;
    let lan = Lan::new();
    // A /26, internal and without gateway: 64 addresses, network and broadcast reserved, 62 to
    // hand out (on a network that is not internal, the first would be kept for the LAN's router).
    lan.cli_ok(
        &[
            "network",
            "create",
            "--internal",
            "--subnet",
            "192.168.77.0/26",
            "-o",
            "parent=lan0",
            NET,
        ],
        "",
    );
    let containers: Vec<TestNetns> = (0..HOOKS).map(|_| TestNetns::new("omt-race-")).collect();
    let states: Vec<String> = containers
        .iter()
        .enumerate()
        .map(|(i, ns)| {
            lan.fake_bundle(
                &format!("race{i}"),
                &[("oci-macvlan.networks", NET)],
                &ns.path(),
                "creating",
            )
        })
        .collect();

    // Start every process first; each blocks on stdin until all are running, then all are
    // released together. The store does not exist yet: the first transactions create it.
    let outcomes: Vec<(i32, String)> = lan
        .cli_together(&["hook"], &states)
        .into_iter()
        .map(|out| (out.code, out.stderr))
        .collect();

    let attached = outcomes.iter().filter(|(code, _)| *code == 0).count();
    let exhausted: Vec<&String> = outcomes
        .iter()
        .filter(|(code, _)| *code == 5)
        .map(|(_, err)| err)
        .collect();
    assert_eq!(attached, 62, "outcomes: {outcomes:#?}");
    assert_eq!(exhausted.len(), 2, "outcomes: {outcomes:#?}");
    for err in &exhausted {
        assert!(
            err.contains("no available IPv4 addresses on this network's address pools: small"),
            "{err}"
        );
    }

    // The kernel's view: 62 namespaces with one distinct address each, 2 with no link at all.
    let mut seen = HashSet::new();
    let mut bare = 0;
    for ns in &containers {
        match ns.link("eth0") {
            Some(_) => {
                let addresses = ns.addresses("eth0");
                assert_eq!(addresses.len(), 1, "{}: {addresses:?}", ns.name);
                assert!(
                    seen.insert(addresses[0].clone()),
                    "address {} is on two containers",
                    addresses[0]
                );
            }
            None => {
                assert_eq!(
                    ns.links().len(),
                    1,
                    "{}: a failed attach left a link",
                    ns.name
                );
                bare += 1;
            }
        }
    }
    assert_eq!((seen.len(), bare), (62, 2));

    // The store's view agrees, and the failed two left no lease and no record.
    let inspect = lan.inspect(NET);
    let leased: HashSet<String> = inspect[0]["Containers"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["IPv4Address"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(leased, seen);
    assert_eq!(lan.records().len(), 62);
    let verify = lan.cli(&["verify"], "");
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
    assert_eq!(
        verify.stdout,
        "ok: 62 leases, 62 endpoint records, no problems\n"
    );
}

/// `network rm` racing an attach, 200 rounds: never both succeed, and nothing is ever left of
/// a network that is no longer defined.
#[privileged]
fn network_rm_racing_attach_never_leaves_a_lease_of_an_undefined_network() {
    let lan = Lan::new();
    let ns = TestNetns::new("omt-ctr-");
    let state = lan.fake_bundle("racer", &[(ANN, "race")], &ns.path(), "creating");
    let stopped = lan.fake_bundle("racer", &[(ANN, "race")], &ns.path(), "stopped");
    let (mut attached, mut removed) = (0, 0);
    for round in 0..200 {
        lan.create_network("race", &[]);
        let mut attach = lan.spawn_cli(&["hook"], false);
        let mut rm = lan.spawn_cli(&["network", "rm", "race"], false);
        drop(rm.stdin.take());
        attach
            .stdin
            .take()
            .unwrap()
            .write_all(state.as_bytes())
            .unwrap();
        let attach = attach.wait_with_output().unwrap();
        let rm = rm.wait_with_output().unwrap();
        let (a, r) = (attach.status.success(), rm.status.success());
        assert!(
            !(a && r),
            "round {round}: both the attach and the rm succeeded"
        );
        assert!(
            a || r,
            "round {round}: neither succeeded: {} / {}",
            String::from_utf8_lossy(&attach.stderr),
            String::from_utf8_lossy(&rm.stderr)
        );
        attached += usize::from(a);
        removed += usize::from(r);
        let verify = lan.cli(&["verify"], "");
        assert_eq!(
            verify.code, 0,
            "round {round}: {}{}",
            verify.stdout, verify.stderr
        );
        if a {
            lan.cli_ok(&["hook"], &stopped);
            lan.cli_ok(&["network", "rm", "race"], "");
        }
    }
    eprintln!("200 rounds: attach first {attached}, rm first {removed}");
    lan.assert_no_residue(&[], "after 200 rounds");
}
