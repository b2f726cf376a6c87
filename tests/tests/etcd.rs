//! Privileged tier: networks that several hosts share through etcd (`--ipam-opt
//! etcd_endpoints=…`). Real etcd members run in the LAN's router namespace (`Etcd`); each
//! simulated host (own namespace, config and state dirs, `--host-id`) reaches them over the LAN.
//! A three-member cluster and TLS are in `etcd_cluster.rs`; the shared setup in
//! `oci_macvlan_tests::etcd_network`.

#![allow(clippy::unwrap_used)]

use std::{collections::HashSet, io::Write, process::Child};

use oci_macvlan_tests::etcd_network::{
    ANN, NET, age_claim, attach, create_local, create_shared, detach, etcd_leases, on, on_ok,
    two_hosts,
};
use oci_macvlan_tests::{Etcd, Lan, TestNetns, privileged};

#[privileged]
fn one_host_attaches_inspects_and_detaches_on_etcd() {
    let lan = Lan::new();
    let etcd = Etcd::start(&lan, 1);
    etcd.reach_from(&lan, "192.168.77.250");
    create_shared(&lan, &etcd.endpoints(), &["--ipam-opt", "etcd_timeout=5s"]);
    let ns = TestNetns::new("omt-etcd-");
    let out = attach(&lan, "hostA", "c1", &ns, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // The lowest free address: .1 is the gateway.
    assert_eq!(ns.addresses("eth0"), ["192.168.77.2/26"]);
    assert_eq!(
        etcd_leases(&etcd),
        [("192.168.77.2".into(), "hostA".into(), "c1".into())]
    );
    // A re-run createRuntime gets the same lease back.
    let out = attach(&lan, "hostA", "c1", &ns, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(etcd_leases(&etcd).len(), 1);

    let view = lan.inspect(NET);
    assert_eq!(
        view[0]["IPAM"]["Options"]["etcd_endpoints"],
        etcd.endpoints().as_str()
    );
    assert_eq!(view[0]["IPAM"]["Options"]["etcd_timeout"], "5000ms");
    assert_eq!(view[0]["Usage"][0]["DynamicAvailable"], 60, "{view:#}");
    let endpoints: Vec<&serde_json::Value> = view[0]["Containers"]
        .as_object()
        .map(|c| c.values().collect())
        .unwrap_or_default();
    assert_eq!(endpoints.len(), 1, "{view:#}");
    assert_eq!(
        (&endpoints[0]["Name"], &endpoints[0]["Host"]),
        (&"c1".into(), &"hostA".into()),
        "{view:#}"
    );
    assert!(on_ok(&lan, "hostA", &["verify"], "").starts_with("ok: 1 leases"));

    let out = detach(&lan, "hostA", "c1", &ns);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(etcd_leases(&etcd), []);
    assert!(lan.records().is_empty());
    on_ok(&lan, "hostA", &["network", "rm", NET], "");
}

#[privileged]
fn unreachable_etcd_fails_the_attach_naming_the_endpoints_and_leaves_nothing() {
    let lan = Lan::new();
    // Nothing listens there: the connection is refused.
    create_shared(&lan, "http://127.0.0.1:9,http://127.0.0.1:10", &[]);
    // A network without --ipam-opt beside it never waits on etcd.
    create_local(&lan, "local");
    let ns = TestNetns::new("omt-etcd-");
    let out = attach(&lan, "hostA", "c1", &ns, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    assert!(
        lines[0].contains("lease store etcd http://127.0.0.1:9,http://127.0.0.1:10 unavailable")
            && lines[0].contains("http://127.0.0.1:9: cannot connect: refused")
            && lines[0].contains("http://127.0.0.1:10: cannot connect: refused"),
        "{}",
        lines[0]
    );
    assert!(ns.link("eth0").is_none());
    assert!(lan.records().is_empty());
    assert!(lan.locks().is_empty());
    // The local network works as ever.
    let state = lan.fake_bundle("c2", &[(ANN, "local")], &ns.path(), "creating");
    on_ok(&lan, "hostA", &["hook"], &state);
    let state = lan.fake_bundle("c2", &[(ANN, "local")], &ns.path(), "stopped");
    on_ok(&lan, "hostA", &["hook", "poststop"], &state);
    // A container cannot join networks of two stores.
    let state = lan.fake_bundle("c3", &[(ANN, "local,shared")], &ns.path(), "creating");
    let out = on(&lan, "hostA", &["hook"], &state);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("networks local and shared keep their leases in different stores"),
        "{}",
        out.stderr
    );

    // Every --ipam-opt is checked at create, naming the bad one (exit 3).
    for (opt, want) in [
        (
            "etcd_endpont=http://a:1",
            "invalid --ipam-opt etcd_endpont: unknown option",
        ),
        (
            "etcd_endpoints=ftp://a:1",
            "invalid --ipam-opt etcd_endpoints: \"ftp://a:1\"",
        ),
        (
            "etcd_timeout=2",
            "invalid --ipam-opt etcd_timeout: needs etcd_endpoints",
        ),
    ] {
        let out = lan.cli(
            &[
                "network",
                "create",
                "--subnet",
                "10.9.0.0/24",
                "--ipam-opt",
                opt,
                "bad",
            ],
            "",
        );
        assert_eq!(out.code, 3, "{opt}: {}", out.stderr);
        assert!(out.stderr.contains(want), "{opt}: {}", out.stderr);
    }
    let out = lan.cli(
        &[
            "network",
            "create",
            "--subnet",
            "10.9.0.0/24",
            "--ipam-opt",
            "etcd_endpoints=https://a:1",
            "--ipam-opt",
            "etcd_cacert=/nonexistent/ca.pem",
            "bad",
        ],
        "",
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("invalid --ipam-opt etcd_cacert: cannot read /nonexistent/ca.pem"),
        "{}",
        out.stderr
    );
}

fn spawn_hook(lan: &Lan, host: &str, stdin: &str) -> (Child, String) {
    (
        lan.spawn_cli(&["--host-id", host, "hook"], true),
        stdin.to_owned(),
    )
}

#[privileged]
fn two_hosts_share_one_address_space_without_split_ranges() {
    const PER_HOST: usize = 32;
    // The same definition on both hosts, no --ip-range; contention is long, so the deadline too.
    let (host_a, host_b, etcd) = two_hosts(&["--ipam-opt", "etcd_timeout=30s"]);
    let hosts = [(&host_a, "hostA"), (&host_b, "hostB")];
    let containers: Vec<(usize, TestNetns)> = (0..2 * PER_HOST)
        .map(|i| (i % 2, TestNetns::new("omt-share-")))
        .collect();
    // Every hook process of both hosts started first, all fed at once.
    let mut children: Vec<(Child, String)> = containers
        .iter()
        .enumerate()
        .map(|(i, (h, ns))| {
            let (lan, host) = hosts[*h];
            let state =
                lan.fake_bundle(&format!("share{i}"), &[(ANN, NET)], &ns.path(), "creating");
            spawn_hook(lan, host, &state)
        })
        .collect();
    for (child, stdin) in &mut children {
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    }
    let outcomes: Vec<(i32, String)> = children
        .into_iter()
        .map(|(child, _)| {
            let out = child.wait_with_output().unwrap();
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
        .collect();
    let attached: Vec<usize> = (0..outcomes.len())
        .filter(|i| outcomes[*i].0 == 0)
        .collect();
    let exhausted: Vec<&(i32, String)> = outcomes.iter().filter(|(code, _)| *code == 5).collect();
    // 64 addresses less network, broadcast and gateway.
    assert_eq!(attached.len(), 61, "outcomes: {outcomes:#?}");
    assert_eq!(exhausted.len(), 3, "outcomes: {outcomes:#?}");
    for (_, err) in &exhausted {
        assert!(
            err.contains("no available IPv4 addresses on this network's address pools: shared"),
            "{err}"
        );
    }
    assert!(
        attached.iter().any(|i| containers[*i].0 == 0),
        "host A got none"
    );
    assert!(
        attached.iter().any(|i| containers[*i].0 == 1),
        "host B got none"
    );

    // etcd: 61 leases, each address once, each container once.
    let leases = etcd_leases(&etcd);
    assert_eq!(leases.len(), 61);
    let ips: HashSet<&String> = leases.iter().map(|l| &l.0).collect();
    assert_eq!(ips.len(), 61);
    // The kernels: the same 61 addresses, each in one namespace; the others have no link.
    let mut seen = HashSet::new();
    for (i, (h, ns)) in containers.iter().enumerate() {
        let lease = leases.iter().find(|l| l.2 == format!("share{i}"));
        match ns.link("eth0") {
            Some(_) => {
                let addresses = ns.addresses("eth0");
                assert_eq!(addresses.len(), 1, "{addresses:?}");
                let ip = addresses[0].trim_end_matches("/26").to_owned();
                assert!(seen.insert(ip.clone()), "{ip} twice in the kernels");
                let lease = lease.unwrap_or_else(|| panic!("share{i} has {ip} but no lease"));
                assert_eq!(lease.0, ip);
                assert_eq!(lease.1, hosts[*h].1);
            }
            None => assert!(lease.is_none(), "share{i} has a lease and no link"),
        }
    }
    assert_eq!(seen.len(), 61);
    // A container on A reaches one on B across the LAN.
    let a = attached.iter().find(|i| containers[**i].0 == 0).unwrap();
    let b = attached.iter().find(|i| containers[**i].0 == 1).unwrap();
    let b_ip = containers[*b].1.addresses("eth0")[0]
        .trim_end_matches("/26")
        .to_owned();
    assert!(containers[*a].1.ping(&b_ip), "A cannot reach B at {b_ip}");
    for (lan, host) in hosts {
        assert!(on_ok(lan, host, &["verify"], "").starts_with("ok: 61 leases"));
        assert_eq!(lan.leased(NET), 61);
    }
    // Everything back.
    for (i, (h, ns)) in containers.iter().enumerate() {
        let (lan, host) = hosts[*h];
        let out = detach(lan, host, &format!("share{i}"), ns);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    assert_eq!(etcd_leases(&etcd), []);
    for (lan, _) in hosts {
        assert!(lan.records().is_empty() && lan.locks().is_empty());
    }
}

#[privileged]
fn a_static_address_held_on_one_host_is_refused_on_the_other_until_released() {
    let (host_a, host_b, etcd) = two_hosts(&[]);
    let (ns_a, ns_b) = (TestNetns::new("omt-sa-"), TestNetns::new("omt-sb-"));
    let wanted = [("oci-macvlan.ip", "192.168.77.20")];
    let out = attach(&host_a, "hostA", "web", &ns_a, &wanted);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = attach(&host_b, "hostB", "db", &ns_b, &wanted);
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "Address already in use: 192.168.77.20 is leased to container web (eth0) on host hostA"
        ),
        "{}",
        out.stderr
    );
    assert!(ns_b.link("eth0").is_none() && host_b.records().is_empty());
    let out = detach(&host_a, "hostA", "web", &ns_a);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = attach(&host_b, "hostB", "db", &ns_b, &wanted);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(ns_b.addresses("eth0"), ["192.168.77.20/26"]);
    assert_eq!(
        etcd_leases(&etcd),
        [("192.168.77.20".into(), "hostB".into(), "db".into())]
    );
    on_ok(
        &host_b,
        "hostB",
        &["hook", "poststop"],
        &host_b.fake_bundle("db", &[], &ns_b.path(), "stopped"),
    );
    assert_eq!(etcd_leases(&etcd), []);
}

#[privileged]
fn gc_judges_only_this_hosts_leases_and_forget_host_releases_another_hosts() {
    let (host_a, host_b, etcd) = two_hosts(&[]);
    let ns_a = TestNetns::new("omt-ga-");
    let ns_b = TestNetns::new("omt-gb-");
    assert_eq!(attach(&host_a, "hostA", "a1", &ns_a, &[]).code, 0);
    assert_eq!(attach(&host_b, "hostB", "b1", &ns_b, &[]).code, 0);
    // a1's namespace goes: gc on A takes a1 back, and never touches b1 (whose namespace is
    // gone too, but it is B's to judge).
    drop(ns_a);
    drop(ns_b);
    let out = on_ok(&host_a, "hostA", &["gc"], "");
    assert!(
        out.contains("released 1 leases of 1 gone containers"),
        "{out}"
    );
    assert_eq!(
        etcd_leases(&etcd)
            .into_iter()
            .map(|l| l.2)
            .collect::<Vec<_>>(),
        ["b1"]
    );
    // Host B is gone for good (last seen two hours ago): an operator forgets it from A.
    age_claim(&etcd, "hostB", 2 * 3600);
    let out = on(
        &host_a,
        "hostA",
        &["gc", "--forget-host", "hostA", "-f"],
        "",
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    let out = on_ok(
        &host_a,
        "hostA",
        &["gc", "--forget-host", "hostB", "-f"],
        "",
    );
    assert!(out.contains("gc: released 1 leases of host hostB"), "{out}");
    assert_eq!(etcd_leases(&etcd), []);
}
