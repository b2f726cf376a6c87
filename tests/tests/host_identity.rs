//! One host id, one machine: a host's id in an etcd cluster is claimed once, with a secret
//! only that machine holds (`<config-dir>/host-identity`), so a second machine presenting it (a
//! clone, a forged `--host-id`) is refused and can neither lease an address twice nor free the
//! first machine's leases; every command (the gc timer too, given no `--host-id`) reads the id
//! from that file; keys under the prefix that are not ours are skipped and named by `verify`;
//! `gc --forget-host` refuses what it must. Simulated hosts: a namespace, config and state dirs
//! each, on one LAN with a real etcd (`tests/src/etcd.rs`).

#![allow(clippy::unwrap_used)]

use oci_macvlan_tests::{Etcd, TestNetns, etcd_network::*, privileged};
use serde_json::Value;

const PREFIX: &str = "/oci-macvlan";

/// The etcd key of an IPv4 address's lease.
fn lease_key(ip: &str) -> String {
    let v4: std::net::Ipv4Addr = ip.parse().unwrap();
    format!("{PREFIX}/leases/{:032x}", u128::from(v4.to_ipv6_mapped()))
}

/// (address, host, container) of every well-formed lease under the prefix (planted junk left
/// out).
fn leases(etcd: &Etcd) -> Vec<(String, String, String)> {
    etcd.get_prefix(&format!("{PREFIX}/leases/"))
        .into_iter()
        .filter_map(|(key, value)| {
            let hex = key.strip_prefix(&format!("{PREFIX}/leases/"))?;
            let ip = std::net::Ipv6Addr::from(u128::from_str_radix(hex, 16).ok()?);
            let value: Value = serde_json::from_str(&value).ok()?;
            Some((
                ip.to_ipv4_mapped()?.to_string(),
                value["host"].as_str()?.to_owned(),
                value["container_id"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

fn one_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    lines[0]
}

#[privileged]
fn a_second_machine_with_the_same_id_is_refused_and_hands_out_nothing() {
    let (host_a, host_b, etcd) = two_hosts(&[]);
    let ns_a = TestNetns::new("omt-ia-");
    let ns_b = TestNetns::new("omt-ib-");
    let out = attach(&host_a, "hostA", "c1", &ns_a, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Host B is a clone: the same id (as a shared /etc/machine-id gives), its own machine.
    // Its first attach of the same container id once took A's lease for its own re-run.
    let out = attach(&host_b, "hostA", "c1", &ns_b, &[]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let line = one_line(&out.stderr);
    assert!(
        line.contains("host id hostA is claimed")
            && line.contains("--host-id NEW-ID")
            && line.contains(
                &host_b
                    .config_dir()
                    .join("host-identity")
                    .display()
                    .to_string()
            ),
        "{line}"
    );
    assert!(ns_b.link("eth0").is_none(), "B gave c1 a link");
    assert_eq!(
        leases(&etcd),
        [("192.168.77.2".into(), "hostA".into(), "c1".into())]
    );
    // Host A's identity file: its id, a secret, root's alone.
    let file = host_a.config_dir().join("host-identity");
    let identity: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(identity["id"], "hostA");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // The claim in etcd holds a hash, never the secret.
    let claims = etcd.get_prefix(&format!("{PREFIX}/hosts/"));
    assert_eq!(claims.len(), 1, "{claims:?}");
    assert_eq!(claims[0].0, format!("{PREFIX}/hosts/hostA"));
    assert!(!claims[0].1.contains(identity["secret"].as_str().unwrap()));

    // Nor another container: no lease of hostA's is ever B's.
    let ns_b2 = TestNetns::new("omt-ib-");
    let out = attach(&host_b, "hostA", "c2", &ns_b2, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    // B's poststop of c1 frees nothing of A's (B recorded nothing of c1).
    let _ = detach(&host_b, "hostA", "c1", &ns_b);
    assert_eq!(leases(&etcd).len(), 1);
    let out = on(&host_b, "hostA", &["gc"], "");
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert_eq!(leases(&etcd).len(), 1);

    // The fix the line gives: B gets an id of its own, and works.
    std::fs::remove_file(host_b.config_dir().join("host-identity")).unwrap();
    let out = attach(&host_b, "hostB", "c1", &ns_b, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        leases(&etcd),
        [
            ("192.168.77.2".into(), "hostA".into(), "c1".into()),
            ("192.168.77.3".into(), "hostB".into(), "c1".into()),
        ]
    );
    // A still detaches its own.
    let out = detach(&host_a, "hostA", "c1", &ns_a);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        leases(&etcd),
        [("192.168.77.3".into(), "hostB".into(), "c1".into())]
    );
}

#[privileged]
fn a_host_run_with_another_hosts_id_cannot_free_its_leases() {
    let (host_a, host_b, etcd) = two_hosts(&[]);
    let ns_a = TestNetns::new("omt-fa-");
    let ns_b = TestNetns::new("omt-fb-");
    // One container id on both hosts (a name both deployments give it).
    assert_eq!(attach(&host_a, "hostA", "web", &ns_a, &[]).code, 0);
    assert_eq!(attach(&host_b, "hostB", "web", &ns_b, &[]).code, 0);
    let both = leases(&etcd);
    assert_eq!(
        both,
        [
            ("192.168.77.2".into(), "hostA".into(), "web".into()),
            ("192.168.77.3".into(), "hostB".into(), "web".into()),
        ]
    );
    // B's poststop, run with A's id: it once released A's web and kept B's. Refused, naming
    // both ids and B's identity file.
    let out = detach(&host_b, "hostA", "web", &ns_b);
    assert_eq!(out.code, 3, "{}", out.stderr);
    let line = one_line(&out.stderr);
    assert!(
        line.contains("hostA")
            && line.contains("hostB")
            && line.contains(
                &host_b
                    .config_dir()
                    .join("host-identity")
                    .display()
                    .to_string()
            ),
        "{line}"
    );
    let out = on(&host_b, "hostA", &["gc"], "");
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(leases(&etcd), both);
    // Its own id releases its own.
    let out = detach(&host_b, "hostB", "web", &ns_b);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(leases(&etcd), both[..1]);

    // A machine that never used etcd, run with A's id: refused by A's claim.
    let host_c = host_a.add_host();
    etcd.reach_from(&host_c, "192.168.77.252");
    create_shared(&host_c, &etcd.endpoints(), &[]);
    let ns_c = TestNetns::new("omt-fc-");
    let out = attach(&host_c, "hostA", "web", &ns_c, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(one_line(&out.stderr).contains("host id hostA is claimed"));
    assert_eq!(leases(&etcd), both[..1]);
}

#[privileged]
fn the_gc_timer_given_no_host_id_releases_a_gone_containers_etcd_lease() {
    let (lan, etcd) = one_host();
    let ns = TestNetns::new("omt-gt-");
    assert_eq!(attach(&lan, "hostA", "c1", &ns, &[]).code, 0);
    drop(ns);
    // As the packaged timer runs it: `oci-macvlan gc`, no --host-id, no environment.
    let out = lan.cli(&["gc"], "");
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("released 192.168.77.2"),
        "{}",
        out.stdout
    );
    assert_eq!(leases(&etcd), []);
    assert!(lan.records().is_empty());
}

#[privileged]
fn keys_under_the_prefix_that_are_not_ours_are_skipped_and_named_by_verify() {
    let (lan, etcd) = one_host();
    let junk = [
        (format!("{PREFIX}/leases/zz"), "x".to_owned()),
        // The key of .2, holding no lease: the address is taken, never handed out.
        (lease_key("192.168.77.2"), "not json".to_owned()),
        // A network nested in this prefix (etcd_prefix=/oci-macvlan/leases/zz).
        (
            format!("{PREFIX}/leases/zz/leases/{:032x}", 5),
            "{}".to_owned(),
        ),
        (format!("{PREFIX}/hosts/a/b"), "{}".to_owned()),
    ];
    for (key, value) in &junk {
        etcd.put(key, value);
    }
    let ns = TestNetns::new("omt-jk-");
    let out = attach(&lan, "hostA", "c1", &ns, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        leases(&etcd),
        [("192.168.77.3".into(), "hostA".into(), "c1".into())]
    );
    // A static request for the planted address: taken.
    let ns2 = TestNetns::new("omt-jk-");
    let out = attach(
        &lan,
        "hostA",
        "c2",
        &ns2,
        &[("oci-macvlan.ip", "192.168.77.2")],
    );
    assert_eq!(out.code, 5, "{}", out.stderr);

    let out = on(&lan, "hostA", &["verify"], "");
    assert_eq!(out.code, 6, "{}{}", out.stdout, out.stderr);
    for (key, _) in &junk {
        let named: Vec<&str> = out
            .stdout
            .lines()
            .filter(|l| l.contains(key.as_str()))
            .collect();
        assert!(!named.is_empty(), "{key} not named: {}", out.stdout);
    }
    assert_eq!(out.stdout.lines().count(), junk.len(), "{}", out.stdout);

    let out = detach(&lan, "hostA", "c1", &ns);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(leases(&etcd), []);
    assert_eq!(on(&lan, "hostA", &["gc"], "").code, 0);
    // The junk is not ours to remove.
    let left = etcd.get_prefix(&format!("{PREFIX}/leases/"));
    assert_eq!(left.len(), 3, "{left:?}");
}

#[privileged]
fn forget_host_checks_the_id_refuses_this_host_and_a_live_one_and_asks() {
    let (host_a, host_b, etcd) = two_hosts(&[]);
    let ns_a = TestNetns::new("omt-ka-");
    let ns_b = TestNetns::new("omt-kb-");
    assert_eq!(attach(&host_a, "hostA", "a1", &ns_a, &[]).code, 0);
    assert_eq!(attach(&host_b, "hostB", "b1", &ns_b, &[]).code, 0);
    let both = leases(&etcd);
    assert_eq!(both.len(), 2);

    for bad in ["a/b", "", "x y"] {
        let out = on(&host_a, "hostA", &["gc", "--forget-host", bad, "-f"], "");
        assert_eq!(out.code, 3, "{bad}: {}", out.stderr);
        assert!(one_line(&out.stderr).contains("invalid host id"));
    }
    // This host, named by the id its identity file keeps (no --host-id given).
    let out = host_a.cli(&["gc", "--forget-host", "hostA", "-f"], "");
    assert_eq!(out.code, 3, "{}", out.stderr);
    // B ran a moment ago: alive, refused even with -f.
    let out = on(
        &host_a,
        "hostA",
        &["gc", "--forget-host", "hostB", "-f"],
        "",
    );
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert!(one_line(&out.stderr).contains("host hostB is alive"));
    assert_eq!(leases(&etcd), both);

    // B's claim was last refreshed two hours ago: B is gone for good.
    let key = format!("{PREFIX}/hosts/hostB");
    age_claim(&etcd, "hostB", 2 * 3600);
    // Asked first, as `network prune` asks: "n" changes nothing.
    let out = on(&host_a, "hostA", &["gc", "--forget-host", "hostB"], "n\n");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("Are you sure"), "{}", out.stderr);
    assert_eq!(leases(&etcd), both);
    let out = on(&host_a, "hostA", &["gc", "--forget-host", "hostB"], "y\n");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("gc: released 1 leases of host hostB"));
    assert_eq!(
        leases(&etcd),
        [("192.168.77.2".into(), "hostA".into(), "a1".into())]
    );
    // Its claim went with it: the id is free for a machine to claim again.
    assert_eq!(etcd.get_prefix(&key), []);
}

#[privileged]
fn a_first_attach_never_adopts_a_lease_it_has_no_record_of() {
    let (lan, etcd) = one_host();
    let ns = TestNetns::new("omt-ad-");
    assert_eq!(attach(&lan, "hostA", "c1", &ns, &[]).code, 0);
    // The state dir lost c1's record (a reboot empties /run; etcd keeps the lease): the lease
    // of owner c1/eth0 under this host's id is no earlier run of this attach's.
    drop(ns);
    std::fs::remove_dir_all(lan.state_dir().join("endpoints")).unwrap();
    let fresh = TestNetns::new("omt-ad-");
    let out = attach(&lan, "hostA", "c1", &fresh, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        fresh.addresses("eth0"),
        ["192.168.77.3/26"],
        "took the lease it has no record of"
    );
    assert_eq!(
        leases(&etcd),
        [
            ("192.168.77.2".into(), "hostA".into(), "c1".into()),
            ("192.168.77.3".into(), "hostA".into(), "c1".into()),
        ]
    );
    // Asked for by address, it is held by someone else: exit 5, never adopted.
    drop(fresh);
    std::fs::remove_dir_all(lan.state_dir().join("endpoints")).unwrap();
    let other = TestNetns::new("omt-ad-");
    let out = attach(
        &lan,
        "hostA",
        "c1",
        &other,
        &[("oci-macvlan.ip", "192.168.77.2")],
    );
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert!(other.link("eth0").is_none());
}

#[privileged]
fn gc_without_an_identity_file_or_host_id_guesses_no_id() {
    let (lan, etcd) = one_host();
    let ns = TestNetns::new("omt-gn-");
    assert_eq!(attach(&lan, "hostA", "c1", &ns, &[]).code, 0);
    drop(ns);
    // No file yet (as on a host upgraded from a build without it, whose hooks are given
    // --host-id): the timer's gc must not pin /etc/machine-id as this host's id.
    let file = lan.config_dir().join("host-identity");
    let kept = std::fs::read(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    let out = lan.cli(&["gc"], "");
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("kept container c1") && out.stdout.contains("no identity yet"),
        "{}",
        out.stdout
    );
    assert!(!file.exists(), "gc made an identity file");
    assert_eq!(leases(&etcd).len(), 1);
    assert_eq!(lan.records().len(), 1);
    // With the file back, the same gc releases it.
    std::fs::write(&file, kept).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = lan.cli(&["gc"], "");
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(leases(&etcd), []);
}
