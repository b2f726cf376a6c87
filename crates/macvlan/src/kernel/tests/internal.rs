//! Tier 1, internal networks: an internal ipvlan L3 network routes only to its other subnets
//! of the address's family, an internal macvlan network routes nowhere (whatever gateway its
//! subnet has), and neither takes a family's default route from a later network. Each case is
//! checked twice: apply sent what [`wire`] decides, and the container has the routes written
//! out here, so a wrong rule in `wire` fails too.

#![allow(clippy::unwrap_used)]

use super::*;

/// `lan` (a default route via its gateway), the internal L3 network, the internal macvlan one.
fn internal_networks() -> Vec<Network> {
    vec![
        networks().remove(0),
        network(
            "in3",
            "ipvlan",
            &[
                "--subnet 10.6.0.0/24",
                "--subnet 10.7.0.0/24",
                "-o parent=eth4",
                "-o ipvlan_mode=l3",
                "--internal",
            ],
        ),
        network(
            "inmac",
            "macvlan",
            &[
                "--subnet 10.8.0.0/24",
                "--gateway 10.8.0.1",
                "-o parent=eth5",
                "--internal",
            ],
        ),
    ]
}

const IPS: [&str; 3] = ["10.1.0.5", "10.6.0.5", "10.8.0.5"];

fn got(i: usize) -> Vec<Acquired> {
    match i {
        0 => acquired("10.1.0.5/24", Some("10.1.0.1")),
        1 => acquired("10.6.0.5/24", None),
        _ => acquired("10.8.0.5/24", Some("10.8.0.1")),
    }
}

/// A route of the container's namespace, on the link named.
type LinkRoute = (String, Route);

fn on_link(link: &str, subnet: &str) -> LinkRoute {
    (link.to_owned(), Route::OnLink(subnet.parse().unwrap()))
}

fn via(link: &str, gateway: &str) -> LinkRoute {
    (link.to_owned(), Route::DefaultVia(gateway.parse().unwrap()))
}

#[test]
fn internal_networks_get_only_their_rules_routes() {
    let nets = internal_networks();
    // The networks of each case (the first is eth0, the next eth1), and the routes the
    // container must end with.
    let cases: Vec<(Vec<usize>, Vec<LinkRoute>)> = vec![
        // The other subnet of the family only: not its own, no default.
        (vec![1], vec![on_link("eth0", "10.7.0.0/24")]),
        // Nothing, though its subnet has a gateway.
        (vec![2], vec![]),
        // An internal network first takes no default route: the next network's is added.
        (vec![2, 0], vec![via("eth1", "10.1.0.1")]),
        (
            vec![1, 0],
            vec![on_link("eth0", "10.7.0.0/24"), via("eth1", "10.1.0.1")],
        ),
        // A family an earlier network routes by default gets no other-subnet route.
        (vec![0, 1], vec![via("eth0", "10.1.0.1")]),
    ];
    for (case, routes) in cases {
        let w = world();
        let chosen: Vec<Network> = case.iter().map(|&i| nets[i].clone()).collect();
        let ips: Vec<Option<&str>> = case.iter().map(|&i| Some(IPS[i])).collect();
        let acquired: Vec<Vec<Acquired>> = case.iter().map(|&i| got(i)).collect();
        let req = request(&chosen, &ips, &w.definitions);
        let plan = plan(&req).unwrap();
        let fake = Fake::with_parents(&[
            ("eth0", "02:00:00:00:00:10"),
            ("eth4", "02:00:00:00:00:14"),
            ("eth5", "02:00:00:00:00:15"),
        ]);
        let mut store = w.store;
        let endpoints = run(&fake, &mut store, &w.records, &req, &plan, None).unwrap();
        assert_eq!(
            fake.take_calls(),
            expected_calls(&plan, &acquired),
            "case {case:?}"
        );
        assert_eq!(fake.state.borrow().routes, routes, "case {case:?}");
        // An internal network reports no gateway.
        for (ep, &i) in endpoints.iter().zip(&case) {
            let gateways: Vec<IpAddr> = match i {
                0 => vec!["10.1.0.1".parse().unwrap()],
                _ => vec![],
            };
            assert_eq!(ep.gateways, gateways, "case {case:?}, {}", ep.network);
        }
    }
}
