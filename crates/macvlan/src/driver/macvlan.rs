//! The macvlan driver: each container link has a MAC of its own on the parent's LAN
//! (`-o macvlan_mode=bridge|private|vepa|passthru|source`, `-o source_macs=`).

use std::{collections::BTreeMap, fmt, str::FromStr};

use oci_macvlan_netlink_core::{ChildKind, MacAddr, MacvlanMode, ParseMacError};
use serde::{Deserialize, Serialize};

use super::{Driver, Sharer, check_station_mac, refuse_unknown};
use crate::{ErrorKind, Result, default_mac, error::invalid, mac::Mac};

const KEYS: &[&str] = &["macvlan_mode", "source_macs"];

/// The macvlan modes a network may use (`-o macvlan_mode=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Containers on one parent reach each other inside the kernel.
    #[default]
    Bridge,
    /// Containers on one parent do not reach each other.
    Private,
    /// Containers on one parent reach each other through the LAN's switch.
    Vepa,
    /// The parent's one child, with the parent's MAC.
    Passthru,
    /// Receives only frames whose source MAC is in the network's `source_macs`.
    Source,
}

impl Mode {
    fn to_netlink(self) -> MacvlanMode {
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

    fn from_str(s: &str) -> Result<Self, Error> {
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

/// A macvlan network's options, as its definition stores them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Options {
    /// The mode (`-o macvlan_mode=`).
    pub mode: Mode,
    /// Source mode's allowed source MACs (`-o source_macs=`), deduplicated, in the order given.
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "mac_list")]
    pub source_macs: Vec<MacAddr>,
}

impl Options {
    pub(super) fn parse(options: &BTreeMap<String, String>, core: &[&'static str]) -> Result<Self> {
        refuse_unknown(options, KEYS, core)?;
        let mode = options
            .get("macvlan_mode")
            .map(|m| m.parse::<Mode>())
            .transpose()?
            .unwrap_or_default();
        let source_macs = source_macs(mode, options.get("source_macs"))?;
        Ok(Self { mode, source_macs })
    }
}

impl Driver for Options {
    fn name(&self) -> &'static str {
        "macvlan"
    }

    fn mode(&self) -> String {
        self.mode.to_string()
    }

    fn child(&self) -> ChildKind<'_> {
        ChildKind::Macvlan {
            mode: self.mode.to_netlink(),
            source_macs: &self.source_macs,
        }
    }

    /// Only bridge mode: the kernel passes frames between macvlans of one parent in bridge mode
    /// alone (private never, vepa through the switch, which sends them back only if it
    /// hairpins; passthru and source take no sibling).
    fn host_child(&self) -> Result<ChildKind<'_>> {
        match self.mode {
            Mode::Bridge => Ok(ChildKind::Macvlan {
                mode: MacvlanMode::Bridge,
                source_macs: &[],
            }),
            mode => Err(Error::HostAccessMode(mode).into()),
        }
    }

    /// A passthru macvlan carries its parent's MAC: setting another would rewrite the parent's,
    /// so none is set, and asking for one is an error. Otherwise the requested MAC, or one
    /// derived from the container id and the network (stable across restarts).
    fn mac(&self, network: &str, container_id: &str, requested: Option<MacAddr>) -> Result<Mac> {
        if self.mode == Mode::Passthru {
            return match requested {
                Some(mac) => Err(crate::Error::InvalidMac {
                    mac: mac.to_string(),
                    network: network.to_owned(),
                    reason: "a passthru network's container uses its parent's MAC",
                }),
                None => Ok(Mac::Parents),
            };
        }
        let mac = requested.unwrap_or_else(|| default_mac(container_id, network));
        check_station_mac(network, mac).map(Mac::Own)
    }

    /// A passthru network has its parent to itself (Docker's rule and wording, both ways).
    fn check_shared_parent(&self, parent: &str, others: &[Sharer<'_>]) -> Result<()> {
        let Some(other) = others.first() else {
            return Ok(());
        };
        if self.mode == Mode::Passthru {
            return Err(Error::PassthruTaken {
                network: other.network.to_owned(),
                parent: parent.to_owned(),
            }
            .into());
        }
        let passthru = others
            .iter()
            .find(|o| matches!(o.options, super::Options::Macvlan(m) if m.mode == Mode::Passthru));
        if let Some(passthru) = passthru {
            return Err(Error::ParentInPassthru {
                network: passthru.network.to_owned(),
                parent: parent.to_owned(),
            }
            .into());
        }
        Ok(())
    }

    fn exclusive_parent(&self) -> Option<&'static str> {
        (self.mode == Mode::Passthru).then_some("passthru")
    }
}

/// `-o source_macs=MAC[,MAC…]`: required by, and only allowed with, `macvlan_mode=source`.
fn source_macs(mode: Mode, value: Option<&String>) -> Result<Vec<MacAddr>> {
    let Some(value) = value else {
        return match mode {
            Mode::Source => Err(Error::SourceMacsMissing.into()),
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
    let mut macs: Vec<MacAddr> = Vec::new();
    for item in value.split(',') {
        let mac = parse_source_mac(item.trim())?;
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
    if !mac.is_station() {
        return Err(invalid(
            "-o source_macs",
            item,
            "a source MAC must be a unicast station address",
        ));
    }
    Ok(mac)
}

/// The macvlan driver's own failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An `-o macvlan_mode` that names no mode.
    #[error(
        "requested macvlan mode '{0}' is not valid, 'bridge' mode is the macvlan driver default"
    )]
    InvalidMode(String),
    /// Mode `source` without `-o source_macs`.
    #[error(
        "macvlan mode 'source' needs -o source_macs=MAC[,MAC...]: the MACs whose frames the container receives"
    )]
    SourceMacsMissing,
    /// A passthru network on a parent another macvlan network already uses.
    #[error(
        "cannot use mode passthru, macvlan network {network} is already using parent interface {parent}"
    )]
    PassthruTaken {
        /// The network that uses the parent.
        network: String,
        /// The parent interface.
        parent: String,
    },
    /// A macvlan network on a parent a passthru network already uses.
    #[error(
        "macvlan network {network} is already using parent interface {parent} in mode passthru"
    )]
    ParentInPassthru {
        /// The passthru network.
        network: String,
        /// The parent interface.
        parent: String,
    },
    /// `-o host_access` on a network in another mode than bridge.
    #[error(
        "-o host_access needs macvlan_mode=bridge, not {0}: the kernel passes frames between a parent's macvlans only in bridge mode"
    )]
    HostAccessMode(Mode),
}

impl Error {
    /// What kind of failure this is, for a caller's exit code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidMode(_) | Self::SourceMacsMissing | Self::HostAccessMode(_) => {
                ErrorKind::Invalid
            }
            Self::PassthruTaken { .. } | Self::ParentInPassthru { .. } => ErrorKind::Conflict,
        }
    }
}

impl From<Error> for crate::Error {
    fn from(err: Error) -> Self {
        Self::Driver(Box::new(super::Error::from(err)))
    }
}

/// Source MACs as the text `ip link` shows (lowercase), which every earlier definition holds.
/// A hand-edited file gets the check `network create` makes.
mod mac_list {
    use oci_macvlan_netlink_core::MacAddr;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(macs: &[MacAddr], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(macs.iter().map(ToString::to_string))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<MacAddr>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|text| {
                super::parse_source_mac(text).map_err(|err| D::Error::custom(crate::one_line(&err)))
            })
            .collect()
    }
}
