//! Privileged tier: the CNI plugin under load and on the networks that need more than one
//! host's store, driven as libcni drives it (tests/src/cni.rs): 32 ADDs at once on a /27, an
//! etcd network ADDed to from two simulated hosts, and a host-access network whose host reaches
//! a CNI-attached container.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use oci_macvlan_tests::{
    Lan, TestNetns,
    cni::{CniDriver, target},
    etcd_network::{self, etcd_leases, two_hosts},
    host_access::lan_with_host_addresses,
    privileged,
};
use serde_json::Value;

const NET: &str = "lan77";
/// The host's address on the host-access network.
const HOST_ACCESS: &str = "192.168.77.3";

/// 32 ADDs at once on a /27: exactly as many succeed as the pool has dynamic addresses, each
/// with its own address; every other one fails with the spec's JSON error and leaves nothing
/// in its namespace; `verify` is clean; a DEL of each (failed or not) leaves nothing at all.
#[privileged]
fn thirty_two_parallel_adds_on_a_27() {
    let lan = Lan::new();
    lan.cli_ok(
        &[
            "network",
            "create",
            "--subnet",
            "192.168.77.0/27",
            "--gateway",
            Lan::GATEWAY,
            "-o",
            "parent=lan0",
            NET,
        ],
        "",
    );
    let pool = lan.inspect(NET)[0]["Usage"][0]["DynamicAvailable"]
        .as_u64()
        .unwrap();
    assert!(pool < 32, "a /27 holds fewer than 32: {pool}");
    let namespaces: Vec<TestNetns> = (0..32).map(|_| TestNetns::new("omt-cni-")).collect();
    let paths: Vec<_> = namespaces.iter().map(TestNetns::path).collect();
    let ids: Vec<String> = (0..32).map(|i| format!("par{i}")).collect();
    let cni = CniDriver::new(&lan, NET, "1.1.0");
    let config = cni.config();
    let outcomes: Vec<Result<Value, Value>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..32)
            .map(|i| {
                let (cni, config, id, path) = (&cni, &config, &ids[i], &paths[i]);
                scope.spawn(move || cni.exec("ADD", target(id, path), "", config))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut given = BTreeSet::new();
    let mut failed = 0;
    for (i, outcome) in outcomes.iter().enumerate() {
        match outcome {
            Ok(result) => {
                let address = result["ips"][0]["address"].as_str().unwrap();
                assert!(given.insert(address.to_owned()), "{address} given twice");
                assert_eq!(namespaces[i].addresses("eth0"), [address]);
            }
            Err(err) => {
                failed += 1;
                let text = format!("{}: {}", err["msg"], err["details"]);
                assert!(text.contains("no available IPv4 addresses"), "{i}: {err}");
                assert!(err["code"].as_u64().unwrap() >= 100, "{i}: {err}");
                let names: Vec<&str> = namespaces[i]
                    .links()
                    .iter()
                    .filter_map(|l| l["ifname"].as_str())
                    .map(|n| if n == "lo" { "lo" } else { "other" })
                    .collect();
                assert_eq!(names, ["lo"], "{i}: a link was left by a failed ADD");
            }
        }
    }
    assert_eq!(given.len() as u64, pool, "{failed} failed");
    assert_eq!(lan.leased(NET) as u64, pool);
    assert_eq!(lan.records().len() as u64, pool);
    let verify = lan.cli(&["verify"], "");
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
    std::thread::scope(|scope| {
        for i in 0..32 {
            let (cni, config, id, path) = (&cni, &config, &ids[i], &paths[i]);
            scope.spawn(move || cni.exec("DEL", target(id, path), "", config).unwrap());
        }
    });
    for ns in &namespaces {
        assert!(ns.link("eth0").is_none(), "DEL left eth0");
    }
    lan.assert_no_residue(&[NET], "32 parallel ADDs");
}

/// An etcd network defined on hosts A and B, ADDed to through CNI on both at once (four
/// containers each): eight different addresses, each lease in etcd naming its host; CHECK
/// passes on both; DEL on both leaves no lease in etcd, no record, no link.
#[privileged]
fn an_etcd_network_from_two_hosts_through_cni() {
    let (host_a, host_b, etcd) = two_hosts(&[]);
    // Simulated hosts share a machine id: each is given its own once, as the error says.
    etcd_network::on_ok(&host_a, "hostA", &["gc"], "");
    etcd_network::on_ok(&host_b, "hostB", &["gc"], "");
    let namespaces: Vec<TestNetns> = (0..8).map(|_| TestNetns::new("omt-cni-")).collect();
    let paths: Vec<_> = namespaces.iter().map(TestNetns::path).collect();
    let drivers = [
        CniDriver::new(&host_a, etcd_network::NET, "1.1.0"),
        CniDriver::new(&host_b, etcd_network::NET, "1.1.0"),
    ];
    let ids: Vec<String> = (0..8).map(|i| format!("two{i}")).collect();
    let config = drivers[0].config();
    let config_b = drivers[1].config();
    let results: Vec<Value> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8usize)
            .map(|i| {
                let (cni, config) = if i.is_multiple_of(2) {
                    (&drivers[0], &config)
                } else {
                    (&drivers[1], &config_b)
                };
                let (id, path) = (&ids[i], &paths[i]);
                scope.spawn(move || cni.exec("ADD", target(id, path), "", config).unwrap())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let addresses: BTreeSet<&str> = results
        .iter()
        .map(|r| r["ips"][0]["address"].as_str().unwrap())
        .collect();
    assert_eq!(addresses.len(), 8, "an address given twice: {results:?}");
    let leases = etcd_leases(&etcd);
    assert_eq!(leases.len(), 8, "{leases:?}");
    for (_, host, id) in &leases {
        let i: usize = id.trim_start_matches("two").parse().unwrap();
        let expected = if i.is_multiple_of(2) {
            "hostA"
        } else {
            "hostB"
        };
        assert_eq!(host, expected, "{leases:?}");
    }
    for (i, ns) in namespaces.iter().enumerate() {
        let address = results[i]["ips"][0]["address"].as_str().unwrap();
        assert_eq!(ns.addresses("eth0"), [address], "{}", ids[i]);
    }
    // As libcni does, ADD's result is replayed as `prevResult` for CHECK and DEL.
    for i in 0..8 {
        let cni = &drivers[i % 2];
        let config = cni.config();
        let mut with_prev = config.clone();
        with_prev["prevResult"] = results[i].clone();
        cni.exec("CHECK", target(&ids[i], &paths[i]), "", &with_prev)
            .unwrap();
        cni.exec("DEL", target(&ids[i], &paths[i]), "", &with_prev)
            .unwrap();
    }
    assert_eq!(etcd_leases(&etcd), [], "a lease is left in etcd");
    for (lan, name) in [(&host_a, "host A"), (&host_b, "host B")] {
        assert!(lan.records().is_empty(), "{name}: {:?}", lan.records());
        assert!(lan.locks().is_empty(), "{name}: {:?}", lan.locks());
    }
    for ns in &namespaces {
        assert!(ns.link("eth0").is_none(), "DEL left eth0");
    }
}

/// A network with host access: the host's namespace pings a CNI-attached container through
/// the network's host link, and the container pings the host's address on the network; DEL
/// takes the host route back with the rest.
#[privileged]
fn the_host_reaches_a_cni_attached_container_on_a_host_access_network() {
    let lan = lan_with_host_addresses();
    let access = format!("host_access={HOST_ACCESS}");
    lan.create_network(NET, &["-o", &access]);
    let ns = TestNetns::new("omt-cni-");
    let path = ns.path();
    let t = target("reached", &path);
    let mut cni = CniDriver::new(&lan, NET, "1.1.0");
    let result = cni.add(t, "").unwrap();
    let address = result["ips"][0]["address"].as_str().unwrap();
    let ip = address.split('/').next().unwrap();
    assert!(lan.host.ping(ip), "the host does not reach {ip}");
    assert!(
        ns.ping(HOST_ACCESS),
        "the container does not reach the host"
    );
    assert!(
        ns.ping(Lan::GATEWAY),
        "the container does not reach the router"
    );
    cni.check(t).unwrap();
    cni.del(t).unwrap();
    assert!(!lan.host.ping(ip), "the host still reaches {ip} after DEL");
    lan.assert_no_residue(&[NET], "host access through CNI");
}
