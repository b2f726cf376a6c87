//! Privileged tier: one host's address space across its stores, and a host access address on a
//! network that several hosts share through etcd. Real etcd (`Etcd`); two simulated hosts are
//! two namespaces, each with its own config and state dirs and its own `--host-id`.
//!
//! - A local network and an etcd network with overlapping subnets are refused at create (exit
//!   5, naming the other), and so are nested etcd prefixes; `verify` reports an address leased
//!   in two stores (a pair of definitions planted past the check).
//! - A host's `host_access` address is a lease in the shared store, held by its host: another
//!   host's containers never get it, another host's create with it is refused, `network rm`
//!   releases it.
//! - `network rm` of a network whose cluster is down fails, pointing at `-f`; `rm -f` removes
//!   the definition, says what it left, and `gc` takes that back once the cluster answers.

#![allow(clippy::unwrap_used)]

use oci_macvlan_tests::etcd_network::{ANN, NET, attach, etcd_leases, on, on_ok};
use oci_macvlan_tests::{Etcd, Lan, Outcome, TestNetns, privileged};

const SHARED_SUBNET: &str = "192.168.77.0/26";
const HOST_ACCESS: &str = "192.168.77.3";

/// `network create` on `lan` as `host` of a network `name` on `subnet` (gateway: the LAN's),
/// with `extra` flags; its outcome.
fn create(lan: &Lan, host: &str, name: &str, subnet: &str, extra: &[&str]) -> Outcome {
    let mut args = vec!["network", "create", "--subnet", subnet, "-o", "parent=lan0"];
    if subnet.starts_with("192.168.77.0/") {
        args.extend(["--gateway", Lan::GATEWAY]);
    }
    args.extend_from_slice(extra);
    args.push(name);
    on(lan, host, &args, "")
}

fn create_ok(lan: &Lan, host: &str, name: &str, subnet: &str, extra: &[&str]) {
    let out = create(lan, host, name, subnet, extra);
    assert_eq!(out.code, 0, "create {name} on {host}: {}", out.stderr);
}

