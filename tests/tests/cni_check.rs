//! Privileged tier: what the CNI plugin keeps and compares, driven as libcni drives it
//! (tests/src/cni.rs): a pod's name recorded and shown by `network inspect` beside the
//! CNI container id and interface, hostile pod names refused; CHECK naming a changed mode, a
//! missing route, a lease gone or another's; STATUS's codes for a parent gone (51), a
//! cluster that does not answer (50, in bounded time) and definitions held by a
//! `network create`/`rm` past its wait (11).

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use oci_macvlan_ipam::{Lease, LeaseSet, LeaseStoreExt, LmdbStore, Owner};
use oci_macvlan_tests::{
    Lan, TestNetns,
    cni::{CniDriver, Hooked, target},
    etcd_network::{self, one_host},
    privileged,
};
use serde_json::{Value, json};

const NET: &str = "lan77";

/// The `Containers` entries of `inspect`, by `Name`.
fn containers(lan: &Lan, network: &str) -> Vec<Value> {
    let inspect = lan.inspect(network);
    let mut list: Vec<Value> = inspect[0]["Containers"]
        .as_object()
        .map(|c| c.values().cloned().collect())
        .unwrap_or_default();
    list.sort_by_key(|c| c["Name"].as_str().unwrap_or_default().to_owned());
    list
}

/// ADD with `K8S_POD_NAMESPACE`/`K8S_POD_NAME`: `inspect` shows the pod as `namespace/name`,
/// marked `CNI` with the runtime's container id and interface, beside a hook-attached
/// container shown by its id with no mark; a pod name alone is shown alone. Hostile names
/// (a `/`, too long, a control character) are refused with code 4 and leave nothing.
#[privileged]
fn pod_names_are_shown_and_cni_containers_marked_by_inspect() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    let hooked = Hooked::attach(&lan, NET);
    let pod = TestNetns::new("omt-cni-");
    let alone = TestNetns::new("omt-cni-");
    let (pod_path, alone_path) = (pod.path(), alone.path());
    let mut cni = CniDriver::new(&lan, NET, "1.1.0");
    let args = "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;\
                K8S_POD_INFRA_CONTAINER_ID=9f2c";
    cni.add(target("9f2c", &pod_path), args).unwrap();
    cni.add(target("podman1", &alone_path), "K8S_POD_NAME=db")
        .unwrap();
    let shown = containers(&lan, NET);
    let names: Vec<&str> = shown.iter().map(|c| c["Name"].as_str().unwrap()).collect();
    assert_eq!(names, ["db", "default/web-0", "hooked"], "{shown:?}");
    assert_eq!(
        shown[1]["CNI"],
        json!({"ContainerID": "9f2c", "IfName": "eth0"})
    );
    assert_eq!(
        shown[0]["CNI"],
        json!({"ContainerID": "podman1", "IfName": "eth0"})
    );
    assert_eq!(shown[1]["MacAddress"], pod.link("eth0").unwrap()["address"]);
    assert!(shown[2].get("CNI").is_none(), "{:?}", shown[2]);

    let long = format!("K8S_POD_NAME={}", "a".repeat(300));
    let hostile = TestNetns::new("omt-cni-");
    let hostile_path = hostile.path();
    for args in [
        "K8S_POD_NAMESPACE=../etc;K8S_POD_NAME=x",
        "K8S_POD_NAME=a/b",
        "K8S_POD_NAME=web\u{1b}[31m",
        long.as_str(),
    ] {
        let err = cni.add(target("hostile", &hostile_path), args).unwrap_err();
        assert_eq!(err["code"], 4, "{args}: {err}");
        assert!(err["msg"].as_str().unwrap().contains("CNI_ARGS"), "{err}");
        assert!(err["msg"].as_str().unwrap().len() < 400, "{err}");
        assert!(hostile.link("eth0").is_none(), "{args}: a link was left");
        assert_eq!(containers(&lan, NET).len(), 3, "{args}: a lease was left");
    }
    cni.del(target("9f2c", &pod_path)).unwrap();
    cni.del(target("podman1", &alone_path)).unwrap();
    hooked.stop(&lan);
    lan.assert_no_residue(&[NET], "pod names");
}

/// CHECK names each difference someone made, and passes again once it is undone: the
/// macvlan's mode, the default route, the lease gone from the store, the address leased to
/// another container.
#[privileged]
fn check_names_a_changed_mode_a_missing_route_and_a_lease_gone_or_anothers() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    let ns = TestNetns::new("omt-cni-");
    let path = ns.path();
    let t = target("checked", &path);
    let mut cni = CniDriver::new(&lan, NET, "1.1.0");
    let result = cni.add(t, "").unwrap();
    cni.check(t).unwrap();
    let fails_with = |needle: &str| {
        let err = cni.check(t).unwrap_err();
        assert_eq!(err["code"], 102, "{err}");
        let msg = err["msg"].as_str().unwrap();
        assert!(msg.contains(needle), "{needle:?} not in {msg}");
    };

    ns.ip(&["link", "set", "eth0", "type", "macvlan", "mode", "private"]);
    fails_with("it is in macvlan mode private, not macvlan mode bridge");
    ns.ip(&["link", "set", "eth0", "type", "macvlan", "mode", "bridge"]);
    cni.check(t).unwrap();

    ns.ip(&["route", "del", "default"]);
    fails_with(&format!("route 0.0.0.0/0 via {} is missing", Lan::GATEWAY));
    ns.ip(&[
        "route",
        "add",
        "default",
        "via",
        Lan::GATEWAY,
        "dev",
        "eth0",
    ]);
    cni.check(t).unwrap();

    let address = result["ips"][0]["address"].as_str().unwrap();
    let ip: std::net::IpAddr = address.split('/').next().unwrap().parse().unwrap();
    let owner = Owner {
        container_id: "checked".into(),
        ifname: "eth0".into(),
    };
    let mut store = LmdbStore::open(&lan.state_dir()).unwrap();
    let released = store.release(NET, &owner).unwrap();
    assert_eq!(released.len(), 1, "{released:?}");
    fails_with(&format!("address {ip} has no lease in the store"));
    let other = Lease {
        owner: Owner {
            container_id: "intruder".into(),
            ifname: "eth0".into(),
        },
        ..released[0].clone()
    };
    store.transaction(|txn| txn.insert(&other)).unwrap();
    fails_with(&format!(
        "address {ip} is leased to container intruder (eth0) on network {NET}"
    ));
    store.release(NET, &other.owner).unwrap();
    store.transaction(|txn| txn.insert(&released[0])).unwrap();
    drop(store);
    cni.check(t).unwrap();
    cni.del(t).unwrap();
    lan.assert_no_residue(&[NET], "check");
}

