//! Privileged tier: a DHCP network attached through the CNI door (the spec driver,
//! tests/src/cni.rs), against Kea with timers of seconds: ADD leases with the pod's name as
//! the hostname (only one the hostname check passes) and starts the keeper pair, which watches
//! the namespace's path (no process to watch, no namespace held); the lease renewed at T1 as
//! the server sees it; DEL stops both keepers and releases; a namespace deleted without DEL
//! ends them too, and GC then takes the attachment back; GC of a live attachment no longer
//! valid ends them as DEL does.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use oci_macvlan_tests::{
    Lan, TestNetns,
    cni::{CniDriver, target},
    dhcp_lan::{NET, create_dhcp_network, kea_config, keepers, record, released},
    kea::{Kea, KeaConfig},
    privileged,
    renewal::wait_until,
};

fn quick() -> KeaConfig {
    KeaConfig {
        valid_lifetime: 30,
        renew_timer: 3,
        rebind_timer: 20,
        ..kea_config()
    }
}

/// The DHCPREQUESTs Kea received from `address` (renewals: unicast from the leased address).
fn renewals(kea: &Kea, address: &str) -> usize {
    let from = format!("DHCPREQUEST (type 3) received from {address} to ");
    kea.packets_received()
        .iter()
        .filter(|l| l.contains(&from))
        .count()
}

/// ADD's leased IPv4 address.
fn leased(result: &serde_json::Value) -> String {
    let address = result["ips"][0]["address"].as_str().unwrap();
    address.split('/').next().unwrap().to_owned()
}

#[privileged]
fn add_renews_through_a_keeper_pair_and_del_stops_it_and_releases() {
    let lan = Lan::new();
    let kea = Kea::start(&lan.router, &quick());
    create_dhcp_network(&lan, &[]);
    let ns = TestNetns::new("omt-cni-");
    let path = ns.path();
    let t = target("pod1", &path);
    let mut cni = CniDriver::new(&lan, NET, "1.1.0");
    let result = cni
        .add(t, "K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-1")
        .unwrap();
    let address = leased(&result);
    assert_eq!(ns.addresses("eth0"), [format!("{address}/24")]);
    let lease = kea.lease(&address).expect("Kea holds no lease");
    // As Kea keeps option 81's name: completed with its (empty) suffix.
    assert_eq!(lease.hostname, "web-1.", "the pod's name is the hostname");
    assert!(
        wait_until(Duration::from_secs(5), || keepers(&lan, Some("pod1")).len()
            == 2),
        "no active and standby keeper: {:?}",
        keepers(&lan, Some("pod1"))
    );
    // No keeper holds the namespace: none has it open or as its own.
    let ino = std::fs::metadata(&path).map(|m| std::os::unix::fs::MetadataExt::ino(&m));
    let ns_link = format!("net:[{}]", ino.unwrap());
    for pid in keepers(&lan, Some("pod1")) {
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap();
        for fd in fds.flatten() {
            let target = std::fs::read_link(fd.path()).unwrap_or_default();
            assert_ne!(target.to_string_lossy(), ns_link, "keeper {pid} holds it");
        }
        let own = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
        assert_ne!(own.to_string_lossy(), ns_link, "keeper {pid} is in it");
    }

    // The renewal at T1 (3 s), from the leased address, and the record's T1 moves on.
    let t1 = record(&lan, "pod1")["endpoints"][0]["dhcp"]["lease"]["t1"].clone();
    assert!(
        wait_until(Duration::from_secs(10), || renewals(&kea, &address) >= 1),
        "no renewal: {}",
        kea.log()
    );
    assert!(
        wait_until(Duration::from_secs(3), || record(&lan, "pod1")["endpoints"]
            [0]["dhcp"]["lease"]["t1"]
            != t1),
        "the record's T1 did not move"
    );
    assert_eq!(ns.addresses("eth0"), [format!("{address}/24")]);
    // `inspect` names the pod as `namespace/name` and shows its lease, found by its id.
    let inspect = lan.inspect(NET);
    let shown = inspect[0]["Containers"]
        .as_object()
        .and_then(|c| c.values().next())
        .cloned()
        .unwrap_or_default();
    assert_eq!(shown["Name"], "default/web-1", "{shown}");
    assert_eq!(
        (
            shown["DhcpLease"]["Address"].as_str(),
            shown["DhcpLease"]["State"].as_str()
        ),
        (Some(format!("{address}/24").as_str()), Some("bound")),
        "{shown}"
    );

    // DEL: both keepers end, the lease goes back, nothing is left.
    cni.del(t).unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || keepers(&lan, None).is_empty()),
        "keepers outlived DEL: {:?}",
        keepers(&lan, None)
    );
    assert!(released(&kea, &address), "{}", kea.log());
    assert_eq!(kea.received("DHCPRELEASE"), 1);
    let slot = lan.state_dir().join(format!("keepers/pod1.{NET}"));
    assert!(
        wait_until(Duration::from_secs(2), || !slot.exists()),
        "{} is left",
        slot.display()
    );
    lan.assert_no_residue(&[NET], "after DEL");
}

