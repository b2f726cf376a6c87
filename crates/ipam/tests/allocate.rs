//! The allocator against a real store: Docker's rules, lease reuse, release, conflicts.

#![allow(clippy::unwrap_used)]

use std::{collections::BTreeMap, net::IpAddr};

use oci_macvlan_ipam::{Error, LeaseSet, LeaseStoreExt, LmdbStore, Owner, Pool, Request, allocate};

fn pool(subnet: &str, gateway: Option<&str>, range: Option<&str>, aux: &[(&str, &str)]) -> Pool {
    Pool::new(
        subnet.parse().unwrap(),
        gateway.map(|g| g.parse().unwrap()),
        range.map(|r| r.parse().unwrap()),
        aux.iter()
            .map(|(n, ip)| (n.to_string(), ip.parse().unwrap()))
            .collect::<BTreeMap<_, _>>(),
    )
    .unwrap()
}

fn owner(id: &str) -> Owner {
    Owner {
        container_id: id.into(),
        ifname: "eth0".into(),
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: LmdbStore,
    /// What the network tells `allocate`: a parent link and not internal.
    undeclared_router: bool,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = LmdbStore::open(dir.path()).unwrap();
        Self {
            _dir: dir,
            store,
            undeclared_router: false,
        }
    }

    /// A store for a network on a LAN that may have a router it was not told about.
    fn on_a_lan() -> Self {
        Self {
            undeclared_router: true,
            ..Self::new()
        }
    }

    fn available(&mut self, pool: &Pool) -> u128 {
        let undeclared = self.undeclared_router;
        self.store
            .read(|view| pool.usage(view, undeclared))
            .unwrap()
            .dynamic_available
    }

    fn lease(
        &mut self,
        network: &str,
        pools: &[Pool],
        id: &str,
        statics: &[&str],
        ipv6: bool,
    ) -> Result<Vec<IpAddr>, Error> {
        let owner = owner(id);
        let statics: Vec<IpAddr> = statics.iter().map(|s| s.parse().unwrap()).collect();
        let req = Request {
            network,
            owner: &owner,
            pools,
            static_ips: &statics,
            ipv6,
            undeclared_router: self.undeclared_router,
        };
        self.store
            .transaction(|txn| allocate(txn, &req))
            .map(|leases| leases.into_iter().map(|l| l.ip).collect())
    }
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

#[test]
fn lowest_free_skips_network_gateway_and_aux() {
    let mut f = Fixture::new();
    let pools = [pool(
        "10.0.0.0/24",
        Some("10.0.0.1"),
        None,
        &[("r2", "10.0.0.2")],
    )];
    assert_eq!(
        f.lease("n", &pools, "a", &[], false).unwrap(),
        ips(&["10.0.0.3"])
    );
    assert_eq!(
        f.lease("n", &pools, "b", &[], false).unwrap(),
        ips(&["10.0.0.4"])
    );
}

#[test]
fn ip_range_bounds_dynamic_but_not_static() {
    let mut f = Fixture::new();
    let pools = [pool(
        "10.0.0.0/24",
        Some("10.0.0.1"),
        Some("10.0.0.128/25"),
        &[],
    )];
    assert_eq!(
        f.lease("n", &pools, "a", &[], false).unwrap(),
        ips(&["10.0.0.128"])
    );
    assert_eq!(
        f.lease("n", &pools, "b", &["10.0.0.10"], false).unwrap(),
        ips(&["10.0.0.10"])
    );
}

#[test]
fn same_owner_gets_its_lease_back() {
    let mut f = Fixture::new();
    let pools = [pool("10.0.0.0/24", None, None, &[])];
    let first = f.lease("n", &pools, "a", &[], false).unwrap();
    assert_eq!(f.lease("n", &pools, "a", &[], false).unwrap(), first);
    assert_eq!(
        f.lease("n", &pools, "a", &["10.0.0.1"], false).unwrap(),
        first
    );
    let err = f.lease("n", &pools, "a", &["10.0.0.9"], false).unwrap_err();
    assert!(matches!(err, Error::OwnerHoldsOther { .. }), "{err}");
}

#[test]
fn released_addresses_are_reused_lowest_first() {
    let mut f = Fixture::new();
    let pools = [pool("10.0.0.0/24", None, None, &[])];
    for id in ["a", "b", "c"] {
        f.lease("n", &pools, id, &[], false).unwrap();
    }
    let released = f.store.release_container("b").unwrap();
    assert_eq!(
        released.iter().map(|l| l.ip).collect::<Vec<_>>(),
        ips(&["10.0.0.2"])
    );
    assert!(
        f.store.release_container("b").unwrap().is_empty(),
        "release is idempotent"
    );
    assert_eq!(
        f.lease("n", &pools, "d", &[], false).unwrap(),
        ips(&["10.0.0.2"])
    );
    assert_eq!(
        f.lease("n", &pools, "e", &[], false).unwrap(),
        ips(&["10.0.0.4"])
    );
}

#[test]
fn exhaustion_leaves_nothing_and_says_so() {
    let mut f = Fixture::new();
    let pools = [pool("10.0.0.0/30", None, None, &[])];
    assert_eq!(
        f.lease("n", &pools, "a", &[], false).unwrap(),
        ips(&["10.0.0.1"])
    );
    assert_eq!(
        f.lease("n", &pools, "b", &[], false).unwrap(),
        ips(&["10.0.0.2"])
    );
    let err = f.lease("n", &pools, "c", &[], false).unwrap_err();
    insta::assert_snapshot!(err.to_string(), @"no available IPv4 addresses on this network's address pools: n (10.0.0.0/30)");
    assert_eq!(f.store.network_leases("n").unwrap().len(), 2);
}

#[test]
fn dual_stack_is_all_or_nothing() {
    let mut f = Fixture::new();
    let pools = [
        pool("10.0.0.0/24", None, None, &[]),
        pool("2001:db8::/64", None, None, &[]),
    ];
    assert_eq!(
        f.lease("n", &pools, "a", &[], true).unwrap(),
        ips(&["10.0.0.1", "2001:db8::1"])
    );
    // The v6 static conflicts: the v4 lease of the same request must not stay behind.
    let err = f
        .lease("n", &pools, "b", &["2001:db8::1"], true)
        .unwrap_err();
    assert!(matches!(err, Error::AddressInUse { .. }), "{err}");
    assert!(f.store.release_container("b").unwrap().is_empty());
}

#[test]
fn overlapping_networks_share_one_address_space() {
    let mut f = Fixture::new();
    let a = [pool("10.0.0.0/24", None, None, &[])];
    let b = [pool("10.0.0.0/25", None, None, &[])];
    assert_eq!(
        f.lease("net-a", &a, "x", &[], false).unwrap(),
        ips(&["10.0.0.1"])
    );
    assert_eq!(
        f.lease("net-b", &b, "y", &[], false).unwrap(),
        ips(&["10.0.0.2"])
    );
}

#[test]
fn static_request_errors() {
    let mut f = Fixture::new();
    let pools = [pool(
        "10.0.0.0/24",
        Some("10.0.0.1"),
        None,
        &[("router2", "10.0.0.2")],
    )];
    f.lease("n", &pools, "holder", &["10.0.0.7"], false)
        .unwrap();
    let report: Vec<String> = [
        "10.9.9.9",
        "10.0.0.0",
        "10.0.0.255",
        "10.0.0.1",
        "10.0.0.2",
        "10.0.0.7",
        "2001:db8::5",
    ]
    .iter()
    .map(|ip| {
        format!(
            "{ip} -> {}",
            f.lease("n", &pools, "c", &[ip], false).unwrap_err()
        )
    })
    .collect();
    insta::assert_snapshot!(report.join("\n"));
    assert!(f.store.release_container("c").unwrap().is_empty());
}

#[test]
fn point_to_point_subnet_uses_both_addresses() {
    let mut f = Fixture::new();
    let pools = [pool("10.0.0.0/31", None, None, &[])];
    assert_eq!(
        f.lease("n", &pools, "a", &[], false).unwrap(),
        ips(&["10.0.0.0"])
    );
    assert_eq!(
        f.lease("n", &pools, "b", &[], false).unwrap(),
        ips(&["10.0.0.1"])
    );
}

#[test]
fn unreadable_store_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join(LmdbStore::DIR_NAME).join("data.mdb");
    std::fs::create_dir(data.parent().unwrap()).unwrap();
    std::fs::write(
        &data,
        b"this is not a database, it is a text file of some length.......".repeat(100),
    )
    .unwrap();
    let err = LmdbStore::open(dir.path()).unwrap_err();
    assert!(matches!(err, Error::Damaged { .. }), "{err}");
    let kept = std::fs::read(&data).unwrap();
    assert!(
        kept.starts_with(b"this is not a database"),
        "the file must not be replaced"
    );
}