/// STATUS: 0 while an ADD could be served; 51 once the network's parent is gone (its
/// containers' links went with it), 0 again when it is back.
#[privileged]
fn status_is_51_while_the_parent_is_gone() {
    let lan = Lan::new();
    let make_parent = || {
        lan.host.ip(&[
            "link", "add", "lan1", "type", "veth", "peer", "name", "lan1p",
        ]);
        lan.host.ip(&["link", "set", "lan1", "up"]);
    };
    make_parent();
    lan.cli_ok(
        &[
            "network",
            "create",
            "--subnet",
            "192.168.79.0/24",
            "-o",
            "parent=lan1",
            "lan79",
        ],
        "",
    );
    let ns = TestNetns::new("omt-cni-");
    let path = ns.path();
    let t = target("status", &path);
    let cni = CniDriver::new(&lan, "lan79", "1.1.0");
    assert_eq!(cni.status(t), Ok(Value::Null));
    lan.host.ip(&["link", "del", "lan1"]);
    let err = cni.status(t).unwrap_err();
    assert_eq!(err["code"], 51, "{err}");
    let text = format!("{}: {}", err["msg"], err["details"]);
    assert!(text.contains("lan1"), "{text}");
    make_parent();
    assert_eq!(cni.status(t), Ok(Value::Null));
}

/// STATUS of an etcd network: 0 while its cluster answers, 50 within its deadline (2 s by
/// default) and a little once it does not.
#[privileged]
fn status_is_50_in_bounded_time_while_the_cluster_does_not_answer() {
    let (lan, mut etcd) = one_host();
    let ns = TestNetns::new("omt-cni-");
    let path = ns.path();
    let t = target("status", &path);
    let cni = CniDriver::new(&lan, etcd_network::NET, "1.1.0");
    assert_eq!(cni.status(t), Ok(Value::Null));
    etcd.kill(0);
    let started = Instant::now();
    let err = cni.status(t).unwrap_err();
    let took = started.elapsed();
    assert_eq!(err["code"], 50, "{err}");
    assert!(took < Duration::from_secs(8), "STATUS took {took:?}");
    let text = format!("{}: {}", err["msg"], err["details"]);
    assert!(text.contains(&etcd.endpoints()), "{text}");
}

/// STATUS while a `network create` or `rm` holds the definitions (an exclusive lock on
/// `networks/.lock`) past its wait: 11, try again later; 0 once it lets go.
#[privileged]
fn status_is_11_while_the_definitions_are_held() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    let ns = TestNetns::new("omt-cni-");
    let path = ns.path();
    let t = target("status", &path);
    let cni = CniDriver::new(&lan, NET, "1.1.0");
    let file = std::fs::File::open(lan.config_dir().join("networks/.lock")).unwrap();
    let held = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).unwrap();
    let started = Instant::now();
    let err = cni.status(t);
    let took = started.elapsed();
    drop(held);
    let err = err.unwrap_err();
    assert_eq!(err["code"], 11, "{err}");
    assert!(took < Duration::from_secs(5), "STATUS took {took:?}");
    assert_eq!(cni.status(t), Ok(Value::Null));
}

/// A passthru macvlan has its parent's MAC: ADD's result gives that MAC (never a word in its
/// place, which CHECK then refused as a config that is not one), CHECK passes, DEL leaves
/// nothing.
#[privileged]
fn a_passthru_adds_result_gives_the_parents_mac_and_check_passes() {
    let lan = Lan::new();
    lan.host.ip(&[
        "link", "add", "lan2", "type", "veth", "peer", "name", "lan2p",
    ]);
    lan.host.ip(&["link", "set", "lan2", "up"]);
    lan.cli_ok(
        &[
            "network",
            "create",
            "--subnet",
            "192.168.80.0/24",
            "-o",
            "parent=lan2",
            "-o",
            "macvlan_mode=passthru",
            "pt80",
        ],
        "",
    );
    let ns = TestNetns::new("omt-cni-");
    let path = ns.path();
    let t = target("passthru", &path);
    let mut cni = CniDriver::new(&lan, "pt80", "1.1.0");
    let result = cni.add(t, "").unwrap();
    let parent_mac = lan.host.link("lan2").unwrap()["address"].clone();
    assert_eq!(result["interfaces"][1]["mac"], parent_mac, "{result}");
    assert_eq!(ns.link("eth0").unwrap()["address"], parent_mac);
    cni.check(t).unwrap();
    cni.del(t).unwrap();
    assert!(ns.link("eth0").is_none(), "DEL left eth0");
    assert_eq!(lan.leased("pt80"), 0);
    assert!(lan.records().is_empty(), "{:?}", lan.records());
}
