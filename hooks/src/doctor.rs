//! `oci-macvlan doctor`: can this host give containers macvlan legs, and on this parent?
//!
//! Link kinds are probed for real in an anonymous network namespace (a veth pair as the probe
//! parent), which the kernel frees with every probe link when the command ends: nothing on the
//! host is touched. The parent is only looked at.

use std::{fmt::Write as _, path::Path, time::Duration};

use oci_macvlan_macvlan::{LanRoute, Network, Networks};
use oci_macvlan_netlink_core::MAX_IFNAME_LEN;
use oci_macvlan_netlink_core::{
    self as netlink, ChildKind, Errno, Handle, IpvlanFlag, IpvlanMode, Link, MacvlanMode, Netns,
    NewChild, NewVlan,
};
use oci_macvlan_vlan::Parent;
use serde::Serialize;

use crate::{
    Context,
    error::{Error, Result},
    network_cmd::print,
};

mod dhcp;
mod host_access;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Info,
    Warn,
    Fail,
}

#[derive(Debug, Serialize)]
struct Check {
    check: &'static str,
    status: Status,
    detail: String,
    /// What to do about a warning or failure.
    advice: Option<String>,
}

impl Check {
    fn new(check: &'static str, status: Status, detail: impl Into<String>) -> Self {
        Self {
            check,
            status,
            detail: detail.into(),
            advice: None,
        }
    }

    fn advice(mut self, advice: impl Into<String>) -> Self {
        self.advice = Some(advice.into());
        self
    }
}

/// What `doctor -o` gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `parent=IF`.
    pub parent: Option<String>,
    /// `dhcp_timeout=DURATION`: each DHCP probe's wait (zero: none).
    pub dhcp_timeout: Duration,
}

impl Options {
    /// The longest `dhcp_timeout`.
    const MAX_DHCP_TIMEOUT: Duration = Duration::from_secs(60);

    /// `-o KEY=VALUE`s, each key at most once.
    pub fn parse(given: &[String]) -> Result<Self> {
        let mut opts = Self {
            parent: None,
            dhcp_timeout: dhcp::TIMEOUT,
        };
        let mut timeout_given = false;
        for opt in given {
            let bad = || Error::DoctorOption(opt.clone());
            match opt.split_once('=') {
                Some(("parent", parent)) if opts.parent.is_none() => {
                    opts.parent = Some(parent.to_owned());
                }
                Some(("dhcp_timeout", value)) if !timeout_given => {
                    timeout_given = true;
                    opts.dhcp_timeout = humantime::parse_duration(value)
                        .ok()
                        .filter(|t| *t <= Self::MAX_DHCP_TIMEOUT)
                        .ok_or_else(bad)?;
                }
                _ => return Err(bad()),
            }
        }
        Ok(opts)
    }
}

/// Runs every check, prints them (a table, or JSON with `json`), and fails when any failed.
pub fn run(ctx: &Context, opts: &Options, json: bool) -> Result<()> {
    let parent = opts.parent.as_deref().map(Parent::parse);
    let needs_vlan = match &parent {
        Some(Ok(Parent::Vlan { name, .. })) => Some(name.clone()),
        _ => None,
    };
    let mut checks = vec![kernel()];
    checks.extend(ctx.block_on(probes(needs_vlan))?);
    match parent {
        Some(Ok(parent)) => {
            let networks = Networks::new(&ctx.config_dir).list()?;
            let name = parent.name().to_owned();
            checks.extend(ctx.block_on(parent_checks(parent))??);
            checks.extend(ctx.block_on(lan_route_checks(&networks, &name))??);
            checks.extend(host_access::host_access_checks(ctx, &networks, &name)?);
            if !opts.dhcp_timeout.is_zero() {
                checks.extend(dhcp::dhcp_checks(ctx, &name, opts.dhcp_timeout));
            }
        }
        Some(Err(err)) => checks.push(Check::new("parent", Status::Fail, err.to_string())),
        None => {}
    }
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    if json {
        let out = serde_json::json!({ "checks": checks, "failed": failed });
        print(format_args!("{out:#}\n"))?;
    } else {
        print(format_args!("{}", table(&checks)))?;
    }
    match failed {
        0 => Ok(()),
        n => Err(Error::DoctorFailed(n)),
    }
}

