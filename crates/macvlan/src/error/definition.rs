//! What `network create` refuses, and a definition on disk that would not pass it.

use std::net::IpAddr;

use super::{
    ErrorKind, ipam,
    kind::{article, ipam_kind},
};

/// What `network create` refuses, and a definition on disk that would not pass it: the input is
/// wrong (exit 3), but for a pool's conflicts.
#[derive(Debug, thiserror::Error)]
pub enum DefinitionError {
    /// A network name that cannot be one (Docker's rules, and no name that reads as an id).
    #[error("invalid network name {name:?}: {reason}")]
    InvalidNetworkName {
        /// The name given.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A `-d` that names no driver.
    #[error("driver {driver:?} is not supported (known: {known})")]
    UnsupportedDriver {
        /// The driver given.
        driver: String,
        /// The drivers there are, comma-separated.
        known: String,
    },
    /// A flag or `-o` option whose value cannot be used.
    #[error("invalid {flag} {value:?}: {reason}")]
    InvalidFlag {
        /// The flag or option.
        flag: &'static str,
        /// The value given.
        value: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// A network created without `--subnet`: it joins an existing LAN, whose subnet
    /// only its user knows.
    #[error(
        "at least one --subnet is required: {} {driver} network joins an existing LAN, give its subnet",
        article(driver)
    )]
    NoSubnet {
        /// The network's driver.
        driver: &'static str,
    },
    /// A `--gateway`, `--ip-range` or `--aux-address` that no subnet contains, with
    /// several subnets of its family to choose from.
    #[error("no configured subnet contains {what} {value}")]
    NoSubnetFor {
        /// Which flag it is.
        what: &'static str,
        /// The value given.
        value: String,
    },
    /// A subnet given more than one `--gateway` or more than one `--ip-range`.
    #[error("subnet {subnet} has more than one {what}")]
    Duplicate {
        /// Which flag it is.
        what: &'static str,
        /// The subnet.
        subnet: String,
    },
    /// A `-o` key the driver does not know.
    #[error("unknown option {key:?} (known: {known})")]
    UnknownOption {
        /// The key given.
        key: String,
        /// The keys it knows, comma-separated.
        known: String,
    },
    /// `-o parent=lo`: the loopback takes no macvlan or ipvlan links.
    #[error("loopback interface is not a valid {driver} parent link")]
    LoopbackParent {
        /// The network's driver.
        driver: &'static str,
    },
    /// An `-o` key given more than once.
    #[error("-o {key} is given more than once: each option takes one value")]
    RepeatedOption {
        /// The key.
        key: String,
    },
    /// An `--aux-address` name given more than once.
    #[error("--aux-address name {name} is given more than once: each name reserves one address")]
    RepeatedAuxName {
        /// The name.
        name: String,
    },
    /// One address given as two `--aux-address`es.
    #[error("--aux-address {ip} is given twice, as {first} and as {second}")]
    RepeatedAuxAddress {
        /// The address.
        ip: IpAddr,
        /// The first `--aux-address` that gives it.
        first: String,
        /// The second.
        second: String,
    },
    /// A subnet, gateway, ip-range or auxiliary address the pool refuses.
    #[error(transparent)]
    Pool(Box<ipam::Error>),
    /// A `-o parent` that cannot name a link (or a VLAN of one).
    #[error(transparent)]
    Parent(oci_macvlan_vlan::Error),
}

impl DefinitionError {
    /// What kind of failure this is, for a caller's exit code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Pool(source) => ipam_kind(source),
            Self::InvalidNetworkName { .. }
            | Self::UnsupportedDriver { .. }
            | Self::InvalidFlag { .. }
            | Self::NoSubnet { .. }
            | Self::NoSubnetFor { .. }
            | Self::Duplicate { .. }
            | Self::UnknownOption { .. }
            | Self::LoopbackParent { .. }
            | Self::RepeatedOption { .. }
            | Self::RepeatedAuxName { .. }
            | Self::RepeatedAuxAddress { .. }
            | Self::Parent(_) => ErrorKind::Invalid,
        }
    }
}
