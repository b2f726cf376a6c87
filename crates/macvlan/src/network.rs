use std::{collections::BTreeMap, fmt, net::IpAddr, str::FromStr};

use ipnetwork::IpNetwork;
use oci_macvlan_ipam::Pool;
use oci_macvlan_netlink_core::{MacAddr, MacvlanMode, ParseMacError};
use oci_macvlan_vlan::Parent;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The macvlan modes a network may use (`-o macvlan_mode=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Bridge,
    Private,
    Vepa,
    Passthru,
    /// Receives only frames whose source MAC is in the network's `source_macs`.
    Source,
}

impl Mode {
    pub fn to_netlink(self) -> MacvlanMode {
        match self {
            Self::Bridge => MacvlanMode::Bridge,
            Self::Private => MacvlanMode::Private,
            Self::Vepa => MacvlanMode::Vepa,
            Self::Passthru => MacvlanMode::Passthru,
            Self::Source => MacvlanMode::Source,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Self::Bridge => "bridge",
            Self::Private => "private",
            Self::Vepa => "vepa",
            Self::Passthru => "passthru",
            Self::Source => "source",
        })
    }
}

impl FromStr for Mode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "bridge" => Ok(Self::Bridge),
            "private" => Ok(Self::Private),
            "vepa" => Ok(Self::Vepa),
            "passthru" => Ok(Self::Passthru),
            "source" => Ok(Self::Source),
            other => Err(Error::InvalidMode(other.to_owned())),
        }
    }
}

/// Where a network's parent link comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ParentLink {
    /// The host's link, used as it is: never created, changed or deleted.
    #[default]
    Existing,
    /// An 802.1q link oci-macvlan created (for this network or another): re-created by attach
    /// when missing (after a reboot), deleted by `network rm` of the last network on it.
    Owned,
    /// The network's own dummy link (`dm-` + 12 characters of the id): a network without
    /// `-o parent`, internal, created and deleted with the network.
    Dummy,
}

impl ParentLink {
    fn is_existing(&self) -> bool {
        *self == Self::Existing
    }
}

/// A validated network definition, as stored in `<config-dir>/networks/<name>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub name: String,
    pub id: String,
    pub created: String,
    pub driver: String,
    pub parent: String,
    #[serde(default, skip_serializing_if = "ParentLink::is_existing")]
    pub parent_link: ParentLink,
    pub mode: Mode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub ipv6: bool,
    pub pools: Vec<Pool>,
    /// Source mode's allowed source MACs (`-o source_macs=`), validated, lowercase.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_macs: Vec<String>,
    /// The `-o KEY=VALUE` options as given, for `inspect`.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

impl Network {
    pub fn parent(&self) -> Result<Parent> {
        match self.parent_link {
            ParentLink::Dummy => Ok(Parent::Dummy(self.parent.clone())),
            _ => Parent::parse(&self.parent).map_err(Error::Parent),
        }
    }

    /// Source mode's allowed MACs, parsed (they were checked by `network create`; a hand-edited
    /// file gets the same error).
    pub fn source_macs(&self) -> Result<Vec<MacAddr>> {
        self.source_macs
            .iter()
            .map(|mac| parse_source_mac(mac))
            .collect()
    }

    /// Whether the network's LAN may have a router it was not told about: it has a parent link
    /// (not its own dummy) and is not internal. Where no router can be, nothing is kept for one
    /// (a /31 without parent holds two containers). See [`oci_macvlan_ipam::Request`].
    pub fn undeclared_router(&self) -> bool {
        self.parent_link != ParentLink::Dummy && !self.internal
    }

    /// The pools whose first host address is kept free for a router the network was not told
    /// about ([`Pool::kept_for_router`]): their containers get no default route from this network.
    pub fn pools_without_gateway(&self) -> impl Iterator<Item = &Pool> {
        let undeclared = self.undeclared_router();
        self.pools
            .iter()
            .filter(move |p| p.kept_for_router(undeclared).is_some())
    }

    /// The gateway of the pool that contains `ip`, unless the network is internal.
    pub fn gateway_for(&self, ip: IpAddr) -> Option<IpAddr> {
        if self.internal {
            return None;
        }
        self.pools
            .iter()
            .find(|p| p.contains(ip))
            .and_then(|p| p.gateway)
    }
}

/// `network create` input as typed by the user, before validation.
#[derive(Debug, Clone, Default)]
pub struct NetworkSpec {
    pub name: String,
    pub driver: String,
    pub subnets: Vec<String>,
    pub gateways: Vec<String>,
    pub ip_ranges: Vec<String>,
    /// `NAME=IP`
    pub aux_addresses: Vec<String>,
    pub ipv6: bool,
    pub internal: bool,
    /// `KEY=VALUE`
    pub options: Vec<String>,
}

impl NetworkSpec {
    /// Checks everything that can be checked without the kernel, with Docker's wording where it
    /// is clear. `id` and `created` are the caller's (random and clock-derived).
    pub fn validate(&self, id: String, created: String) -> Result<Network> {
        check_network_name(&self.name)?;
        if self.driver != "macvlan" {
            return Err(Error::UnsupportedDriver(self.driver.clone()));
        }
        if self.subnets.is_empty() {
            return Err(Error::NoSubnet);
        }
        let subnets = self
            .subnets
            .iter()
            .map(|s| parse_cidr("--subnet", s))
            .collect::<Result<Vec<_>>>()?;
        let mut gateways: Vec<Option<IpAddr>> = vec![None; subnets.len()];
        for value in &self.gateways {
            let ip = parse_ip("--gateway", value)?;
            let at = assign(&subnets, ip, "gateway", value)?;
            if gateways[at].replace(ip).is_some() {
                return Err(duplicate("gateway", subnets[at]));
            }
        }
        let mut ranges: Vec<Option<IpNetwork>> = vec![None; subnets.len()];
        for value in &self.ip_ranges {
            let range = parse_cidr("--ip-range", value)?;
            let at = assign(&subnets, range.network(), "ip-range", value)?;
            if ranges[at].replace(range).is_some() {
                return Err(duplicate("ip-range", subnets[at]));
            }
        }
        let mut aux: Vec<BTreeMap<String, IpAddr>> = vec![BTreeMap::new(); subnets.len()];
        for value in &self.aux_addresses {
            let (name, ip) = value
                .split_once('=')
                .filter(|(name, _)| !name.is_empty())
                .ok_or_else(|| invalid("--aux-address", value, "expected NAME=IP"))?;
            let ip = parse_ip("--aux-address", ip)?;
            // Names are keys, as in Docker's map of auxiliary addresses: one name, one address,
            // across all subnets. One address under two names is a slip as well.
            if aux.iter().any(|pool| pool.contains_key(name)) {
                return Err(Error::RepeatedAuxName {
                    name: name.to_owned(),
                });
            }
            if let Some((first, _)) = aux.iter().flatten().find(|(_, held)| **held == ip) {
                return Err(Error::RepeatedAuxAddress {
                    ip,
                    first: first.clone(),
                    second: name.to_owned(),
                });
            }
            let at = assign(&subnets, ip, "auxiliary address", value)?;
            aux[at].insert(name.to_owned(), ip);
        }
        let pools = subnets
            .iter()
            .zip(gateways)
            .zip(ranges)
            .zip(aux)
            .map(|(((subnet, gw), range), aux)| Pool::new(*subnet, gw, range, aux))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| Error::Pool(Box::new(err)))?;
        for (i, a) in subnets.iter().enumerate() {
            if subnets[..i]
                .iter()
                .any(|b| b.contains(a.network()) || a.contains(b.network()))
            {
                return Err(invalid(
                    "--subnet",
                    &a.to_string(),
                    "it overlaps another --subnet of this network",
                ));
            }
        }

        let options = self.parse_options()?;
        // No parent: an internal network on a dummy link of its own, as Docker does it.
        let (parent, parent_link) = match options.get("parent") {
            Some(parent) => {
                Parent::parse(parent).map_err(Error::Parent)?;
                (parent.clone(), ParentLink::Existing)
            }
            None => (Parent::dummy_for(&id).name().to_owned(), ParentLink::Dummy),
        };
        let internal = self.internal || parent_link == ParentLink::Dummy;
        let mode = options
            .get("macvlan_mode")
            .map(|m| m.parse::<Mode>())
            .transpose()?
            .unwrap_or_default();
        let mtu = options
            .get("mtu")
            .map(|value| {
                value
                    .parse::<u32>()
                    .ok()
                    .filter(|mtu| (68..=65535).contains(mtu))
                    .ok_or_else(|| {
                        invalid("-o mtu", value, "must be a number between 68 and 65535")
                    })
            })
            .transpose()?;
        let source_macs = source_macs(mode, options.get("source_macs"))?;
        let ipv6 = self.ipv6 || subnets.iter().any(IpNetwork::is_ipv6);
        Ok(Network {
            name: self.name.clone(),
            id,
            created,
            driver: self.driver.clone(),
            parent,
            parent_link,
            mode,
            mtu,
            internal,
            ipv6,
            pools,
            source_macs,
            options,
        })
    }

    fn parse_options(&self) -> Result<BTreeMap<String, String>> {
        let mut options = BTreeMap::new();
        for opt in &self.options {
            let (key, value) = opt
                .split_once('=')
                .ok_or_else(|| invalid("-o", opt, "expected KEY=VALUE"))?;
            if !matches!(key, "parent" | "macvlan_mode" | "mtu" | "source_macs") {
                return Err(Error::UnknownOption {
                    key: key.to_owned(),
                });
            }
            if options.insert(key.to_owned(), value.to_owned()).is_some() {
                return Err(Error::RepeatedOption {
                    key: key.to_owned(),
                });
            }
        }
        Ok(options)
    }
}

