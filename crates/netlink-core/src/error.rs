use std::{io, net::IpAddr, path::PathBuf};

use nix::errno::Errno;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the kernel answered, kept typed so callers can branch on the errno.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("{}", .0.desc())]
    Errno(Errno),
    /// Boxed: an unexpected answer carries a whole netlink message.
    #[error("unexpected netlink answer: {0}")]
    Protocol(Box<rtnetlink::Error>),
}

impl KernelError {
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

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open network namespace {path}")]
    OpenNetns {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The path names something that is not a namespace file of the kernel (nsfs); `what`
    /// says what it is (`a FIFO`, `a directory`, …).
    #[error("{path} is {what}, not a network namespace file")]
    NotNamespace { path: PathBuf, what: &'static str },
    #[error("cannot enter network namespace {path}")]
    EnterNetns {
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("cannot open a netlink socket in network namespace {path}")]
    OpenSocket {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot look up link {name}")]
    GetLink {
        name: String,
        #[source]
        source: KernelError,
    },
    #[error("cannot create {kind} {name} on parent {parent}{}", driver_hint(source, *kind))]
    CreateChild {
        kind: crate::link::ChildTag,
        name: String,
        parent: String,
        #[source]
        source: KernelError,
    },
    #[error("cannot create {kind} link {name}")]
    CreateLink {
        kind: &'static str,
        name: String,
        #[source]
        source: KernelError,
    },
    #[error("cannot create a network namespace")]
    CreateNetns(#[source] Errno),
    #[error("cannot rename link {from} to {to}")]
    RenameLink {
        from: String,
        to: String,
        #[source]
        source: KernelError,
    },
    #[error("cannot set the alias of link {name}")]
    SetAlias {
        name: String,
        #[source]
        source: KernelError,
    },
    #[error("cannot set link {name} up")]
    SetLinkUp {
        name: String,
        #[source]
        source: KernelError,
    },
    #[error("cannot delete link {name}")]
    DeleteLink {
        name: String,
        #[source]
        source: KernelError,
    },
    #[error("cannot add address {address}/{prefix_len} to {link}")]
    AddAddress {
        link: String,
        address: IpAddr,
        prefix_len: u8,
        #[source]
        source: KernelError,
    },
    #[error("cannot list the links of the namespace")]
    ListLinks {
        #[source]
        source: KernelError,
    },
    #[error("cannot list the addresses of the namespace")]
    ListAddresses {
        #[source]
        source: KernelError,
    },
    #[error("cannot list the addresses of link {link}")]
    ListLinkAddresses {
        link: String,
        #[source]
        source: KernelError,
    },
    #[error("cannot remove address {address} from link {index}")]
    DeleteAddress {
        index: u32,
        address: IpAddr,
        #[source]
        source: KernelError,
    },
    #[error("cannot add default route via {gateway} on {link}")]
    AddDefaultRoute {
        link: String,
        gateway: IpAddr,
        #[source]
        source: KernelError,
    },
    #[error("cannot add the route to {destination}/{prefix_len} on {link}")]
    AddDeviceRoute {
        link: String,
        destination: IpAddr,
        prefix_len: u8,
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
    #[error("cannot add host route {destination} via link {link}")]
    AddHostRoute {
        link: String,
        destination: IpAddr,
        #[source]
        source: KernelError,
    },
    #[error("cannot delete host route {destination} via link {link}")]
    DeleteHostRoute {
        link: String,
        destination: IpAddr,
        #[source]
        source: KernelError,
    },
    #[error("cannot list the routes of link {link}")]
    ListRoutes {
        link: String,
        #[source]
        source: KernelError,
    },
    #[error("cannot write sysctl {key} in network namespace {path}")]
    WriteSysctl {
        key: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("helper thread for network namespace {path} panicked")]
    HelperPanicked { path: PathBuf },
    #[error("cannot list the neighbour table of the namespace")]
    ListNeighbours {
        #[source]
        source: KernelError,
    },
    #[error("cannot list the nexthop objects of the namespace")]
    ListNexthops {
        #[source]
        source: io::Error,
    },
    #[error("cannot probe for {address} on link {link}")]
    Probe {
        link: String,
        address: IpAddr,
        #[source]
        source: io::Error,
    },
}

impl Error {
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
            | Self::ListRoutes { source, .. }
            | Self::ListNeighbours { source } => source.errno(),
            Self::EnterNetns { source, .. } | Self::CreateNetns(source) => Some(*source),
            Self::OpenNetns { source, .. }
            | Self::OpenSocket { source, .. }
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
