//! `oci-macvlan network create | rm | prune` (`ls` is in network_ls.rs, `inspect` in
//! network_inspect.rs, `connect` and `disconnect` in connect.rs).

use std::io::{BufRead, Read, Write};

use oci_macvlan_macvlan::{
    self as macvlan, Access, Network, NetworkSpec, Networks, Records, StorePolicy,
};
use oci_macvlan_netlink_core::Handle;

use crate::{
    Context,
    cli::{CreateArgs, LogLevel, NetworkCommand, PruneArgs},
    connect,
    error::{Error, Result},
    journal::Invocation,
    network_inspect::inspect,
    network_ls,
};

pub fn run(ctx: &Context, command: NetworkCommand) -> Result<()> {
    let networks = Networks::new(&ctx.config_dir);
    match command {
        NetworkCommand::Create(args) => create(ctx, &networks, args),
        NetworkCommand::Ls(args) => network_ls::ls(&networks, &args),
        NetworkCommand::Inspect(args) => inspect(ctx, &networks, &args),
        NetworkCommand::Rm { names, force } => {
            // Each name, id or id prefix as its network's name; one that names none stays as
            // given, for `rm` to report among the others (or pass over, with -f).
            let names = names
                .iter()
                .map(|given| or_given(networks.resolve(given), given))
                .collect::<Result<Vec<_>>>()?;
            rm(ctx, &networks, &names, force)
        }
        NetworkCommand::Prune(args) => prune(ctx, &networks, &args),
        NetworkCommand::Connect(mut args) => {
            args.network = networks.resolve(&args.network)?;
            journaled(ctx, |inv| connect::connect(ctx, &networks, &args, inv))
        }
        NetworkCommand::Disconnect(mut args) => {
            // A network whose definition is gone is still on the record by its name.
            args.network = or_given(networks.resolve(&args.network), &args.network)?;
            journaled(ctx, |inv| connect::disconnect(ctx, &args, inv))
        }
    }
}

