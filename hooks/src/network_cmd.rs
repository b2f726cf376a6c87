//! `oci-macvlan network create | ls | inspect | rm`.

use std::io::Write;

use oci_macvlan_ipam::{Lease, LeaseStoreExt, Usage};
use oci_macvlan_macvlan::{self as macvlan, LanRoute, Network, NetworkSpec, Networks};
use oci_macvlan_netlink_core::Handle;
use serde_json::{Map, Value, json};

use crate::{
    Context,
    cli::{CreateArgs, LogLevel, NetworkCommand},
    error::{Error, Result},
    stores,
};

pub fn run(ctx: &Context, command: NetworkCommand) -> Result<()> {
    let networks = Networks::new(&ctx.config_dir);
    match command {
        NetworkCommand::Create(args) => create(ctx, &networks, args),
        NetworkCommand::Ls => ls(&networks),
        NetworkCommand::Inspect { names } => inspect(ctx, &networks, &names),
        NetworkCommand::Rm { names } => rm(ctx, &networks, &names),
    }
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
    let mut store = stores::for_ipam_options(ctx, &spec.ipam_options)?;
    let network = ctx.block_on(async {
        let host = Handle::current().map_err(Error::HostNetlink)?;
        Ok::<_, Error>(macvlan::create_network(&host, networks, store.as_mut(), &spec).await?)
    })??;
    if let Some(warning) = no_gateway_warning(&network) {
        if ctx.log_level >= LogLevel::Warn {
            eprintln!("oci-macvlan: warning: {warning}");
        }
    }
    print(format_args!("{}\n", network.id))
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

fn ls(networks: &Networks) -> Result<()> {
    let mut out = format!(
        "{:<12}  {:<20}  {:<8}  {:<15}  {:<8}  SUBNETS\n",
        "NETWORK ID", "NAME", "DRIVER", "PARENT", "MODE"
    );
    for net in networks.list()? {
        let subnets: Vec<String> = net.pools.iter().map(|p| p.subnet.to_string()).collect();
        out.push_str(&format!(
            "{:<12}  {:<20}  {:<8}  {:<15}  {:<8}  {}\n",
            net.id.get(..12).unwrap_or(&net.id),
            net.name,
            net.driver().name(),
            net.parent,
            net.driver().mode(),
            subnets.join(",")
        ));
    }
    print(format_args!("{out}"))
}

fn inspect(ctx: &Context, networks: &Networks, names: &[String]) -> Result<()> {
    let mut views = Vec::new();
    for name in names {
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
        views.push(inspect_view(&network, &leases, &usage, &routes));
    }
    let text = serde_json::to_string_pretty(&views).unwrap_or_default();
    print(format_args!("{text}\n"))
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

/// `inspect` output in Docker's shape, so scripts written for `docker network inspect` work,
/// plus `Usage`: per subnet, the addresses this network's containers hold and how many dynamic
/// addresses are left (`usage` is in the order of the network's pools); and, for a network the
/// host routes (ipvlan L3), `LanRouterRoutes`: per subnet, the route the LAN's router needs
/// (`ip route add SUBNET via VIA`; `Via` is null while the parent has no address of its family).
pub fn inspect_view(
    net: &Network,
    leases: &[Lease],
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
        // A shared store's containers are named with their host: ids are unique per host.
        let key = match &lease.host {
            Some(host) => format!("{host}/{}/{}", lease.owner.container_id, lease.owner.ifname),
            None => format!("{}/{}", lease.owner.container_id, lease.owner.ifname),
        };
        let entry = containers.entry(key).or_insert_with(|| {
            let mut entry = json!({
                "Interface": lease.owner.ifname,
                "IPv4Address": "",
                "IPv6Address": "",
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
        insta::assert_json_snapshot!(inspect_view(&network, &leases, &usage, &[]));
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
            inspect_view(&net, &[], &[], &[])["HostAccess"],
            json!({"Addresses": ["192.168.50.3", "fd00:50::3"], "Link": "ha-ffffffffffff"})
        );
        let plain = network(&["--subnet 192.168.50.0/24", "-o parent=eth0"], false);
        assert!(
            inspect_view(&plain, &[], &[], &[])
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
        let view = inspect_view(&routed, &[], &[], &routes);
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
        insta::assert_json_snapshot!(inspect_view(&routed, &[], &[], &v4_only)["LanRouterRoutes"][2], @r#"
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
            let view = inspect_view(&quiet, &[], &[], &quiet.lan_routes(&parent));
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