/// `--ipam-opt etcd_endpoints=…` (and `more`) for `etcd`.
fn on_etcd(endpoints: &str, more: &[&str]) -> Vec<String> {
    let mut args = vec![
        "--ipam-opt".to_owned(),
        format!("etcd_endpoints={endpoints}"),
    ];
    for opt in more {
        args.extend(["--ipam-opt".to_owned(), (*opt).to_owned()]);
    }
    args
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn assert_refused(out: &Outcome, code: i32, needles: &[&str], context: &str) {
    assert_eq!(out.code, code, "{context}: {}{}", out.stdout, out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{context}: one line: {}", out.stderr);
    for needle in needles {
        assert!(
            lines[0].contains(needle),
            "{context}: {needle:?} in {}",
            lines[0]
        );
    }
}

fn network_names(lan: &Lan, host: &str) -> Vec<String> {
    on_ok(lan, host, &["network", "ls", "--format", "{{.Name}}"], "")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A local network and an etcd network whose subnets overlap are refused at create, in both
/// orders, exit 5, naming the other network; overlapping networks of one store, and networks
/// of two stores apart, are not.
#[privileged]
fn overlapping_subnets_in_two_stores_are_refused_at_create() {
    let lan = Lan::new();
    let etcd = Etcd::start(&lan, 1);
    etcd.reach_from(&lan, "192.168.77.250");
    let shared = on_etcd(&etcd.endpoints(), &[]);
    create_ok(&lan, "hostA", NET, SHARED_SUBNET, &strs(&shared));

    let out = create(&lan, "hostA", "local", "192.168.77.0/24", &[]);
    assert_refused(
        &out,
        5,
        &["network shared", "192.168.77.0/26"],
        "local over etcd",
    );
    // Another prefix on the same cluster is another store.
    let other_prefix = on_etcd(&etcd.endpoints(), &["etcd_prefix=/elsewhere"]);
    let out = create(
        &lan,
        "hostA",
        "other",
        "192.168.77.32/27",
        &strs(&other_prefix),
    );
    assert_refused(&out, 5, &["network shared"], "etcd under another prefix");
    // One store may hold overlapping networks: one address space.
    create_ok(&lan, "hostA", "wide", "192.168.77.0/24", &strs(&shared));
    // Two stores apart: fine.
    create_ok(&lan, "hostA", "apart", "10.55.0.0/24", &[]);
    // The other order: the etcd network is the one refused, naming the local one.
    let out = create(&lan, "hostA", "late", "10.55.0.128/25", &strs(&shared));
    assert_refused(
        &out,
        5,
        &["network apart", "10.55.0.0/24"],
        "etcd over local",
    );
    assert_eq!(network_names(&lan, "hostA"), ["apart", "shared", "wide"]);
}

/// Definitions planted past the check (a local and an etcd network on one subnet): each store
/// hands out the same first address, and `verify` reports it, naming both holders (exit 6).
#[privileged]
fn verify_reports_an_address_leased_in_two_stores() {
    let lan = Lan::new();
    let etcd = Etcd::start(&lan, 1);
    etcd.reach_from(&lan, "192.168.77.250");
    create_ok(&lan, "hostA", "local", SHARED_SUBNET, &[]);
    // Planted: the local definition is out of the way while the etcd one is created.
    let dir = lan.config_dir().join("networks");
    let aside = lan.tmp().join("local.json");
    std::fs::rename(dir.join("local.json"), &aside).unwrap();
    let shared = on_etcd(&etcd.endpoints(), &[]);
    create_ok(&lan, "hostA", NET, SHARED_SUBNET, &strs(&shared));
    std::fs::rename(&aside, dir.join("local.json")).unwrap();

    let (ns1, ns2) = (TestNetns::new("omt-two-"), TestNetns::new("omt-two-"));
    let state = lan.fake_bundle("c1", &[(ANN, "local")], &ns1.path(), "creating");
    let out = on(&lan, "hostA", &["hook"], &state);
    assert_eq!(out.code, 0, "c1: {}", out.stderr);
    let out = attach(&lan, "hostA", "c2", &ns2, &[]);
    assert_eq!(out.code, 0, "c2: {}", out.stderr);
    assert_eq!(
        ns1.addresses("eth0"),
        ns2.addresses("eth0"),
        "one address twice"
    );

    let out = on(&lan, "hostA", &["verify"], "");
    assert_eq!(out.code, 6, "{}{}", out.stdout, out.stderr);
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("address 192.168.77.2 is leased in 2 stores"))
        .collect();
    assert_eq!(lines.len(), 1, "{}", out.stdout);
    assert!(
        lines[0].contains("c1 eth0 on local (the local store)")
            && lines[0].contains("c2 eth0 on shared (a shared store, host hostA)"),
        "{}",
        lines[0]
    );
}

/// Host A's host access address on the shared network is a lease in etcd, held by host A: host
/// B's containers never get it (dynamic or static), host B's create with it is refused naming
/// host A, and host A's `network rm` releases it, after which host B may take it.
#[privileged]
fn a_host_access_address_is_a_lease_of_its_host_in_the_shared_store() {
    let host_a = Lan::new();
    let host_b = host_a.add_host();
    let etcd = Etcd::start(&host_a, 1);
    etcd.reach_from(&host_a, "192.168.77.250");
    etcd.reach_from(&host_b, "192.168.77.251");
    let mut with_access = on_etcd(&etcd.endpoints(), &[]);
    with_access.extend(["-o".to_owned(), format!("host_access={HOST_ACCESS}")]);
    create_ok(&host_a, "hostA", NET, SHARED_SUBNET, &strs(&with_access));
    let plain = on_etcd(&etcd.endpoints(), &[]);
    create_ok(&host_b, "hostB", NET, SHARED_SUBNET, &strs(&plain));

    // Host B hands out .2, then passes .3 by.
    let (ns1, ns2) = (TestNetns::new("omt-ha-"), TestNetns::new("omt-ha-"));
    for (id, ns) in [("b1", &ns1), ("b2", &ns2)] {
        let out = attach(&host_b, "hostB", id, ns, &[]);
        assert_eq!(out.code, 0, "{id}: {}", out.stderr);
    }
    assert_eq!(ns1.addresses("eth0"), ["192.168.77.2/26"]);
    assert_eq!(ns2.addresses("eth0"), ["192.168.77.4/26"]);
    let host_access = (HOST_ACCESS.into(), "hostA".into(), "/host-access".into());
    assert!(
        etcd_leases(&etcd).contains(&host_access),
        "{:?}",
        etcd_leases(&etcd)
    );
    // Nor as a static address.
    let ns3 = TestNetns::new("omt-ha-");
    let out = attach(
        &host_b,
        "hostB",
        "b3",
        &ns3,
        &[("oci-macvlan.ip", HOST_ACCESS)],
    );
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert!(ns3.link("eth0").is_none());
    // Nor as host B's own host access.
    let mut same_access = on_etcd(&etcd.endpoints(), &[]);
    same_access.extend(["-o".to_owned(), format!("host_access={HOST_ACCESS}")]);
    let out = create(
        &host_b,
        "hostB",
        "again",
        SHARED_SUBNET,
        &strs(&same_access),
    );
    assert_refused(
        &out,
        5,
        &[
            HOST_ACCESS,
            "host access address of host hostA on network shared",
        ],
        "host B's host access",
    );
    assert!(
        host_b
            .host_link_names()
            .iter()
            .all(|l| !l.starts_with("ha-"))
    );

    // Both hosts' verify and gc keep it: it is no container's.
    for (lan, host) in [(&host_a, "hostA"), (&host_b, "hostB")] {
        on_ok(lan, host, &["gc"], "");
        let out = on(lan, host, &["verify"], "");
        assert_eq!(out.code, 0, "{host}: {}{}", out.stdout, out.stderr);
    }
    assert!(etcd_leases(&etcd).contains(&host_access));
    let view = host_a.inspect(NET);
    assert_eq!(view[0]["HostAccessLeases"][0]["Host"], "hostA", "{view:#}");

    // Host A's rm releases it (host B's containers are host B's), and host B may take it.
    on_ok(&host_a, "hostA", &["network", "rm", NET], "");
    let holders: Vec<String> = etcd_leases(&etcd).into_iter().map(|l| l.2).collect();
    assert_eq!(holders, ["b1", "b2"]);
    create_ok(
        &host_b,
        "hostB",
        "again",
        SHARED_SUBNET,
        &strs(&same_access),
    );
}

/// Nested prefixes on one cluster are refused at create, in both orders (exit 5, naming the
/// other network); a prefix that only shares its first bytes is not nested.
#[privileged]
fn nested_etcd_prefixes_are_refused_at_create() {
    // Nothing is asked of the cluster before the check: none runs.
    let endpoints = "http://127.0.0.1:9";
    for (first, second) in [("/col", "/col/leases/zz"), ("/col/leases/zz", "//col/")] {
        let lan = Lan::new();
        let outer = on_etcd(endpoints, &[&format!("etcd_prefix={first}")]);
        create_ok(&lan, "hostA", "first", "10.61.0.0/24", &strs(&outer));
        let inner = on_etcd(endpoints, &[&format!("etcd_prefix={second}")]);
        let out = create(&lan, "hostA", "second", "10.62.0.0/24", &strs(&inner));
        assert_refused(&out, 5, &["network first", "nested"], second);
        let apart = on_etcd(endpoints, &["etcd_prefix=/column"]);
        create_ok(&lan, "hostA", "apart", "10.63.0.0/24", &strs(&apart));
        assert_eq!(network_names(&lan, "hostA"), ["apart", "first"]);
    }
}

/// The cluster down: `network rm` fails (exit 1) with a line that points at `-f`, and the
/// network stays; `rm -f` removes the definition and the host link, keeps the container's
/// record, and says what it left in the cluster; the cluster back and the container gone,
/// `gc` releases both the container's lease and the host access lease.
#[privileged]
fn rm_force_removes_a_network_whose_cluster_is_down() {
    let lan = Lan::new();
    let mut etcd = Etcd::start(&lan, 1);
    etcd.reach_from(&lan, "192.168.77.250");
    let mut args = on_etcd(&etcd.endpoints(), &["etcd_timeout=1s"]);
    args.extend(["-o".to_owned(), format!("host_access={HOST_ACCESS}")]);
    create_ok(&lan, "hostA", NET, SHARED_SUBNET, &strs(&args));
    let ns = TestNetns::new("omt-rmf-");
    let out = attach(&lan, "hostA", "c1", &ns, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(etcd_leases(&etcd).iter().any(|l| l.2 == "c1"));
    etcd.kill(0);

    let out = on(&lan, "hostA", &["network", "rm", NET], "");
    assert_refused(
        &out,
        1,
        &["cannot remove network shared", "network rm -f shared"],
        "rm",
    );
    assert_eq!(network_names(&lan, "hostA"), [NET]);

    let out = on(&lan, "hostA", &["network", "rm", "-f", NET], "");
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "shared\n"),
        "{}",
        out.stderr
    );
    let warning: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(warning.len(), 1, "{}", out.stderr);
    assert!(
        warning[0]
            .starts_with("oci-macvlan: warning: removed network shared without its lease store")
            && warning[0].contains("containers c1")
            && warning[0].contains(&format!("host access lease of {HOST_ACCESS}")),
        "{}",
        warning[0]
    );
    assert!(network_names(&lan, "hostA").is_empty());
    assert!(lan.host_link_names().iter().all(|l| !l.starts_with("ha-")));
    assert_eq!(lan.records(), ["c1.json"], "the record stays for gc");
    // `-f` passes over a network that is not there, as Docker's does.
    on_ok(&lan, "hostA", &["network", "rm", "-f", NET], "");

    etcd.restart(0);
    drop(ns);
    let out = on(&lan, "hostA", &["gc"], "");
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(&format!(
            "released host access address {HOST_ACCESS} of removed network shared"
        )),
        "{}",
        out.stdout
    );
    assert_eq!(etcd_leases(&etcd), []);
    assert!(lan.records().is_empty());
}
