use std::{net::IpAddr, path::PathBuf};

use ipnetwork::IpNetwork;

use crate::{damage::Damage, pool::Reserved};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid subnet {given}: it should be {canonical}")]
    SubnetNotCanonical {
        given: IpNetwork,
        canonical: IpNetwork,
    },
    #[error("invalid subnet {0}: too small to hold any container address")]
    SubnetTooSmall(IpNetwork),
    #[error("invalid ip-range {given}: it should be {canonical}")]
    RangeNotCanonical {
        given: IpNetwork,
        canonical: IpNetwork,
    },
    #[error("invalid ip-range {range}: CIDR block is bigger than its parent subnet {subnet}")]
    RangeTooBig { range: IpNetwork, subnet: IpNetwork },
    #[error("invalid ip-range {range}: parent subnet {subnet} doesn't contain ip-range")]
    RangeOutsideSubnet { range: IpNetwork, subnet: IpNetwork },
    #[error("invalid gateway {gateway}: parent subnet {subnet} doesn't contain this address")]
    GatewayOutsideSubnet { gateway: IpAddr, subnet: IpNetwork },
    #[error("invalid gateway {gateway}: it is the {what} of subnet {subnet}")]
    GatewayReserved {
        gateway: IpAddr,
        what: &'static str,
        subnet: IpNetwork,
    },
    #[error(
        "invalid auxiliary address {name}={ip}: parent subnet {subnet} doesn't contain this address"
    )]
    AuxOutsideSubnet {
        name: String,
        ip: IpAddr,
        subnet: IpNetwork,
    },
    #[error("no configured subnet contains IP address {0}")]
    NoSubnetContains(IpAddr),
    #[error("IP address {ip} is reserved on this network ({reserved})")]
    AddressReserved { ip: IpAddr, reserved: Reserved },
    #[error(
        "Address already in use: {ip} is leased to container {container_id} ({ifname}){}",
        host.as_ref().map(|h| format!(" on host {h}")).unwrap_or_default()
    )]
    AddressInUse {
        ip: IpAddr,
        container_id: String,
        ifname: String,
        host: Option<String>,
    },
    #[error(
        "container {container_id} already holds {held} on {ifname} of network {network}, not the requested {requested}"
    )]
    OwnerHoldsOther {
        container_id: String,
        ifname: String,
        network: String,
        held: IpAddr,
        requested: IpAddr,
    },
    #[error(
        "no available IPv{family} addresses on this network's address pools: {network} ({pools})"
    )]
    Exhausted {
        family: u8,
        network: String,
        pools: String,
    },
    #[error(
        "cannot open the lease store {path} (it is never re-created automatically: a lost lease store hands out addresses twice; check the file, and move it aside only when no container holds an address)"
    )]
    OpenStore {
        path: PathBuf,
        #[source]
        source: heed::Error,
    },
    #[error("cannot create the state directory {path}")]
    CreateStateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "lease store {path} is damaged ({damage}): stop the containers that use oci-macvlan, move {store} aside, and the next attach starts an empty store"
    )]
    Damaged {
        /// The file or directory at fault.
        path: PathBuf,
        /// The store's directory, `<state-dir>/leases`.
        store: PathBuf,
        damage: Damage,
    },
    #[error("cannot read the lease store {path}")]
    ReadStore {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the lease store {path}")]
    CreateStore {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read this boot's id from {path}")]
    BootId {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("lease store {path} kept changing while it was opened")]
    StoreChanging { path: PathBuf },
    #[error("cannot set aside {path}, the lease store of an earlier boot")]
    SetAside {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("lease store operation failed")]
    Store(#[from] heed::Error),
    #[error("lease store holds a malformed row: {0}")]
    Corrupt(String),
    /// A networked store could not be reached, or could not decide, in time: nothing was
    /// changed and nothing may be assumed (never a fallback to another store).
    #[error("lease store {store} unavailable: {what}")]
    Unavailable {
        /// The store, as its user named it (etcd's endpoints).
        store: String,
        /// What was tried, and for how long.
        what: String,
        /// Whether a write was sent and not answered: it may still take effect.
        maybe_written: bool,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The claim of this host's id in a shared store was made with another secret: another
    /// machine (a clone, a host run with another's `--host-id`), or this one before its
    /// identity file was lost or replaced. Nothing was written.
    #[error(
        "host id {host} is claimed in {store} with another secret than {kept_in}'s ({key}): \
         another machine has this id, or this one had it before {kept_in} was lost or \
         replaced; give this machine an id of its own: remove {kept_in} and run any command \
         once with --host-id NEW-ID (the old id's leases are released by `gc --forget-host \
         {host}` from another host once its claim is an hour old)"
    )]
    HostClaimed {
        host: String,
        store: String,
        key: String,
        kept_in: String,
    },
    /// `gc --forget-host` of a host whose claim was refreshed recently: it may still run.
    #[error(
        "host {host} is alive in {store}: its claim {key} was refreshed {ago_secs} s ago (its gc \
         and its writes refresh it); a host is forgotten only {alive_secs} s after it was last seen"
    )]
    HostAlive {
        host: String,
        store: String,
        key: String,
        ago_secs: u64,
        alive_secs: u64,
    },
    /// An `--ipam-opt` (or the definition's `ipam` options) that cannot be used.
    #[error("invalid --ipam-opt {key}: {reason}")]
    IpamOption { key: String, reason: String },
    #[error("invalid subnet {subnet}: it overlaps {block} ({why}), which no LAN can use")]
    SubnetUnusable {
        subnet: IpNetwork,
        block: IpNetwork,
        why: &'static str,
    },
}

