//! What `verify` finds on the links of a container's DHCP endpoints: an IPv4 address that the
//! recorded lease does not explain (one added by hand, one of an older lease), and a global
//! IPv6 address that the recorded DHCPv6 lease does not (unless the link makes SLAAC addresses,
//! `-o ipv6_slaac=true`; none is judged on an endpoint without a v6 lease). Only a
//! namespace that is still the one the links were made in is looked into.

use std::{net::IpAddr, path::PathBuf};

use oci_macvlan_netlink_core::{Handle, Netns};

use crate::{Liveness, Record};

/// The namespace `record`'s links are in, if it is still the one they were made in.
fn namespace(record: &Record) -> Option<Netns> {
    let expected = record.liveness.as_ref().map(Liveness::netns)?;
    let path = match (&record.netns, record.liveness.as_ref()?.process) {
        (Some(path), _) => path.clone(),
        (None, Some(process)) => PathBuf::from(format!("/proc/{}/ns/net", process.pid)),
        (None, None) => return None,
    };
    let netns = Netns::open_if_exists(path).ok()??;
    (netns.identity().ok()? == expected).then_some(netns)
}

/// One line per address on a DHCP endpoint's link that its recorded lease does not explain.
pub(crate) async fn problems(record: &Record) -> Vec<String> {
    let leased: Vec<_> = record
        .endpoints
        .iter()
        .filter_map(|e| e.dhcp.as_ref().map(|d| (e, d)))
        .collect();
    if leased.is_empty() {
        return Vec::new();
    }
    let Some(netns) = namespace(record) else {
        return Vec::new();
    };
    let Ok(handle) = Handle::open(&netns) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for (endpoint, dhcp) in leased {
        let Ok(Some(link)) = handle.link_by_name(&endpoint.ifname).await else {
            continue;
        };
        if !endpoint.is(&link) {
            continue;
        }
        let Ok(addresses) = handle.global_addresses(&link).await else {
            continue;
        };
        for address in addresses {
            if let IpAddr::V6(v6) = address {
                match &dhcp.v6 {
                    Some(lease6) if !lease6.slaac && v6 != lease6.lease.address => {
                        found.push(format!(
                            "container {} {} on {}: address {address} on the link, which its DHCPv6 lease ({}) does not explain",
                            record.container_id,
                            endpoint.ifname,
                            endpoint.network,
                            lease6.lease.address
                        ));
                    }
                    _ => {}
                }
                continue;
            }
            if address != IpAddr::V4(dhcp.lease.address) {
                found.push(format!(
                    "container {} {} on {}: address {address} on the link, which its DHCP lease ({} from {}) does not explain",
                    record.container_id,
                    endpoint.ifname,
                    endpoint.network,
                    dhcp.lease.address,
                    dhcp.lease.server
                ));
            }
        }
    }
    found
}
