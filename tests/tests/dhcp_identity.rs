//! Privileged tier: the DHCP address source's identity and release against dnsmasq (the server
//! most home routers run), started by the test in the LAN's router namespace with a lease file
//! of the test's: the RELEASE at poststop, `network disconnect` and `gc` frees the lease in
//! dnsmasq's file (dnsmasq ignores one from 0.0.0.0); the same container id gets the same MAC,
//! client identifier and address after a re-create; two hosts (two secrets) running a
//! container of the same id on a network of the same name get two identities and two leases.

#![allow(clippy::unwrap_used)]

use oci_macvlan_tests::{
    Lan, TestNetns, dhcp_lan::create_dhcp_network_named, dnsmasq::Dnsmasq, privileged,
};
use serde_json::Value;

const NET: &str = "dlan";
const ANN: &str = "oci-macvlan.networks";

fn dnsmasq(lan: &Lan, interface: &str) -> Dnsmasq {
    Dnsmasq::start(
        &lan.router,
        interface,
        "192.168.77.100",
        "192.168.77.150",
        Lan::GATEWAY,
        "2m",
    )
}

fn create_dhcp_network(lan: &Lan) {
    create_dhcp_network_named(lan, NET, &[]);
}

/// Attaches container `id` in `netns` (status `creating`), or detaches it (`stopped`).
fn hook(lan: &Lan, id: &str, netns: &TestNetns, status: &str) {
    let state = lan.fake_bundle(id, &[(ANN, NET)], &netns.path(), status);
    lan.cli_ok(&["hook"], &state);
}

fn client_id(lan: &Lan, id: &str) -> String {
    let path = lan.state_dir().join(format!("endpoints/{id}.json"));
    let record: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    record["endpoints"][0]["dhcp"]["client_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The container's address on eth0 and the link's MAC.
fn leg(netns: &TestNetns) -> (String, String) {
    let addresses = netns.addresses("eth0");
    assert_eq!(addresses.len(), 1, "{addresses:?}");
    let address = addresses[0].split_once('/').unwrap().0.to_owned();
    let mac = netns.link("eth0").unwrap()["address"]
        .as_str()
        .unwrap()
        .to_owned();
    (address, mac)
}

#[privileged]
fn release_frees_dnsmasqs_lease_and_a_recreated_container_gets_its_address_back() {
    let lan = Lan::new();
    let server = dnsmasq(&lan, "rtr");
    create_dhcp_network(&lan);
    let first = TestNetns::new("omt-ctr-");
    hook(&lan, "c1", &first, "creating");
    let (address, mac) = leg(&first);
    let id = client_id(&lan, "c1");
    let leases = server.wait_for(|l| l.iter().any(|l| l.address == address));
    let lease = leases
        .iter()
        .find(|l| l.address == address)
        .unwrap_or_else(|| panic!("dnsmasq has no lease of {address}: {leases:?}"));
    assert_eq!(lease.mac, mac);
    assert_eq!(lease.client_id, id);

    hook(&lan, "c1", &first, "stopped");
    let leases = server.wait_for(|l| l.iter().all(|l| l.address != address));
    assert!(
        leases.iter().all(|l| l.address != address),
        "dnsmasq kept {address} after poststop's RELEASE: {leases:?}\n{}",
        server.log()
    );
    lan.assert_no_residue(&[NET], "after poststop");

    // Re-created: a new namespace, the same id.
    let second = TestNetns::new("omt-ctr-");
    hook(&lan, "c1", &second, "creating");
    assert_eq!(leg(&second), (address.clone(), mac.clone()));
    assert_eq!(client_id(&lan, "c1"), id);
    // Stopped and started again in it.
    hook(&lan, "c1", &second, "stopped");
    hook(&lan, "c1", &second, "creating");
    assert_eq!(leg(&second), (address, mac));
    hook(&lan, "c1", &second, "stopped");
    lan.assert_no_residue(&[NET], "at the end");
}

#[privileged]
fn disconnect_and_gc_release_the_lease() {
    let lan = Lan::new();
    let server = dnsmasq(&lan, "rtr");
    create_dhcp_network(&lan);

    let live = TestNetns::new("omt-ctr-");
    hook(&lan, "c1", &live, "creating");
    let (address, _) = leg(&live);
    server.wait_for(|l| l.iter().any(|l| l.address == address));
    lan.cli_ok(&["network", "disconnect", NET, "c1"], "");
    let leases = server.wait_for(|l| l.iter().all(|l| l.address != address));
    assert!(
        leases.iter().all(|l| l.address != address),
        "dnsmasq kept {address} after disconnect: {leases:?}"
    );
    assert!(live.link("eth0").is_none());

    // A container whose namespace went without a poststop: `gc` takes it back, RELEASE first.
    let gone = TestNetns::new("omt-ctr-");
    hook(&lan, "c2", &gone, "creating");
    let (address, _) = leg(&gone);
    server.wait_for(|l| l.iter().any(|l| l.address == address));
    drop(gone);
    lan.cli_ok(&["gc"], "");
    let leases = server.wait_for(|l| l.iter().all(|l| l.address != address));
    assert!(
        leases.iter().all(|l| l.address != address),
        "dnsmasq kept {address} after gc: {leases:?}"
    );
    lan.assert_no_residue(&[NET], "after disconnect and gc");
}

#[privileged]
fn two_hosts_get_two_identities_for_one_container_id() {
    let lan = Lan::new();
    let other = lan.add_host();
    let server = dnsmasq(&lan, "br0");
    create_dhcp_network(&lan);
    create_dhcp_network(&other);
    let here = TestNetns::new("omt-ctr-");
    let there = TestNetns::new("omt-ctr-");
    hook(&lan, "c1", &here, "creating");
    hook(&other, "c1", &there, "creating");
    let (a1, m1) = leg(&here);
    let (a2, m2) = leg(&there);
    let (id1, id2) = (client_id(&lan, "c1"), client_id(&other, "c1"));
    assert_ne!(id1, id2, "two hosts, one client identifier");
    assert_ne!(m1, m2, "two hosts, one MAC");
    assert_ne!(a1, a2, "two hosts, one address");
    let leases = server.wait_for(|l| l.len() == 2);
    assert_eq!(leases.len(), 2, "{leases:?}");
    hook(&lan, "c1", &here, "stopped");
    hook(&other, "c1", &there, "stopped");
    lan.assert_no_residue(&[NET], "host 1");
    other.assert_no_residue(&[NET], "host 2");
}