/// What kind of failure an [`Error`] is, for a caller's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input is wrong (a pool, an address, an option): asking again the same way fails.
    Invalid,
    /// The input is fine but something holds what it asks for (an address, a pool's last
    /// address, a host id that is alive).
    Conflict,
    /// The store itself failed, could not be reached, or holds what it should not.
    System,
}

impl Error {
    /// What kind of failure this is. Every variant is named: a new one must be placed here,
    /// never fall into a catch-all.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::SubnetNotCanonical { .. }
            | Self::SubnetTooSmall(_)
            | Self::RangeNotCanonical { .. }
            | Self::RangeTooBig { .. }
            | Self::RangeOutsideSubnet { .. }
            | Self::GatewayOutsideSubnet { .. }
            | Self::GatewayReserved { .. }
            | Self::AuxOutsideSubnet { .. }
            | Self::NoSubnetContains(_)
            | Self::AddressReserved { .. }
            | Self::SubnetUnusable { .. }
            | Self::IpamOption { .. } => ErrorKind::Invalid,
            Self::AddressInUse { .. }
            | Self::OwnerHoldsOther { .. }
            | Self::Exhausted { .. }
            | Self::HostAlive { .. } => ErrorKind::Conflict,
            Self::OpenStore { .. }
            | Self::CreateStateDir { .. }
            | Self::Damaged { .. }
            | Self::ReadStore { .. }
            | Self::CreateStore { .. }
            | Self::BootId { .. }
            | Self::StoreChanging { .. }
            | Self::SetAside { .. }
            | Self::Store(_)
            | Self::Corrupt(_)
            | Self::Unavailable { .. }
            | Self::HostClaimed { .. } => ErrorKind::System,
        }
    }

    /// True when the caller asked for something that is held (an address, a pool's last
    /// address, a host that is alive): [`ErrorKind::Conflict`].
    pub fn is_conflict(&self) -> bool {
        self.kind() == ErrorKind::Conflict
    }

    /// True when a networked store could not be reached, or could not decide, in time.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// True when a write was sent to a networked store and its outcome is unknown: the
    /// caller must treat what it asked for as possibly done (and undo it, or keep a record
    /// that lets `gc` undo it).
    pub fn maybe_written(&self) -> bool {
        matches!(
            self,
            Self::Unavailable {
                maybe_written: true,
                ..
            }
        )
    }

    /// True when the input is wrong: [`ErrorKind::Invalid`].
    pub fn is_invalid_input(&self) -> bool {
        self.kind() == ErrorKind::Invalid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kind decides a front door's exit code: a held address and a host alive are
    /// conflicts (5), a bad option invalid (3), a store that does not answer the system's (1).
    #[test]
    fn each_error_has_its_kind() {
        let ip: IpAddr = [10, 0, 0, 2].into();
        let cases = [
            (
                Error::AddressInUse {
                    ip,
                    container_id: "c".into(),
                    ifname: "eth0".into(),
                    host: None,
                },
                ErrorKind::Conflict,
            ),
            (
                Error::HostAlive {
                    host: "h".into(),
                    store: "s".into(),
                    key: "k".into(),
                    ago_secs: 1,
                    alive_secs: 3600,
                },
                ErrorKind::Conflict,
            ),
            (
                Error::IpamOption {
                    key: "k".into(),
                    reason: "r".into(),
                },
                ErrorKind::Invalid,
            ),
            (Error::NoSubnetContains(ip), ErrorKind::Invalid),
            (
                Error::Unavailable {
                    store: "s".into(),
                    what: "w".into(),
                    maybe_written: false,
                    source: None,
                },
                ErrorKind::System,
            ),
            (Error::Corrupt("x".into()), ErrorKind::System),
        ];
        for (err, kind) in cases {
            assert_eq!(err.kind(), kind, "{err}");
            assert_eq!(err.is_conflict(), kind == ErrorKind::Conflict, "{err}");
            assert_eq!(err.is_invalid_input(), kind == ErrorKind::Invalid, "{err}");
        }
    }
}
