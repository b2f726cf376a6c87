use std::{io, net::IpAddr, path::PathBuf};

use oci_macvlan_ipam as ipam;
use oci_macvlan_netlink_core as netlink;

mod driver;

pub use driver::DriverError;
pub(crate) use driver::invalid;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How a caller should treat a failure (the binary maps these to exit codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input is wrong: a flag, an annotation, a definition.
    Invalid,
    /// Something the input names does not exist.
    NotFound,
    /// The input is fine but clashes with what exists (address in use, pool exhausted, name taken).
    Conflict,
    /// The system failed: kernel, files, store.
    System,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// What `network create` refuses (and a definition on disk that would not pass it).
    #[error(transparent)]
    Definition(#[from] DefinitionError),
    /// A driver's own failure (see [`DriverError`]).
    #[error("{0}")]
    Driver(Box<dyn DriverError>),
    /// A running container that could not be located (`network connect`).
    #[error(transparent)]
    Locate(#[from] crate::locate::LocateError),
    #[error(transparent)]
    ParentLink(oci_macvlan_vlan::LinkError),
    #[error(
        "parent interface {parent} has {other_driver} network(s) {networks}: the kernel gives a parent {other_driver} or {driver} links, not both"
    )]
    ParentOfOtherDriver {
        parent: String,
        driver: &'static str,
        other_driver: &'static str,
        networks: String,
    },
    #[error("mtu {mtu} is larger than the mtu {parent_mtu} of parent interface {parent}")]
    MtuAboveParent {
        mtu: u32,
        parent: String,
        parent_mtu: u32,
    },
    #[error("network with name {0} already exists")]
    NetworkExists(String),
    #[error(
        "no -o parent was given: network {network} is internal, on a dummy link of its own, which this kernel cannot make (or give -o parent=IF)"
    )]
    NoDummy {
        network: String,
        #[source]
        source: oci_macvlan_vlan::LinkError,
    },
    #[error("parent interface {given} is an alternative name of {name}: give -o parent={name}")]
    ParentAltName { given: String, name: String },
    #[error("network {0} not found")]
    NetworkNotFound(String),
    #[error(
        "network id prefix {prefix} is ambiguous: it starts the ids of {names}; give more of it, or a name"
    )]
    AmbiguousNetwork { prefix: String, names: String },
    #[error("network {name} has active endpoints: {endpoints}")]
    NetworkInUse { name: String, endpoints: String },
    #[error("container {container_id} is not connected to network {network}")]
    NotConnected {
        container_id: String,
        network: String,
    },
    #[error("container {container_id} is already connected to network {network} (as {ifname})")]
    AlreadyConnected {
        container_id: String,
        network: String,
        ifname: String,
    },
    #[error("container process {pid} is gone (read {path})")]
    ProcessGone { pid: i32, path: PathBuf },
    #[error("cannot read {path}")]
    ReadProc {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid container id {id:?}: {reason}")]
    InvalidContainerId { id: String, reason: &'static str },
    #[error("invalid interface name {name:?} for network {network}: {reason}")]
    InvalidIfname {
        name: String,
        network: String,
        reason: &'static str,
    },
    #[error("invalid MAC address {mac} for network {network}: {reason}")]
    InvalidMac {
        mac: String,
        network: String,
        reason: &'static str,
    },
    #[error(
        "MAC address {mac} for network {network} is already in use on parent interface {parent} (by the parent or another container's macvlan)"
    )]
    MacInUse {
        mac: String,
        network: String,
        parent: String,
    },
    #[error(
        "MAC address {mac} for network {network} is reserved on parent interface {parent}: it is the MAC of host link {link} of network {owner}"
    )]
    MacReserved {
        mac: netlink::MacAddr,
        network: String,
        link: String,
        owner: String,
        parent: String,
    },
    #[error("interface {ifname} already exists in the container's network namespace")]
    InterfaceExists { ifname: String },
    #[error("cannot open the container's network namespace")]
    ContainerNetns(#[source] netlink::Error),
    #[error(
        "network namespace {path} is the one oci-macvlan runs in, the host's: the container needs one of its own"
    )]
    HostNetns { path: PathBuf },
    #[error("cannot lease addresses on network {network}")]
    Lease {
        network: String,
        #[source]
        source: Box<ipam::Error>,
    },
    #[error(transparent)]
    Store(Box<ipam::Error>),
    #[error("cannot set up {ifname} for network {network}")]
    Configure {
        network: String,
        ifname: String,
        #[source]
        source: netlink::Error,
    },
    #[error("kernel request failed")]
    Netlink(#[source] netlink::Error),
    /// `failed` (with its causes, in `line`) made an attach undo itself, and the undo left
    /// something: both are said.
    #[error("{line}; the rollback left {left}: poststop or `oci-macvlan gc` takes it back")]
    RollbackIncomplete {
        failed: Box<Error>,
        line: String,
        left: String,
    },
    /// A failpoint's `error` action (only in a `failpoints` build, for the fault-injection suite).
    #[error("injected failure at failpoint {0}")]
    Injected(&'static str),
    #[error(
        "container id {container_id} is in use by another live container ({holder}), which holds {addresses}: nothing of it was touched"
    )]
    IdInUse {
        container_id: String,
        holder: String,
        addresses: String,
    },
    #[error(
        "network {network} is in mode {mode} and its parent interface {parent} has a container already ({holder}): {mode} takes one container per parent"
    )]
    ParentHeldAlone {
        network: String,
        parent: String,
        mode: &'static str,
        holder: String,
    },
    #[error(
        "network namespace {path} is not the one container process {pid} is in: a container gets links only in its own"
    )]
    NetnsNotTheContainers { path: PathBuf, pid: i32 },
    #[error("-o host_access {ip} of network {network} is in use: {holder}")]
    HostAccessInUse {
        ip: IpAddr,
        network: String,
        holder: String,
    },
    #[error("address {ip} on network {network} is taken on the LAN: {holder}")]
    AddressOnLan {
        ip: IpAddr,
        network: String,
        holder: String,
    },
    #[error(
        "address {ip} may not be asked for on network {network}: its -o static_ips is {allowed}"
    )]
    StaticIpNotAllowed {
        ip: IpAddr,
        network: String,
        allowed: String,
    },
    #[error(
        "cannot probe the LAN for address {ip} of network {network}: its parent {parent} is {state}, so no holder could answer: try again once {parent} is up, or create the network with -o address_probe=off"
    )]
    ProbeParentDown {
        ip: IpAddr,
        network: String,
        parent: String,
        state: &'static str,
    },
    #[error("cannot check who holds the addresses asked for on network {network}")]
    CheckAddresses {
        network: String,
        #[source]
        source: netlink::Error,
    },
    #[error(
        "host link {name} of network {network} exists but is {found}: oci-macvlan will not use it"
    )]
    HostLinkConflict {
        name: String,
        network: String,
        found: String,
    },
    #[error(
        "cannot make host link {name} of network {network}: its MAC {mac} is in use on parent interface {parent}: {holder}"
    )]
    HostLinkMacInUse {
        name: String,
        network: String,
        mac: netlink::MacAddr,
        parent: String,
        holder: String,
    },
    #[error("cannot set up host link {name} of network {network}")]
    HostLink {
        name: String,
        network: String,
        #[source]
        source: Box<netlink::Error>,
    },
    #[error("cannot route the host to its containers on network {network}")]
    HostRoutes {
        network: String,
        #[source]
        source: netlink::Error,
    },
    #[error(
        "subnet {subnet} overlaps subnet {other_subnet} of network {other}, whose leases are in {other_store} (this network's would be in {store}): two stores would hand out one address; use the same store for both"
    )]
    SubnetInOtherStore {
        subnet: ipnetwork::IpNetwork,
        other_subnet: ipnetwork::IpNetwork,
        other: String,
        store: String,
        other_store: String,
    },
    #[error(
        "{what} network {other}, removed with rm -f while its lease store ({other_store}) did not answer: its containers on record may still hold addresses in {other_subnets}; stop them and run gc once that store answers (gc forgets network {other} once nothing of it is left)"
    )]
    RemovedNetworkLeft {
        /// What the new network shares with it: `subnet A overlaps subnet B of`, or `the name
        /// of`.
        what: String,
        other: String,
        other_subnets: String,
        other_store: String,
    },
    /// Two shared stores that are not one but would read each other's leases (etcd: prefixes
    /// nested on one cluster), as their backend says.
    #[error("{why}")]
    StoresClash {
        /// The other network.
        other: String,
        /// Why, in the backend's words.
        why: String,
    },
    /// Files of the config and state dirs: definitions, records, locks.
    #[error(transparent)]
    State(#[from] StateError),
}

