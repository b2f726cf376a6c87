//! Tier 1, the links asked of the kernel: their whole kind (macvlan mode and source MACs,
//! ipvlan mode and flag), MAC and MTU are the plan's [`crate::plan::LinkSpec`], and the ones
//! written out here.

#![allow(clippy::unwrap_used)]

use oci_macvlan_netlink_core::{IpvlanFlag, IpvlanMode, MacAddr, MacvlanMode};

use super::*;

fn kind_networks() -> Vec<Network> {
    vec![
        network(
            "br",
            "macvlan",
            &["--subnet 10.1.0.0/24", "-o parent=eth0", "-o mtu=1400"],
        ),
        network(
            "pt",
            "macvlan",
            &[
                "--subnet 10.2.0.0/24",
                "-o parent=eth1",
                "-o macvlan_mode=passthru",
            ],
        ),
        network(
            "src",
            "macvlan",
            &[
                "--subnet 10.3.0.0/24",
                "-o parent=eth2",
                "-o macvlan_mode=source",
                "-o source_macs=02:00:00:00:bb:01,02:00:00:00:bb:02",
            ],
        ),
        network(
            "i2",
            "ipvlan",
            &[
                "--subnet 10.4.0.0/24",
                "-o parent=eth3",
                "-o ipvlan_flag=private",
                "-o mtu=1300",
            ],
        ),
        network(
            "i3",
            "ipvlan",
            &[
                "--subnet 10.5.0.0/24",
                "-o parent=eth4",
                "-o ipvlan_mode=l3",
                "-o ipvlan_flag=vepa",
            ],
        ),
    ]
}

fn mac(text: &str) -> MacAddr {
    text.parse().unwrap()
}

#[test]
fn each_link_is_asked_for_with_its_whole_kind_mac_and_mtu() {
    let nets = kind_networks();
    let w = world();
    let ips = [
        Some("10.1.0.5"),
        Some("10.2.0.5"),
        Some("10.3.0.5"),
        Some("10.4.0.5"),
        Some("10.5.0.5"),
    ];
    let mut req = request(&nets, &ips, &w.definitions);
    req.attachments[0].mac = Some(mac("02:00:00:00:aa:01"));
    let plan = plan(&req).unwrap();
    let fake = Fake::with_parents(&[
        ("eth0", "02:00:00:00:00:10"),
        ("eth1", "02:00:00:00:00:11"),
        ("eth2", "02:00:00:00:00:12"),
        ("eth3", "02:00:00:00:00:13"),
        ("eth4", "02:00:00:00:00:14"),
    ]);
    let mut store = w.store;
    run(&fake, &mut store, &w.records, &req, &plan, None).unwrap();
    let created: Vec<Call> = fake
        .take_calls()
        .into_iter()
        .filter(|c| matches!(c, Call::CreateChild { .. }))
        .collect();

    // As the plan's link specs say.
    let planned: Vec<Call> = plan
        .networks
        .iter()
        .map(|p| Call::CreateChild {
            parent: p.parent.name.clone(),
            name: p.link.name.clone(),
            mac: p.link.mac.own(),
            mtu: p.link.mtu,
            kind: Kind::from(&p.link.kind),
        })
        .collect();
    assert_eq!(created, planned);

    // As written out: what each network's options ask for.
    let child = |i: usize, mac: Option<MacAddr>, mtu: Option<u32>, kind: Kind| Call::CreateChild {
        parent: format!("eth{i}"),
        name: format!("eth{i}"),
        mac,
        mtu,
        kind,
    };
    let literal = vec![
        child(
            0,
            Some(mac("02:00:00:00:aa:01")),
            Some(1400),
            Kind::Macvlan {
                mode: MacvlanMode::Bridge,
                source_macs: vec![],
            },
        ),
        // Passthru: the parent's MAC, so none is set.
        child(
            1,
            None,
            None,
            Kind::Macvlan {
                mode: MacvlanMode::Passthru,
                source_macs: vec![],
            },
        ),
        child(
            2,
            Some(crate::default_mac("c1", "src")),
            None,
            Kind::Macvlan {
                mode: MacvlanMode::Source,
                source_macs: vec![mac("02:00:00:00:bb:01"), mac("02:00:00:00:bb:02")],
            },
        ),
        child(
            3,
            None,
            Some(1300),
            Kind::Ipvlan {
                mode: IpvlanMode::L2,
                flag: IpvlanFlag::Private,
            },
        ),
        child(
            4,
            None,
            None,
            Kind::Ipvlan {
                mode: IpvlanMode::L3,
                flag: IpvlanFlag::Vepa,
            },
        ),
    ];
    assert_eq!(created, literal);

    // The links made carry them: the MAC set, or the parent's; the MTU set, or none.
    let state = fake.state.borrow();
    let got: Vec<(Option<MacAddr>, Option<u32>)> = (0..5)
        .map(|i| {
            let link = state
                .container
                .iter()
                .find(|l| l.name == format!("eth{i}"))
                .unwrap();
            (link.mac, link.mtu)
        })
        .collect();
    assert_eq!(
        got,
        [
            (Some(mac("02:00:00:00:aa:01")), Some(1400)),
            (Some(mac("02:00:00:00:00:11")), None),
            (Some(crate::default_mac("c1", "src")), None),
            (Some(mac("02:00:00:00:00:13")), Some(1300)),
            (Some(mac("02:00:00:00:00:14")), None),
        ]
    );
}
