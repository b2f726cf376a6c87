use std::{net::IpAddr, path::PathBuf};

use ipnetwork::IpNetwork;

use crate::{damage::Damage, pool::Reserved};

/// The result of an IPAM operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a pool could not be made, an address could not be leased, or a lease store failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A subnet was given with host bits set (`10.0.0.1/24` for `10.0.0.0/24`).
    #[error("invalid subnet {given}: it should be {canonical}")]
    SubnetNotCanonical {
        /// The subnet as given.
        given: IpNetwork,
        /// The same subnet with its host bits cleared.
        canonical: IpNetwork,
    },
    /// A subnet leaves no address for a container once its reserved addresses are taken.
    #[error("invalid subnet {0}: too small to hold any container address")]
    SubnetTooSmall(IpNetwork),
    /// An ip-range was given with host bits set.
    #[error("invalid ip-range {given}: it should be {canonical}")]
    RangeNotCanonical {
        /// The ip-range as given.
        given: IpNetwork,
        /// The same range with its host bits cleared.
        canonical: IpNetwork,
    },
    /// An ip-range has a shorter prefix than its subnet.
    #[error("invalid ip-range {range}: CIDR block is bigger than its parent subnet {subnet}")]
    RangeTooBig {
        /// The ip-range.
        range: IpNetwork,
        /// The subnet it belongs to.
        subnet: IpNetwork,
    },
    /// An ip-range lies outside its subnet.
    #[error("invalid ip-range {range}: parent subnet {subnet} doesn't contain ip-range")]
    RangeOutsideSubnet {
        /// The ip-range.
        range: IpNetwork,
        /// The subnet it belongs to.
        subnet: IpNetwork,
    },
    /// A gateway lies outside its subnet.
    #[error("invalid gateway {gateway}: parent subnet {subnet} doesn't contain this address")]
    GatewayOutsideSubnet {
        /// The gateway address.
        gateway: IpAddr,
        /// The subnet it was given for.
        subnet: IpNetwork,
    },
    /// A gateway is an address no host may have: the subnet's network, broadcast or (IPv6)
    /// subnet-router anycast address.
    #[error("invalid gateway {gateway}: it is the {what} of subnet {subnet}")]
    GatewayReserved {
        /// The gateway address.
        gateway: IpAddr,
        /// Which reserved address it is (`network address`, …).
        what: &'static str,
        /// The subnet it was given for.
        subnet: IpNetwork,
    },
    /// An auxiliary address (`--aux-address`) lies outside its subnet.
    #[error(
        "invalid auxiliary address {name}={ip}: parent subnet {subnet} doesn't contain this address"
    )]
    AuxOutsideSubnet {
        /// The auxiliary address's name.
        name: String,
        /// The address.
        ip: IpAddr,
        /// The subnet it was given for.
        subnet: IpNetwork,
    },
    /// A static address was asked for that no pool of the network contains.
    #[error("no configured subnet contains IP address {0}")]
    NoSubnetContains(IpAddr),
    /// A static address was asked for that the pool keeps for itself (gateway, auxiliary,
    /// network or broadcast address).
    #[error("IP address {ip} is reserved on this network ({reserved})")]
    AddressReserved {
        /// The address asked for.
        ip: IpAddr,
        /// What the pool keeps it for.
        reserved: Reserved,
    },
    /// A static address was asked for that another endpoint holds.
    #[error(
        "Address already in use: {ip} is leased to container {container_id} ({ifname}){}",
        host.as_ref().map(|h| format!(" on host {h}")).unwrap_or_default()
    )]
    AddressInUse {
        /// The address asked for.
        ip: IpAddr,
        /// The container that holds it.
        container_id: String,
        /// The interface of that container that holds it.
        ifname: String,
        /// The host that holds it, in a store several hosts share.
        host: Option<String>,
    },
    /// The endpoint already holds an address of this family on the network, and a static
    /// address other than that one was asked for.
    #[error(
        "container {container_id} already holds {held} on {ifname} of network {network}, not the requested {requested}"
    )]
    OwnerHoldsOther {
        /// The container asking.
        container_id: String,
        /// Its interface asking.
        ifname: String,
        /// The network.
        network: String,
        /// The address the endpoint holds.
        held: IpAddr,
        /// The address it asked for.
        requested: IpAddr,
    },
    /// Every address of the network's pools of one family is leased or reserved.
    #[error(
        "no available IPv{family} addresses on this network's address pools: {network} ({pools})"
    )]
    Exhausted {
        /// The IP version, 4 or 6.
        family: u8,
        /// The network.
        network: String,
        /// The subnets looked in, comma-separated.
        pools: String,
    },
    /// LMDB refused to open the local lease store.
    #[error(
        "cannot open the lease store {path} (it is never re-created automatically: a lost lease store hands out addresses twice; check the file, and move it aside only when no container holds an address)"
    )]
    OpenStore {
        /// The store's directory.
        path: PathBuf,
        /// What LMDB said.
        #[source]
        source: heed::Error,
    },
    /// The state directory that holds the lease store could not be created.
    #[error("cannot create the state directory {path}")]
    CreateStateDir {
        /// The state directory.
        path: PathBuf,
        /// What the system call returned.
        #[source]
        source: std::io::Error,
    },
    /// The local lease store is gone, and this process makes none (a lease's renewer, which
    /// outlives the command that made its state dir: see `make_no_stores`).
    #[error("lease store {path} is gone (its state dir was removed?), and a renewer makes none")]
    StoreGone {
        /// The store's directory.
        path: PathBuf,
    },
    /// The local lease store's files are not what a store is made of (a file of the wrong
    /// kind, a mark that cannot be read, …): it is never opened.
    #[error(
        "lease store {path} is damaged ({damage}): stop the containers that use oci-macvlan, move {store} aside, and the next attach starts an empty store"
    )]
    Damaged {
        /// The file or directory at fault.
        path: PathBuf,
        /// The store's directory, `<state-dir>/leases`.
        store: PathBuf,
        /// What is wrong with it.
        damage: Damage,
    },
    /// A file of the local lease store (its boot mark, a directory entry) could not be read.
    #[error("cannot read the lease store {path}")]
    ReadStore {
        /// The file or directory that could not be read.
        path: PathBuf,
        /// What the system call returned.
        #[source]
        source: std::io::Error,
    },
    /// A new local lease store could not be made (its temporary directory, its boot mark, its
    /// rename into place).
    #[error("cannot create the lease store {path}")]
    CreateStore {
        /// The path being made.
        path: PathBuf,
        /// What the system call returned.
        #[source]
        source: std::io::Error,
    },
    /// This boot's id could not be read, so the store's boot mark cannot be checked.
    #[error("cannot read this boot's id from {path}")]
    BootId {
        /// Where the boot id is read from (`/proc/sys/kernel/random/boot_id`).
        path: PathBuf,
        /// What the system call returned.
        #[source]
        source: std::io::Error,
    },
    /// Other processes kept creating or setting aside the local store while this one tried
    /// to open it, round after round.
    #[error("lease store {path} kept changing while it was opened")]
    StoreChanging {
        /// The store's directory.
        path: PathBuf,
    },
    /// The local store of an earlier boot could not be moved aside.
    #[error("cannot set aside {path}, the lease store of an earlier boot")]
    SetAside {
        /// The store, or the lock held while setting it aside.
        path: PathBuf,
        /// What the system call returned.
        #[source]
        source: std::io::Error,
    },
    /// An LMDB transaction of the local store failed.
    #[error("lease store operation failed")]
    Store(#[from] heed::Error),
    /// A row of a lease store cannot be decoded; the text says which and why.
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
        /// The client's error, when there is one.
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
        /// This host's id.
        host: String,
        /// The shared store, as its user named it.
        store: String,
        /// The key of the claim in the store.
        key: String,
        /// The file that keeps this host's identity.
        kept_in: String,
    },
    /// `gc --forget-host` of a host whose claim was refreshed recently: it may still run.
    #[error(
        "host {host} is alive in {store}: its claim {key} was refreshed {ago_secs} s ago (its gc \
         and its writes refresh it); a host is forgotten only {alive_secs} s after it was last seen"
    )]
    HostAlive {
        /// The host to forget.
        host: String,
        /// The shared store, as its user named it.
        store: String,
        /// The key of the host's claim in the store.
        key: String,
        /// Seconds since the claim was last refreshed.
        ago_secs: u64,
        /// Seconds a claim must be left alone before its host may be forgotten.
        alive_secs: u64,
    },
    /// An `--ipam-opt` (or the definition's `ipam` options) that cannot be used.
    #[error("invalid --ipam-opt {key}: {reason}")]
    IpamOption {
        /// The option's key.
        key: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// A subnet overlaps a block no LAN can use (loopback, multicast, …).
    #[error("invalid subnet {subnet}: it overlaps {block} ({why}), which no LAN can use")]
    SubnetUnusable {
        /// The subnet as given.
        subnet: IpNetwork,
        /// The block it overlaps.
        block: IpNetwork,
        /// What the block is for.
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
            | Self::StoreGone { .. }
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
