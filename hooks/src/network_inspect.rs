//! `oci-macvlan network inspect`: a network's definition, its containers' endpoints and what
//! its pools have left, in Docker's JSON shape.

mod dhcp;

use std::collections::BTreeMap;

use oci_macvlan_ipam::{Lease, Owner, Usage};
use oci_macvlan_macvlan::{
    self as macvlan, EndpointFacts, LanRoute, Network, Networks, Records, StoreState, host_access,
};
use oci_macvlan_netlink_core::Handle;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::{
    Context,
    cli::InspectArgs,
    error::{Error, Result},
    format::Format,
    network_cmd::print,
};

pub(crate) fn inspect(ctx: &Context, networks: &Networks, args: &InspectArgs) -> Result<()> {
    // A bad template is said before anything is read.
    let format = args.format.as_deref().map(Format::parse).transpose()?;
    let records = Records::new(&ctx.state_dir);
    let mut views = Vec::new();
    // As Docker: each network found is shown, then the first error (the others on stderr).
    let mut first_error = None;
    for given in &args.names {
        match view(ctx, networks, &records, given) {
            Ok(view) => views.push(view),
            Err(err) => {
                if first_error.is_some() {
                    eprintln!("oci-macvlan: error: {}", crate::error::one_line(&err));
                }
                first_error.get_or_insert(err);
            }
        }
    }
    if !views.is_empty() || first_error.is_none() {
        let text = match format {
            Some(format) => format.render(&views, None)?,
            None => format!(
                "{}\n",
                serde_json::to_string_pretty(&views).unwrap_or_default()
            ),
        };
        print(format_args!("{text}"))?;
    }
    first_error.map_or(Ok(()), Err)
}

/// What `inspect` shows of the network `given` (a name, an id or an id prefix): its definition
/// and the core's status of it ([`macvlan::network_status`]). A lease store that cannot be read
/// (an etcd cluster that does not answer, say) leaves the definition shown, without containers
/// and usage, and `"Store": {"State": "unreachable", "Error": …}` saying why.
fn view(ctx: &Context, networks: &Networks, records: &Records, given: &str) -> Result<Value> {
    let name = networks.resolve(given)?;
    let network = networks.load(&name)?;
    let status = macvlan::network_status(&ctx.stores(), &network, records)?;
    let routes = ctx.block_on(async {
        let host = Handle::current().map_err(Error::HostNetlink)?;
        lan_routes(&host, &network).await
    })??;
    let store = match &status.store {
        StoreState::Ok => json!({"State": "ok"}),
        StoreState::Unreachable(why) => json!({"State": "unreachable", "Error": why}),
    };
    let mut view = inspect_view(
        &network,
        &status.leases,
        &status.endpoints,
        &status.usage,
        &routes,
    );
    view["Store"] = store;
    dhcp::add(&network, &status.leases, records, &mut view);
    if matches!(status.store, StoreState::Ok) {
        dhcp::add_leaseless(&network, records, &mut view);
    }
    Ok(view)
}

