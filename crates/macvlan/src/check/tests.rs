#![allow(clippy::unwrap_used)]

use oci_macvlan_ipam::{Owner, StoreChoice};
use oci_macvlan_netlink_core::{ChildMode, IpvlanFlag, IpvlanMode, MacvlanMode};

use super::*;
use crate::NetworkSpec;

const MAC: &str = "02:42:c0:a8:32:0a";

fn network(driver: &str) -> Network {
    NetworkSpec {
        name: "lan".into(),
        driver: driver.into(),
        subnets: vec!["192.168.50.0/24".into()],
        gateways: vec!["192.168.50.1".into()],
        options: vec!["parent=eth0".into()],
        ..Default::default()
    }
    .validate("a".repeat(64), "now".into())
    .unwrap()
}

fn endpoint() -> RecordedEndpoint {
    RecordedEndpoint {
        network: "lan".into(),
        ifname: "eth0".into(),
        mac: Some(MAC.parse().unwrap()),
        kind: Some("macvlan".into()),
        lower: Some(2),
        index: Some(7),
        host_link: None,
        store: Some(StoreChoice::Local),
        dhcp: None,
    }
}

fn link(index: u32, name: &str, kind: Option<&str>, lower: Option<u32>) -> Link {
    Link {
        index,
        name: name.into(),
        mac: Some(MAC.parse().unwrap()),
        mtu: None,
        up: true,
        loopback: false,
        kind: kind.map(str::to_owned),
        alias: None,
        lower,
        vlan_id: None,
        promiscuity: 0,
        carrier: None,
        mode: None,
    }
}

fn lease(ip: &str, id: &str, ifname: &str, network: &str) -> Lease {
    Lease {
        ip: ip.parse().unwrap(),
        subnet: "192.168.50.0/24".parse().unwrap(),
        network: network.into(),
        owner: Owner {
            container_id: id.into(),
            ifname: ifname.into(),
        },
        host: None,
    }
}

/// An attachment as ADD left it: its macvlan in bridge mode on eth0, its address leased to it,
/// the default route through the gateway.
fn healthy() -> (Expected, Live) {
    let expected = Expected {
        mac: Some(MAC.parse().unwrap()),
        addresses: vec!["192.168.50.2/24".parse().unwrap()],
        routes: vec![(
            "0.0.0.0/0".parse().unwrap(),
            Some("192.168.50.1".parse().unwrap()),
        )],
    };
    let mut container = link(7, "eth0", Some("macvlan"), Some(2));
    container.mode = Some(ChildMode::Macvlan(MacvlanMode::Bridge));
    let live = Live {
        link: container,
        parent: Some(link(2, "eth0", None, None)),
        addresses: vec!["192.168.50.2".parse().unwrap()],
        routes: vec![
            TableRoute {
                destination: ("192.168.50.0".parse().unwrap(), 24),
                gateway: None,
                oif: 7,
            },
            TableRoute {
                destination: ("0.0.0.0".parse().unwrap(), 0),
                gateway: Some("192.168.50.1".parse().unwrap()),
                oif: 7,
            },
        ],
        leases: vec![(
            "192.168.50.2".parse().unwrap(),
            Some(lease("192.168.50.2", "c1", "eth0", "lan")),
            true,
        )],
    };
    (expected, live)
}

/// Each thing CHECK compares, changed alone, is named; the healthy attachment has no problem.
#[test]
fn each_difference_is_named() {
    let net = network("macvlan");
    let id = ContainerId::parse("c1").unwrap();
    let (expected, live) = healthy();
    assert_eq!(
        problems(&net, &endpoint(), &id, &expected, &live),
        Vec::<String>::new()
    );
    type Change = fn(&mut Expected, &mut Live);
    let cases: &[(&str, Change, &str)] = &[
        (
            "kind",
            |_, l| l.link.kind = Some("ipvlan".into()),
            "its kind is ipvlan, not macvlan",
        ),
        (
            "mode",
            |_, l| l.link.mode = Some(ChildMode::Macvlan(MacvlanMode::Private)),
            "it is in macvlan mode private, not macvlan mode bridge",
        ),
        (
            "parent gone",
            |_, l| l.parent = None,
            "its parent eth0 is missing from the host",
        ),
        (
            "another parent",
            |_, l| l.link.lower = Some(9),
            "its parent is not eth0 (index 2) but the link of index 9",
        ),
        (
            "MAC",
            |_, l| l.link.mac = Some("02:00:00:00:00:09".parse().unwrap()),
            "its MAC is 02:00:00:00:00:09, not 02:42:c0:a8:32:0a as recorded",
        ),
        (
            "index",
            |_, l| l.link.index = 8,
            "another link than the one ADD made",
        ),
        (
            "address gone",
            |_, l| l.addresses.clear(),
            "address 192.168.50.2/24 is missing",
        ),
        (
            "address added",
            |_, l| l.addresses.push("192.168.50.9".parse().unwrap()),
            "it has address 192.168.50.9, which ADD did not give it",
        ),
        (
            "route gone",
            |_, l| l.routes.truncate(1),
            "route 0.0.0.0/0 via 192.168.50.1 is missing",
        ),
        (
            "route through another gateway",
            |_, l| l.routes[1].gateway = Some("192.168.50.254".parse().unwrap()),
            "route 0.0.0.0/0 via 192.168.50.1 is missing",
        ),
        (
            "lease gone",
            |_, l| l.leases[0].1 = None,
            "address 192.168.50.2 has no lease in the store",
        ),
        (
            "lease another container's",
            |_, l| l.leases[0].1 = Some(lease("192.168.50.2", "c2", "eth0", "lan")),
            "address 192.168.50.2 is leased to container c2 (eth0) on network lan",
        ),
        (
            "lease another interface's",
            |_, l| l.leases[0].1 = Some(lease("192.168.50.2", "c1", "eth1", "lan")),
            "is leased to container c1 (eth1)",
        ),
        (
            "lease another host's",
            |_, l| {
                let mut other = lease("192.168.50.2", "c1", "eth0", "lan");
                other.host = Some("hostB".into());
                l.leases[0] = (other.ip, Some(other), false);
            },
            "is leased to container c1 (eth0) of host hostB on network lan",
        ),
    ];
    for (what, change, says) in cases {
        let (mut expected, mut live) = healthy();
        change(&mut expected, &mut live);
        let found = problems(&net, &endpoint(), &id, &expected, &live);
        assert_eq!(found.len(), 1, "{what}: {found:?}");
        assert!(found[0].contains(says), "{what}: {found:?}");
    }
}

/// An ipvlan's mode and flag are its network's: another flag is named.
#[test]
fn an_ipvlan_is_checked_for_its_mode_and_flag() {
    let net = network("ipvlan");
    let id = ContainerId::parse("c1").unwrap();
    let (expected, mut live) = healthy();
    let ep = RecordedEndpoint {
        kind: Some("ipvlan".into()),
        ..endpoint()
    };
    live.link.kind = Some("ipvlan".into());
    live.link.mode = Some(ChildMode::Ipvlan(IpvlanMode::L2, IpvlanFlag::Bridge));
    assert_eq!(
        problems(&net, &ep, &id, &expected, &live),
        Vec::<String>::new()
    );
    live.link.mode = Some(ChildMode::Ipvlan(IpvlanMode::L2, IpvlanFlag::Private));
    assert_eq!(
        problems(&net, &ep, &id, &expected, &live),
        ["it is in ipvlan mode l2 private, not ipvlan mode l2 bridge"]
    );
}
