//! The ipvlan driver: container links share their parent's MAC and the parent tells them apart
//! by IP address (`-o ipvlan_mode=l2|l3|l3s`, `-o ipvlan_flag=bridge|private|vepa`): what a
//! switch port or a Wi-Fi link that allows one MAC needs.

use std::{collections::BTreeMap, fmt};

use oci_macvlan_netlink_core::{ChildKind, IpvlanFlag, IpvlanMode, MacAddr};
use serde::{Deserialize, Serialize};

use super::{DefaultRoute, Driver, Sharer, refuse_unknown};
use crate::{ErrorKind, Result, mac::Mac};

const KEYS: &[&str] = &["ipvlan_mode", "ipvlan_flag"];

/// `-o ipvlan_mode=` (Docker's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The parent switches frames: containers are on the LAN's subnets, ARP and all.
    #[default]
    L2,
    /// The parent routes: no broadcast, no ARP on the LAN; the LAN reaches the containers'
    /// subnets through routes via the host.
    L3,
    /// L3, with the host's netfilter seeing the containers' traffic.
    L3s,
}

/// `-o ipvlan_flag=` (Docker's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Flag {
    /// Containers on one parent reach each other inside the kernel.
    #[default]
    Bridge,
    /// Containers on one parent do not reach each other.
    Private,
    /// Containers on one parent reach each other through the LAN's switch.
    Vepa,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Self::L2 => "l2",
            Self::L3 => "l3",
            Self::L3s => "l3s",
        })
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Self::Bridge => "bridge",
            Self::Private => "private",
            Self::Vepa => "vepa",
        })
    }
}

/// An ipvlan network's options, as its definition stores them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Options {
    /// The mode (`-o ipvlan_mode=`).
    pub ipvlan_mode: Mode,
    /// The flag (`-o ipvlan_flag=`).
    pub ipvlan_flag: Flag,
}

impl Options {
    pub(super) fn parse(options: &BTreeMap<String, String>, core: &[&'static str]) -> Result<Self> {
        refuse_unknown(options, KEYS, core)?;
        let ipvlan_mode = match options.get("ipvlan_mode").map(String::as_str) {
            None => Mode::default(),
            Some("l2") => Mode::L2,
            Some("l3") => Mode::L3,
            Some("l3s") => Mode::L3s,
            Some(other) => return Err(Error::InvalidMode(other.to_owned()).into()),
        };
        let ipvlan_flag = match options.get("ipvlan_flag").map(String::as_str) {
            None => Flag::default(),
            Some("bridge") => Flag::Bridge,
            Some("private") => Flag::Private,
            Some("vepa") => Flag::Vepa,
            Some(other) => return Err(Error::InvalidFlag(other.to_owned()).into()),
        };
        Ok(Self {
            ipvlan_mode,
            ipvlan_flag,
        })
    }
}

impl Driver for Options {
    fn name(&self) -> &'static str {
        "ipvlan"
    }

    fn mode(&self) -> String {
        format!("{}/{}", self.ipvlan_mode, self.ipvlan_flag)
    }

    fn child(&self) -> ChildKind<'_> {
        ChildKind::Ipvlan {
            mode: match self.ipvlan_mode {
                Mode::L2 => IpvlanMode::L2,
                Mode::L3 => IpvlanMode::L3,
                Mode::L3s => IpvlanMode::L3s,
            },
            flag: match self.ipvlan_flag {
                Flag::Bridge => IpvlanFlag::Bridge,
                Flag::Private => IpvlanFlag::Private,
                Flag::Vepa => IpvlanFlag::Vepa,
            },
        }
    }

    /// An ipvlan in the network's mode and flag (the kernel keeps one of each per parent); the
    /// private flag keeps a parent's ipvlans from reaching each other, the host's among them.
    fn host_child(&self) -> Result<ChildKind<'_>> {
        if self.ipvlan_flag == Flag::Private {
            return Err(Error::HostAccessPrivate.into());
        }
        Ok(self.child())
    }

    /// An ipvlan has its parent's MAC, always: a request for another is refused.
    fn mac(&self, network: &str, _container_id: &str, requested: Option<MacAddr>) -> Result<Mac> {
        match requested {
            Some(mac) => Err(crate::Error::InvalidMac {
                mac: mac.to_string(),
                network: network.to_owned(),
                reason: "an ipvlan network's container shares its parent's MAC",
            }),
            None => Ok(Mac::Parents),
        }
    }

    /// The kernel keeps one mode and one flag per parent (its ipvlan "port"): an ipvlan made in
    /// another mode switches every ipvlan on that parent to it. So the ipvlan networks of one
    /// parent agree on both.
    fn check_shared_parent(&self, parent: &str, others: &[Sharer<'_>]) -> Result<()> {
        let differs = others.iter().find(|o| match o.options {
            super::Options::Ipvlan(theirs) => theirs != self,
            _ => false,
        });
        match differs {
            Some(other) => Err(Error::ParentInOtherMode {
                network: other.network.to_owned(),
                parent: parent.to_owned(),
                mode: other.options.driver().mode(),
            }
            .into()),
            None => Ok(()),
        }
    }

    fn routed_by_host(&self) -> bool {
        self.default_route() == DefaultRoute::OnLink
    }

    fn default_route(&self) -> DefaultRoute {
        match self.ipvlan_mode {
            Mode::L2 => DefaultRoute::ViaGateway,
            Mode::L3 | Mode::L3s => DefaultRoute::OnLink,
        }
    }
}

/// The ipvlan driver's own failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An `-o ipvlan_mode` that names no mode.
    #[error("requested ipvlan mode '{0}' is not valid, 'l2' mode is the ipvlan driver default")]
    InvalidMode(String),
    /// An `-o ipvlan_flag` that names no flag.
    #[error("requested ipvlan flag '{0}' is not valid, 'bridge' is the ipvlan driver default")]
    InvalidFlag(String),
    /// An ipvlan network of another mode or flag already uses the parent: the kernel
    /// keeps one per parent.
    #[error(
        "ipvlan network {network} is already using parent interface {parent} in mode {mode}: the kernel keeps one ipvlan mode and flag per parent"
    )]
    ParentInOtherMode {
        /// The network that uses the parent.
        network: String,
        /// The parent interface.
        parent: String,
        /// That network's mode and flag, as `MODE/FLAG`.
        mode: String,
    },
    /// `-o host_access` on a network with `ipvlan_flag=private`.
    #[error(
        "-o host_access cannot work with ipvlan_flag=private: the kernel keeps a parent's ipvlans, the host's among them, from reaching each other"
    )]
    HostAccessPrivate,
}

impl Error {
    /// What kind of failure this is, for a caller's exit code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidMode(_) | Self::InvalidFlag(_) | Self::HostAccessPrivate => {
                ErrorKind::Invalid
            }
            Self::ParentInOtherMode { .. } => ErrorKind::Conflict,
        }
    }
}

impl From<Error> for crate::Error {
    fn from(err: Error) -> Self {
        Self::Driver(Box::new(super::Error::from(err)))
    }
}
