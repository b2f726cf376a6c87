//! `--ipam-driver dhcp`: a network whose containers' addresses come from the LAN's own DHCP
//! server (the address source in `crate::source::dhcp`). What makes no sense with a server
//! handing out the addresses is refused here, at `network create`, naming the option.

use std::time::Duration;

use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};
use serde::{Deserialize, Serialize};

use super::{NetworkSpec, invalid};
use crate::{Result, driver::DefaultRoute};

/// The `--ipam-driver` values: ours, and the LAN's DHCP server.
pub const IPAM_DRIVERS: &[&str] = &["default", "dhcp"];
/// The `--ipam-opt` keys of the DHCP source.
const TIMEOUT_KEY: &str = "dhcp_timeout";
/// The longest `dhcp_timeout`: a runtime waits for the hook.
const MAX_TIMEOUT: Duration = Duration::from_secs(120);

/// How a DHCP network's containers get their addresses, as its definition keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DhcpIpam {
    /// The deadline of a whole exchange (`--ipam-opt dhcp_timeout=`), in milliseconds.
    pub timeout_ms: u64,
    /// `--subnet`, if given: a lease outside it is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<Ipv4Network>,
    /// `--ipv6`: a DHCPv6 lease (IA_NA) too, beside the v4 one, as Docker's `--ipv6` adds
    /// IPv6 to IPv4. Definitions written before it load as IPv4 only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ipv6: bool,
    /// The IPv6 `--subnet`, if given: a v6 lease outside it is refused, and the leased address
    /// gets its prefix (a /128 otherwise: router advertisements give the on-link prefix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet6: Option<Ipv6Network>,
    /// `-o ipv6_slaac=true`: the link also makes SLAAC addresses from router advertisements
    /// (off: router advertisements give routes only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub slaac: bool,
}

impl DhcpIpam {
    /// The deadline of a whole exchange.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

impl NetworkSpec {
    /// Whether `--ipam-driver` names the DHCP source (checked: an unknown driver is an error).
    pub(super) fn is_dhcp(&self) -> Result<bool> {
        match self.ipam_driver.as_str() {
            "" | "default" => Ok(false),
            "dhcp" => Ok(true),
            other => Err(invalid(
                "--ipam-driver",
                other,
                "must be default (our own allocator) or dhcp (the LAN's DHCP server)",
            )),
        }
    }

    /// The `--ipam-opt`s left for the lease stores, and `dhcp_timeout`, refused on a network
    /// of our own allocator.
    pub(super) fn split_ipam_options(&self, dhcp: bool) -> Result<(Vec<String>, Option<&str>)> {
        let mut rest = Vec::new();
        let mut timeout = None;
        for opt in &self.ipam_options {
            match opt.split_once('=') {
                Some((TIMEOUT_KEY, value)) if dhcp => {
                    if timeout.replace(value).is_some() {
                        return Err(invalid("--ipam-opt", opt, "dhcp_timeout is given twice"));
                    }
                }
                Some((TIMEOUT_KEY, _)) => {
                    return Err(invalid(
                        "--ipam-opt",
                        opt,
                        "dhcp_timeout is an option of --ipam-driver dhcp",
                    ));
                }
                _ if dhcp => {
                    return Err(invalid(
                        "--ipam-opt",
                        opt,
                        "a DHCP network's leases are its server's: the only option is dhcp_timeout",
                    ));
                }
                _ => rest.push(opt.clone()),
            }
        }
        Ok((rest, timeout))
    }

