//! Plan, then apply: the plan of an attach, for each driver, decided without root, the kernel or
//! the store; and the requests refused whole before anything is touched.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use oci_macvlan_macvlan::{
    AttachRequest, Attachment, MacAddr, Network, NetworkSpec, one_line, plan,
    source::{Acquired, SourceRoute},
    wire::{DefaultRouted, Route, other_subnets, source_routes, wire, wire_among},
};

fn network(name: &str, driver: &str, flags: &[&str]) -> Network {
    let mut spec = NetworkSpec {
        name: name.into(),
        driver: driver.into(),
        ..Default::default()
    };
    for arg in flags {
        let (flag, value) = arg.split_once(' ').unwrap_or((arg, ""));
        let value = value.to_owned();
        match flag {
            "--subnet" => spec.subnets.push(value),
            "--gateway" => spec.gateways.push(value),
            "-o" => spec.options.push(value),
            "--internal" => spec.internal = true,
            other => panic!("unknown flag {other}"),
        }
    }
    spec.validate(format!("{name:0>64}"), "2026-11-30T00:00:00Z".into())
        .unwrap()
}

fn attachment<'a>(
    network: &'a Network,
    ifname: &str,
    ips: &[&str],
    mac: Option<&str>,
) -> Attachment<'a> {
    Attachment {
        network,
        ifname: ifname.into(),
        static_ips: ips.iter().map(|ip| ip.parse().unwrap()).collect(),
        mac: mac.map(|m| m.parse::<MacAddr>().unwrap()),
    }
}

fn request<'a>(attachments: Vec<Attachment<'a>>, netns: &'a Path) -> AttachRequest<'a> {
    AttachRequest {
        container_id: &C1,
        name: None,
        netns,
        persistent_netns: true,
        pid: None,
        attachments,
        definitions: &DEFINITIONS,
        connect: false,
        cni: false,
        hostname: None,
        on_lease: None,
    }
}

static C1: std::sync::LazyLock<oci_macvlan_macvlan::ContainerId> =
    std::sync::LazyLock::new(|| oci_macvlan_macvlan::ContainerId::parse("c1").unwrap());

/// No definition is read: the plan is pure.
static DEFINITIONS: std::sync::LazyLock<oci_macvlan_macvlan::Networks> =
    std::sync::LazyLock::new(|| oci_macvlan_macvlan::Networks::new(Path::new("/nonexistent")));