#[test]
fn ipv6_slash_64_is_allocated_without_sizing_anything_by_the_subnet() {
    let mut f = Fixture::new();
    let pools = [pool("2001:db8:5::/64", Some("2001:db8:5::1"), None, &[])];
    assert_eq!(
        f.lease("v6", &pools, "a", &[], true).unwrap(),
        ips(&["2001:db8:5::2"])
    );
    assert_eq!(
        f.lease("v6", &pools, "b", &[], true).unwrap(),
        ips(&["2001:db8:5::3"])
    );
    // The last address of a /64 is an ordinary address (IPv6 has no broadcast).
    let top = "2001:db8:5::ffff:ffff:ffff:ffff";
    assert_eq!(
        f.lease("v6", &pools, "c", &[top], true).unwrap(),
        ips(&[top])
    );
    let err = f
        .lease("v6", &pools, "d", &["2001:db8:5::"], true)
        .unwrap_err();
    insta::assert_snapshot!(err.to_string(), @"IP address 2001:db8:5:: is reserved on this network (subnet-router anycast address)");
    assert_eq!(
        f.lease("v6", &pools, "d", &[], true).unwrap(),
        ips(&["2001:db8:5::4"])
    );
}

#[test]
fn ipv6_range_at_the_top_of_the_usable_address_space_is_exhausted_cleanly() {
    // Above fec0::/10 lie link-local fe80::/10 and multicast ff00::/8, which no pool may overlap.
    let top = "ffff:ffff:ffff:ffff::/64".parse().unwrap();
    let err = Pool::new(top, None, None, BTreeMap::new()).unwrap_err();
    insta::assert_snapshot!(err.to_string(), @"invalid subnet ffff:ffff:ffff:ffff::/64: it overlaps ff00::/8 (multicast), which no LAN can use");
    let mut f = Fixture::new();
    let pools = [pool(
        "feff:ffff:ffff:ffff::/64",
        None,
        Some("feff:ffff:ffff:ffff:ffff:ffff:ffff:fffc/126"),
        &[],
    )];
    let mut got = Vec::new();
    for id in ["a", "b", "c", "d"] {
        got.extend(f.lease("top", &pools, id, &[], true).unwrap());
    }
    assert_eq!(
        got,
        ips(&[
            "feff:ffff:ffff:ffff:ffff:ffff:ffff:fffc",
            "feff:ffff:ffff:ffff:ffff:ffff:ffff:fffd",
            "feff:ffff:ffff:ffff:ffff:ffff:ffff:fffe",
            "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ])
    );
    let err = f.lease("top", &pools, "e", &[], true).unwrap_err();
    insta::assert_snapshot!(err.to_string(), @"no available IPv6 addresses on this network's address pools: top (feff:ffff:ffff:ffff::/64)");
}

#[test]
fn on_a_lan_without_gateway_the_first_host_is_kept_for_the_router() {
    // (subnet, ip-range, the first three dynamic leases on a LAN, and where no router can be)
    type Case<'a> = (&'a str, Option<&'a str>, [&'a str; 3], [&'a str; 3]);
    let cases: &[Case<'_>] = &[
        (
            "10.0.0.0/24",
            None,
            ["10.0.0.2", "10.0.0.3", "10.0.0.4"],
            ["10.0.0.1", "10.0.0.2", "10.0.0.3"],
        ),
        (
            "2001:db8::/64",
            None,
            ["2001:db8::2", "2001:db8::3", "2001:db8::4"],
            ["2001:db8::1", "2001:db8::2", "2001:db8::3"],
        ),
        // An ip-range that starts at the subnet's first address.
        (
            "10.0.0.0/24",
            Some("10.0.0.0/25"),
            ["10.0.0.2", "10.0.0.3", "10.0.0.4"],
            ["10.0.0.1", "10.0.0.2", "10.0.0.3"],
        ),
        // An ip-range away from the first host is not touched.
        (
            "10.0.0.0/24",
            Some("10.0.0.128/25"),
            ["10.0.0.128", "10.0.0.129", "10.0.0.130"],
            ["10.0.0.128", "10.0.0.129", "10.0.0.130"],
        ),
    ];
    for (subnet, range, on_lan, without_router) in cases {
        for (mut f, expected) in [
            (Fixture::on_a_lan(), on_lan),
            (Fixture::new(), without_router),
        ] {
            let pools = [pool(subnet, None, *range, &[])];
            let v6 = !pools[0].is_ipv4();
            let got: Vec<IpAddr> = ["a", "b", "c"]
                .iter()
                .flat_map(|id| f.lease("n", &pools, id, &[], v6).unwrap())
                .collect();
            assert_eq!(
                got,
                ips(expected),
                "{subnet} range {range:?} on a LAN: {}",
                f.undeclared_router
            );
        }
    }
}

#[test]
fn point_to_point_subnet_on_a_lan_keeps_its_first_address_for_the_router() {
    let mut f = Fixture::on_a_lan();
    let pools = [pool("10.0.0.0/31", None, None, &[])];
    assert_eq!(
        f.lease("n", &pools, "a", &[], false).unwrap(),
        ips(&["10.0.0.1"])
    );
    let err = f.lease("n", &pools, "b", &[], false).unwrap_err();
    assert!(matches!(err, Error::Exhausted { .. }), "{err}");
    // Where no router can be, both addresses are the containers' (Docker's /31 test).
    let mut f = Fixture::new();
    for (id, ip) in [("a", "10.0.0.0"), ("b", "10.0.0.1")] {
        assert_eq!(f.lease("n", &pools, id, &[], false).unwrap(), ips(&[ip]));
    }
}

#[test]
fn a_small_ip_range_at_the_first_host_on_a_lan() {
    let mut f = Fixture::on_a_lan();
    let pools = [pool("10.0.0.0/24", None, Some("10.0.0.0/30"), &[])];
    assert_eq!(f.available(&pools[0]), 2, "10.0.0.0 and 10.0.0.1 are not");
    for (id, ip) in [("a", "10.0.0.2"), ("b", "10.0.0.3")] {
        assert_eq!(f.lease("n", &pools, id, &[], false).unwrap(), ips(&[ip]));
    }
    let err = f.lease("n", &pools, "c", &[], false).unwrap_err();
    assert!(matches!(err, Error::Exhausted { .. }), "{err}");
    assert_eq!(f.available(&pools[0]), 0);
}

#[test]
fn a_static_request_may_take_the_first_host_kept_for_the_router() {
    let mut f = Fixture::on_a_lan();
    let pools = [pool("10.0.0.0/29", None, None, &[])];
    // 8 addresses: network, broadcast and the router's .1 are not available.
    assert_eq!(f.available(&pools[0]), 5);
    assert_eq!(
        f.lease("n", &pools, "dyn", &[], false).unwrap(),
        ips(&["10.0.0.2"])
    );
    assert_eq!(f.available(&pools[0]), 4);
    assert_eq!(
        f.lease("n", &pools, "router", &["10.0.0.1"], false)
            .unwrap(),
        ips(&["10.0.0.1"])
    );
    // The kept address counts once, leased or not.
    assert_eq!(f.available(&pools[0]), 4);
    let v6 = [pool("2001:db8::/64", None, None, &[])];
    assert_eq!(
        f.lease("n6", &v6, "router6", &["2001:db8::1"], true)
            .unwrap(),
        ips(&["2001:db8::1"])
    );
}

#[test]
fn a_declared_gateway_frees_the_first_host() {
    let mut f = Fixture::on_a_lan();
    let pools = [pool("10.0.0.0/24", Some("10.0.0.254"), None, &[])];
    assert_eq!(f.available(&pools[0]), 253);
    assert_eq!(
        f.lease("n", &pools, "a", &[], false).unwrap(),
        ips(&["10.0.0.1"])
    );
    // Without a gateway, the same subnet keeps .1: one address fewer.
    let bare = pool("10.0.0.0/24", None, None, &[]);
    assert_eq!(Fixture::on_a_lan().available(&bare), 253);
    assert_eq!(Fixture::new().available(&bare), 254);
}
