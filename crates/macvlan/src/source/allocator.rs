//! Our own allocator as an address source: the network's pools, leased in the lease store (the
//! local LMDB store or etcd, through `LeaseStore`) in one retryable transaction that reads what
//! the owner held and allocates. It needs nothing of the link, so it runs before the link is
//! made ([`super::Runs::BeforeLink`]).

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use oci_macvlan_ipam::{Lease, LeaseStore, LeaseStoreExt, Request, Txn, allocate};

use super::{Acquired, Ask, Refused, Taken, unheld::Unheld};
use crate::{Error, Network};

/// Leases the addresses of `ask` (see [`super::Source::acquire`]). The gateway of each is its
/// pool's `--gateway`.
pub(super) fn acquire(store: &mut dyn LeaseStore, ask: &Ask<'_>) -> Result<Taken, Refused> {
    let net = ask.network;
    let leased = store.transaction(|txn| {
        let mut unheld;
        let txn: &mut dyn Txn = if ask.held_before {
            txn
        } else {
            unheld = Unheld(txn);
            &mut unheld
        };
        let held = txn.owner_leases(&net.name, ask.owner)?;
        let leases = allocate(
            txn,
            &Request {
                network: &net.name,
                owner: ask.owner,
                pools: &net.pools,
                static_ips: ask.static_ips,
                ipv6: net.ipv6,
                undeclared_router: net.undeclared_router(),
            },
        )?;
        Ok((held, leases))
    });
    let (held, leases) = leased.map_err(|source| Refused {
        maybe_taken: source.maybe_written(),
        server_lease: None,
        error: Box::new(Error::Lease {
            network: net.name.clone(),
            source: Box::new(source),
        }),
    })?;
    let new: Vec<IpAddr> = leases
        .iter()
        .filter(|l| !held.contains(l))
        .map(|l| l.ip)
        .collect();
    let acquired = leases
        .iter()
        .filter_map(|l| {
            let address = IpNetwork::new(l.ip, l.subnet.prefix()).ok()?;
            let gateway = net
                .pools
                .iter()
                .find(|p| p.contains(l.ip))
                .and_then(|p| p.gateway);
            Some(Acquired {
                address,
                gateway,
                routes: Vec::new(),
                lifetime: None,
            })
        })
        .collect();
    Ok(Taken {
        acquired,
        new,
        dhcp: None,
        stale: Vec::new(),
        checked: None,
    })
}

/// What `verify` finds wrong with a lease of `network`: outside every subnet of the network,
/// outside its own subnet, or a reserved address.
pub(super) fn lease_problem(network: &Network, lease: &Lease) -> Option<String> {
    match network.pools.iter().find(|p| p.subnet == lease.subnet) {
        None => Some(format!(
            "subnet {} is not a subnet of the network",
            lease.subnet
        )),
        Some(pool) if !pool.contains(lease.ip) => {
            Some(format!("outside its subnet {}", lease.subnet))
        }
        Some(pool) => pool
            .reservation(lease.ip)
            .map(|reserved| format!("a reserved address ({reserved})")),
    }
}