#[test]
fn the_plan_of_an_attach_on_each_driver() {
    let lan = network(
        "lan50",
        "macvlan",
        &[
            "--subnet 192.168.50.0/24",
            "--gateway 192.168.50.1",
            "-o parent=eth0.50",
        ],
    );
    let passthru = network(
        "pt",
        "macvlan",
        &[
            "--subnet 10.9.0.0/24",
            "-o parent=eth2",
            "-o macvlan_mode=passthru",
        ],
    );
    let l2 = network(
        "ipvlan210",
        "ipvlan",
        &[
            "--subnet 192.168.210.0/24",
            "--subnet 192.168.212.0/24",
            "--gateway 192.168.210.254",
            "--gateway 192.168.212.254",
            "-o parent=eth0",
        ],
    );
    let l3 = network(
        "ipvl3",
        "ipvlan",
        &[
            "--subnet 10.30.0.0/24",
            "--gateway 10.30.0.1",
            "-o parent=eth1",
            "-o ipvlan_mode=l3",
        ],
    );
    let internal = network("inside", "ipvlan", &["--subnet 10.40.0.0/24"]);
    let internal_l3 = network(
        "inside3",
        "ipvlan",
        &[
            "--subnet 10.41.0.0/24",
            "--subnet 10.42.0.0/24",
            "--gateway 10.42.0.1",
            "-o ipvlan_mode=l3",
        ],
    );
    let netns = Path::new("/run/netns/c1");
    let req = request(
        vec![
            attachment(&lan, "eth0", &["192.168.50.10"], Some("02:42:c0:a8:32:0a")),
            attachment(&passthru, "eth1", &[], None),
            attachment(&l2, "eth2", &["192.168.212.9"], None),
            attachment(&l3, "eth3", &[], None),
            attachment(&internal, "eth4", &[], None),
            attachment(&internal_l3, "eth5", &[], None),
        ],
        netns,
    );
    let plan = plan(&req).unwrap();
    insta::assert_json_snapshot!(plan);

    // What each link carries once its source has given it these addresses: the routes apply
    // adds, decided here and nowhere else. Each network alone (the first of the container),
    // then in the request's order (the first with a default route of a family wins).
    let acquired = [
        vec![acquired("192.168.50.10/24", Some("192.168.50.1"))],
        vec![acquired("10.9.0.2/24", None)],
        vec![acquired("192.168.212.9/24", Some("192.168.212.254"))],
        vec![acquired("10.30.0.2/24", Some("10.30.0.1"))],
        vec![acquired("10.40.0.2/24", None)],
        vec![acquired("10.41.0.2/24", None)],
    ];
    let alone: Vec<_> = plan
        .networks
        .iter()
        .zip(&acquired)
        .map(|(planned, got)| {
            (
                &planned.network,
                wire(planned, got, DefaultRouted::default()),
            )
        })
        .collect();
    insta::assert_json_snapshot!("each_network_alone", alone);
    let mut routed = DefaultRouted::default();
    let in_order: Vec<_> = plan
        .networks
        .iter()
        .zip(&acquired)
        .map(|(planned, got)| {
            let wired = wire(planned, got, routed);
            routed = wired.default_routed;
            (&planned.network, wired)
        })
        .collect();
    insta::assert_json_snapshot!("in_the_requests_order", in_order);
}

fn acquired(address: &str, gateway: Option<&str>) -> Acquired {
    Acquired {
        address: address.parse().unwrap(),
        gateway: gateway.map(|g| g.parse().unwrap()),
        routes: Vec::new(),
        lifetime: None,
    }
}

/// A route an address source gives (a DHCP classless static route) is added as it came, after
/// the default route the rule gives; a v6 address of an IPv6 network gets its settings.
#[test]
fn a_sources_routes_and_ipv6_are_wired() {
    let lan = network(
        "lan6",
        "macvlan",
        &[
            "--subnet 192.168.60.0/24",
            "--subnet fd00:60::/64",
            "-o parent=eth0",
        ],
    );
    let netns = Path::new("/run/netns/c1");
    let req = request(vec![attachment(&lan, "eth0", &[], None)], netns);
    let plan = plan(&req).unwrap();
    let got = [
        Acquired {
            address: "192.168.60.7/24".parse().unwrap(),
            gateway: Some("192.168.60.1".parse().unwrap()),
            routes: vec![SourceRoute {
                destination: "10.0.0.0/8".parse().unwrap(),
                via: Some("192.168.60.254".parse().unwrap()),
            }],
            lifetime: Some(std::time::Duration::from_secs(3600)),
        },
        acquired("fd00:60::7/64", Some("fd00:60::1")),
    ];
    insta::assert_json_snapshot!(wire(&plan.networks[0], &got, DefaultRouted::default()));
}

