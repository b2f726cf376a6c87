//! Which networks of a host share an address space. The leases of a network are in one store
//! (this host's LMDB, or an etcd cluster under a prefix); two stores know nothing of each
//! other's leases, so two networks whose subnets overlap must use the same store, or both
//! would hand out one address. `network create` refuses the overlap ([`check_create`]) and two
//! stores that would read each other's keys (as their backend judges: etcd prefixes nested on
//! one cluster); `verify`
//! reports an address leased in two stores all the same ([`leased_twice`]), for definitions
//! written before the check or edited by hand.

use std::collections::BTreeMap;

use oci_macvlan_ipam::{Backends, Lease};

use crate::{Error, Network, Result};

/// `network create`: `network` may not overlap a subnet of a network of `others` whose leases
/// are in another store, nor use a store that clashes with another's (`backends` judge). Nor may it
/// take the name of a network of `removed` (those `rm -f` removed while their store did not
/// answer, [`Networks::removed`](crate::Networks::removed)) or overlap one of its subnets, in
/// whatever store: what its containers hold there is on no definition, and a store that did not
/// answer cannot say it is free. Exit 5, naming the other network.
pub(crate) fn check_create(
    backends: Backends,
    network: &Network,
    others: &[Network],
    removed: &[Network],
) -> Result<()> {
    let choice = network.store_choice();
    let describe = |choice| backends.describe(choice);
    for gone in removed {
        let overlap = network.pools.iter().find_map(|pool| {
            let mine = pool.subnet;
            gone.pools
                .iter()
                .find(|o| o.subnet.contains(mine.network()) || mine.contains(o.subnet.network()))
                .map(|theirs| format!("subnet {mine} overlaps subnet {} of", theirs.subnet))
        });
        let what = match overlap {
            Some(overlap) => overlap,
            None if gone.name == network.name => format!("the name {} is still that of", gone.name),
            None => continue,
        };
        return Err(Error::RemovedNetworkLeft {
            what,
            other: gone.name.clone(),
            other_subnets: gone
                .pools
                .iter()
                .map(|p| p.subnet.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            other_store: describe(&gone.store_choice()),
        });
    }
    for other in others.iter().chain(removed) {
        let other_choice = other.store_choice();
        if let Some(why) = backends.clash(&choice, &other_choice, &other.name) {
            return Err(Error::StoresClash {
                other: other.name.clone(),
                why,
            });
        }
        if backends.same_store(&choice, &other_choice) {
            continue;
        }
        for pool in &network.pools {
            let mine = pool.subnet;
            if let Some(theirs) = other
                .pools
                .iter()
                .find(|o| o.subnet.contains(mine.network()) || mine.contains(o.subnet.network()))
            {
                return Err(Error::SubnetInOtherStore {
                    subnet: pool.subnet,
                    other_subnet: theirs.subnet,
                    other: other.name.clone(),
                    store: describe(&choice),
                    other_store: describe(&other_choice),
                });
            }
        }
    }
    Ok(())
}

/// `verify`: one line per address that `leases` (every store that answered, put together)
/// holds more than once. A store keeps one lease per address, so two are two stores; two
/// leases equal in every field are one store read twice (one cluster named by two lists of
/// endpoints), not a problem.
pub(crate) fn leased_twice(leases: &[Lease]) -> Vec<String> {
    let mut by_ip: BTreeMap<_, Vec<&Lease>> = BTreeMap::new();
    for lease in leases {
        let same = by_ip.entry(lease.ip).or_default();
        if !same.contains(&lease) {
            same.push(lease);
        }
    }
    by_ip
        .into_iter()
        .filter(|(_, holders)| holders.len() > 1)
        .map(|(ip, holders)| {
            let who: Vec<String> = holders
                .iter()
                .map(|l| {
                    let store = match &l.host {
                        Some(host) => format!("a shared store, host {host}"),
                        None => "the local store".to_owned(),
                    };
                    format!(
                        "{} {} on {} ({store})",
                        l.owner.container_id, l.owner.ifname, l.network
                    )
                })
                .collect();
            format!(
                "address {ip} is leased in {} stores at once: {}",
                holders.len(),
                who.join(" and ")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::NetworkSpec;

    const BACKENDS: Backends = Backends(&[&oci_macvlan_ipam_etcd::BACKEND]);

    fn check_create(network: &Network, others: &[Network], removed: &[Network]) -> Result<()> {
        super::check_create(BACKENDS, network, others, removed)
    }

    fn network(name: &str, subnet: &str, ipam: &[&str]) -> Network {
        NetworkSpec {
            name: name.to_owned(),
            driver: "macvlan".to_owned(),
            subnets: vec![subnet.to_owned()],
            ipam_options: ipam.iter().map(|s| (*s).to_owned()).collect(),
            backends: BACKENDS,
            ..Default::default()
        }
        .validate(name.to_owned(), "now".to_owned())
        .unwrap()
    }

    /// Each case: the network there, the one created, and the answer.
    #[test]
    fn overlapping_subnets_share_a_store_and_prefixes_do_not_nest() {
        let etcd = "etcd_endpoints=http://10.0.0.5:2379";
        let cases: &[(&[&str], &str, &[&str], &str)] = &[
            (&[], "10.0.0.0/24", &[], "ok"),
            (&[], "10.0.0.128/25", &[etcd], "conflict"),
            (&[etcd], "10.0.0.0/16", &[], "conflict"),
            (&[etcd], "10.0.0.0/24", &[etcd], "ok"),
            (&[], "10.0.1.0/24", &[etcd], "ok"),
            (
                &[etcd, "etcd_prefix=/a"],
                "10.0.0.0/24",
                &[etcd, "etcd_prefix=/b"],
                "conflict",
            ),
            (
                &[etcd, "etcd_prefix=/col"],
                "10.9.0.0/24",
                &[etcd, "etcd_prefix=/col/leases/zz"],
                "nested",
            ),
            (
                &[etcd, "etcd_prefix=/col/leases/zz"],
                "10.9.0.0/24",
                &[etcd, "etcd_prefix=/col"],
                "nested",
            ),
            (
                &[etcd, "etcd_prefix=/col"],
                "10.9.0.0/24",
                &[etcd, "etcd_prefix=/column"],
                "ok",
            ),
        ];
        for (there, subnet, new, want) in cases {
            let others = [network("old", "10.0.0.0/24", there)];
            let answer = match check_create(&network("new", subnet, new), &others, &[]) {
                Ok(()) => "ok",
                Err(Error::SubnetInOtherStore { other, .. }) if other == "old" => "conflict",
                Err(Error::StoresClash { other, .. }) if other == "old" => "nested",
                Err(err) => panic!("{err}"),
            };
            assert_eq!(answer, *want, "{there:?} + {subnet} {new:?}");
        }
        let err = check_create(
            &network("new", "10.0.0.0/25", &[etcd]),
            &[network("old", "10.0.0.0/24", &[])],
            &[],
        )
        .unwrap_err();
        // A network `rm -f` removed: overlapped in no store, its name not taken; apart is fine.
        let gone = [network("gone", "10.0.0.0/24", &[etcd])];
        for (name, subnet, ipam, want) in [
            (
                "new",
                "10.0.0.0/25",
                &[][..],
                "overlaps subnet 10.0.0.0/24 of network gone",
            ),
            (
                "new",
                "10.0.0.0/16",
                &[etcd][..],
                "overlaps subnet 10.0.0.0/24 of network gone",
            ),
            (
                "gone",
                "10.1.0.0/24",
                &[etcd][..],
                "the name gone is still that of network gone",
            ),
            ("new", "10.1.0.0/24", &[][..], "ok"),
        ] {
            let answer = match check_create(&network(name, subnet, ipam), &[], &gone) {
                Ok(()) => "ok".to_owned(),
                Err(err @ Error::RemovedNetworkLeft { .. }) => crate::one_line(&err),
                Err(err) => panic!("{err}"),
            };
            assert!(answer.contains(want), "{name} {subnet}: {answer}");
        }
        insta::assert_snapshot!(crate::one_line(&err), @"subnet 10.0.0.0/25 overlaps subnet 10.0.0.0/24 of network old, whose leases are in this host's local store (this network's would be in etcd http://10.0.0.5:2379 under /oci-macvlan): two stores would hand out one address; use the same store for both");
    }
}
