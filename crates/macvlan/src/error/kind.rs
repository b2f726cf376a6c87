//! How a caller treats each of the core's errors ([`ErrorKind`]), and how one is made of a
//! store's.

use super::{Error, ipam, netlink};

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

impl Error {
    /// Wraps a lease-store failure (boxed: store errors are large and rare).
    pub fn store(err: ipam::Error) -> Self {
        Self::Store(Box::new(err))
    }

    /// What kind of failure this is, for a caller's exit code: a wrapped failure is of the
    /// kind of what failed.
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
            Self::Dhcp(err) => err.kind(),
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
            | Self::InvalidContainerName { .. }
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
pub(super) fn ipam_kind(err: &ipam::Error) -> ErrorKind {
    match err.kind() {
        ipam::ErrorKind::Invalid => ErrorKind::Invalid,
        ipam::ErrorKind::Conflict => ErrorKind::Conflict,
        ipam::ErrorKind::System => ErrorKind::System,
    }
}

/// "a macvlan", "an ipvlan".
pub(super) fn article(word: &str) -> &'static str {
    match word.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}