#[privileged]
fn a_namespace_deleted_without_del_ends_the_keepers_and_gc_takes_it_back() {
    let lan = Lan::new();
    let kea = Kea::start(&lan.router, &quick());
    create_dhcp_network(&lan, &[]);
    let ns = TestNetns::new("omt-cni-");
    let path = ns.path();
    let mut cni = CniDriver::new(&lan, NET, "1.1.0");
    // A pod name no hostname can be (an underscore): the lease is taken without one.
    let result = cni
        .add(
            target("pod2", &path),
            "K8S_POD_NAMESPACE=default;K8S_POD_NAME=web_2",
        )
        .unwrap();
    let address = leased(&result);
    assert_eq!(kea.lease(&address).unwrap().hostname, "");
    assert!(
        wait_until(Duration::from_secs(5), || keepers(&lan, Some("pod2")).len()
            == 2),
        "no active and standby keeper: {:?}",
        keepers(&lan, Some("pod2"))
    );
    drop(ns);
    assert!(
        wait_until(Duration::from_secs(5), || keepers(&lan, None).is_empty()),
        "keepers outlived their namespace: {:?}",
        keepers(&lan, None)
    );
    // GC (no valid attachment) takes the record back and releases the lease.
    cni.gc(&[]).unwrap();
    assert!(released(&kea, &address), "{}", kea.log());
    lan.assert_no_residue(&[NET], "after GC");
}

#[privileged]
fn gc_of_an_attachment_no_longer_valid_ends_its_keepers_and_releases() {
    let lan = Lan::new();
    let kea = Kea::start(&lan.router, &quick());
    create_dhcp_network(&lan, &[]);
    let ns = TestNetns::new("omt-cni-");
    let path = ns.path();
    let mut cni = CniDriver::new(&lan, NET, "1.1.0");
    let result = cni.add(target("pod3", &path), "").unwrap();
    let address = leased(&result);
    assert!(
        wait_until(Duration::from_secs(5), || keepers(&lan, Some("pod3")).len()
            == 2),
        "no active and standby keeper: {:?}",
        keepers(&lan, Some("pod3"))
    );
    // The namespace lives on; GC names no valid attachment, so takes this one back.
    cni.gc(&[]).unwrap();
    assert!(ns.link("eth0").is_none(), "GC left the link");
    assert!(
        wait_until(Duration::from_secs(5), || keepers(&lan, None).is_empty()),
        "keepers outlived GC: {:?}",
        keepers(&lan, None)
    );
    assert!(released(&kea, &address), "{}", kea.log());
    lan.assert_no_residue(&[NET], "after GC");
}

/// A runtime's restart: DEL, the namespace deleted, ADD at once into a new one under the same
/// id. The new attachment gets a pair of its own (the old pair, which held the slot for up to
/// a second more, does not make it leave), and its lease is renewed.
#[privileged]
fn del_and_add_again_at_once_gets_a_pair_of_its_own() {
    let lan = Lan::new();
    let kea = Kea::start(&lan.router, &quick());
    create_dhcp_network(&lan, &[]);
    let mut cni = CniDriver::new(&lan, NET, "1.1.0");
    let old_ns = TestNetns::new("omt-cni-");
    let old_path = old_ns.path();
    cni.add(target("pod4", &old_path), "").unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || keepers(&lan, Some("pod4")).len()
            == 2),
        "no keeper pair: {:?}",
        keepers(&lan, Some("pod4"))
    );
    let old_pair = keepers(&lan, Some("pod4"));

    cni.del(target("pod4", &old_path)).unwrap();
    drop(old_ns);
    let ns = TestNetns::new("omt-cni-");
    let path = ns.path();
    let result = cni.add(target("pod4", &path), "").unwrap();
    let address = leased(&result);
    let new_pair = || {
        let pair = keepers(&lan, Some("pod4"));
        pair.len() == 2 && pair.iter().all(|pid| !old_pair.contains(pid))
    };
    assert!(
        wait_until(Duration::from_secs(5), new_pair),
        "no pair of its own: {:?} (the old one was {old_pair:?})",
        keepers(&lan, Some("pod4"))
    );
    std::thread::sleep(Duration::from_millis(2500));
    assert!(new_pair(), "{:?}", keepers(&lan, Some("pod4")));
    let before = renewals(&kea, &address);
    assert!(
        wait_until(Duration::from_secs(10), || renewals(&kea, &address)
            > before),
        "the new lease is not renewed: {}",
        kea.log()
    );
    cni.del(target("pod4", &path)).unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || keepers(&lan, None).is_empty()),
        "keepers outlived DEL: {:?}",
        keepers(&lan, None)
    );
}