/// What the files of the config and state dirs (definitions, endpoint records, locks) and the
/// system's randomness can fail with: the system failed (exit 1), whatever the file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read network definition {path}")]
    ReadNetwork {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("network definition {path} is not valid JSON for oci-macvlan")]
    ParseNetwork {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot read /dev/urandom")]
    Random(#[source] io::Error),
    #[error("cannot write {path}")]
    WriteFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read endpoint record {path}")]
    ReadRecord {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("endpoint record {path} is corrupt")]
    ParseRecord {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot lock {path}")]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write endpoint record {path}")]
    SerializeRecord {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write network definition {path}")]
    SerializeNetwork {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("endpoint record {path} belongs to container {container_id}, not to the one looked up")]
    RecordOfAnother { path: PathBuf, container_id: String },
    #[error("refusing {what} {path}")]
    UnsafeDir {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// What `network create` refuses, and a definition on disk that would not pass it: the input is
/// wrong (exit 3), but for a pool's conflicts.
#[derive(Debug, thiserror::Error)]
pub enum DefinitionError {
    #[error("invalid network name {name:?}: {reason}")]
    InvalidNetworkName { name: String, reason: &'static str },
    #[error("driver {driver:?} is not supported (known: {known})")]
    UnsupportedDriver { driver: String, known: String },
    #[error("invalid {flag} {value:?}: {reason}")]
    InvalidFlag {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error(
        "at least one --subnet is required: {} {driver} network joins an existing LAN, give its subnet",
        article(driver)
    )]
    NoSubnet { driver: &'static str },
    #[error("no configured subnet contains {what} {value}")]
    NoSubnetFor { what: &'static str, value: String },
    #[error("subnet {subnet} has more than one {what}")]
    Duplicate { what: &'static str, subnet: String },
    #[error("unknown option {key:?} (known: {known})")]
    UnknownOption { key: String, known: String },
    #[error("loopback interface is not a valid {driver} parent link")]
    LoopbackParent { driver: &'static str },
    #[error("-o {key} is given more than once: each option takes one value")]
    RepeatedOption { key: String },
    #[error("--aux-address name {name} is given more than once: each name reserves one address")]
    RepeatedAuxName { name: String },
    #[error("--aux-address {ip} is given twice, as {first} and as {second}")]
    RepeatedAuxAddress {
        ip: IpAddr,
        first: String,
        second: String,
    },
    #[error(transparent)]
    Pool(Box<ipam::Error>),
    #[error(transparent)]
    Parent(oci_macvlan_vlan::Error),
}

impl DefinitionError {
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

impl Error {
    /// Wraps a lease-store failure (boxed: store errors are large and rare).
    pub fn store(err: ipam::Error) -> Self {
        Self::Store(Box::new(err))
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            // What failed decides, not what was left of it.
            Self::RollbackIncomplete { failed, .. } => failed.kind(),
            Self::Definition(err) => err.kind(),
            Self::ParentLink(err) if err.is_not_found() => ErrorKind::NotFound,
            Self::ParentLink(oci_macvlan_vlan::LinkError::Conflict { .. })
            | Self::ParentOfOtherDriver { .. } => ErrorKind::Conflict,
            Self::Driver(err) => err.kind(),
            Self::Locate(err) => err.kind(),
            Self::ParentLink(oci_macvlan_vlan::LinkError::Name(_)) => ErrorKind::Invalid,
            Self::NetworkNotFound(_) | Self::ProcessGone { .. } | Self::NotConnected { .. } => {
                ErrorKind::NotFound
            }
            Self::ContainerNetns(err) if err.errno() == Some(netlink::Errno::ENOENT) => {
                ErrorKind::NotFound
            }
            // The path named something else than a network namespace: another file (swapped
            // after the hook's check), or a namespace of another kind (setns says EINVAL).
            Self::ContainerNetns(netlink::Error::NotNamespace { .. }) => ErrorKind::Invalid,
            Self::ContainerNetns(err) if err.errno() == Some(netlink::Errno::EINVAL) => {
                ErrorKind::Invalid
            }
            Self::NetworkExists(_)
            | Self::NetworkInUse { .. }
            | Self::AlreadyConnected { .. }
            | Self::InterfaceExists { .. }
            | Self::MacInUse { .. }
            | Self::MacReserved { .. }
            | Self::HostLinkMacInUse { .. }
            | Self::IdInUse { .. }
            | Self::ParentHeldAlone { .. }
            | Self::HostAccessInUse { .. }
            | Self::AddressOnLan { .. }
            | Self::HostLinkConflict { .. }
            | Self::SubnetInOtherStore { .. }
            | Self::RemovedNetworkLeft { .. }
            | Self::StoresClash { .. } => ErrorKind::Conflict,
            Self::Lease { source, .. } => ipam_kind(source),
            Self::Configure { source, .. }
                if source.errno() == Some(netlink::Errno::EADDRINUSE) =>
            {
                ErrorKind::Conflict
            }
            Self::MtuAboveParent { .. }
            | Self::InvalidContainerId { .. }
            | Self::InvalidIfname { .. }
            | Self::InvalidMac { .. }
            | Self::HostNetns { .. }
            | Self::AmbiguousNetwork { .. }
            | Self::ParentAltName { .. }
            | Self::StaticIpNotAllowed { .. }
            | Self::NetnsNotTheContainers { .. } => ErrorKind::Invalid,
            // Every variant is named: a new one must be placed here, never fall into a
            // catch-all.
            Self::ParentLink(_)
            | Self::NoDummy { .. }
            | Self::ContainerNetns(_)
            | Self::Configure { .. }
            | Self::Netlink(_)
            // A store that fails is the host's failure, whatever it said (`gc --forget-host`
            // reads a host alive from the store's own error).
            | Self::Store(_)
            | Self::State(_)
            | Self::ReadProc { .. }
            | Self::HostLink { .. }
            | Self::HostRoutes { .. }
            | Self::CheckAddresses { .. }
            | Self::ProbeParentDown { .. }
            | Self::Injected(_) => ErrorKind::System,
        }
    }
}

/// The kind of an address manager's error (a pool, a lease), variant by variant in
/// [`ipam::Error::kind`].
fn ipam_kind(err: &ipam::Error) -> ErrorKind {
    match err.kind() {
        ipam::ErrorKind::Invalid => ErrorKind::Invalid,
        ipam::ErrorKind::Conflict => ErrorKind::Conflict,
        ipam::ErrorKind::System => ErrorKind::System,
    }
}

/// "a macvlan", "an ipvlan".
fn article(word: &str) -> &'static str {
    match word.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

/// The whole chain on one line: `outer: cause: root cause`.
pub fn one_line(err: &dyn std::error::Error) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line.replace('\n', " ")
}