/// `-o source_macs=MAC[,MAC…]`: required by, and only allowed with, `macvlan_mode=source`.
/// Returns the MACs lowercase and deduplicated, in the order given.
fn source_macs(mode: Mode, value: Option<&String>) -> Result<Vec<String>> {
    let Some(value) = value else {
        return match mode {
            Mode::Source => Err(Error::SourceMacsMissing),
            _ => Ok(Vec::new()),
        };
    };
    if mode != Mode::Source {
        return Err(invalid(
            "-o source_macs",
            value,
            "only a macvlan_mode=source network takes a list of source MACs",
        ));
    }
    let mut macs: Vec<String> = Vec::new();
    for item in value.split(',') {
        let mac = parse_source_mac(item.trim())?.to_string();
        if !macs.contains(&mac) {
            macs.push(mac);
        }
    }
    Ok(macs)
}

fn parse_source_mac(item: &str) -> Result<MacAddr> {
    let mac: MacAddr = item
        .parse()
        .map_err(|err: ParseMacError| invalid("-o source_macs", item, &err.to_string()))?;
    if mac.is_multicast() || mac.is_zero() {
        return Err(invalid(
            "-o source_macs",
            item,
            "a source MAC must be a unicast station address",
        ));
    }
    Ok(mac)
}

/// Docker's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`. A name becomes a file name and part of
/// annotation keys, so nothing else is allowed.
pub(crate) fn check_network_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > 64 {
        Some("it is longer than 64 characters")
    } else if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        Some("it must start with a letter or digit")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        Some("only letters, digits, '_', '.' and '-' are allowed")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidNetworkName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

