//! The failures of the DHCP address source (`--ipam-driver dhcp`) and its renewer.

use std::net::IpAddr;

use super::ErrorKind;

/// What an attach to a DHCP network, and the renewer of its lease, fail with beside the rest
/// of [`super::Error`] (which wraps it, transparently).
#[derive(Debug, thiserror::Error)]
pub enum DhcpError {
    /// A static address asked for on a network whose DHCP server hands out the addresses.
    #[error(
        "address {ip} may not be asked for on network {network}: its DHCP server hands out the addresses (--ipam-driver dhcp)"
    )]
    StaticIp {
        /// The address asked for.
        ip: IpAddr,
        /// The network.
        network: String,
    },
    /// The DHCP exchange of an endpoint gave no lease (no answer in time, a NAK, a socket).
    #[error("no address from DHCP on network {network}")]
    Exchange {
        /// The network.
        network: String,
        /// What the client said (it names the link and the timeout).
        #[source]
        source: Box<oci_macvlan_dhcp::Error>,
    },
    /// The DHCPv6 exchange of an endpoint (`--ipv6`) gave no lease.
    #[error("no IPv6 address from DHCPv6 on network {network}")]
    Exchange6 {
        /// The network.
        network: String,
        /// What the v6 client said (it names the link and the timeout).
        #[source]
        source: Box<oci_macvlan_dhcp::v6::Error>,
    },
    /// A DHCP lease's renewal could not be carried out (the container's link or namespace is
    /// not what its record says); retried by the renewer at a bounded backoff.
    #[error("renewing the DHCP lease of container {container} on network {network}: {reason}")]
    Renewal {
        /// The network.
        network: String,
        /// The container.
        container: String,
        /// Why.
        reason: String,
    },
    /// The address a DHCP server leased is held by another container of this host.
    #[error(
        "the DHCP server of network {network} leased {ip}, which container {holder} holds here"
    )]
    AddressHeld {
        /// The network.
        network: String,
        /// The address.
        ip: IpAddr,
        /// Who holds it.
        holder: String,
    },
}

impl DhcpError {
    /// Its kind (see [`super::Error::kind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::AddressHeld { .. } => ErrorKind::Conflict,
            Self::StaticIp { .. } => ErrorKind::Invalid,
            Self::Exchange { .. } | Self::Exchange6 { .. } | Self::Renewal { .. } => {
                ErrorKind::System
            }
        }
    }
}
