//! Property tests: any pool, valid or not, of any prefix length in either family (a /0 and a
//! /127 included), is checked without a panic; a pool that passes overlaps no block a LAN cannot
//! use, and hands out, lowest first, only its own unreserved addresses of its range (never the
//! first host it keeps for a router it was not told about), each once, and `usage` counts them
//! down.

#![allow(clippy::unwrap_used)]

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use ipnetwork::IpNetwork;
use oci_macvlan_ipam::{Error, LeaseStoreExt, LmdbStore, Owner, Pool, Request, allocate};
use proptest::prelude::*;

fn ip(v4: bool, bits: u128) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::from(bits as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(bits))
    }
}

fn bits_of(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// A network of `prefix` (clamped to the family) at `bits`, made canonical when `canonical`.
fn net(v4: bool, bits: u128, prefix: u8, canonical: bool) -> IpNetwork {
    let max = if v4 { 32 } else { 128 };
    let prefix = prefix % (max + 1);
    let width = u32::from(max - prefix);
    let mask = if width >= 128 {
        0
    } else {
        !((1u128 << width) - 1)
    };
    let bits = if v4 { bits & 0xffff_ffff } else { bits };
    let bits = if canonical { bits & mask } else { bits };
    IpNetwork::new(ip(v4, bits), prefix).unwrap()
}

/// An address `offset` into `subnet` (wrapping inside it).
fn inside(subnet: IpNetwork, offset: u128) -> IpAddr {
    let v4 = subnet.is_ipv4();
    let width = u32::from(if v4 { 32 } else { 128 } - subnet.prefix());
    let offset = if width >= 128 {
        offset
    } else {
        offset % (1u128 << width)
    };
    ip(v4, bits_of(subnet.ip()) | offset)
}

#[derive(Debug, Clone)]
struct Shape {
    v4: bool,
    bits: u128,
    prefix: u8,
    canonical: bool,
    gateway: Option<u128>,
    range: Option<(u8, u128)>,
    aux: Vec<u128>,
    undeclared_router: bool,
}

fn shape() -> impl Strategy<Value = Shape> {
    (
        any::<bool>(),
        any::<u128>(),
        prop_oneof![0u8..=128, 20u8..=31, 118u8..=127],
        prop::bool::weighted(0.9),
        prop::option::of(any::<u128>()),
        prop::option::of((0u8..6, any::<u128>())),
        prop::collection::vec(any::<u128>(), 0..3),
        any::<bool>(),
    )
        .prop_map(
            |(v4, bits, prefix, canonical, gateway, range, aux, undeclared_router)| Shape {
                v4,
                bits,
                prefix,
                canonical,
                gateway,
                range,
                aux,
                undeclared_router,
            },
        )
}

fn pool_of(s: &Shape) -> Result<Pool, Error> {
    let subnet = net(s.v4, s.bits, s.prefix, s.canonical);
    let gateway = s.gateway.map(|off| inside(subnet, off));
    let range = s.range.map(|(extra, off)| {
        let base = inside(subnet, off);
        net(
            s.v4,
            bits_of(base),
            subnet.prefix().saturating_add(extra),
            true,
        )
    });
    let aux: BTreeMap<String, IpAddr> = s
        .aux
        .iter()
        .enumerate()
        .map(|(i, off)| (format!("aux{i}"), inside(subnet, *off)))
        .collect();
    Pool::new(subnet, gateway, range, aux)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn a_valid_pool_hands_out_its_own_free_addresses_once_lowest_first(
        s in shape(),
        wanted in 1usize..24,
    ) {
        let Ok(pool) = pool_of(&s) else {
            return Ok(()); // refused with an error: no panic is the property
        };
        // A pool survives its own JSON, through the same checks.
        let json = serde_json::to_string(&pool).unwrap();
        prop_assert_eq!(&serde_json::from_str::<Pool>(&json).unwrap(), &pool);

        let dir = tempfile::tempdir().unwrap();
        let mut store = LmdbStore::open(dir.path()).unwrap();
        let pools = [pool.clone()];
        let undeclared = s.undeclared_router;
        for block in ["0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/3", "::/96", "::ffff:0:0/96", "fe80::/10", "ff00::/8"] {
            let block: IpNetwork = block.parse().unwrap();
            prop_assert!(
                !block.contains(pool.subnet.network()) && !pool.subnet.contains(block.network()),
                "{} overlaps {block}", pool.subnet
            );
        }
        let before = store.read(|view| pool.usage(view, undeclared)).unwrap();
        let mut seen = BTreeSet::new();
        let mut previous: Option<u128> = None;
        for i in 0..wanted {
            let owner = Owner { container_id: format!("c{i}"), ifname: "eth0".into() };
            let request = Request {
                network: "n",
                owner: &owner,
                pools: &pools,
                static_ips: &[],
                ipv6: !s.v4,
                undeclared_router: undeclared,
            };
            match store.transaction(|txn| allocate(txn, &request)) {
                Ok(leases) => {
                    prop_assert_eq!(leases.len(), 1);
                    let got = leases[0].ip;
                    prop_assert!(pool.contains(got), "{got} outside {}", pool.subnet);
                    prop_assert!(pool.reservation(got).is_none(), "{got} is reserved");
                    prop_assert!(pool.kept_for_router(undeclared) != Some(got), "{got} is kept");
                    if let Some(range) = pool.ip_range {
                        prop_assert!(range.contains(got), "{got} outside range {range}");
                    }
                    prop_assert!(seen.insert(got), "{got} handed out twice");
                    if let Some(previous) = previous {
                        prop_assert!(bits_of(got) > previous, "not lowest first");
                    }
                    previous = Some(bits_of(got));
                }
                Err(Error::Exhausted { .. }) => {
                    let usage = store.read(|view| pool.usage(view, undeclared)).unwrap();
                    prop_assert_eq!(usage.dynamic_available, 0);
                    break;
                }
                Err(other) => prop_assert!(false, "unexpected error: {other}"),
            }
        }
        let after = store.read(|view| pool.usage(view, undeclared)).unwrap();
        prop_assert_eq!(after.dynamic_total, before.dynamic_total);
        prop_assert_eq!(
            before.dynamic_available - after.dynamic_available,
            seen.len() as u128
        );
    }

    #[test]
    fn pool_json_of_any_shape_is_checked_without_panic(
        subnet in "[0-9a-f:./]{0,24}",
        gateway in "[0-9a-f:.]{0,20}",
        range in "[0-9a-f:./]{0,24}",
    ) {
        let json = serde_json::json!({"subnet": subnet, "gateway": gateway, "ip_range": range});
        let _ = serde_json::from_value::<Pool>(json);
    }
}
