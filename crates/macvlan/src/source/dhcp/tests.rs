//! The DHCP source's pure parts: what a lease gives the link, its record.

#![allow(clippy::unwrap_used)]

use std::net::Ipv4Addr;

use oci_macvlan_dhcp::Route;

use super::*;

fn lease(router: Option<Ipv4Addr>, routes: Vec<Route>) -> DhcpLease {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    DhcpLease {
        address: Ipv4Addr::new(192, 168, 1, 50),
        prefix: 24,
        router,
        routes,
        dns: Vec::new(),
        domain: None,
        server: Ipv4Addr::new(192, 168, 1, 1),
        obtained: now,
        t1: now + Duration::from_secs(300),
        t2: now + Duration::from_secs(525),
        expiry: now + Duration::from_secs(600),
    }
}

fn route(destination: [u8; 4], prefix: u8, gateway: [u8; 4]) -> Route {
    Route {
        destination: destination.into(),
        prefix,
        gateway: gateway.into(),
    }
}

fn address() -> IpNetwork {
    "192.168.1.50/24".parse().unwrap()
}

#[test]
fn the_router_is_the_gateway_without_classless_routes() {
    let got = acquired(
        &lease(Some(Ipv4Addr::new(192, 168, 1, 1)), vec![]),
        address(),
    );
    assert_eq!(got.gateway, Some("192.168.1.1".parse().unwrap()));
    assert!(got.routes.is_empty());
}

/// The address's lifetime is what is left of the lease at the time, not its length
/// (review 27, 7: a kept lease's rest).
#[test]
fn the_lifetime_is_what_is_left() {
    let leased = lease(None, vec![]);
    let at = |secs| leased.obtained + Duration::from_secs(secs);
    let lifetime = |secs| acquired_at(&leased, address(), at(secs)).lifetime;
    assert_eq!(lifetime(0), Some(Duration::from_secs(600)));
    assert_eq!(lifetime(450), Some(Duration::from_secs(150)));
    assert_eq!(lifetime(900), Some(Duration::ZERO));
}

/// RFC 3442: with option 121 the router option is ignored; its default route is the gateway,
/// a route with gateway 0.0.0.0 is on the link.
#[test]
fn classless_routes_replace_the_router() {
    let routes = vec![
        route([10, 5, 0, 0], 16, [192, 168, 1, 2]),
        route([0, 0, 0, 0], 0, [192, 168, 1, 254]),
        route([172, 16, 0, 0], 12, [0, 0, 0, 0]),
    ];
    let got = acquired(
        &lease(Some(Ipv4Addr::new(192, 168, 1, 1)), routes),
        address(),
    );
    assert_eq!(got.gateway, Some("192.168.1.254".parse().unwrap()));
    assert_eq!(
        got.routes,
        vec![
            SourceRoute {
                destination: "10.5.0.0/16".parse().unwrap(),
                via: Some("192.168.1.2".parse().unwrap()),
            },
            SourceRoute {
                destination: "172.16.0.0/12".parse().unwrap(),
                via: None,
            },
        ]
    );
    // Without a default among them, no default route at all.
    let got = acquired(
        &lease(
            Some(Ipv4Addr::new(192, 168, 1, 1)),
            vec![route([10, 5, 0, 0], 16, [192, 168, 1, 2])],
        ),
        address(),
    );
    assert_eq!(got.gateway, None);
}

#[test]
fn a_recorded_client_id_reads_back() {
    let id = ClientId::derive(b"k", "lan", "c1");
    let record = DhcpRecord {
        client_id: id.to_hex(),
        mac: None,
        hostname: None,
        broadcast: false,
        ipvlan_flag: None,
        subnet: None,
        lease: lease(None, vec![]),
        v6: None,
        renewal: Default::default(),
    };
    assert_eq!(record.client_id_bytes().unwrap(), id.as_bytes());
    let json = serde_json::to_string(&record).unwrap();
    assert_eq!(serde_json::from_str::<DhcpRecord>(&json).unwrap(), record);
    assert!(record.expired(SystemTime::now()));
}
