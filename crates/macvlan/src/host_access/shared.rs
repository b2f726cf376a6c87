//! Host access on a network whose leases are in a store several hosts share (etcd). Each host
//! has its own host access address, reserved in its own definition only, which no other host
//! reads: so the address is also a lease in the shared store, held by its host, and every
//! host's allocator passes it by as it passes any lease.
//!
//! The lease's owner is [`HOLDER`] (no container id has a `/`) with the network's host link as
//! its interface: `network create` takes it (refused, naming the holder, when anyone holds the
//! address), `network rm` releases it. It is never a container's: detach, `gc` and `verify`
//! never judge it by a container record. `gc` releases one only when no network defined on
//! its host has it any more (what `network rm -f` leaves when the cluster does not answer),
//! and `verify` reports that, and a shared network whose address has no lease.

use oci_macvlan_ipam::{Lease, LeaseSet, LeaseStore, LeaseStoreExt, Owner};

use super::link_name;
use crate::{Error, Network, Networks, Result, reach::Unreachable};

/// The owner's container id of a host access lease: none of a container (`/` is in no
/// container id), so no detach or `gc` of a container ever releases it.
pub const HOLDER: &str = "/host-access";

/// Whether `lease` is a host's host access address, not a container's.
pub fn is_host_access(lease: &Lease) -> bool {
    lease.owner.container_id == HOLDER
}

/// The owner of `net`'s host access leases: [`HOLDER`] on the network's host link, whose name
/// comes from the network's id (a network created again under its name has another).
pub(crate) fn owner(net: &Network) -> Owner {
    Owner {
        container_id: HOLDER.to_owned(),
        ifname: link_name(&net.id),
    }
}

/// Whether `net`'s host access addresses are leases: it has some and its store is shared.
pub(crate) fn is_shared(net: &Network) -> bool {
    !net.store.is_local() && !net.host_access.is_empty()
}

/// Who holds an address, as an error says it.
pub fn holder(lease: &Lease) -> String {
    let of = match &lease.host {
        Some(host) => format!(" of host {host}"),
        None => String::new(),
    };
    if is_host_access(lease) {
        format!(
            "it is the host access address{of} on network {}",
            lease.network
        )
    } else {
        format!(
            "container {}{of} holds it on network {}",
            lease.owner.container_id, lease.network
        )
    }
}

/// `network create`: takes `net`'s host access addresses as leases in its shared store, all
/// or none, in one transaction. Refused, naming the holder, when any is leased already (by a
/// container or another host's host access, of any network of the store).
pub(crate) fn take(store: &mut dyn LeaseStore, net: &Network) -> Result<()> {
    if !is_shared(net) {
        return Ok(());
    }
    let owner = owner(net);
    let leases: Vec<Lease> = net
        .host_access
        .iter()
        .filter_map(|ip| {
            let pool = net.pools.iter().find(|p| p.contains(*ip))?;
            Some(Lease {
                ip: *ip,
                subnet: pool.subnet,
                network: net.name.clone(),
                owner: owner.clone(),
                host: None,
            })
        })
        .collect();
    let held = store
        .transaction(|txn| {
            for lease in &leases {
                if let Some(held) = txn.lease_of(lease.ip)? {
                    return Ok(Some(held));
                }
            }
            for lease in &leases {
                txn.insert(lease)?;
            }
            Ok(None)
        })
        .map_err(Error::store)?;
    match held {
        Some(held) => Err(Error::HostAccessInUse {
            ip: held.ip,
            network: net.name.clone(),
            holder: holder(&held),
        }),
        None => Ok(()),
    }
}

/// `network rm` (and a `network create` that fails after [`take`]): releases `net`'s host
/// access leases; returns them.
pub(crate) fn release(store: &mut dyn LeaseSet, net: &Network) -> Result<Vec<Lease>> {
    if !is_shared(net) {
        return Ok(Vec::new());
    }
    store.release(&net.name, &owner(net)).map_err(Error::store)
}

/// Whether a host access lease of this host is one that a network defined here holds.
fn kept(lease: &Lease, defined: &[Network]) -> bool {
    defined.iter().any(|net| {
        is_shared(net)
            && net.name == lease.network
            && owner(net) == lease.owner
            && net.host_access.contains(&lease.ip)
    })
}