/// A stable id for a container's endpoint on a network, in the shape of Docker's endpoint ids:
/// 64 hex digits, the SHA-256 of the network's id, the container's id and its interface.
pub fn endpoint_id(network_id: &str, host: Option<&str>, owner: &Owner) -> String {
    // Ids are unique per host: a shared store's endpoints are told apart by their host too.
    let host = host.map(|h| format!("\0{h}")).unwrap_or_default();
    let digest = Sha256::digest(
        format!(
            "{network_id}\0{}\0{}{host}",
            owner.container_id, owner.ifname
        )
        .as_bytes(),
    );
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The routes the LAN's router needs to reach `network`'s subnets (ipvlan L3), via the host's
/// addresses on its parent as the kernel has them now (none when the parent is missing).
pub(crate) async fn lan_routes(host: &Handle, network: &Network) -> Result<Vec<LanRoute>> {
    if network.lan_routes(&[]).is_empty() {
        return Ok(Vec::new());
    }
    let parent = host
        .link_by_name(network.parent.as_str())
        .await
        .map_err(Error::HostNetlink)?;
    let addresses = match parent {
        Some(link) => host
            .global_addresses(&link)
            .await
            .map_err(Error::HostNetlink)?,
        None => Vec::new(),
    };
    Ok(network.lan_routes(&addresses))
}

/// `inspect` output in Docker's shape, so scripts written for `docker network inspect` work:
/// `Containers` keyed by endpoint id ([`endpoint_id`]), each with `Name` (the name its front
/// door recorded, a CNI runtime's pod as `namespace/name`; else the container's id),
/// `EndpointID`, `MacAddress` (from the records' `facts`, keyed by container id and interface;
/// empty for a passthru link, which has its parent's), `IPv4Address`, `IPv6Address` and,
/// beyond Docker, `Interface` and, for a container attached through the CNI plugin, `CNI`:
/// its `ContainerID` and `IfName` as the runtime names them (what its GC lists as valid);
/// plus `Usage`: per subnet, the addresses this network's containers hold and how many dynamic
/// addresses are left (`usage` is in the order of the network's pools); and, for a network the
/// host routes (ipvlan L3), `LanRouterRoutes`: per subnet, the route the LAN's router needs
/// (`ip route add SUBNET via VIA`; `Via` is null while the parent has no address of its family).
pub fn inspect_view(
    net: &Network,
    leases: &[Lease],
    facts: &BTreeMap<(String, String), EndpointFacts>,
    usage: &[Usage],
    routes: &[LanRoute],
) -> Value {
    let config: Vec<Value> = net
        .pools
        .iter()
        .map(|pool| {
            let mut entry = Map::new();
            entry.insert("Subnet".into(), json!(pool.subnet.to_string()));
            if let Some(range) = pool.ip_range {
                entry.insert("IPRange".into(), json!(range.to_string()));
            }
            if let Some(gateway) = pool.gateway {
                entry.insert("Gateway".into(), json!(gateway.to_string()));
            }
            if !pool.aux_addresses.is_empty() {
                entry.insert("AuxiliaryAddresses".into(), json!(pool.aux_addresses));
            }
            Value::Object(entry)
        })
        .collect();
    let mut containers = Map::new();
    // The hosts' host access leases of a shared network are no container's: `HostAccess`
    // lists them.
    let mut held = Vec::new();
    for lease in leases {
        if host_access::shared::is_host_access(lease) {
            let mut entry = json!({ "Address": lease.ip.to_string() });
            if let Some(host) = &lease.host {
                entry["Host"] = json!(host);
            }
            held.push(entry);
            continue;
        }
        let key = endpoint_id(&net.id, lease.host.as_deref(), &lease.owner);
        let entry = containers.entry(key.clone()).or_insert_with(|| {
            let known = facts.get(&(lease.owner.container_id.clone(), lease.owner.ifname.clone()));
            container_entry(key, &lease.owner, lease.host.as_deref(), known)
        });
        let field = if lease.ip.is_ipv4() {
            "IPv4Address"
        } else {
            "IPv6Address"
        };
        entry[field] = json!(format!("{}/{}", lease.ip, lease.subnet.prefix()));
    }
    let usage: Vec<Value> = net
        .pools
        .iter()
        .zip(usage)
        .map(|(pool, usage)| {
            let in_use: Vec<String> = leases
                .iter()
                .filter(|l| l.subnet == pool.subnet)
                .map(|l| l.ip.to_string())
                .collect();
            json!({
                "Subnet": pool.subnet.to_string(),
                "InUse": in_use,
                "DynamicTotal": big_number(usage.dynamic_total),
                "DynamicAvailable": big_number(usage.dynamic_available),
            })
        })
        .collect();
    let mut out = json!({
        "Name": net.name,
        "Id": net.id,
        "Created": net.created,
        "Scope": "local",
        "Driver": net.driver().name(),
        "EnableIPv6": net.ipv6,
        "IPAM": {
            "Driver": "default",
            "Options": oci_macvlan_stores::HostStores::ipam_options(&net.store),
            "Config": config,
        },
        "Internal": net.internal,
        "Containers": containers,
        "Options": net.options,
        "Labels": net.labels,
        "Usage": usage,
    });
    if !routes.is_empty() {
        out["LanRouterRoutes"] = json!(routes);
    }
    if let Some(link) = net.host_link() {
        let addresses: Vec<String> = net.host_access.iter().map(ToString::to_string).collect();
        out["HostAccess"] = json!({ "Addresses": addresses, "Link": link });
    }
    if !held.is_empty() {
        out["HostAccessLeases"] = json!(held);
    }
    if let macvlan::driver::Options::Macvlan(options) = &net.driver
        && !options.source_macs.is_empty()
    {
        let macs: Vec<String> = options.source_macs.iter().map(|m| m.to_string()).collect();
        out["SourceMacs"] = json!(macs);
    }
    out
}

/// A container's entry under `Containers` (its endpoint `key`, of `owner` on `host`, with what
/// its record keeps of it), no address yet.
fn container_entry(
    key: String,
    owner: &Owner,
    host: Option<&str>,
    known: Option<&EndpointFacts>,
) -> Value {
    let mac = known.and_then(|f| f.mac.clone()).unwrap_or_default();
    let name = known
        .and_then(|f| f.name.as_ref())
        .map_or(owner.container_id.as_str(), |n| n.as_str());
    let mut entry = json!({
        "Name": name,
        "EndpointID": key,
        "MacAddress": mac,
        "IPv4Address": "",
        "IPv6Address": "",
        "Interface": owner.ifname,
    });
    if let Some(host) = host {
        entry["Host"] = json!(host);
    }
    if known.is_some_and(|f| f.cni) {
        entry["CNI"] = json!({
            "ContainerID": owner.container_id,
            "IfName": owner.ifname,
        });
    }
    entry
}

/// A count as a JSON number while it fits in 64 bits (what JSON readers handle), as a decimal
/// string beyond (the dynamic range of an IPv6 subnet larger than a /64).
fn big_number(n: u128) -> Value {
    match u64::try_from(n) {
        Ok(n) => json!(n),
        Err(_) => json!(n.to_string()),
    }
}

#[cfg(test)]
#[path = "network_inspect/tests.rs"]
mod tests;
