//! `oci-macvlan network create | inspect | rm | prune` (`ls` is in network_ls.rs, `connect`
//! and `disconnect` in connect.rs).

use std::{
    collections::BTreeMap,
    io::{BufRead, Read, Write},
};

use oci_macvlan_ipam::{Lease, LeaseStoreExt, Owner, Usage};
use oci_macvlan_macvlan::{self as macvlan, LanRoute, Network, NetworkSpec, Networks, Records};
use oci_macvlan_netlink_core::Handle;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::{
    Context,
    cli::{CreateArgs, InspectArgs, LogLevel, NetworkCommand, PruneArgs},
    connect,
    error::{Error, Result},
    format::Format,
    journal::Invocation,
    network_ls, stores,
};

pub fn run(ctx: &Context, command: NetworkCommand) -> Result<()> {
    let networks = Networks::new(&ctx.config_dir);
    match command {
        NetworkCommand::Create(args) => create(ctx, &networks, args),
        NetworkCommand::Ls(args) => network_ls::ls(&networks, &args),
        NetworkCommand::Inspect(args) => inspect(ctx, &networks, &args),
        NetworkCommand::Rm { names } => rm(ctx, &networks, &names),
        NetworkCommand::Prune(args) => prune(ctx, &networks, &args),
        NetworkCommand::Connect(args) => {
            journaled(ctx, |inv| connect::connect(ctx, &networks, &args, inv))
        }
        NetworkCommand::Disconnect(args) => {
            journaled(ctx, |inv| connect::disconnect(ctx, &args, inv))
        }
    }
}

/// Runs `f` with a journal record, as a hook is: `connect` and `disconnect` change what a
/// container holds, and the journal is where an operator reads what happened to it.
fn journaled(ctx: &Context, f: impl FnOnce(&mut Invocation) -> Result<()>) -> Result<()> {
    let mut invocation = Invocation::start(None);
    let result = f(&mut invocation);
    invocation.record(&ctx.state_dir, &result);
    result
}

fn create(ctx: &Context, networks: &Networks, args: CreateArgs) -> Result<()> {
    let spec = NetworkSpec {
        name: args.name,
        driver: args.driver,
        subnets: args.subnet,
        gateways: args.gateway,
        ip_ranges: args.ip_range,
        aux_addresses: args.aux_address,
        ipv6: args.ipv6,
        internal: args.internal,
        options: args.opt,
        ipam_options: args.ipam_opt,
    };
    // A first create makes the definitions' dir (for its lock): a failed one takes it back.
    let dir = ctx.config_dir.join("networks");
    let dir_existed = dir.exists();
    let mut store = stores::for_ipam_options(ctx, &spec.ipam_options)?;
    let created = ctx.block_on(async {
        let host = Handle::current().map_err(Error::HostNetlink)?;
        match macvlan::create_network(&host, networks, store.as_mut(), &spec).await {
            Ok(network) => Ok(network),
            Err(macvlan::Error::ParentLink(err)) if err.is_not_found() => {
                Err(parent_missing(&host, macvlan::Error::ParentLink(err)).await)
            }
            Err(err) => Err(err.into()),
        }
    })?;
    let network = match created {
        Ok(network) => network,
        Err(err) => {
            if !dir_existed {
                let _ = std::fs::remove_file(dir.join(".lock"));
                let _ = std::fs::remove_dir(&dir);
            }
            return Err(err);
        }
    };
    if let Some(warning) = no_gateway_warning(&network) {
        if ctx.log_level >= LogLevel::Warn {
            eprintln!("oci-macvlan: warning: {warning}");
        }
    }
    print(format_args!("{}\n", network.id))
}

/// A missing parent, with where it was looked for: the namespace `network create` runs in (a
/// parent is another namespace's link more often than a typo) and the links that are there.
async fn parent_missing(host: &Handle, missing: macvlan::Error) -> Error {
    let links = match host.links().await {
        Ok(links) => links
            .into_iter()
            .map(|l| l.name)
            .collect::<Vec<_>>()
            .join(", "),
        Err(_) => "unknown (they cannot be listed)".to_owned(),
    };
    Error::ParentMissing {
        missing: Box::new(missing),
        netns: this_netns(),
        links,
    }
}

