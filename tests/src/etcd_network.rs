//! Shared setup of the etcd suites (`tests/tests/etcd.rs` and `tests/tests/etcd_cluster.rs`): the
//! shared network defined on simulated hosts, the CLI run as one of them, and the leases in etcd.

use crate::{Etcd, Lan, Outcome, TestNetns};

pub const NET: &str = "shared";
pub const ANN: &str = "oci-macvlan.networks";

/// `network create` of the shared /26 on `lan`, leases in the cluster at `endpoints`.
pub fn create_shared(lan: &Lan, endpoints: &str, extra: &[&str]) {
    let endpoints = format!("etcd_endpoints={endpoints}");
    let mut args = vec![
        "network",
        "create",
        "--subnet",
        "192.168.77.0/26",
        "--gateway",
        Lan::GATEWAY,
        "-o",
        "parent=lan0",
        "--ipam-opt",
        &endpoints,
    ];
    args.extend_from_slice(extra);
    args.push(NET);
    lan.cli_ok(&args, "");
}

/// The subnet of a local network beside the shared one ([`create_local`]): the LAN's, but
/// apart from the shared /26, for one host may not have overlapping subnets in two stores.
pub const LOCAL_SUBNET: &str = "192.168.77.64/26";

/// `network create` of a network `name` on `lan` whose leases are in the host's local store,
/// on [`LOCAL_SUBNET`].
pub fn create_local(lan: &Lan, name: &str) {
    lan.cli_ok(
        &[
            "network",
            "create",
            "--subnet",
            LOCAL_SUBNET,
            "-o",
            "parent=lan0",
            name,
        ],
        "",
    );
}

/// One host on a LAN with a one-member etcd it reaches, and the shared network defined there.
pub fn one_host() -> (Lan, Etcd) {
    let lan = Lan::new();
    let etcd = Etcd::start(&lan, 1);
    etcd.reach_from(&lan, "192.168.77.250");
    create_shared(&lan, &etcd.endpoints(), &[]);
    (lan, etcd)
}

/// Hosts A and B on one LAN, a one-member etcd both reach, and the shared network defined on
/// both (with `extra`).
pub fn two_hosts(extra: &[&str]) -> (Lan, Lan, Etcd) {
    let host_a = Lan::new();
    let host_b = host_a.add_host();
    let etcd = Etcd::start(&host_a, 1);
    etcd.reach_from(&host_a, "192.168.77.250");
    etcd.reach_from(&host_b, "192.168.77.251");
    create_shared(&host_a, &etcd.endpoints(), extra);
    create_shared(&host_b, &etcd.endpoints(), extra);
    (host_a, host_b, etcd)
}

/// `oci-macvlan --host-id HOST ARGS…` on `lan`.
pub fn on(lan: &Lan, host: &str, args: &[&str], stdin: &str) -> Outcome {
    let mut all = vec!["--host-id", host];
    all.extend_from_slice(args);
    lan.cli(&all, stdin)
}

pub fn on_ok(lan: &Lan, host: &str, args: &[&str], stdin: &str) -> String {
    let out = on(lan, host, args, stdin);
    assert_eq!(
        out.code, 0,
        "{args:?} on {host}: {}{}",
        out.stdout, out.stderr
    );
    out.stdout
}

/// Attaches container `id` (namespace `ns`) on `lan` as `host`; the hook's outcome.
pub fn attach(lan: &Lan, host: &str, id: &str, ns: &TestNetns, extra: &[(&str, &str)]) -> Outcome {
    let mut annotations = vec![(ANN, NET)];
    annotations.extend_from_slice(extra);
    let state = lan.fake_bundle(id, &annotations, &ns.path(), "creating");
    on(lan, host, &["hook"], &state)
}

pub fn detach(lan: &Lan, host: &str, id: &str, ns: &TestNetns) -> Outcome {
    let state = lan.fake_bundle(id, &[(ANN, NET)], &ns.path(), "stopped");
    on(lan, host, &["hook", "poststop"], &state)
}

/// The leases in etcd as (address, host, container).
pub fn etcd_leases(etcd: &Etcd) -> Vec<(String, String, String)> {
    etcd.leases()
        .into_iter()
        .map(|(key, value)| {
            let hex = key.rsplit('/').next().unwrap();
            let ip = std::net::Ipv6Addr::from(u128::from_str_radix(hex, 16).unwrap());
            let ip = ip
                .to_ipv4_mapped()
                .map_or(ip.to_string(), |v4| v4.to_string());
            (
                ip,
                value["host"].as_str().unwrap().to_owned(),
                value["container_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Panics, naming `context`, unless nothing of container namespace `ns` is left: no lease in
/// etcd, no `eth0` in `ns`, no endpoint record, no lock file.
pub fn assert_nothing_left(lan: &Lan, etcd: &Etcd, ns: &TestNetns, context: &str) {
    assert_eq!(etcd_leases(etcd), [], "{context}: a lease is left in etcd");
    assert!(ns.link("eth0").is_none(), "{context}: eth0 left");
    assert!(lan.records().is_empty(), "{context}: {:?}", lan.records());
    assert!(lan.locks().is_empty(), "{context}: {:?}", lan.locks());
}

/// Makes host `host`'s claim of its id (default prefix) look last refreshed `secs` ago, as if
/// the host had stopped then (`gc --forget-host` forgets only a host not seen for an hour).
pub fn age_claim(etcd: &Etcd, host: &str, secs: u64) {
    let key = format!("/oci-macvlan/hosts/{host}");
    let (_, claim) = etcd
        .get_prefix(&key)
        .into_iter()
        .find(|(k, _)| *k == key)
        .unwrap_or_else(|| panic!("no claim of {host}"));
    let mut claim: serde_json::Value = serde_json::from_str(&claim).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    claim["seen_unix"] = (now - secs).into();
    etcd.put(&key, &claim.to_string());
}
