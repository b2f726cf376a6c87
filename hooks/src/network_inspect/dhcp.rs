//! What `inspect` adds for a network of the DHCP source (`--ipam-driver dhcp`): the IPAM
//! driver and its options, the `--subnet` check, and per container the lease its record keeps
//! (`DhcpLease`: address, server, router, routes, name servers, domain, obtained, T1, T2,
//! expiry, client identifier). Additive: the keys of Docker's shape stay as they are.

use std::time::SystemTime;

use oci_macvlan_macvlan::{
    Network, Records,
    source::{Dhcp6Record, DhcpRecord},
};
use serde_json::{Value, json};

fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The lease as `inspect` shows it.
pub fn lease_view(record: &DhcpRecord) -> Value {
    let lease = &record.lease;
    let routes: Vec<String> = lease
        .routes
        .iter()
        .map(|r| format!("{}/{} via {}", r.destination, r.prefix, r.gateway))
        .collect();
    let dns: Vec<String> = lease.dns.iter().map(ToString::to_string).collect();
    json!({
        "Address": format!("{}/{}", lease.address, lease.prefix),
        "Server": lease.server.to_string(),
        "Router": lease.router.map(|r| r.to_string()),
        "Routes": routes,
        "Dns": dns,
        "Domain": lease.domain,
        "Obtained": time(lease.obtained),
        "T1": time(lease.t1),
        "T2": time(lease.t2),
        "Expiry": time(lease.expiry),
        "ClientId": record.client_id,
        "Hostname": record.hostname,
        "V6": record.v6.as_ref().map(lease6_view),
    })
}

/// The DHCPv6 lease beside it (`--ipv6`), as `inspect` shows it.
fn lease6_view(record: &Dhcp6Record) -> Value {
    let lease = &record.lease;
    let server: Vec<String> = lease.server_id.iter().map(|b| format!("{b:02x}")).collect();
    let dns: Vec<String> = lease.dns.iter().map(ToString::to_string).collect();
    json!({
        "Address": format!("{}/{}", lease.address, record.prefix),
        "ServerId": server.join(":"),
        "Unicast": lease.unicast.map(|u| u.to_string()),
        "Dns": dns,
        "Obtained": time(lease.obtained),
        "T1": time(lease.t1),
        "T2": time(lease.t2),
        "PreferredUntil": time(lease.preferred_until),
        "Expiry": time(lease.expiry),
        "Duid": record.duid,
        "Iaid": record.iaid,
    })
}

/// Adds the DHCP source's part to `view`, the network's `inspect` output.
pub fn add(network: &Network, records: &Records, view: &mut Value) {
    let Some(dhcp) = network.dhcp else {
        return;
    };
    view["IPAM"]["Driver"] = json!("dhcp");
    view["IPAM"]["Options"] = json!({
        "dhcp_timeout": humantime::format_duration(dhcp.timeout()).to_string(),
    });
    let subnets: Vec<Value> = dhcp
        .subnet
        .map(|s| s.to_string())
        .into_iter()
        .chain(dhcp.subnet6.map(|s| s.to_string()))
        .map(|s| json!({ "Subnet": s }))
        .collect();
    if !subnets.is_empty() {
        view["IPAM"]["Config"] = json!(subnets);
    }
    if dhcp.ipv6 {
        view["IPAM"]["Options"]["ipv6_slaac"] = json!(dhcp.slaac.to_string());
    }
    let Some(containers) = view["Containers"].as_object_mut() else {
        return;
    };
    for entry in containers.values_mut() {
        let (Some(id), Some(ifname)) = (entry["Name"].as_str(), entry["Interface"].as_str()) else {
            continue;
        };
        let Ok(Some(record)) = records.read(id) else {
            continue;
        };
        if let Some(lease) = record
            .endpoints
            .iter()
            .find(|e| e.network == network.name && e.ifname == ifname)
            .and_then(|e| e.dhcp.as_ref())
        {
            entry["DhcpLease"] = lease_view(lease);
        }
    }
}
