use std::{io, net::IpAddr, path::PathBuf};

use oci_macvlan_ipam as ipam;
use oci_macvlan_netlink_core as netlink;

mod definition;
mod dhcp;
mod driver;
mod kind;
mod locate;
mod state;
mod text;

pub use definition::DefinitionError;
pub use dhcp::DhcpError;
pub use driver::DriverError;
pub(crate) use driver::invalid;
pub use kind::ErrorKind;
pub use locate::LocateError;
pub use state::StateError;
pub use text::{cut, one_line};

/// The result of a core operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a core operation (network create/rm, attach, detach, connect, gc, …) failed.
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
    Locate(#[from] LocateError),
    /// A network's parent link cannot be found, made or removed.
    #[error(transparent)]
    ParentLink(oci_macvlan_vlan::LinkError),
    /// The parent already has networks of the other driver: the kernel gives a
    /// parent macvlan or ipvlan links, not both.
    #[error(
        "parent interface {parent} has {other_driver} network(s) {networks}: the kernel gives a parent {other_driver} or {driver} links, not both"
    )]
    ParentOfOtherDriver {
        /// The parent interface.
        parent: String,
        /// This network's driver.
        driver: &'static str,
        /// The driver of the networks it has.
        other_driver: &'static str,
        /// Those networks, comma-separated.
        networks: String,
    },
    /// A network's `-o mtu` is larger than its parent's MTU.
    #[error("mtu {mtu} is larger than the mtu {parent_mtu} of parent interface {parent}")]
    MtuAboveParent {
        /// The MTU asked for.
        mtu: u32,
        /// The parent interface.
        parent: String,
        /// The parent's MTU.
        parent_mtu: u32,
    },
    /// `network create` of a name another network has.
    #[error("network with name {0} already exists")]
    NetworkExists(String),
    /// An internal network without `-o parent` needs a dummy link, and this kernel
    /// cannot make one.
    #[error(
        "no -o parent was given: network {network} is internal, on a dummy link of its own, which this kernel cannot make (or give -o parent=IF)"
    )]
    NoDummy {
        /// The network.
        network: String,
        /// What making the dummy link failed with.
        #[source]
        source: oci_macvlan_vlan::LinkError,
    },
    /// `-o parent` names a link by one of its alternative names.
    #[error("parent interface {given} is an alternative name of {name}: give -o parent={name}")]
    ParentAltName {
        /// The name given.
        given: String,
        /// The link's name.
        name: String,
    },
    /// No network has this name or id prefix.
    #[error("network {0} not found")]
    NetworkNotFound(String),
    /// An id prefix starts the ids of several networks.
    #[error(
        "network id prefix {prefix} is ambiguous: it starts the ids of {names}; give more of it, or a name"
    )]
    AmbiguousNetwork {
        /// The prefix given.
        prefix: String,
        /// The networks whose ids it starts, comma-separated.
        names: String,
    },
    /// `network rm` (without `-f`) of a network that has endpoints.
    #[error("network {name} has active endpoints: {endpoints}")]
    NetworkInUse {
        /// The network.
        name: String,
        /// Its endpoints, as container, interface and address.
        endpoints: String,
    },
    /// `network disconnect` of a container that has no endpoint on the network.
    #[error("container {container_id} is not connected to network {network}")]
    NotConnected {
        /// The container.
        container_id: String,
        /// The network.
        network: String,
    },
    /// `network connect` of a container that has an endpoint on the network.
    #[error("container {container_id} is already connected to network {network} (as {ifname})")]
    AlreadyConnected {
        /// The container.
        container_id: String,
        /// The network.
        network: String,
        /// The interface it has there.
        ifname: String,
    },
    /// The container's process has exited (it is gone from `/proc`, or a zombie).
    #[error("container process {pid} is gone (read {path})")]
    ProcessGone {
        /// The container's process id.
        pid: i32,
        /// The `/proc` file that is gone.
        path: PathBuf,
    },
    /// A `/proc` file could not be read, or does not read as expected.
    #[error("cannot read {path}")]
    ReadProc {
        /// The file.
        path: PathBuf,
        /// What the system call returned.
        #[source]
        source: io::Error,
    },
    /// A container id that is not one (empty, too long, `.` or `..`, a character other
    /// than letters, digits and `_+.-`).
    #[error("invalid container id {id:?}: {reason}")]
    InvalidContainerId {
        /// The id given.
        id: String,
        /// Why it is not one.
        reason: &'static str,
    },
    /// A container name a front door was given (a pod's namespace and name) that is not one.
    #[error("invalid container name {name:?}: {reason}")]
    InvalidContainerName {
        /// The name given (cut to 64 bytes).
        name: String,
        /// Why it is not one.
        reason: &'static str,
    },
    /// An interface name asked for in the container that the kernel would refuse.
    #[error("invalid interface name {name:?} for network {network}: {reason}")]
    InvalidIfname {
        /// The name asked for.
        name: String,
        /// The network.
        network: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A MAC address asked for that cannot be a container's (all zeros, multicast, …).
    #[error("invalid MAC address {mac} for network {network}: {reason}")]
    InvalidMac {
        /// The MAC as given.
        mac: String,
        /// The network.
        network: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A MAC address asked for that the parent or another link on it already has.
    #[error(
        "MAC address {mac} for network {network} is already in use on parent interface {parent} (by the parent or another container's macvlan)"
    )]
    MacInUse {
        /// The MAC asked for.
        mac: String,
        /// The network.
        network: String,
        /// The parent interface.
        parent: String,
    },
    /// A MAC address asked for that is the MAC of a host link of a network on the
    /// same parent.
    #[error(
        "MAC address {mac} for network {network} is reserved on parent interface {parent}: it is the MAC of host link {link} of network {owner}"
    )]
    MacReserved {
        /// The MAC asked for.
        mac: netlink::MacAddr,
        /// The network.
        network: String,
        /// The host link that has it.
        link: String,
        /// The network of that host link.
        owner: String,
        /// The parent interface.
        parent: String,
    },
    /// The container's namespace already has a link of the interface name asked for.
    #[error("interface {ifname} already exists in the container's network namespace")]
    InterfaceExists {
        /// The interface name.
        ifname: String,
    },
    /// The container's network namespace could not be opened or entered.
    #[error("cannot open the container's network namespace")]
    ContainerNetns(#[source] netlink::Error),
    /// The namespace given for the container is the one oci-macvlan runs in.
    #[error(
        "network namespace {path} is the one oci-macvlan runs in, the host's: the container needs one of its own"
    )]
    HostNetns {
        /// The namespace path given.
        path: PathBuf,
    },
    /// The lease store refused or failed to lease the addresses of an endpoint.
    #[error("cannot lease addresses on network {network}")]
    Lease {
        /// The network.
        network: String,
        /// The store's error.
        #[source]
        source: Box<ipam::Error>,
    },
    /// A lease store failed outside a lease: reading, releasing, listing, removing a
    /// network's leases.
    #[error(transparent)]
    Store(Box<ipam::Error>),
    /// A container's link could not be set up (address, route, MTU, up).
    #[error("cannot set up {ifname} for network {network}")]
    Configure {
        /// The network.
        network: String,
        /// The link's name in the container.
        ifname: String,
        /// What the kernel said.
        #[source]
        source: netlink::Error,
    },
    /// A kernel request failed outside the steps that have their own variant.
    #[error("kernel request failed")]
    Netlink(#[source] netlink::Error),
    /// `failed` (with its causes, in `line`) made an attach undo itself, and the undo left
    /// something: both are said.
    #[error("{line}; the rollback left {left}: poststop or `oci-macvlan gc` takes it back")]
    RollbackIncomplete {
        /// The failure that made the attach undo itself.
        failed: Box<Error>,
        /// That failure with its causes, as one line.
        line: String,
        /// What the undo left, as one line.
        left: String,
    },
    /// A failpoint's `error` action (only in a `failpoints` build, for the fault-injection suite).
    #[error("injected failure at failpoint {0}")]
    Injected(&'static str),
    /// An attach under a container id whose endpoints a live container holds.
    #[error(
        "container id {container_id} is in use by another live container ({holder}), which holds {addresses}: nothing of it was touched"
    )]
    IdInUse {
        /// The container id.
        container_id: String,
        /// The live container that holds it.
        holder: String,
        /// The addresses it holds.
        addresses: String,
    },
    /// A network in a mode that takes one container per parent (macvlan
    /// `passthru`), whose parent has a container already.
    #[error(
        "network {network} is in mode {mode} and its parent interface {parent} has a container already ({holder}): {mode} takes one container per parent"
    )]
    ParentHeldAlone {
        /// The network.
        network: String,
        /// The parent interface.
        parent: String,
        /// The network's mode.
        mode: &'static str,
        /// Who has the parent: its containers, or a link that is not one of theirs.
        holder: String,
    },
    /// The namespace given is not the one the container's process is in.
    #[error(
        "network namespace {path} is not the one container process {pid} is in: a container gets links only in its own"
    )]
    NetnsNotTheContainers {
        /// The namespace path given.
        path: PathBuf,
        /// The container's process id.
        pid: i32,
    },
    /// A network's `-o host_access` address is held by another network, a container or the
    /// host.
    #[error("-o host_access {ip} of network {network} is in use: {holder}")]
    HostAccessInUse {
        /// The host_access address.
        ip: IpAddr,
        /// The network.
        network: String,
        /// Who holds it.
        holder: String,
    },
    /// An address asked for is held on the LAN (a router, a neighbour, an answer to a probe).
    #[error("address {ip} on network {network} is taken on the LAN: {holder}")]
    AddressOnLan {
        /// The address.
        ip: IpAddr,
        /// The network.
        network: String,
        /// Who holds it.
        holder: String,
    },
    /// A static address asked for that the network's `-o static_ips` does not allow.
    #[error(
        "address {ip} may not be asked for on network {network}: its -o static_ips is {allowed}"
    )]
    StaticIpNotAllowed {
        /// The address asked for.
        ip: IpAddr,
        /// The network.
        network: String,
        /// The network's `-o static_ips`.
        allowed: String,
    },
    /// The DHCP address source or its renewer failed ([`DhcpError`]).
    #[error(transparent)]
    Dhcp(#[from] DhcpError),
    /// An address cannot be probed on the LAN because the parent is not up.
    #[error(
        "cannot probe the LAN for address {ip} of network {network}: its parent {parent} is {state}, so no holder could answer: try again once {parent} is up, or create the network with -o address_probe=off"
    )]
    ProbeParentDown {
        /// The address to probe.
        ip: IpAddr,
        /// The network.
        network: String,
        /// The parent interface.
        parent: String,
        /// The parent's state (`down`, `up without a carrier`).
        state: &'static str,
    },
    /// The LAN probe of the addresses asked for could not be made.
    #[error("cannot check who holds the addresses asked for on network {network}")]
    CheckAddresses {
        /// The network.
        network: String,
        /// What the kernel said.
        #[source]
        source: netlink::Error,
    },
    /// A link has the name of a network's host link and is not the host link oci-macvlan
    /// makes for it.
    #[error(
        "host link {name} of network {network} exists but is {found}: oci-macvlan will not use it"
    )]
    HostLinkConflict {
        /// The host link's name.
        name: String,
        /// The network.
        network: String,
        /// What the existing link is instead.
        found: String,
    },
    /// A host link cannot be made: its MAC is in use on the parent.
    #[error(
        "cannot make host link {name} of network {network}: its MAC {mac} is in use on parent interface {parent}: {holder}"
    )]
    HostLinkMacInUse {
        /// The host link's name.
        name: String,
        /// The network.
        network: String,
        /// The MAC it would have.
        mac: netlink::MacAddr,
        /// The parent interface.
        parent: String,
        /// Who has the MAC.
        holder: String,
    },
    /// A network's host link could not be made or set up.
    #[error("cannot set up host link {name} of network {network}")]
    HostLink {
        /// The host link's name.
        name: String,
        /// The network.
        network: String,
        /// What the kernel said.
        #[source]
        source: Box<netlink::Error>,
    },
    /// The host's routes to a network's containers could not be set.
    #[error("cannot route the host to its containers on network {network}")]
    HostRoutes {
        /// The network.
        network: String,
        /// What the kernel said.
        #[source]
        source: netlink::Error,
    },
    /// `network create` of a subnet that overlaps another network's, whose leases
    /// are in another store.
    #[error(
        "subnet {subnet} overlaps subnet {other_subnet} of network {other}, whose leases are in {other_store} (this network's would be in {store}): two stores would hand out one address; use the same store for both"
    )]
    SubnetInOtherStore {
        /// This network's subnet.
        subnet: ipnetwork::IpNetwork,
        /// The other network's subnet.
        other_subnet: ipnetwork::IpNetwork,
        /// The other network.
        other: String,
        /// This network's store.
        store: String,
        /// The other network's store.
        other_store: String,
    },
    /// `network create` of a network that shares a subnet or name with a network
    /// removed with `rm -f` while its store did not answer, whose leases may still be held.
    #[error(
        "{what} network {other}, removed with rm -f while its lease store ({other_store}) did not answer: its containers on record may still hold addresses in {other_subnets}; stop them and run gc once that store answers (gc forgets network {other} once nothing of it is left)"
    )]
    RemovedNetworkLeft {
        /// What the new network shares with it: `subnet A overlaps subnet B of`, or `the name
        /// of`.
        what: String,
        /// The removed network.
        other: String,
        /// Its subnets, comma-separated.
        other_subnets: String,
        /// Its lease store.
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