    /// The DHCP source's settings, after every option that makes no sense with it is refused.
    /// `subnets` are the parsed `--subnet`s; `options` the `-o` keys.
    pub(super) fn dhcp_ipam(
        &self,
        subnets: &[IpNetwork],
        timeout: Option<&str>,
        options: &std::collections::BTreeMap<String, String>,
    ) -> Result<DhcpIpam> {
        const WHY: &str = "the DHCP server hands out the addresses (--ipam-driver dhcp)";
        let ipv6 = self.ipv6 || subnets.iter().any(IpNetwork::is_ipv6);
        if let Some(range) = self.ip_ranges.first() {
            return Err(invalid("--ip-range", range, WHY));
        }
        if let Some(aux) = self.aux_addresses.first() {
            return Err(invalid("--aux-address", aux, WHY));
        }
        if let Some(gateway) = self.gateways.first() {
            return Err(invalid(
                "--gateway",
                gateway,
                "the DHCP server gives the router (--ipam-driver dhcp)",
            ));
        }
        for key in ["static_ips", "host_access"] {
            if let Some(value) = options.get(key) {
                return Err(invalid(
                    if key == "static_ips" {
                        "-o static_ips"
                    } else {
                        "-o host_access"
                    },
                    value,
                    WHY,
                ));
            }
        }
        if !options.contains_key("parent") {
            return Err(invalid(
                "--ipam-driver",
                "dhcp",
                "a DHCP network needs -o parent=IF: its server is on the parent's LAN",
            ));
        }
        if self.internal {
            return Err(invalid(
                "--internal",
                "",
                "a DHCP network's server is on the LAN (--ipam-driver dhcp)",
            ));
        }
        let (mut subnet, mut subnet6) = (None, None);
        for given in subnets {
            let taken = match given {
                IpNetwork::V4(v4) => subnet.replace(*v4).is_some(),
                IpNetwork::V6(v6) => subnet6.replace(*v6).is_some(),
            };
            if taken {
                return Err(invalid(
                    "--subnet",
                    &given.to_string(),
                    "a DHCP network takes at most one --subnet per family (a check of its leases)",
                ));
            }
        }
        let slaac = match options.get(SLAAC_KEY).map(String::as_str) {
            None | Some("false") => false,
            Some("true") if ipv6 => true,
            Some("true") => {
                return Err(invalid(
                    "-o ipv6_slaac",
                    "true",
                    "SLAAC addresses come with --ipv6 (--ipam-driver dhcp --ipv6)",
                ));
            }
            Some(value) => return Err(invalid("-o ipv6_slaac", value, "must be true or false")),
        };
        let timeout = match timeout {
            None => oci_macvlan_dhcp::DEFAULT_TIMEOUT,
            Some(value) => humantime::parse_duration(value)
                .ok()
                .filter(|t| !t.is_zero() && *t <= MAX_TIMEOUT)
                .ok_or_else(|| {
                    invalid(
                        "--ipam-opt dhcp_timeout",
                        value,
                        "a duration from 1ms to 2m (10s, 500ms)",
                    )
                })?,
        };
        Ok(DhcpIpam {
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            subnet,
            ipv6,
            subnet6,
            slaac,
        })
    }
}

/// `-o ipv6_slaac=true|false`: whether a DHCP network's links also make SLAAC addresses.
pub(super) const SLAAC_KEY: &str = "ipv6_slaac";

/// Refuses `-o ipv6_slaac` on a network of our own allocator (its links take no router
/// advertisements at all).
pub(super) fn check_slaac_without_dhcp(
    options: &std::collections::BTreeMap<String, String>,
) -> Result<()> {
    match options.get(SLAAC_KEY) {
        Some(value) => Err(invalid(
            "-o ipv6_slaac",
            value,
            "an option of --ipam-driver dhcp --ipv6 (our allocator's links take no router advertisements)",
        )),
        None => Ok(()),
    }
}

/// What the network's driver must be for DHCP: its links on the LAN itself (an ipvlan in L3
/// mode is routed by the host, and no broadcast reaches a server), and not a passthru macvlan
/// (its link has the parent's MAC, which the scratch link that sends a RELEASE after the
/// container's link is gone cannot take: the lease would never be given back).
pub(super) fn check_driver(
    default_route: DefaultRoute,
    exclusive: Option<&str>,
    driver: &str,
) -> Result<()> {
    if let Some(mode) = exclusive {
        return Err(invalid(
            "--ipam-driver",
            "dhcp",
            &format!(
                "a {mode} {driver} link has its parent's MAC, from which no lease can be given back once it is gone: use macvlan_mode=bridge"
            ),
        ));
    }
    if default_route != DefaultRoute::ViaGateway {
        return Err(invalid(
            "--ipam-driver",
            "dhcp",
            &format!("a DHCP network's links are on the LAN: {driver} in mode l2 only"),
        ));
    }
    Ok(())
}
