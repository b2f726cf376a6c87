use std::fmt;

use oci_macvlan_netlink_core::MacAddr;
use serde::{Serialize, Serializer};

/// The MAC a container's link has: one of its own, set when the link is made, or its parent's
/// (an ipvlan; a passthru macvlan), which the kernel gives it and nobody sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mac {
    /// Set when the link is made.
    Own(MacAddr),
    /// The parent's.
    Parents,
}

impl Mac {
    /// The MAC to set when the link is made; `None` for [`Mac::Parents`].
    pub fn own(self) -> Option<MacAddr> {
        match self {
            Self::Own(mac) => Some(mac),
            Self::Parents => None,
        }
    }

    /// The MAC a record keeps: `None` stands for the parent's (the shape of every record).
    pub fn from_recorded(mac: Option<MacAddr>) -> Self {
        mac.map_or(Self::Parents, Self::Own)
    }
}

/// As the hook's log and `network connect` print it: the MAC, or `parent's`.
impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Own(mac) => mac.fmt(f),
            Self::Parents => f.write_str("parent's"),
        }
    }
}

/// As a plan and an endpoint show it: the MAC, or `the parent's`.
impl Serialize for Mac {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Own(mac) => s.collect_str(mac),
            Self::Parents => s.serialize_str("the parent's"),
        }
    }
}

/// The MAC a container gets on a network when it asks for none: derived from the container id
/// and the network name, so a restarted container keeps its MAC (neighbours' ARP caches and DHCP
/// reservations stay valid). Locally administered, unicast.
pub fn default_mac(container_id: &str, network: &str) -> MacAddr {
    let hash = oci_macvlan_ipam::fnv1a64(container_id.bytes().chain([0]).chain(network.bytes()));
    let b = hash.to_be_bytes();
    MacAddr([
        (b[0] & 0xfc) | 0x02,
        b[1],
        b[2],
        b[3],
        b[4],
        b[5] ^ b[6] ^ b[7],
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_mac_is_stable_local_and_unicast() {
        let a = default_mac("c1", "lan50");
        assert_eq!(a, default_mac("c1", "lan50"));
        assert_ne!(a, default_mac("c2", "lan50"));
        assert_ne!(a, default_mac("c1", "lan60"));
        assert_eq!(a.0[0] & 0x02, 0x02, "locally administered");
        assert!(!a.is_multicast());
        // Pinned: a change here would give every running container a new MAC after an upgrade.
        insta::assert_snapshot!(a.to_string(), @"c6:4c:2d:89:54:b2");
        let long = "0123456789abcdef".repeat(4);
        insta::assert_snapshot!(default_mac(&long, "ipvlan210").to_string(), @"56:33:73:a7:af:54");
        insta::assert_snapshot!(default_mac("", "").to_string(), @"ae:63:bd:4c:86:69");
    }
}