#[test]
fn a_request_that_cannot_be_carried_out_is_refused_whole() {
    let lan = network(
        "lan50",
        "macvlan",
        &[
            "--subnet 192.168.50.0/24",
            "--gateway 192.168.50.1",
            "-o parent=eth0",
        ],
    );
    let l2 = network(
        "ipvlan210",
        "ipvlan",
        &["--subnet 192.168.210.0/24", "-o parent=eth0"],
    );
    let netns = Path::new("/run/netns/c1");
    let cases: Vec<(&str, AttachRequest<'_>)> = vec![
        (
            "the second network asks for the first's interface name",
            request(
                vec![
                    attachment(&lan, "eth0", &[], None),
                    attachment(&l2, "eth0", &[], None),
                ],
                netns,
            ),
        ),
        (
            "a MAC on an ipvlan network, after a good macvlan one",
            request(
                vec![
                    attachment(&lan, "eth0", &[], None),
                    attachment(&l2, "eth1", &[], Some("02:00:00:00:00:01")),
                ],
                netns,
            ),
        ),
        (
            "a name the kernel would reinterpret",
            request(vec![attachment(&lan, "eth%d", &[], None)], netns),
        ),
        (
            "a multicast MAC",
            request(
                vec![attachment(&lan, "eth0", &[], Some("01:00:5e:00:00:01"))],
                netns,
            ),
        ),
    ];
    let report: Vec<String> = cases
        .iter()
        .map(|(case, req)| format!("{case}\n  -> {}", one_line(&plan(req).unwrap_err())))
        .collect();
    insta::assert_snapshot!(report.join("\n"));
}

/// Host access: the host routes to a container's addresses of the families its host link has
/// an address of (here IPv4 only), and to nothing on a network without host access.
#[test]
fn host_routes_are_wired_for_the_host_links_families() {
    let ha = network(
        "ha6",
        "macvlan",
        &[
            "--subnet 10.5.0.0/24",
            "--subnet fd00:5::/64",
            "-o parent=eth0",
            "-o host_access=10.5.0.2",
        ],
    );
    let netns = Path::new("/run/netns/c1");
    let req = request(vec![attachment(&ha, "eth0", &[], None)], netns);
    let plan = plan(&req).unwrap();
    let got = [
        acquired("10.5.0.7/24", None),
        acquired("fd00:5::7/64", None),
    ];
    let wired = wire(&plan.networks[0], &got, DefaultRouted::default());
    assert_eq!(
        wired.host_routes,
        ["10.5.0.7".parse::<std::net::IpAddr>().unwrap()]
    );
    insta::assert_json_snapshot!(wired);
}

/// A source's routes on a network that does not hold the container's default route of their
/// family take no back door to it: nothing shorter than /8 (a server's `0.0.0.0/1` and
/// `128.0.0.0/1` would take all traffic from the network that holds the default).
#[test]
fn a_source_route_shorter_than_8_needs_the_default_route() {
    let lan = network(
        "lan",
        "macvlan",
        &["--subnet 192.168.60.0/24", "-o parent=eth0"],
    );
    let netns = Path::new("/run/netns/c1");
    let req = request(vec![attachment(&lan, "eth0", &[], None)], netns);
    let plan = plan(&req).unwrap();
    let via = |destination: &str| SourceRoute {
        destination: destination.parse().unwrap(),
        via: Some("192.168.60.66".parse().unwrap()),
    };
    let given = vec![
        via("0.0.0.0/1"),
        via("128.0.0.0/1"),
        via("8.0.0.0/7"),
        via("10.0.0.0/8"),
        SourceRoute {
            destination: "100.64.0.0/10".parse().unwrap(),
            via: None,
        },
    ];
    let got = |gateway: Option<&str>| {
        [Acquired {
            address: "192.168.60.7/24".parse().unwrap(),
            gateway: gateway.map(|g| g.parse().unwrap()),
            routes: given.clone(),
            lifetime: None,
        }]
    };
    let destinations = |routes: &[Route]| -> Vec<String> {
        routes
            .iter()
            .filter_map(|r| match r {
                Route::Via { destination, .. } | Route::OnLink(destination) => {
                    Some(destination.to_string())
                }
                _ => None,
            })
            .collect()
    };
    let long = ["10.0.0.0/8", "100.64.0.0/10"];
    // An earlier network holds the v4 default: only the /8 and the /10.
    let earlier = DefaultRouted {
        v4: true,
        v6: false,
    };
    let wired = wire(&plan.networks[0], &got(Some("192.168.60.1")), earlier);
    assert_eq!(destinations(&wired.routes), long);
    assert!(
        !wired
            .routes
            .iter()
            .any(|r| matches!(r, Route::DefaultVia(_)))
    );
    // No gateway: this network holds no default route either.
    let wired = wire(&plan.networks[0], &got(None), DefaultRouted::default());
    assert_eq!(destinations(&wired.routes), long);
    assert!(!wired.default_routed.v4);
    // The network that holds the default: all of them.
    let wired = wire(
        &plan.networks[0],
        &got(Some("192.168.60.1")),
        DefaultRouted::default(),
    );
    assert_eq!(wired.routes.len(), 1 + given.len());
    // An earlier IPv6 default says nothing of IPv4.
    let v6_only = DefaultRouted {
        v4: false,
        v6: true,
    };
    let wired = wire(&plan.networks[0], &got(Some("192.168.60.1")), v6_only);
    assert_eq!(wired.routes.len(), 1 + given.len());
    // The renewer's path: the same rule.
    let kept: Vec<Route> = source_routes(&given, false).collect();
    assert_eq!(destinations(&kept), long);
    assert_eq!(source_routes(&given, true).count(), given.len());
    let default = [via("0.0.0.0/0")];
    assert_eq!(source_routes(&default, true).count(), 0);
}

