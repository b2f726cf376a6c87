//! The CNI plugin in the VM tier (`cargo xtask vm cni`): an ipvlan ADD, CHECK, DEL round trip
//! driven as libcni drives it, CHECK naming a changed ipvlan mode, and STATUS of a network on
//! an 802.1q parent, which an ADD would make while its base is there.

use oci_macvlan_tests::{
    Lan, TestNetns,
    cni::{CniDriver, target},
};
use serde_json::Value;

use super::ipvlan::ipvlan_info;

/// ADD on an ipvlan L2 network: the link is an ipvlan in l2 mode with the parent's MAC, the
/// address of ADD's result, and the router answers; CHECK passes, and names the mode once
/// someone changed it; DEL (twice) leaves nothing.
#[test]
fn cni_ipvlan_add_check_del_round_trip() {
    let lan = Lan::new();
    lan.create_network("ipv77", &["-d", "ipvlan", "-o", "ipvlan_mode=l2"]);
    let ns = TestNetns::new("omt-cni-");
    let path = ns.path();
    let t = target("vmcni", &path);
    let mut cni = CniDriver::new(&lan, "ipv77", "1.1.0");
    let result = cni.add(t, "").unwrap();
    let info = ipvlan_info(&ns);
    assert_eq!(info["mode"], "l2", "{info}");
    let address = result["ips"][0]["address"].as_str().unwrap();
    assert_eq!(ns.addresses("eth0"), [address]);
    let parent_mac = lan.host.link(Lan::PARENT).unwrap()["address"].clone();
    assert_eq!(ns.link("eth0").unwrap()["address"], parent_mac);
    assert!(ns.ping(Lan::GATEWAY), "the router does not answer");
    cni.check(t).unwrap();
    ns.ip(&["link", "set", "eth0", "type", "ipvlan", "mode", "l3"]);
    let err = cni.check(t).unwrap_err();
    assert_eq!(err["code"], 102, "{err}");
    let msg = err["msg"].as_str().unwrap();
    assert!(msg.contains("not ipvlan mode l2 bridge"), "{msg}");
    cni.del(t).unwrap();
    cni.del(t).unwrap();
    assert!(ns.link("eth0").is_none(), "DEL left eth0");
    lan.assert_no_residue(&["ipv77"], "CNI ipvlan round trip");
}

/// STATUS of a network on `trunk1.61`: 0 while the base `trunk1` is there (an ADD would make
/// the VLAN), 51 once it is gone.
#[test]
fn cni_status_of_a_vlan_parent_follows_its_base() {
    let lan = Lan::new();
    lan.host.ip(&[
        "link", "add", "trunk1", "type", "veth", "peer", "name", "trunk1p",
    ]);
    lan.host.ip(&["link", "set", "trunk1", "up"]);
    lan.cli_ok(
        &[
            "network",
            "create",
            "--subnet",
            "10.61.0.0/24",
            "-o",
            "parent=trunk1.61",
            "v61",
        ],
        "",
    );
    if lan.host.link("trunk1.61").is_some() {
        lan.host.ip(&["link", "del", "trunk1.61"]);
    }
    let ns = TestNetns::new("omt-cni-");
    let path = ns.path();
    let t = target("status", &path);
    let cni = CniDriver::new(&lan, "v61", "1.1.0");
    assert_eq!(cni.status(t), Ok(Value::Null));
    assert!(lan.host.link("trunk1.61").is_none(), "STATUS made the VLAN");
    lan.host.ip(&["link", "del", "trunk1"]);
    let err = cni.status(t).unwrap_err();
    assert_eq!(err["code"], 51, "{err}");
    let text = format!("{}: {}", err["msg"], err["details"]);
    assert!(text.contains("trunk1"), "{text}");
}