fn table(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.check.len()).max().unwrap_or(0);
    let mut out = format!("{:width$}  STATUS  DETAIL\n", "CHECK");
    for c in checks {
        let status = serde_json::to_value(c.status).unwrap_or_default();
        let status = status.as_str().unwrap_or_default();
        let _ = writeln!(out, "{:width$}  {status:6}  {}", c.check, c.detail);
        if let Some(advice) = &c.advice {
            let _ = writeln!(out, "{:width$}  {:6}  -> {advice}", "", "");
        }
    }
    out
}

fn kernel() -> Check {
    match std::fs::read_to_string("/proc/sys/kernel/osrelease") {
        Ok(release) => Check::new("kernel", Status::Info, format!("Linux {}", release.trim())),
        Err(err) => Check::new("kernel", Status::Warn, format!("unknown release: {err}")),
    }
}

/// Tries each link kind oci-macvlan creates, in a namespace of its own.
async fn probes(needs_vlan: Option<String>) -> Vec<Check> {
    let scratch = match Netns::new_anonymous() {
        Ok(ns) => ns,
        Err(err) => {
            return vec![
                Check::new("namespaces", Status::Fail, error_line(&err)).advice(
                    "run as root: the hook needs CAP_SYS_ADMIN and CAP_NET_ADMIN, as runc, crun and podman give it",
                ),
            ];
        }
    };
    let handle = match Handle::open(&scratch) {
        Ok(handle) => handle,
        Err(err) => return vec![Check::new("namespaces", Status::Fail, error_line(&err))],
    };
    let mut checks = Vec::new();
    let probe_parent = match probe_parent(&handle).await {
        Ok(link) => link,
        Err(err) => {
            checks.push(
                Check::new(
                    "macvlan",
                    Status::Warn,
                    format!("not probed: {}", error_line(&err)),
                )
                .advice("the probe needs a veth pair (CONFIG_VETH) as a parent: modprobe veth"),
            );
            return checks;
        }
    };
    let macvlan = handle
        .create_child(&NewChild {
            parent: &probe_parent,
            name: "omd-macvlan",
            mac: None,
            mtu: None,
            target: &scratch,
            kind: ChildKind::Macvlan {
                mode: MacvlanMode::Bridge,
                source_macs: &[],
            },
        })
        .await;
    checks.push(kind_check(
        "macvlan",
        macvlan,
        Status::Fail,
        "the kernel has no macvlan driver: modprobe macvlan (CONFIG_MACVLAN); without it no container can be attached",
    ));
    let vlan = handle
        .create_vlan(&NewVlan {
            base: &probe_parent,
            name: "omd-probe0.7",
            vid: 7,
        })
        .await;
    let (status, advice) = match &needs_vlan {
        Some(name) => (
            Status::Fail,
            format!("the kernel has no 802.1q support, needed for parent {name}: modprobe 8021q (CONFIG_VLAN_8021Q)"),
        ),
        None => (
            Status::Warn,
            "the kernel has no 802.1q support: modprobe 8021q (CONFIG_VLAN_8021Q); needed only for NAME.VID parents"
                .to_owned(),
        ),
    };
    checks.push(kind_check("802.1q", vlan, status, &advice));
    // On the veth's other end: the kernel gives a parent macvlan or ipvlan children, not both.
    let ipvlan = match handle.existing_link("omd-probe1").await {
        Ok(parent) => {
            handle
                .create_child(&NewChild {
                    parent: &parent,
                    name: "omd-ipvlan",
                    mac: None,
                    mtu: None,
                    target: &scratch,
                    kind: ChildKind::Ipvlan {
                        mode: IpvlanMode::L2,
                        flag: IpvlanFlag::Bridge,
                    },
                })
                .await
        }
        Err(err) => Err(err),
    };
    checks.push(kind_check(
        "ipvlan",
        ipvlan,
        Status::Warn,
        "the kernel has no ipvlan driver: modprobe ipvlan (CONFIG_IPVLAN); needed only for -d ipvlan networks",
    ));
    checks
}

