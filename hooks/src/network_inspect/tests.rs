use oci_macvlan_ipam::{LeaseStoreExt, Owner, Request, allocate};
use oci_macvlan_macvlan::NetworkSpec;

use super::*;
use crate::network_cmd::{no_gateway_warning, tests::network};

#[test]
fn inspect_has_dockers_shape() {
    let network = NetworkSpec {
        name: "lan50".into(),
        driver: "macvlan".into(),
        subnets: vec!["192.168.50.0/24".into(), "2001:db8:50::/64".into()],
        gateways: vec!["192.168.50.1".into()],
        ip_ranges: vec!["192.168.50.128/25".into()],
        aux_addresses: vec!["router2=192.168.50.2".into()],
        options: vec!["parent=eth0".into(), "macvlan_mode=bridge".into()],
        ipam_options: Vec::new(),
        ipv6: true,
        ..Default::default()
    }
    .validate("f".repeat(64), "2026-11-23T00:00:00Z".into())
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut store = oci_macvlan_ipam::LmdbStore::open(dir.path()).unwrap();
    let owner = Owner {
        container_id: "c1".into(),
        ifname: "eth0".into(),
    };
    let (leases, usage) = store
        .transaction(|txn| {
            let request = Request {
                network: "lan50",
                owner: &owner,
                pools: &network.pools,
                static_ips: &[],
                ipv6: network.ipv6,
                undeclared_router: network.undeclared_router(),
            };
            let leases = allocate(txn, &request)?;
            let usage = network
                .pools
                .iter()
                .map(|p| p.usage(txn, network.undeclared_router()))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((leases, usage))
        })
        .unwrap();
    let facts = BTreeMap::from([(
        ("c1".to_owned(), "eth0".to_owned()),
        EndpointFacts {
            mac: Some("02:42:c0:a8:32:80".to_owned()),
            ..Default::default()
        },
    )]);
    insta::assert_json_snapshot!(inspect_view(&network, &leases, &facts, &usage, &[]));
}

