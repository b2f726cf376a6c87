//! The seam between the core (definitions, records, locks, attach, detach, gc, verify) and the
//! kinds of link a network gives its containers. A driver is one module of this directory
//! behind [`Driver`]: it validates its `-o` options into a typed value, says which link it
//! creates and which MAC that link has, how its containers' default routes go, and its policy on
//! a parent that other networks use. The core never names a driver: it asks [`Options::driver`].
//!
//! This file is the registry, the one place that lists the drivers: [`Options`] (what a
//! definition stores), [`NAMES`], [`Options::parse`], [`Options::driver`] and [`Error`].
//!
//! How a link is recognised as a container's own is not the driver's to say: the endpoint
//! record holds the kind, the parent's index and, where the link has a MAC of its own, that MAC
//! ([`crate::RecordedEndpoint::is`]), so detach works without the definitions.

use std::{collections::BTreeMap, fmt};

use oci_macvlan_netlink_core::{ChildKind, MacAddr};
use serde::{Deserialize, Serialize};

use crate::{ErrorKind, Result, error::DriverError, mac::Mac};

pub mod ipvlan;
pub mod macvlan;

/// The driver names `network create -d` takes.
pub const NAMES: &[&str] = &["macvlan", "ipvlan"];

/// What one kind of network does with its containers' links.
pub trait Driver: fmt::Debug + Sync {
    /// The driver's name (`-d`). The kind of the links it makes (`IFLA_INFO_KIND`) is not
    /// this name but [`ChildKind::name`] of [`Driver::child`]: a record keeps that.
    fn name(&self) -> &'static str;

    /// The `MODE` column of `network ls`.
    fn mode(&self) -> String;

    /// The link to create, kind and settings.
    fn child(&self) -> ChildKind<'_>;

    /// The MAC a container's link gets: `requested` is the annotation's. [`Mac::Parents`]
    /// leaves the kernel's (an ipvlan, or a passthru macvlan, has its parent's). Input is
    /// hostile: a request the driver cannot honour is an error, never ignored.
    fn mac(&self, network: &str, container_id: &str, requested: Option<MacAddr>) -> Result<Mac>;

    /// The host's own link on the parent for `-o host_access` (see [`crate::host_access`]): a
    /// sibling of the containers' links that the kernel lets talk to them. A mode in which
    /// siblings do not reach each other is refused, saying why.
    fn host_child(&self) -> Result<ChildKind<'_>>;

    /// How a container's default routes go.
    fn default_route(&self) -> DefaultRoute {
        DefaultRoute::ViaGateway
    }

    /// Whether the LAN reaches the containers' subnets through the host (ipvlan L3): the
    /// parent answers for them at the host's MAC and neither ARP nor NDP for a container's
    /// address crosses it, so the LAN's router needs a route to each subnet via the host's
    /// address on the parent ([`crate::Network::lan_routes`]).
    fn routed_by_host(&self) -> bool {
        false
    }

    /// What the driver's links take on the parent: the kernel gives a link one receive handler,
    /// so children of drivers with different handlers cannot share a parent (`EBUSY`).
    fn parent_handler(&self) -> &'static str {
        self.name()
    }

    /// Refuses a network of these options on `parent` when `others` (the networks with the
    /// same handler already on that parent) forbid sharing it, or it forbids them (macvlan's
    /// passthru).
    fn check_shared_parent(&self, _parent: &str, _others: &[Sharer<'_>]) -> Result<()> {
        Ok(())
    }

    /// The mode's name when a parent takes exactly one container link (macvlan's passthru):
    /// attach then refuses a second container by name before the kernel answers `EINVAL`.
    fn exclusive_parent(&self) -> Option<&'static str> {
        None
    }
}

/// A network on a parent, as a driver sees it when another asks to share that parent.
#[derive(Debug, Clone, Copy)]
pub struct Sharer<'a> {
    /// The network's name.
    pub network: &'a str,
    /// Its driver and options.
    pub options: &'a Options,
}

/// Where a container's default route of a family points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DefaultRoute {
    /// Via the gateway of the subnet of its address, when the subnet has one (`default via GW`).
    ViaGateway,
    /// Straight onto the link whatever gateway was given (`default dev eth0`): the parent's host
    /// routes (ipvlan L3).
    OnLink,
}

/// A network's driver and its typed options, as the definition stores them: `"driver"` names
/// the driver and its options sit beside it (the shape every earlier definition has).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "driver", rename_all = "lowercase")]
pub enum Options {
    /// A macvlan network's options.
    Macvlan(macvlan::Options),
    /// An ipvlan network's options.
    Ipvlan(ipvlan::Options),
}

impl Options {
    /// Validates the driver's `-o` options (`options` holds only the keys the core does not
    /// take, `core`: every key left is the driver's or an error).
    pub(crate) fn parse(
        driver: &str,
        options: &BTreeMap<String, String>,
        core: &[&'static str],
    ) -> Result<Self> {
        match driver {
            "macvlan" => Ok(Self::Macvlan(macvlan::Options::parse(options, core)?)),
            "ipvlan" => Ok(Self::Ipvlan(ipvlan::Options::parse(options, core)?)),
            other => Err(crate::DefinitionError::UnsupportedDriver {
                driver: other.to_owned(),
                known: NAMES.join(", "),
            }
            .into()),
        }
    }

    /// The driver of these options.
    pub fn driver(&self) -> &dyn Driver {
        match self {
            Self::Macvlan(options) => options,
            Self::Ipvlan(options) => options,
        }
    }
}

/// A driver's own failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The macvlan driver's failure.
    #[error(transparent)]
    Macvlan(#[from] macvlan::Error),
    /// The ipvlan driver's failure.
    #[error(transparent)]
    Ipvlan(#[from] ipvlan::Error),
}

impl DriverError for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Macvlan(err) => err.kind(),
            Self::Ipvlan(err) => err.kind(),
        }
    }
}

/// The keys in `options` that `known` does not list, as the error the core reports.
pub(crate) fn refuse_unknown(
    options: &BTreeMap<String, String>,
    known: &[&'static str],
    core: &[&'static str],
) -> Result<()> {
    match options.keys().find(|key| !known.contains(&key.as_str())) {
        Some(key) => Err(crate::DefinitionError::UnknownOption {
            key: key.clone(),
            known: core
                .iter()
                .chain(known)
                .copied()
                .collect::<Vec<_>>()
                .join(", "),
        }
        .into()),
        None => Ok(()),
    }
}

/// A MAC a container may be given: a unicast station address.
pub(crate) fn check_station_mac(network: &str, mac: MacAddr) -> Result<MacAddr> {
    if !mac.is_station() {
        return Err(crate::Error::InvalidMac {
            mac: mac.to_string(),
            network: network.to_owned(),
            reason: if mac.is_zero() {
                "the all-zero address is not a station address"
            } else {
                "it is a multicast address"
            },
        });
    }
    Ok(mac)
}