/// A veth pair in the scratch namespace; its first end is the probe parent.
async fn probe_parent(handle: &Handle) -> netlink::Result<Link> {
    handle.create_veth("omd-probe0", "omd-probe1").await?;
    handle.existing_link("omd-probe0").await
}

fn kind_check(
    name: &'static str,
    result: netlink::Result<()>,
    missing: Status,
    advice: &str,
) -> Check {
    match result {
        Ok(()) => Check::new(name, Status::Ok, "a link of this kind can be created"),
        Err(err) if err.errno() == Some(Errno::EOPNOTSUPP) => {
            Check::new(name, missing, error_line(&err)).advice(advice)
        }
        Err(err) => Check::new(name, Status::Fail, error_line(&err)),
    }
}

/// The parent in the caller's namespace: present, up, carrier, promiscuity, VLAN name.
async fn parent_checks(parent: Parent) -> Result<Vec<Check>> {
    let host = Handle::current().map_err(Error::HostNetlink)?;
    let mut checks = Vec::new();
    if let Parent::Vlan { name, base, vid } = &parent {
        checks.push(Check::new(
            "vlan name",
            Status::Ok,
            format!(
                "{name}: {} of {MAX_IFNAME_LEN} bytes (VLAN {vid} on {base})",
                name.len()
            ),
        ));
    }
    let name = parent.name();
    let link = host.link_by_name(name).await.map_err(Error::HostNetlink)?;
    let Some(link) = link else {
        checks.push(missing_parent(&host, &parent).await?);
        return Ok(checks);
    };
    let kind = link.kind.as_deref().unwrap_or("device");
    let mtu = link.mtu.map_or(String::new(), |mtu| format!(", mtu {mtu}"));
    checks.push(Check::new(
        "parent",
        Status::Ok,
        format!("{name}: {kind}{mtu}"),
    ));
    checks.push(if !link.up {
        Check::new("parent up", Status::Fail, format!("{name} is down"))
            .advice(format!("ip link set {name} up"))
    } else if link.carrier == Some(false) {
        Check::new(
            "parent up",
            Status::Warn,
            format!("{name} is up but has no carrier"),
        )
        .advice("check the cable, the switch port or the peer of this link")
    } else {
        Check::new(
            "parent up",
            Status::Ok,
            format!("{name} is up with a carrier"),
        )
    });
    checks.push(promiscuity(&link));
    if Path::new("/sys/class/net")
        .join(name)
        .join("wireless")
        .exists()
    {
        checks.push(
            Check::new("parent kind", Status::Fail, format!("{name} is a Wi-Fi link"))
                .advice("an 802.11 station cannot send or receive for other MACs: use a wired parent, or ipvlan"),
        );
    }
    Ok(checks)
}

/// For each network on `parent` that the host routes (ipvlan L3), one check per subnet: the
/// route the LAN's router needs, via the host's address on the parent.
async fn lan_route_checks(networks: &[Network], parent: &str) -> Result<Vec<Check>> {
    let host = Handle::current().map_err(Error::HostNetlink)?;
    let mut checks = Vec::new();
    for network in networks.iter().filter(|n| n.parent == *parent) {
        for route in crate::network_inspect::lan_routes(&host, network).await? {
            checks.push(lan_route_check(network, &route));
        }
    }
    Ok(checks)
}

/// What doctor says of one route the LAN's router needs.
fn lan_route_check(network: &Network, route: &LanRoute) -> Check {
    let who = format!(
        "network {} ({} {})",
        network.name,
        network.driver().name(),
        network.driver().mode()
    );
    match route.via {
        Some(via) => Check::new(
            "lan route",
            Status::Info,
            format!(
                "{who}: the LAN's router needs: ip route add {} via {via}",
                route.subnet
            ),
        ),
        None => {
            let family = if route.subnet.is_ipv4() { 4 } else { 6 };
            Check::new(
                "lan route",
                Status::Warn,
                format!(
                    "{who}: {} has no IPv{family} address, so the LAN cannot reach {}",
                    network.parent, route.subnet
                ),
            )
            .advice(format!(
                "give {} an IPv{family} address on the LAN, then on the LAN's router: ip route add {} via THAT_ADDRESS",
                network.parent, route.subnet
            ))
        }
    }
}