/// A network's name from [`Networks::resolve`], or `given` itself where no network has it.
fn or_given(resolved: macvlan::Result<String>, given: &str) -> Result<String> {
    match resolved {
        Ok(name) => Ok(name),
        Err(macvlan::Error::NetworkNotFound(_)) => Ok(given.to_owned()),
        Err(err) => Err(err.into()),
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
        backends: oci_macvlan_stores::BACKENDS,
        labels: args.label,
        ipam_driver: args.ipam_driver,
    };
    // A first create makes the definitions' dir (for its lock): a failed one takes it back.
    let dir = ctx.config_dir.join("networks");
    let dir_existed = dir.exists();
    // Host access on a shared network leases its addresses there: a write, under this host's
    // id. Otherwise the create only reads, but a `--host-id` given to it names this host for
    // good (the identity file is made then, as `gc --host-id` makes it): README's example.
    let writes = spec.options.iter().any(|o| o.starts_with("host_access="));
    let access = if writes {
        Access::Write
    } else {
        Access::Upkeep
    };
    // A DHCP network's `--ipam-opt`s are its own (the core checks them): its store is local.
    let store_options = if spec.ipam_driver == "dhcp" {
        &[][..]
    } else {
        &spec.ipam_options[..]
    };
    let mut store = ctx.stores().for_ipam_options(store_options, access)?;
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
    let (network, reserved) = match created {
        Ok(created) => created,
        Err(err) => {
            if !dir_existed {
                let _ = std::fs::remove_file(dir.join(".lock"));
                let _ = std::fs::remove_dir(&dir);
            }
            return Err(err);
        }
    };
    for warning in reserved.into_iter().chain(no_gateway_warning(&network)) {
        if ctx.log_level >= LogLevel::Warn {
            eprintln!("oci-macvlan: warning: {warning}");
        }
    }
    // A shared network whose cluster was not asked yet (host access asks it): asked once, so
    // that a typo in an endpoint is said now, not at the first container's start. The
    // definition stands either way, as Docker keeps a network whose IPAM is not reachable.
    if !network.store.is_local()
        && network.host_access.is_empty()
        && let Err(err) = store.network_leases(&network.name)
        && ctx.log_level >= LogLevel::Warn
    {
        eprintln!(
            "oci-macvlan: warning: network {} is defined, but its etcd cluster did not answer ({}): containers cannot join it until it does",
            network.name,
            macvlan::one_line(&err)
        );
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

/// `network rm [-f]`: each network as [`macvlan::remove_network`] removes it. A store that
/// does not answer fails the removal, with a line pointing at `-f`; with `-f` the definition
/// goes anyway, and a warning says what was left where (the leases of the containers on
/// record, which `gc` takes back through their records, and this host's host access leases,
/// which `gc` releases). `-f` also passes over a name that is not defined, as Docker's does.
fn rm(ctx: &Context, networks: &Networks, names: &[String], force: bool) -> Result<()> {
    let mut first_error = None;
    for name in names {
        // The store of the network's definition; one that does not load is for
        // `remove_network` to report, with the local store.
        let definition: Vec<Network> = networks.load(name).into_iter().collect();
        let removed = ctx
            .stores()
            .networks_store(&definition.iter().collect::<Vec<_>>(), Access::Read, true)
            .map_err(Error::from)
            .and_then(|mut store| {
                ctx.block_on(async {
                    let host = Handle::current().map_err(Error::HostNetlink)?;
                    macvlan::remove_network(&host, networks, store.as_mut(), name, force)
                        .await
                        .map_err(|err| match err {
                            macvlan::Error::Store(source) if source.is_unavailable() => {
                                Error::RmUnreached {
                                    name: name.clone(),
                                    source: Box::new(macvlan::Error::Store(source)),
                                }
                            }
                            err => err.into(),
                        })
                })?
            });
        match removed {
            Ok(removed) => {
                if let (Some(why), Some(network)) = (&removed.unreached, definition.first()) {
                    eprintln!("oci-macvlan: warning: {}", left_behind(ctx, network, why));
                }
                print(format_args!("{name}\n"))?;
            }
            Err(Error::Macvlan(macvlan::Error::NetworkNotFound(_))) if force => {}
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

/// What `rm -f` of `network` left in a store that did not answer (`why`), as one line.
fn left_behind(ctx: &Context, network: &Network, why: &str) -> String {
    let records = Records::new(&ctx.state_dir);
    let containers: Vec<String> = records
        .list()
        .unwrap_or_default()
        .into_iter()
        .filter(|id| {
            records.read(id).ok().flatten().is_some_and(|record| {
                record
                    .endpoints
                    .iter()
                    .any(|endpoint| endpoint.network == network.name)
            })
        })
        .collect();
    let mut left = Vec::new();
    if !containers.is_empty() {
        left.push(format!(
            "the leases of containers {} (their records stay: gc takes them back once they are gone and the store answers)",
            containers.join(", ")
        ));
    }
    if !network.host_access.is_empty() && !network.store.is_local() {
        let addresses: Vec<String> = network
            .host_access
            .iter()
            .map(ToString::to_string)
            .collect();
        left.push(format!(
            "this host's host access lease of {} (gc releases it once the store answers)",
            addresses.join(", ")
        ));
    }
    if left.is_empty() {
        left.push("no lease of this host's on record".to_owned());
    }
    format!(
        "removed network {} without its lease store, which did not answer ({why}); left there: {}",
        network.name,
        left.join("; ")
    )
}

/// Removes every network no container holds an address on, each as `network rm` would (under
/// the networks' lock: one that a container joins meanwhile is kept). Asks first unless
/// `--force`, as Docker does.
fn prune(ctx: &Context, networks: &Networks, args: &PruneArgs) -> Result<()> {
    if !args.force
        && !confirm(
            "WARNING! This will remove all networks not used by at least one container.\n\
             Are you sure you want to continue? [y/N] ",
        )?
    {
        return Ok(());
    }
    let mut deleted = Vec::new();
    for network in networks.list()? {
        let mut store = ctx
            .stores()
            .networks_store(&[&network], Access::Read, true)?;
        let removed = ctx.block_on(async {
            let host = Handle::current().map_err(Error::HostNetlink)?;
            Ok::<_, Error>(
                macvlan::remove_network(&host, networks, store.as_mut(), &network.name, false)
                    .await,
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

/// Asks `question` on stderr; whether the answer on stdin is yes (Docker's prompt).
pub(crate) fn confirm(question: &str) -> Result<bool> {
    eprint!("{question}");
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .take(64)
        .read_line(&mut answer)
        .map_err(Error::Prompt)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}

pub(crate) fn print(args: std::fmt::Arguments<'_>) -> Result<()> {
    std::io::stdout()
        .lock()
        .write_fmt(args)
        .map_err(Error::Stdout)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn network(args: &[&str], internal: bool) -> Network {
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
}
