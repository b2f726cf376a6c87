use std::net::IpAddr;

use crate::{
    Error, Lease, Owner, Pool, Result, Txn,
    addr::{from_key, to_key},
};

/// What one interface of one container asks of one network.
#[derive(Debug)]
pub struct Request<'a> {
    /// The network's name.
    pub network: &'a str,
    /// The endpoint asking: a container's interface.
    pub owner: &'a Owner,
    /// The network's pools, in the order their addresses are handed out.
    pub pools: &'a [Pool],
    /// Static addresses asked for (at most one per family); a family with pools and no static
    /// request gets the lowest free address of its first pool that has one.
    pub static_ips: &'a [IpAddr],
    /// Whether the network hands out IPv6 addresses dynamically.
    pub ipv6: bool,
    /// Whether the network's LAN may have a router it was not told about (a network with a
    /// parent link that is not internal): in each pool without a gateway, the first host address
    /// is where that router usually is, so it is never handed out dynamically (a static request
    /// may still take it). Decided from the network at each request, so definitions written
    /// before this rule get it too.
    pub undeclared_router: bool,
}

/// Leases one address per family for `req`, inside the caller's transaction.
///
/// An owner that already holds a lease on the network gets it back (a re-run createRuntime, a
/// missed poststop): never a "duplicate allocation" failure.
pub fn allocate(txn: &mut dyn Txn, req: &Request<'_>) -> Result<Vec<Lease>> {
    let held = txn.owner_leases(req.network, req.owner)?;
    let mut leases = Vec::new();
    for v4 in [true, false] {
        let pools: Vec<&Pool> = req.pools.iter().filter(|p| p.is_ipv4() == v4).collect();
        let wanted = req.static_ips.iter().copied().find(|ip| ip.is_ipv4() == v4);
        if let Some(ip) = wanted
            && !pools.iter().any(|p| p.contains(ip))
        {
            return Err(Error::NoSubnetContains(ip));
        }
        if pools.is_empty() || (!v4 && !req.ipv6 && wanted.is_none()) {
            continue;
        }
        if let Some(lease) = held.iter().find(|l| l.ip.is_ipv4() == v4) {
            match wanted {
                Some(ip) if ip != lease.ip => {
                    return Err(Error::OwnerHoldsOther {
                        container_id: req.owner.container_id.clone(),
                        ifname: req.owner.ifname.clone(),
                        network: req.network.to_owned(),
                        held: lease.ip,
                        requested: ip,
                    });
                }
                _ => leases.push(lease.clone()),
            }
            continue;
        }
        let lease = match wanted {
            Some(ip) => lease_static(txn, req, &pools, ip)?,
            None => lease_dynamic(txn, req, &pools, v4)?,
        };
        txn.insert(&lease)?;
        leases.push(lease);
    }
    Ok(leases)
}

fn lease_static(
    txn: &mut dyn Txn,
    req: &Request<'_>,
    pools: &[&Pool],
    ip: IpAddr,
) -> Result<Lease> {
    // `allocate` checked that some pool contains `ip`.
    let pool = pools
        .iter()
        .find(|p| p.contains(ip))
        .ok_or(Error::NoSubnetContains(ip))?;
    if let Some(reserved) = pool.reservation(ip) {
        return Err(Error::AddressReserved { ip, reserved });
    }
    if let Some(holder) = txn.lease_of(ip)? {
        return Err(Error::AddressInUse {
            ip,
            container_id: holder.owner.container_id,
            ifname: holder.owner.ifname,
            host: holder.host,
        });
    }
    Ok(new_lease(req, pool, ip))
}

fn lease_dynamic(txn: &mut dyn Txn, req: &Request<'_>, pools: &[&Pool], v4: bool) -> Result<Lease> {
    for pool in pools {
        let (lo, hi) = pool.dynamic_bounds();
        if let Some(key) = txn.lowest_free(lo, hi, &pool.reserved_keys(req.undeclared_router))? {
            return Ok(new_lease(req, pool, from_key(key, v4)));
        }
    }
    Err(Error::Exhausted {
        family: if v4 { 4 } else { 6 },
        network: req.network.to_owned(),
        pools: pools
            .iter()
            .map(|p| p.subnet.to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

fn new_lease(req: &Request<'_>, pool: &Pool, ip: IpAddr) -> Lease {
    debug_assert!(pool.contains(ip) && to_key(ip) != 0);
    Lease {
        ip,
        subnet: pool.subnet,
        network: req.network.to_owned(),
        owner: req.owner.clone(),
        host: None,
    }
}