/// `gc`: releases this host's host access leases that no network defined here holds (a
/// network removed with `rm -f` while its cluster did not answer); one line each. Under the
/// definitions' hold, so a `network create` that took its lease and has not yet written its
/// definition is waited for.
pub(crate) fn release_left(
    store: &mut dyn LeaseSet,
    networks: &Networks,
    leases: &[Lease],
) -> Result<Vec<String>> {
    let left = |defined: &[Network]| -> Vec<&Lease> {
        leases
            .iter()
            .filter(|l| is_host_access(l) && store.is_ours(l) && !kept(l, defined))
            .collect()
    };
    if left(&networks.list()?).is_empty() {
        return Ok(Vec::new());
    }
    let _hold = networks.hold()?;
    let mut lines = Vec::new();
    for lease in left(&networks.list()?) {
        let released = store
            .release_ips(&lease.owner, &[lease.ip])
            .map_err(Error::store)?;
        if !released.is_empty() {
            lines.push(format!(
                "released host access address {} of removed network {} (its lease was left in its store)",
                lease.ip, lease.network
            ));
        }
    }
    Ok(lines)
}

/// `verify`: this host's host access leases that no network defined here holds, and the host
/// access addresses of shared networks (whose cluster answered) that have no lease of theirs.
pub(crate) fn problems(
    store: &dyn LeaseSet,
    networks: &Networks,
    leases: &[Lease],
    unreachable: &[Unreachable],
) -> Result<Vec<String>> {
    let defined = networks.list()?;
    let mut out = Vec::new();
    for lease in leases {
        if is_host_access(lease) && store.is_ours(lease) && !kept(lease, &defined) {
            out.push(format!(
                "host access lease {} on {}: no network defined here has it (gc releases it)",
                lease.ip, lease.network
            ));
        }
    }
    for net in defined.iter().filter(|n| is_shared(n)) {
        if crate::reach::unreachable_of(unreachable, net).is_some() {
            continue;
        }
        let owner = owner(net);
        for ip in &net.host_access {
            let ours = |l: &&Lease| l.ip == *ip && l.owner == owner && store.is_ours(l);
            if leases.iter().any(|l| ours(&l)) {
                continue;
            }
            let other = leases.iter().find(|l| l.ip == *ip).map_or_else(
                || "other hosts may hand it out (remove and create the network again)".to_owned(),
                holder,
            );
            out.push(format!(
                "host access address {ip} of network {} has no lease in its shared store: {other}",
                net.name
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use oci_macvlan_ipam::{LmdbStore, Locator, StoreChoice};

    use super::*;
    use crate::NetworkSpec;

    /// A network on a shared store with host access `ip` (the store under test stands in for
    /// the cluster: what is judged is the lease, not the transport).
    fn shared(name: &str, id: &str, ip: &str) -> Network {
        let mut net = NetworkSpec {
            name: name.to_owned(),
            driver: "macvlan".to_owned(),
            subnets: vec!["10.0.0.0/24".to_owned()],
            options: vec![format!("host_access={ip}")],
            ..Default::default()
        }
        .validate(id.repeat(64), "now".to_owned())
        .unwrap();
        let cluster = serde_json::json!({"endpoints": ["http://127.0.0.1:9"], "prefix": "/p"});
        net.store = StoreChoice::Shared(Locator::new("etcd", cluster));
        net
    }

    #[test]
    fn a_host_access_lease_is_taken_once_kept_while_defined_and_released_when_left() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LmdbStore::open(&dir.path().join("state")).unwrap();
        let networks = Networks::new(&dir.path().join("config"));
        let a = shared("a", "a", "10.0.0.3");
        take(&mut store, &a).unwrap();
        let leases = store.all_leases().unwrap();
        assert_eq!(leases.len(), 1);
        assert!(is_host_access(&leases[0]) && leases[0].owner.ifname.starts_with("ha-aaaa"));

        // Another network (another host's, or this one's) may not take it.
        let err = take(&mut store, &shared("b", "b", "10.0.0.3")).unwrap_err();
        assert_eq!(
            crate::one_line(&err),
            "-o host_access 10.0.0.3 of network b is in use: it is the host access address on network a"
        );
        assert_eq!(store.all_leases().unwrap().len(), 1, "nothing of b's taken");

        // Defined: kept by gc, not a problem for verify.
        networks.create(&a).unwrap();
        let leases = store.all_leases().unwrap();
        assert!(
            release_left(&mut store, &networks, &leases)
                .unwrap()
                .is_empty()
        );
        assert!(
            problems(&store, &networks, &leases, &[])
                .unwrap()
                .is_empty()
        );

        // Gone (`rm -f` left the lease): verify names it, gc releases it, and then verify
        // names nothing of it.
        networks.remove("a").unwrap();
        assert_eq!(problems(&store, &networks, &leases, &[]).unwrap().len(), 1);
        let lines = release_left(&mut store, &networks, &leases).unwrap();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(store.all_leases().unwrap().is_empty());

        // Defined without its lease (an earlier build's network): verify says so.
        networks.create(&a).unwrap();
        let problems = problems(&store, &networks, &[], &[]).unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("host access address 10.0.0.3 of network a has no lease"));
    }
}