async fn missing_parent(host: &Handle, parent: &Parent) -> Result<Check> {
    let name = parent.name();
    let Parent::Vlan { base, vid, .. } = parent else {
        return Ok(Check::new(
            "parent",
            Status::Fail,
            format!("parent interface {name} not found"),
        )
        .advice("give an existing link: see 'ip -br link'"));
    };
    let base_link = host.link_by_name(base).await.map_err(Error::HostNetlink)?;
    Ok(match base_link {
        Some(_) => Check::new(
            "parent",
            Status::Ok,
            format!("{name} does not exist yet: network create makes it, VLAN {vid} on {base}"),
        ),
        None => Check::new(
            "parent",
            Status::Fail,
            format!("{name} does not exist, nor does its base interface {base}"),
        )
        .advice("give an existing link as the base: see 'ip -br link'"),
    })
}

fn promiscuity(link: &Link) -> Check {
    let detail = if link.promiscuity == 0 {
        format!(
            "{} is not promiscuous: the kernel adds each container's MAC to its unicast filter",
            link.name
        )
    } else {
        format!("{} is promiscuous (count {})", link.name, link.promiscuity)
    };
    Check::new("promiscuous", Status::Info, detail).advice(
        "on a VM, the hypervisor's switch must pass frames for MACs it did not assign (VMware: promiscuous mode and forged transmits; Hyper-V: MAC address spoofing); most cloud networks drop them",
    )
}

fn error_line(err: &netlink::Error) -> String {
    crate::error::one_line(err)
}

#[cfg(test)]
mod tests {
    use oci_macvlan_macvlan::NetworkSpec;

    use super::*;

    /// `-o parent=IF` and `-o dhcp_timeout=D`, each once; anything else is refused.
    #[test]
    fn doctor_options() {
        let parse = |opts: &[&str]| {
            Options::parse(&opts.iter().map(|o| o.to_string()).collect::<Vec<_>>())
                .map_err(|e| e.to_string())
        };
        let ok = parse(&["parent=eth0", "dhcp_timeout=500ms"]).unwrap();
        assert_eq!(ok.parent.as_deref(), Some("eth0"));
        assert_eq!(ok.dhcp_timeout, Duration::from_millis(500));
        let default = parse(&[]).unwrap();
        assert_eq!(
            (default.parent, default.dhcp_timeout),
            (None, dhcp::TIMEOUT)
        );
        assert!(parse(&["dhcp_timeout=0s"]).unwrap().dhcp_timeout.is_zero());
        for bad in [
            &["mode=bridge"][..],
            &["parent=a", "parent=b"],
            &["dhcp_timeout=61s"],
            &["dhcp_timeout=3"],
            &["dhcp_timeout=1s", "dhcp_timeout=2s"],
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.starts_with("invalid doctor option"), "{bad:?}: {err}");
        }
    }

    /// Doctor's lines for an ipvlan L3 network on its parent: the route the LAN's router needs
    /// per subnet, or a warning (and what to do) where the parent has no address of its family.
    #[test]
    fn doctor_says_which_routes_the_lan_router_needs() {
        let network = NetworkSpec {
            name: "routed".into(),
            driver: "ipvlan".into(),
            subnets: vec!["10.30.0.0/24".into(), "fd30::/64".into()],
            options: vec!["parent=eth0".into(), "ipvlan_mode=l3".into()],
            ipam_options: Vec::new(),
            ..Default::default()
        }
        .validate("f".repeat(64), "now".into())
        .unwrap();
        let parent = ["192.168.1.5".parse().unwrap()];
        let checks: Vec<Check> = network
            .lan_routes(&parent)
            .iter()
            .map(|route| lan_route_check(&network, route))
            .collect();
        insta::assert_snapshot!(table(&checks), @r"
        CHECK      STATUS  DETAIL
        lan route  info    network routed (ipvlan l3/bridge): the LAN's router needs: ip route add 10.30.0.0/24 via 192.168.1.5
        lan route  warn    network routed (ipvlan l3/bridge): eth0 has no IPv6 address, so the LAN cannot reach fd30::/64
                           -> give eth0 an IPv6 address on the LAN, then on the LAN's router: ip route add fd30::/64 via THAT_ADDRESS
        ");
    }
}
