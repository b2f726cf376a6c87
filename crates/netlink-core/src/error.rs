use std::{io, net::IpAddr, path::PathBuf};

use nix::errno::Errno;

/// The result of a netlink-core operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the kernel answered, kept typed so callers can branch on the errno.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// The kernel refused, with this errno.
    #[error("{}", .0.desc())]
    Errno(Errno),
    /// Boxed: an unexpected answer carries a whole netlink message.
    #[error("unexpected netlink answer: {0}")]
    Protocol(Box<rtnetlink::Error>),
}

impl KernelError {
    /// The errno the kernel answered, if it answered one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Self::Errno(errno) => Some(*errno),
            Self::Protocol(_) => None,
        }
    }
}

impl From<rtnetlink::Error> for KernelError {
    fn from(err: rtnetlink::Error) -> Self {
        match &err {
            rtnetlink::Error::NetlinkError(msg) => match msg.code {
                Some(code) => Self::Errno(Errno::from_raw(-code.get())),
                None => Self::Protocol(Box::new(err)),
            },
            _ => Self::Protocol(Box::new(err)),
        }
    }
}

/// A kernel operation that failed, named after the operation, with what the kernel said.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Cannot open network namespace `path`.
    #[error("cannot open network namespace {path}")]
    OpenNetns {
        /// The network namespace's path.
        path: PathBuf,
        /// What the system call returned.
        #[source]
        source: io::Error,
    },
    /// The path names something that is not a namespace file of the kernel (nsfs); `what`
    /// says what it is (`a FIFO`, `a directory`, …).
    #[error("{path} is {what}, not a network namespace file")]
    NotNamespace {
        /// The path given as a namespace.
        path: PathBuf,
        /// What it is instead.
        what: &'static str,
    },
    /// Cannot enter network namespace `path`.
    #[error("cannot enter network namespace {path}")]
    EnterNetns {
        /// The network namespace's path.
        path: PathBuf,
        /// What the system call returned.
        #[source]
        source: Errno,
    },
    /// Cannot open a socket a caller asked for in network namespace `path` ([`crate::Netns::open_inside`]).
    #[error("cannot open {what} in network namespace {path}")]
    OpenInside {
        /// What was opened.
        what: String,
        /// The network namespace's path.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// Cannot open a netlink socket in network namespace `path`.
    #[error("cannot open a netlink socket in network namespace {path}")]
    OpenSocket {
        /// The network namespace's path.
        path: PathBuf,
        /// What the system call returned.
        #[source]
        source: io::Error,
    },
    /// Cannot look up link `name`.
    #[error("cannot look up link {name}")]
    GetLink {
        /// The link's name.
        name: String,
        /// What the kernel answered.
        #[source]
        source: KernelError,
    },
    /// Cannot create `kind` `name` on parent `parent`.
    #[error("cannot create {kind} {name} on parent {parent}{}", driver_hint(source, *kind))]
    CreateChild {
        /// The kind of link.
        kind: crate::link::ChildTag,
        /// The link's name.
        name: String,
        /// The parent link's name.
        parent: String,
        /// What the kernel answered.
        #[source]
        source: KernelError,
    },
    /// Cannot create `kind` link `name`.
    #[error("cannot create {kind} link {name}")]
    CreateLink {
        /// The kind of link.
        kind: &'static str,
        /// The link's name.
        name: String,
        /// What the kernel answered.
        #[source]
        source: KernelError,
    },
    /// Cannot create a network namespace.
    #[error("cannot create a network namespace")]
    CreateNetns(#[source] Errno),
    /// Cannot rename link `from` to `to`.
    #[error("cannot rename link {from} to {to}")]
    RenameLink {
        /// The link's name.
        from: String,
        /// The name asked for.
        to: String,
        /// What the kernel answered.
        #[source]
        source: KernelError,
    },
    /// Cannot set the alias of link `name`.
    #[error("cannot set the alias of link {name}")]
    SetAlias {
        /// The link's name.
        name: String,
        /// What the kernel answered.
        #[source]
        source: KernelError,
    },
    /// Cannot set link `name` up.
    #[error("cannot set link {name} up")]
    SetLinkUp {
        /// The link's name.
        name: String,
        /// What the kernel answered.
        #[source]
        source: KernelError,
    },
    /// Cannot delete link `name`.
    #[error("cannot delete link {name}")]
    DeleteLink {
        /// The link's name.
        name: String,
        /// What the kernel answered.
        #[source]
        source: KernelError,
    },
    /// Cannot add address `address`/`prefix_len` to `link`.
    #[error("cannot add address {address}/{prefix_len} to {link}")]
    AddAddress {
        /// The link's name.
        link: String,
        /// The address.
        address: IpAddr,
        /// Its prefix length.
        prefix_len: u8,
        /// What the kernel answered.
        #[source]
        source: KernelError,
    },
    /// Cannot list the links of the namespace.
    #[error("cannot list the links of the namespace")]
    ListLinks {
        /// What the kernel answered.
        #[source]
        source: KernelError,
    },
    /// Cannot list the addresses of the namespace.
    #[error("cannot list the addresses of the namespace")]
    ListAddresses {
        /// What the kernel answered.
        #[source]
        source: KernelError,
    },
    /// Cannot list the addresses of link `link`.
    #[error("cannot list the addresses of link {link}")]
    ListLinkAddresses {
        /// The link's name.
        link: String,
        /// What the kernel answered.
        #[source]
        source: KernelError,
    },
    /// Cannot remove address `address` from link `index`.
    #[error("cannot remove address {address} from link {index}")]
    DeleteAddress {
        /// The link's index.
        index: u32,
        /// The address.
        address: IpAddr,
        /// What the kernel answered.
        #[source]
        source: KernelError,
    },
    /// Cannot add default route via `gateway` on `link`.
    #[error("cannot add default route via {gateway} on {link}")]
    AddDefaultRoute {
        /// The link's name.
        link: String,
        /// The gateway.
        gateway: IpAddr,
        /// What the kernel answered.
        #[source]
        source: KernelError,
    },
    /// Cannot add the route to `destination`/`prefix_len` on `link`.
    #[error("cannot add the route to {destination}/{prefix_len} on {link}")]
    AddDeviceRoute {
        /// The link's name.
        link: String,
        /// The route's destination.
        destination: IpAddr,
        /// Its prefix length.
        prefix_len: u8,
        /// What the kernel answered.
        #[source]
        source: KernelError,
    },
    /// A route to a destination via a gateway (`add_route_via`).
    #[error("cannot add route {} via {} on link {link}", route.0, route.1)]
    AddRouteVia {
        /// The link the route is on.
        link: String,
        /// The destination (`ADDR/PREFIX`) and the gateway, boxed: errors stay small.
        route: Box<(String, IpAddr)>,
        /// The kernel's answer.
        #[source]
        source: KernelError,
    },
    /// Cannot add host route `destination` via link `link`.
    #[error("cannot add host route {destination} via link {link}")]
    AddHostRoute {
        /// The link's name.
        link: String,
        /// The route's destination.
        destination: IpAddr,
        /// What the kernel answered.
        #[source]
        source: KernelError,
    },
    /// Cannot delete host route `destination` via link `link`.
    #[error("cannot delete host route {destination} via link {link}")]
    DeleteHostRoute {
        /// The link's name.
        link: String,
        /// The route's destination.
        destination: IpAddr,
        /// What the kernel answered.
        #[source]
        source: KernelError,
    },
    /// Cannot delete route `route` via link `link`.
    #[error("cannot delete route {route} via link {link}")]
    DeleteRoute {
        /// The link's name.
        link: String,
        /// The route, as `ip route` shows it (`DEST[/LEN] [via GATEWAY]`).
        route: String,
        /// What the kernel answered.
        #[source]
        source: KernelError,
    },
    /// Cannot list the routes of link `link`.
    #[error("cannot list the routes of link {link}")]
    ListRoutes {
        /// The link's name.
        link: String,
        /// What the kernel answered.
        #[source]
        source: KernelError,
    },
    /// Cannot write sysctl `key` in network namespace `path`.
    #[error("cannot write sysctl {key} in network namespace {path}")]
    WriteSysctl {
        /// The sysctl's key.
        key: String,
        /// The network namespace's path.
        path: PathBuf,
        /// What the system call returned.
        #[source]
        source: io::Error,
    },
    /// Helper thread for network namespace `path` panicked.
    #[error("helper thread for network namespace {path} panicked")]
    HelperPanicked {
        /// The network namespace's path.
        path: PathBuf,
    },
    /// Cannot list the neighbour table of the namespace.
    #[error("cannot list the neighbour table of the namespace")]
    ListNeighbours {
        /// What the kernel answered.
        #[source]
        source: KernelError,
    },
    /// Cannot list the nexthop objects of the namespace.
    #[error("cannot list the nexthop objects of the namespace")]
    ListNexthops {
        /// What the system call returned.
        #[source]
        source: io::Error,
    },
    /// Cannot probe for `address` on link `link`.
    #[error("cannot probe for {address} on link {link}")]
    Probe {
        /// The link's name.
        link: String,
        /// The address.
        address: IpAddr,
        /// What the system call returned.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// A link that must be there and is not (one this process has just made): [`Error::GetLink`]
    /// with `ENODEV`, as the kernel says of a link it does not have.
    pub fn missing_link(name: &str) -> Self {
        Error::GetLink {
            name: name.to_owned(),
            source: KernelError::Errno(Errno::ENODEV),
        }
    }

    /// The errno the kernel answered with, when the failure came from the kernel.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Self::GetLink { source, .. }
            | Self::CreateChild { source, .. }
            | Self::CreateLink { source, .. }
            | Self::RenameLink { source, .. }
            | Self::SetLinkUp { source, .. }
            | Self::SetAlias { source, .. }
            | Self::DeleteLink { source, .. }
            | Self::AddAddress { source, .. }
            | Self::ListAddresses { source }
            | Self::ListLinks { source }
            | Self::ListLinkAddresses { source, .. }
            | Self::DeleteAddress { source, .. }
            | Self::AddDefaultRoute { source, .. }
            | Self::AddDeviceRoute { source, .. }
            | Self::AddRouteVia { source, .. }
            | Self::AddHostRoute { source, .. }
            | Self::DeleteHostRoute { source, .. }
            | Self::DeleteRoute { source, .. }
            | Self::ListRoutes { source, .. }
            | Self::ListNeighbours { source } => source.errno(),
            Self::EnterNetns { source, .. } | Self::CreateNetns(source) => Some(*source),
            Self::OpenNetns { source, .. }
            | Self::OpenSocket { source, .. }
            | Self::OpenInside { source, .. }
            | Self::WriteSysctl { source, .. }
            | Self::ListNexthops { source }
            | Self::Probe { source, .. } => source.raw_os_error().map(Errno::from_raw),
            Self::HelperPanicked { .. } | Self::NotNamespace { .. } => None,
        }
    }
}

/// What to do when the kernel has no driver for a child link's kind (it answers `EOPNOTSUPP`
/// for a kind it does not know): the module to load.
fn driver_hint(source: &KernelError, kind: crate::link::ChildTag) -> String {
    if source.errno() == Some(Errno::EOPNOTSUPP) {
        format!(": the kernel has no {kind} driver (modprobe {kind})")
    } else {
        String::new()
    }
}
