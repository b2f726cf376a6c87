//! Privileged tier: what `network rm -f` of a shared network whose etcd cluster is down leaves
//! behind keeps its subnet taken. Real etcd (`Etcd`), one simulated host.
//!
//! `rm -f` keeps the removed definition (`<config-dir>/removed/NAME.json`): a network created
//! on a subnet overlapping it, in any store, or under its name, is refused (exit 5, one line
//! naming it), for its containers on record still hold addresses there that the new network's
//! store knows nothing of. Once those containers are gone and the cluster answers, `gc` takes
//! their leases back and forgets the removed network, and the create works.

#![allow(clippy::unwrap_used)]

use oci_macvlan_tests::etcd_network::{NET, attach, create_shared, etcd_leases, on, on_ok};
use oci_macvlan_tests::{Etcd, Lan, Outcome, TestNetns, privileged};

const HOST: &str = "hostA";

/// `network create` of a network `name` in this host's local store on the shared network's
/// subnet (the LAN's /26).
fn create_local(lan: &Lan, name: &str, subnet: &str) -> Outcome {
    let mut args = vec!["network", "create", "--subnet", subnet, "-o", "parent=lan0"];
    if subnet.starts_with("192.168.77.0/") {
        args.extend(["--gateway", Lan::GATEWAY]);
    }
    args.push(name);
    on(lan, HOST, &args, "")
}

/// Panics unless `out` is a refusal with exit 5, one line, naming the removed network and `-f`.
fn assert_refused(out: &Outcome, context: &str) {
    assert_eq!(out.code, 5, "{context}: {}{}", out.stdout, out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{context}: one line: {}", out.stderr);
    for needle in ["network shared", "rm -f", "gc"] {
        assert!(
            lines[0].contains(needle),
            "{context}: {needle}: {}",
            lines[0]
        );
    }
}

fn tombstones(lan: &Lan) -> Vec<String> {
    let dir = lan.config_dir().join("removed");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The reviewer's reproduction: c1 on the shared network, the cluster down, `rm -f`, then a
/// local network on the same subnet and c2 on it; c2 must never get c1's address.
#[privileged]
fn rm_force_keeps_the_subnet_of_what_it_left_until_gc_clears_it() {
    let lan = Lan::new();
    let mut etcd = Etcd::start(&lan, 1);
    etcd.reach_from(&lan, "192.168.77.250");
    create_shared(&lan, &etcd.endpoints(), &["--ipam-opt", "etcd_timeout=1s"]);
    let ns1 = TestNetns::new("omt-rmf1-");
    let out = attach(&lan, HOST, "c1", &ns1, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let c1_ip = etcd_leases(&etcd)
        .into_iter()
        .find(|l| l.2 == "c1")
        .map(|l| l.0)
        .unwrap();
    etcd.kill(0);

    let out = on(&lan, HOST, &["network", "rm", "-f", NET], "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("containers c1"), "{}", out.stderr);

    // The same subnet, a part of it, or the name: refused while c1 holds its address.
    let out = create_local(&lan, NET, "192.168.77.0/26");
    assert_refused(&out, "the same subnet and name, local store");
    let out = create_local(&lan, "other", "192.168.77.0/28");
    assert_refused(&out, "a part of the subnet");
    let out = create_local(&lan, NET, "10.77.0.0/24");
    assert_refused(&out, "the name");
    // A subnet apart is not the removed network's business.
    let out = create_local(&lan, "apart", "192.168.77.64/26");
    assert_eq!(out.code, 0, "{}", out.stderr);
    on_ok(&lan, HOST, &["network", "rm", "apart"], "");

    // The cluster back but c1 still running: gc keeps what c1 holds, and the removed network.
    etcd.restart(0);
    let out = on(&lan, HOST, &["gc"], "");
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(tombstones(&lan), ["shared.json"], "{}", out.stdout);
    assert!(
        out.stdout.contains("kept removed network shared") && out.stdout.contains("c1"),
        "{}",
        out.stdout
    );
    let out = create_local(&lan, NET, "192.168.77.0/26");
    assert_refused(&out, "c1 still running");

    // c1 gone: gc takes its lease back and forgets the removed network.
    drop(ns1);
    let out = on(&lan, HOST, &["gc"], "");
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("forgot removed network shared"),
        "{}",
        out.stdout
    );
    assert_eq!(etcd_leases(&etcd), []);
    assert!(tombstones(&lan).is_empty(), "{:?}", tombstones(&lan));
    assert!(lan.records().is_empty());

    let out = create_local(&lan, NET, "192.168.77.0/26");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let ns2 = TestNetns::new("omt-rmf2-");
    let out = attach(&lan, HOST, "c2", &ns2, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        ns2.addresses("eth0"),
        [format!("{c1_ip}/26")],
        "c1's address, free again"
    );
}

/// `rm -f` with nothing on record still keeps the removed network while its store does not
/// answer (a lease without a record may be there): `gc` says so and exits 1; once the cluster
/// answers with nothing of this host's on it, `gc` forgets it.
#[privileged]
fn gc_keeps_a_removed_network_while_its_store_does_not_answer() {
    let lan = Lan::new();
    let mut etcd = Etcd::start(&lan, 1);
    etcd.reach_from(&lan, "192.168.77.250");
    create_shared(&lan, &etcd.endpoints(), &["--ipam-opt", "etcd_timeout=1s"]);
    etcd.kill(0);
    let out = on(&lan, HOST, &["network", "rm", "-f", NET], "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(tombstones(&lan), ["shared.json"]);

    let out = on(&lan, HOST, &["gc"], "");
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("kept removed network shared (rm -f): its lease store did not answer"),
        "{}",
        out.stdout
    );
    assert_refused(
        &create_local(&lan, "other", "192.168.77.0/26"),
        "store down",
    );

    etcd.restart(0);
    let out = on(&lan, HOST, &["gc"], "");
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("forgot removed network shared"),
        "{}",
        out.stdout
    );
    assert!(tombstones(&lan).is_empty());
    let out = create_local(&lan, "other", "192.168.77.0/26");
    assert_eq!(out.code, 0, "{}", out.stderr);
}
