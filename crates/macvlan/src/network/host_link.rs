//! A network's host link (`-o host_access`, see `crate::host_access`) as its definition says
//! it: its name, its MAC, and the host's addresses reserved in the pools.

use std::net::IpAddr;

use oci_macvlan_ipam::Pool;
use oci_macvlan_netlink_core::MacAddr;

use super::invalid;
use crate::{Network, Result};

/// The name under which a host access address is reserved in its pool: never leased, refused
/// as a static address, and a lease on it is what `verify` reports, as for any aux address.
pub(crate) const AUX_NAME: &str = "host_access";

/// The host-side link of the network with id `network_id`: `ha-` and its first 12 characters
/// (15 bytes, the kernel's limit), stable for the network's life.
pub fn link_name(network_id: &str) -> String {
    format!("ha-{}", network_id.get(..12).unwrap_or(network_id))
}

impl Network {
    /// The MAC of the network's host link (`None`: a network without host access, or whose driver
    /// gives its links their parent's MAC): derived from the network's name and the link's, so a
    /// link made again answers with the MAC the containers' neighbour tables hold. Seeded with a
    /// '/', which no container id has: a container named like the link never gets it by default.
    pub(crate) fn host_link_mac(&self) -> Result<Option<MacAddr>> {
        match self.host_link() {
            Some(name) => self
                .driver()
                .mac(&self.name, &format!("{name}/host"), None)
                .map(crate::mac::Mac::own),
            None => Ok(None),
        }
    }

    /// The name of the network's host-side link, when it has host access.
    pub fn host_link(&self) -> Option<String> {
        (!self.host_access.is_empty()).then(|| link_name(&self.id))
    }

    /// Whether the host routes to a container address `ip` through its host link: only in a
    /// family the link has an address of (without one, the host could not be answered, and the
    /// kernel refuses an IPv6 route on a link with IPv6 off).
    pub(crate) fn host_routes_to(&self, ip: IpAddr) -> bool {
        self.host_access.iter().any(|a| a.is_ipv4() == ip.is_ipv4())
    }
}

/// Parses `-o host_access=IP[,IP6]` and reserves each address in the pool that contains it.
/// Refused: an address outside every subnet, a reserved one (network address, broadcast,
/// gateway, an aux address), two of one family.
pub(crate) fn reserve(value: Option<&String>, pools: &mut [Pool]) -> Result<Vec<IpAddr>> {
    const FLAG: &str = "-o host_access";
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let mut addresses: Vec<IpAddr> = Vec::new();
    for item in value.split(',') {
        let item = item.trim();
        if let Some((address, prefix)) = item.split_once('/')
            && address.parse::<IpAddr>().is_ok()
        {
            return Err(invalid(
                FLAG,
                item,
                &format!(
                    "give the address without /{prefix}: the host link holds it alone, and the network's --subnet gives the rest"
                ),
            ));
        }
        let ip: IpAddr = item
            .parse()
            .map_err(|_| invalid(FLAG, item, "not an IPv4 or IPv6 address"))?;
        if addresses.iter().any(|a| a.is_ipv4() == ip.is_ipv4()) {
            return Err(invalid(
                FLAG,
                value,
                "the host takes at most one address per family",
            ));
        }
        let Some(pool) = pools.iter_mut().find(|p| p.contains(ip)) else {
            return Err(invalid(FLAG, item, "it is outside every --subnet"));
        };
        if let Some(reserved) = pool.reservation(ip) {
            return Err(invalid(
                FLAG,
                item,
                &format!("it is the {reserved} of {}", pool.subnet),
            ));
        }
        if pool.aux_addresses.contains_key(AUX_NAME) {
            return Err(invalid(
                "--aux-address",
                AUX_NAME,
                "the name is the one -o host_access reserves its address under",
            ));
        }
        pool.aux_addresses.insert(AUX_NAME.to_owned(), ip);
        addresses.push(ip);
    }
    Ok(addresses)
}