/// This process's network namespace, as a person knows it: the host's (pid 1's), one named
/// under /run/netns (`ip netns`), or its inode.
fn this_netns() -> String {
    use std::os::unix::fs::MetadataExt;
    let id = |path: &std::path::Path| std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
    let Some(ours) = id(std::path::Path::new("/proc/self/ns/net")) else {
        return "this process's network namespace".to_owned();
    };
    if id(std::path::Path::new("/proc/1/ns/net")) == Some(ours) {
        return "the host's network namespace".to_owned();
    }
    let named = std::fs::read_dir("/run/netns").ok().and_then(|dir| {
        dir.filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|path| id(path) == Some(ours))
    });
    match named {
        Some(path) => format!("network namespace {}", path.display()),
        None => format!("network namespace net:[{}] (not pid 1's)", ours.1),
    }
}

/// What `network create` says when a subnet of a network that reaches a LAN has no gateway:
/// its containers get no default route from it, and its first host address, where the LAN's
/// router usually is, is never handed out dynamically.
pub fn no_gateway_warning(network: &Network) -> Option<String> {
    let (subnets, kept): (Vec<String>, Vec<String>) = network
        .pools_without_gateway()
        .map(|p| (p.subnet.to_string(), p.first_host().to_string()))
        .unzip();
    if subnets.is_empty() {
        return None;
    }
    Some(format!(
        "no --gateway for {}: containers get no default route from network {}; {} \
         (where a LAN's router usually is) will not be handed out dynamically",
        subnets.join(", "),
        network.name,
        kept.join(", ")
    ))
}