/// A container attached through CNI is listed beside a hook-attached one, by its pod's
/// name, marked `CNI` with the runtime's container id and interface; the hook's has no mark.
#[test]
fn inspect_marks_cni_attached_containers_with_their_cni_id_and_interface() {
    let net = network(&["--subnet 192.168.50.0/24", "-o parent=eth0"], false);
    let lease = |ip: &str, id: &str, ifname: &str| Lease {
        ip: ip.parse().unwrap(),
        subnet: "192.168.50.0/24".parse().unwrap(),
        network: net.name.clone(),
        owner: Owner {
            container_id: id.into(),
            ifname: ifname.into(),
        },
        host: None,
    };
    let leases = [
        lease("192.168.50.2", "hooked", "eth0"),
        lease("192.168.50.3", "9f2c", "net1"),
    ];
    let facts = BTreeMap::from([
        (("hooked".into(), "eth0".into()), EndpointFacts::default()),
        (
            ("9f2c".into(), "net1".into()),
            EndpointFacts {
                mac: Some("02:42:c0:a8:32:03".into()),
                name: Some(macvlan::ContainerName::pod(Some("default"), "web-0").unwrap()),
                cni: true,
            },
        ),
    ]);
    let view = inspect_view(&net, &leases, &facts, &[], &[]);
    let mut containers: Vec<&Value> = view["Containers"].as_object().unwrap().values().collect();
    containers.sort_by_key(|c| c["IPv4Address"].as_str().unwrap().to_owned());
    for c in &containers {
        assert_eq!(c["EndpointID"].as_str().unwrap().len(), 64);
    }
    let shown: Vec<Value> = containers
        .iter()
        .map(|c| {
            let mut c = (*c).clone();
            c["EndpointID"] = json!("…");
            c
        })
        .collect();
    insta::assert_json_snapshot!(shown, @r#"
    [
      {
        "Name": "hooked",
        "EndpointID": "…",
        "MacAddress": "",
        "IPv4Address": "192.168.50.2/24",
        "IPv6Address": "",
        "Interface": "eth0"
      },
      {
        "Name": "default/web-0",
        "EndpointID": "…",
        "MacAddress": "02:42:c0:a8:32:03",
        "IPv4Address": "192.168.50.3/24",
        "IPv6Address": "",
        "Interface": "net1",
        "CNI": {
          "ContainerID": "9f2c",
          "IfName": "net1"
        }
      }
    ]
    "#);
}

/// A network with host access shows its addresses and its host link; one without, nothing.
#[test]
fn inspect_shows_the_host_access_addresses_and_link() {
    let net = network(
        &[
            "--subnet 192.168.50.0/24",
            "--subnet fd00:50::/64",
            "-o parent=eth0",
            "-o host_access=192.168.50.3,fd00:50::3",
        ],
        false,
    );
    assert_eq!(
        inspect_view(&net, &[], &BTreeMap::new(), &[], &[])["HostAccess"],
        json!({"Addresses": ["192.168.50.3", "fd00:50::3"], "Link": "ha-ffffffffffff"})
    );
    let plain = network(&["--subnet 192.168.50.0/24", "-o parent=eth0"], false);
    assert!(
        inspect_view(&plain, &[], &BTreeMap::new(), &[], &[])
            .get("HostAccess")
            .is_none()
    );
}

/// An ipvlan L3 network's `inspect` says, per subnet, the route the LAN's router needs via
/// the host's address of that family on the parent, and `null` where the parent has none;
/// networks the LAN does not reach through the host have no such field.
#[test]
fn inspect_of_an_l3_ipvlan_network_gives_the_lan_routers_routes() {
    let routed = network(
        &[
            "-d ipvlan",
            "--subnet 10.30.0.0/24",
            "--gateway 10.30.0.1",
            "--subnet 10.31.0.0/24",
            "--subnet fd30::/64",
            "-o parent=eth0",
            "-o ipvlan_mode=l3",
        ],
        false,
    );
    let parent: Vec<std::net::IpAddr> = vec![
        "2001:db8::5".parse().unwrap(),
        "192.168.1.5".parse().unwrap(),
        "192.168.1.6".parse().unwrap(),
    ];
    let routes = routed.lan_routes(&parent);
    let view = inspect_view(&routed, &[], &BTreeMap::new(), &[], &routes);
    insta::assert_json_snapshot!(view["LanRouterRoutes"], @r#"
    [
      {
        "Subnet": "10.30.0.0/24",
        "Via": "192.168.1.5"
      },
      {
        "Subnet": "10.31.0.0/24",
        "Via": "192.168.1.5"
      },
      {
        "Subnet": "fd30::/64",
        "Via": "2001:db8::5"
      }
    ]
    "#);
    let v4_only = routed.lan_routes(&parent[1..]);
    insta::assert_json_snapshot!(inspect_view(&routed, &[], &BTreeMap::new(), &[], &v4_only)["LanRouterRoutes"][2], @r#"
    {
      "Subnet": "fd30::/64",
      "Via": null
    }
    "#);
    for quiet in [
        network(
            &[
                "-d ipvlan",
                "--subnet 10.30.0.0/24",
                "-o parent=eth0",
                "-o ipvlan_mode=l2",
            ],
            false,
        ),
        network(
            &[
                "-d ipvlan",
                "--subnet 10.30.0.0/24",
                "-o parent=eth0",
                "-o ipvlan_mode=l3",
            ],
            true,
        ),
        network(
            &["-d ipvlan", "--subnet 10.30.0.0/24", "-o ipvlan_mode=l3s"],
            false,
        ),
        network(&["--subnet 10.30.0.0/24", "-o parent=eth0"], false),
    ] {
        assert_eq!(quiet.lan_routes(&parent), [], "{quiet:?}");
        let view = inspect_view(
            &quiet,
            &[],
            &BTreeMap::new(),
            &[],
            &quiet.lan_routes(&parent),
        );
        assert!(view.get("LanRouterRoutes").is_none(), "{view}");
    }
    // The LAN's router is not on an L3 network's subnets: no first host is kept for it
    // (an L3 /31 holds two containers), and there is nothing to warn of.
    assert!(!routed.undeclared_router());
    assert_eq!(no_gateway_warning(&routed), None);
    let l3s = network(
        &[
            "-d ipvlan",
            "--subnet 10.30.0.0/24",
            "-o parent=eth0",
            "-o ipvlan_mode=l3s",
        ],
        false,
    );
    assert_eq!(l3s.lan_routes(&parent).len(), 1);
}