/// A source's routes leave the container's other endpoints' subnets alone (review 27, 3b): a
/// second network's lease that routes the first network's subnet (or a part of it) elsewhere
/// loses those routes, whichever network holds the default; a wider route holding it stays
/// (the subnet's own route is longer).
#[test]
fn a_source_route_over_another_endpoints_subnet_is_left_out() {
    let lan50 = network(
        "lan50",
        "macvlan",
        &[
            "--subnet 192.168.50.0/24",
            "--gateway 192.168.50.1",
            "-o parent=eth0",
        ],
    );
    let lan = network(
        "lan",
        "macvlan",
        &["--subnet 192.168.60.0/24", "-o parent=eth1"],
    );
    let netns = Path::new("/run/netns/c1");
    let req = request(
        vec![
            attachment(&lan50, "eth0", &[], None),
            attachment(&lan, "eth1", &[], None),
        ],
        netns,
    );
    let plan = plan(&req).unwrap();
    let via = |destination: &str| SourceRoute {
        destination: destination.parse().unwrap(),
        via: Some("192.168.60.66".parse().unwrap()),
    };
    let given = vec![
        via("192.168.50.0/24"),
        via("192.168.50.128/25"),
        via("192.168.0.0/16"),
        via("10.5.0.0/16"),
        via("172.20.0.0/16"),
    ];
    let got = [Acquired {
        address: "192.168.60.7/24".parse().unwrap(),
        gateway: Some("192.168.60.1".parse().unwrap()),
        routes: given.clone(),
        lifetime: None,
    }];
    let destinations = |routes: &[Route]| -> Vec<String> {
        routes
            .iter()
            .filter_map(|r| match r {
                Route::Via { destination, .. } => Some(destination.to_string()),
                _ => None,
            })
            .collect()
    };
    // The first network's subnet is known from the plan; a lease's from what was wired.
    let wired_so_far = vec![vec!["172.20.3.4/16".parse().unwrap()]];
    let others = other_subnets(&plan.networks, 1, &wired_so_far);
    assert_eq!(
        others,
        vec![
            "192.168.50.0/24".parse().unwrap(),
            "172.20.0.0/16".parse().unwrap()
        ]
    );
    let earlier = DefaultRouted {
        v4: true,
        v6: false,
    };
    for routed in [earlier, DefaultRouted::default()] {
        let wired = wire_among(&plan.networks[1], &got, routed, &others);
        assert_eq!(
            destinations(&wired.routes),
            ["192.168.0.0/16", "10.5.0.0/16"],
            "{routed:?}"
        );
    }
    // Without other endpoints, all of them (the network holds the default).
    let wired = wire(&plan.networks[1], &got, DefaultRouted::default());
    assert_eq!(destinations(&wired.routes).len(), given.len());
    // The network itself is no other.
    assert!(!other_subnets(&plan.networks, 0, &[]).contains(&"192.168.50.0/24".parse().unwrap()));
}