fn inspect(ctx: &Context, networks: &Networks, args: &InspectArgs) -> Result<()> {
    // A bad template is said before anything is read.
    let format = args.format.as_deref().map(Format::parse).transpose()?;
    let records = Records::new(&ctx.state_dir);
    let mut views = Vec::new();
    for name in &args.names {
        let network = networks.load(name)?;
        let mut store = stores::for_networks(ctx, &[&network], true)?;
        let leases = store.network_leases(name).map_err(macvlan::Error::store)?;
        let usage = store
            .read(|view| {
                network
                    .pools
                    .iter()
                    .map(|p| p.usage(view, network.undeclared_router()))
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(macvlan::Error::store)?;
        let routes = ctx.block_on(async {
            let host = Handle::current().map_err(Error::HostNetlink)?;
            lan_routes(&host, &network).await
        })??;
        let macs = recorded_macs(&records, &leases);
        views.push(inspect_view(&network, &leases, &macs, &usage, &routes));
    }
    let text = match format {
        Some(format) => format.render(&views, None)?,
        None => format!(
            "{}\n",
            serde_json::to_string_pretty(&views).unwrap_or_default()
        ),
    };
    print(format_args!("{text}"))
}

/// The MAC each endpoint of `leases` was given, from its container's record: keyed by
/// (container id, interface). An endpoint whose record is gone or unreadable has none (its
/// lease still shows).
fn recorded_macs(records: &Records, leases: &[Lease]) -> BTreeMap<(String, String), String> {
    let mut macs = BTreeMap::new();
    let mut ids: Vec<&str> = leases
        .iter()
        .map(|l| l.owner.container_id.as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        let Ok(Some(record)) = records.read(id) else {
            continue;
        };
        for ep in record.endpoints {
            if let Some(mac) = ep.mac {
                macs.insert((id.to_owned(), ep.ifname), mac.to_string());
            }
        }
    }
    macs
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
/// `Containers` keyed by endpoint id ([`endpoint_id`]), each with `Name` (the container's id:
/// containers have no other name here), `EndpointID`, `MacAddress` (from `macs`, keyed by
/// container id and interface; empty for a passthru link, which has its parent's),
/// `IPv4Address`, `IPv6Address` and, beyond Docker, `Interface`; plus `Usage`: per subnet, the addresses this network's containers hold and how many dynamic
/// addresses are left (`usage` is in the order of the network's pools); and, for a network the
/// host routes (ipvlan L3), `LanRouterRoutes`: per subnet, the route the LAN's router needs
/// (`ip route add SUBNET via VIA`; `Via` is null while the parent has no address of its family).
pub fn inspect_view(
    net: &Network,
    leases: &[Lease],
    macs: &BTreeMap<(String, String), String>,
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
    for lease in leases {
        let key = endpoint_id(&net.id, lease.host.as_deref(), &lease.owner);
        let entry = containers.entry(key.clone()).or_insert_with(|| {
            let mac = macs
                .get(&(lease.owner.container_id.clone(), lease.owner.ifname.clone()))
                .cloned()
                .unwrap_or_default();
            let mut entry = json!({
                "Name": lease.owner.container_id,
                "EndpointID": key,
                "MacAddress": mac,
                "IPv4Address": "",
                "IPv6Address": "",
                "Interface": lease.owner.ifname,
            });
            if let Some(host) = &lease.host {
                entry["Host"] = json!(host);
            }
            entry
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
            "Options": net.etcd.as_ref().map(|etcd| etcd.options()).unwrap_or_default(),
            "Config": config,
        },
        "Internal": net.internal,
        "Containers": containers,
        "Options": net.options,
        "Labels": {},
        "Usage": usage,
    });
    if !routes.is_empty() {
        out["LanRouterRoutes"] = json!(routes);
    }
    if let Some(link) = net.host_link() {
        let addresses: Vec<String> = net.host_access.iter().map(ToString::to_string).collect();
        out["HostAccess"] = json!({ "Addresses": addresses, "Link": link });
    }
    if let macvlan::driver::Options::Macvlan(options) = &net.driver {
        if !options.source_macs.is_empty() {
            let macs: Vec<String> = options.source_macs.iter().map(|m| m.to_string()).collect();
            out["SourceMacs"] = json!(macs);
        }
    }
    out
}

/// A count as a JSON number while it fits in 64 bits (what JSON readers handle), as a decimal
/// string beyond (the dynamic range of an IPv6 subnet larger than a /64).
fn big_number(n: u128) -> Value {
    match u64::try_from(n) {
        Ok(n) => json!(n),
        Err(_) => json!(n.to_string()),
    }
}

fn rm(ctx: &Context, networks: &Networks, names: &[String]) -> Result<()> {
    let mut first_error = None;
    for name in names {
        // The store of the network's definition; one that does not load is for
        // `remove_network` to report, with the local store.
        let definition: Vec<Network> = networks.load(name).into_iter().collect();
        let removed = stores::for_networks(ctx, &definition.iter().collect::<Vec<_>>(), true)
            .and_then(|mut store| {
                ctx.block_on(async {
                    let host = Handle::current().map_err(Error::HostNetlink)?;
                    Ok::<_, Error>(
                        macvlan::remove_network(&host, networks, store.as_mut(), name).await?,
                    )
                })?
            });
        match removed {
            Ok(_) => print(format_args!("{name}\n"))?,
            Err(err) => {
                if names.len() > 1 {
                    eprintln!("oci-macvlan: error: {}", crate::error::one_line(&err));
                }
                first_error.get_or_insert(err);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Removes every network no container holds an address on, each as `network rm` would (under
/// the networks' lock: one that a container joins meanwhile is kept). Asks first unless
/// `--force`, as Docker does.
fn prune(ctx: &Context, networks: &Networks, args: &PruneArgs) -> Result<()> {
    if !args.force {
        eprint!(
            "WARNING! This will remove all networks not used by at least one container.\n\
             Are you sure you want to continue? [y/N] "
        );
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .take(64)
            .read_line(&mut answer)
            .map_err(Error::Prompt)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "Yes") {
            return Ok(());
        }
    }
    let mut deleted = Vec::new();
    for network in networks.list()? {
        let mut store = stores::for_networks(ctx, &[&network], true)?;
        let removed = ctx.block_on(async {
            let host = Handle::current().map_err(Error::HostNetlink)?;
            Ok::<_, Error>(
                macvlan::remove_network(&host, networks, store.as_mut(), &network.name).await,
            )
        })??;
        match removed {
            Ok(_) => deleted.push(network.name),
            Err(macvlan::Error::NetworkInUse { .. }) => {}
            Err(err) => return Err(err.into()),
        }
    }
    if deleted.is_empty() {
        return Ok(());
    }
    print(format_args!("Deleted Networks:\n{}\n", deleted.join("\n")))
}

pub(crate) fn print(args: std::fmt::Arguments<'_>) -> Result<()> {
    std::io::stdout()
        .lock()
        .write_fmt(args)
        .map_err(Error::Stdout)
}

#[cfg(test)]
mod tests {
    use oci_macvlan_ipam::{Owner, Request, allocate};

    use super::*;

    fn network(args: &[&str], internal: bool) -> Network {
        let mut spec = NetworkSpec {
            name: "lan50".into(),
            driver: "macvlan".into(),
            internal,
            ..Default::default()
        };
        if let Some(driver) = args.iter().find_map(|a| a.strip_prefix("-d ")) {
            spec.driver = driver.into();
        }
        for arg in args {
            match arg.split_once(' ') {
                Some(("--subnet", v)) => spec.subnets.push(v.into()),
                Some(("--gateway", v)) => spec.gateways.push(v.into()),
                Some(("-o", v)) => spec.options.push(v.into()),
                Some(("-d", _)) => {}
                _ => panic!("unknown flag {arg}"),
            }
        }
        spec.validate("f".repeat(64), "now".into()).unwrap()
    }

    #[test]
    fn create_warns_of_subnets_without_gateway_on_a_lan() {
        let both = network(
            &[
                "--subnet 192.168.50.0/24",
                "--subnet fd00:50::/64",
                "-o parent=eth0",
            ],
            false,
        );
        insta::assert_snapshot!(no_gateway_warning(&both).unwrap(), @"no --gateway for 192.168.50.0/24, fd00:50::/64: containers get no default route from network lan50; 192.168.50.1, fd00:50::1 (where a LAN's router usually is) will not be handed out dynamically");
        let one = network(
            &[
                "--subnet 192.168.50.0/24",
                "--gateway 192.168.50.254",
                "--subnet fd00:50::/64",
                "-o parent=eth0",
            ],
            false,
        );
        insta::assert_snapshot!(no_gateway_warning(&one).unwrap(), @"no --gateway for fd00:50::/64: containers get no default route from network lan50; fd00:50::1 (where a LAN's router usually is) will not be handed out dynamically");
        // Where no router can be, or it is declared, there is nothing to say.
        for quiet in [
            network(&["--subnet 192.168.50.0/24", "-o parent=eth0"], true),
            network(&["--subnet 192.168.50.0/24"], false),
            network(
                &[
                    "--subnet 192.168.50.0/24",
                    "--gateway 192.168.50.1",
                    "-o parent=eth0",
                ],
                false,
            ),
        ] {
            assert_eq!(no_gateway_warning(&quiet), None, "{quiet:?}");
        }
    }

    #[test]
    fn inspect_has_dockers_shape() {
        let network = NetworkSpec {
            name: "lan50".into(),
            driver: "macvlan".into(),
            subnets: vec!["192.168.50.0/24".into(), "2001:db8:50::/64".into()],
            gateways: vec!["192.168.50.1".into()],
            ip_ranges: vec!["192.168.50.128/25".into()],
            aux_addresses: vec!["router2=192.168.50.2".into()],
            options: vec!["parent=eth0".into(), "macvlan_mode=bridge".into()],
            ipam_options: Vec::new(),
            ipv6: true,
            ..Default::default()
        }
        .validate("f".repeat(64), "2026-11-23T00:00:00Z".into())
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut store = oci_macvlan_ipam::LmdbStore::open(dir.path()).unwrap();
        let owner = Owner {
            container_id: "c1".into(),
            ifname: "eth0".into(),
        };
        let (leases, usage) = store
            .transaction(|txn| {
                let request = Request {
                    network: "lan50",
                    owner: &owner,
                    pools: &network.pools,
                    static_ips: &[],
                    ipv6: network.ipv6,
                    undeclared_router: network.undeclared_router(),
                };
                let leases = allocate(txn, &request)?;
                let usage = network
                    .pools
                    .iter()
                    .map(|p| p.usage(txn, network.undeclared_router()))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((leases, usage))
            })
            .unwrap();
        let macs = BTreeMap::from([(
            ("c1".to_owned(), "eth0".to_owned()),
            "02:42:c0:a8:32:80".to_owned(),
        )]);
        insta::assert_json_snapshot!(inspect_view(&network, &leases, &macs, &usage, &[]));
    }

    /// A network with host access shows its addresses and its host link; one without, nothing.
    #[test]
    fn inspect_shows_the_host_access_addresses_and_link() {
        let net = network(
            &[
                "--subnet 192.168.50.0/24",
                "--subnet fd00:50::/64",
                "-o parent=eth0",
                "-o host_access=192.168.50.3,fd00:50::3",
            ],
            false,
        );
        assert_eq!(
            inspect_view(&net, &[], &BTreeMap::new(), &[], &[])["HostAccess"],
            json!({"Addresses": ["192.168.50.3", "fd00:50::3"], "Link": "ha-ffffffffffff"})
        );
        let plain = network(&["--subnet 192.168.50.0/24", "-o parent=eth0"], false);
        assert!(
            inspect_view(&plain, &[], &BTreeMap::new(), &[], &[])
                .get("HostAccess")
                .is_none()
        );
    }

    /// An ipvlan L3 network's `inspect` says, per subnet, the route the LAN's router needs via
    /// the host's address of that family on the parent, and `null` where the parent has none;
    /// networks the LAN does not reach through the host have no such field.
    #[test]
    fn inspect_of_an_l3_ipvlan_network_gives_the_lan_routers_routes() {
        let routed = network(
            &[
                "-d ipvlan",
                "--subnet 10.30.0.0/24",
                "--gateway 10.30.0.1",
                "--subnet 10.31.0.0/24",
                "--subnet fd30::/64",
                "-o parent=eth0",
                "-o ipvlan_mode=l3",
            ],
            false,
        );
        let parent: Vec<std::net::IpAddr> = vec![
            "2001:db8::5".parse().unwrap(),
            "192.168.1.5".parse().unwrap(),
            "192.168.1.6".parse().unwrap(),
        ];
        let routes = routed.lan_routes(&parent);
        let view = inspect_view(&routed, &[], &BTreeMap::new(), &[], &routes);
        insta::assert_json_snapshot!(view["LanRouterRoutes"], @r#"
        [
          {
            "Subnet": "10.30.0.0/24",
            "Via": "192.168.1.5"
          },
          {
            "Subnet": "10.31.0.0/24",
            "Via": "192.168.1.5"
          },
          {
            "Subnet": "fd30::/64",
            "Via": "2001:db8::5"
          }
        ]
        "#);
        let v4_only = routed.lan_routes(&parent[1..]);
        insta::assert_json_snapshot!(inspect_view(&routed, &[], &BTreeMap::new(), &[], &v4_only)["LanRouterRoutes"][2], @r#"
        {
          "Subnet": "fd30::/64",
          "Via": null
        }
        "#);
        for quiet in [
            network(
                &[
                    "-d ipvlan",
                    "--subnet 10.30.0.0/24",
                    "-o parent=eth0",
                    "-o ipvlan_mode=l2",
                ],
                false,
            ),
            network(
                &[
                    "-d ipvlan",
                    "--subnet 10.30.0.0/24",
                    "-o parent=eth0",
                    "-o ipvlan_mode=l3",
                ],
                true,
            ),
            network(
                &["-d ipvlan", "--subnet 10.30.0.0/24", "-o ipvlan_mode=l3s"],
                false,
            ),
            network(&["--subnet 10.30.0.0/24", "-o parent=eth0"], false),
        ] {
            assert_eq!(quiet.lan_routes(&parent), [], "{quiet:?}");
            let view = inspect_view(
                &quiet,
                &[],
                &BTreeMap::new(),
                &[],
                &quiet.lan_routes(&parent),
            );
            assert!(view.get("LanRouterRoutes").is_none(), "{view}");
        }
        // The LAN's router is not on an L3 network's subnets: no first host is kept for it
        // (an L3 /31 holds two containers), and there is nothing to warn of.
        assert!(!routed.undeclared_router());
        assert_eq!(no_gateway_warning(&routed), None);
        let l3s = network(
            &[
                "-d ipvlan",
                "--subnet 10.30.0.0/24",
                "-o parent=eth0",
                "-o ipvlan_mode=l3s",
            ],
            false,
        );
        assert_eq!(l3s.lan_routes(&parent).len(), 1);
    }
}
