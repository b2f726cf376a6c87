//! Doctor's checks of host access: for each network on the parent with host access, its host
//! link, the host's routes to its containers and the reverse-path filter.

use oci_macvlan_macvlan::{
    self as macvlan, Access, Network, Records, StorePolicy, host_access::Health as HostAccessHealth,
};
use oci_macvlan_netlink_core::Handle;

use super::{Check, Status};
use crate::{
    Context,
    error::{Error, Result},
};

/// For each network on `parent` with host access: its host link present, the host's routes to
/// its containers complete (none left of gone ones), and the reverse-path filter, which in
/// strict mode drops a container's packets to the host that no route leads back through.
pub(super) fn host_access_checks(
    ctx: &Context,
    networks: &[Network],
    parent: &str,
) -> Result<Vec<Check>> {
    let with_access: Vec<&Network> = networks
        .iter()
        .filter(|n| n.parent == parent && !n.host_access.is_empty())
        .collect();
    if with_access.is_empty() {
        return Ok(Vec::new());
    }
    let records = Records::new(&ctx.state_dir);
    let mut checks = Vec::new();
    for network in with_access {
        let mut store = ctx
            .stores()
            .networks_store(&[network], Access::Read, false)?;
        let health = ctx.block_on(async {
            let host = Handle::current().map_err(Error::HostNetlink)?;
            Ok::<_, Error>(
                macvlan::host_access::health(&host, network, store.as_set(), &records).await?,
            )
        })??;
        checks.push(host_access_check(&health));
        let rp_filter = ["all", health.link.as_str()]
            .iter()
            .filter_map(|conf| {
                std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{conf}/rp_filter")).ok()
            })
            .filter_map(|value| value.trim().parse::<u8>().ok())
            .max();
        checks.push(rp_filter_check(&health, rp_filter));
        checks.push(forwarding_check(&health, network, forwarding()));
    }
    Ok(checks)
}

/// The host's forwarding switches in its own namespace: IPv4's `ip_forward`, IPv6's
/// `conf/all/forwarding` (`None` where unreadable).
fn forwarding() -> [Option<bool>; 2] {
    [
        "/proc/sys/net/ipv4/ip_forward",
        "/proc/sys/net/ipv6/conf/all/forwarding",
    ]
    .map(|path| {
        std::fs::read_to_string(path)
            .ok()
            .map(|value| value.trim() != "0")
    })
}

/// Whether the host forwards: with host access its containers have a route to the host, so
/// with forwarding on, the host routes what they send it on to its other networks (a
/// container may then reach what only the host should); off, the host only answers them.
fn forwarding_check(health: &HostAccessHealth, network: &Network, on: [Option<bool>; 2]) -> Check {
    let who = format!("network {}", health.network);
    let families = [
        (0, "IPv4 (net.ipv4.ip_forward)"),
        (1, "IPv6 (net.ipv6.conf.all.forwarding)"),
    ];
    let mut routed = Vec::new();
    let mut unknown = Vec::new();
    for (i, name) in families {
        let used = network.host_access.iter().any(|a| a.is_ipv4() == (i == 0));
        match on[i] {
            _ if !used => {}
            Some(true) => routed.push(name),
            Some(false) => {}
            None => unknown.push(name),
        }
    }
    if !routed.is_empty() {
        return Check::new(
            "ip_forward",
            Status::Warn,
            format!(
                "{who}: forwarding is on for {}: the host routes what its containers send through {} on to its other networks",
                routed.join(" and "),
                health.link
            ),
        )
        .advice("turn forwarding off unless this host is meant to route for its containers (and filter what it forwards)");
    }
    if !unknown.is_empty() {
        return Check::new(
            "ip_forward",
            Status::Info,
            format!(
                "{who}: forwarding could not be read for {}",
                unknown.join(" and ")
            ),
        );
    }
    Check::new(
        "ip_forward",
        Status::Ok,
        format!(
            "{who}: forwarding is off: the host answers its containers and routes nothing for them"
        ),
    )
}

fn host_access_check(health: &HostAccessHealth) -> Check {
    let who = format!("network {}", health.network);
    if !health.present {
        return Check::new(
            "host access",
            Status::Fail,
            format!("{who}: host link {} is missing", health.link),
        )
        .advice("run `oci-macvlan gc` (or start a container on the network): it makes the link again with every route");
    }
    let problems = health.problems();
    if problems.is_empty() {
        return Check::new(
            "host access",
            Status::Ok,
            format!(
                "{who}: host link {} is up, with a route to each of its containers",
                health.link
            ),
        );
    }
    Check::new("host access", Status::Warn, problems.join("; "))
        .advice("run `oci-macvlan gc`: it adds the missing routes and deletes the stale ones")
}

fn rp_filter_check(health: &HostAccessHealth, rp_filter: Option<u8>) -> Check {
    let who = format!("network {}", health.network);
    match rp_filter {
        Some(1) if !health.missing.is_empty() => Check::new(
            "rp_filter",
            Status::Warn,
            format!(
                "{who}: strict reverse-path filtering drops what containers without a host route send to the host through {}",
                health.link
            ),
        )
        .advice("run `oci-macvlan gc` to restore the routes"),
        Some(1) => Check::new(
            "rp_filter",
            Status::Ok,
            format!(
                "{who}: strict, and every container has its route back through {}",
                health.link
            ),
        ),
        Some(mode) => Check::new(
            "rp_filter",
            Status::Ok,
            format!("{who}: mode {mode} on {} lets replies through", health.link),
        ),
        None => Check::new(
            "rp_filter",
            Status::Info,
            format!("{who}: /proc/sys/net/ipv4/conf/*/rp_filter could not be read"),
        ),
    }
}