fn invalid(flag: &'static str, value: &str, reason: &str) -> Error {
    Error::InvalidFlag {
        flag,
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

fn duplicate(what: &'static str, subnet: IpNetwork) -> Error {
    Error::Duplicate {
        what,
        subnet: subnet.to_string(),
    }
}

fn parse_cidr(flag: &'static str, value: &str) -> Result<IpNetwork> {
    if !value.contains('/') {
        return Err(invalid(
            flag,
            value,
            "expected an address with a prefix length, e.g. 192.168.50.0/24",
        ));
    }
    value
        .parse()
        .map_err(|_: ipnetwork::IpNetworkError| invalid(flag, value, "not a valid CIDR address"))
}

fn parse_ip(flag: &'static str, value: &str) -> Result<IpAddr> {
    value
        .parse()
        .map_err(|_| invalid(flag, value, "not an IPv4 or IPv6 address"))
}

/// Which subnet an address-like flag belongs to: the first that contains it; with a single subnet
/// of that family, that one (so the pool reports Docker's "parent subnet doesn't contain" error).
fn assign(subnets: &[IpNetwork], ip: IpAddr, what: &'static str, value: &str) -> Result<usize> {
    if let Some(at) = subnets.iter().position(|s| s.contains(ip)) {
        return Ok(at);
    }
    let same_family: Vec<usize> = (0..subnets.len())
        .filter(|&i| subnets[i].is_ipv4() == ip.is_ipv4())
        .collect();
    match same_family.as_slice() {
        [only] => Ok(*only),
        _ => Err(Error::NoSubnetFor {
            what,
            value: value.to_owned(),
        }),
    }
}
