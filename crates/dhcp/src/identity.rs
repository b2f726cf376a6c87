//! The client's identity: a client identifier (option 61) as RFC 4361 has it, type 255, an IAID
//! and a DUID. A container is a host of its own on the LAN, so both are derived from the
//! (per-host secret, network, container) triple by SHA-256: the DUID is a DUID-UUID (RFC 6355,
//! type 4, a UUID of version 8 taken from the digest), the IAID the digest's next four bytes.
//!
//! The same triple gives the same identifier, so a restarted or re-created container asks for
//! its old lease; a host's secret is made at first use on that host, so two hosts cloned from one
//! image (the same containers, the same networks) still differ.

use sha2::{Digest, Sha256};

/// The client identifier type RFC 4361 gives to "IAID and DUID follow".
pub const TYPE_IAID_DUID: u8 = 255;
/// DUID type 4, DUID-UUID (RFC 6355).
pub const DUID_UUID: u16 = 4;

/// A client identifier: type 255, IAID, DUID-UUID, 23 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientId(Vec<u8>);

impl ClientId {
    /// The identifier of `container` on `network`, on the host whose secret is `secret`.
    pub fn derive(secret: &[u8], network: &str, container: &str) -> Self {
        let mut hash = Sha256::new();
        hash.update(b"oci-macvlan dhcp client id v1\0");
        for part in [secret, network.as_bytes(), container.as_bytes()] {
            // Each part length-prefixed: ("ab", "c") and ("a", "bc") differ.
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part);
        }
        let digest = hash.finalize();
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&digest[..16]);
        uuid[6] = (uuid[6] & 0x0f) | 0x80; // version 8 (RFC 9562: custom)
        uuid[8] = (uuid[8] & 0x3f) | 0x80; // the RFC variant
        let mut id = Vec::with_capacity(1 + 4 + 2 + 16);
        id.push(TYPE_IAID_DUID);
        id.extend_from_slice(&digest[16..20]);
        id.extend_from_slice(&DUID_UUID.to_be_bytes());
        id.extend_from_slice(&uuid);
        Self(id)
    }

    /// The MAC of `container`'s link on `network`, on the host whose secret is `secret`: from the
    /// same triple as the identifier (another domain of the hash), locally administered and
    /// unicast, so a re-created container shows the LAN the same MAC and two hosts differ.
    pub fn default_mac(secret: &[u8], network: &str, container: &str) -> [u8; 6] {
        let mut hash = Sha256::new();
        hash.update(b"oci-macvlan dhcp mac v1\0");
        for part in [secret, network.as_bytes(), container.as_bytes()] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part);
        }
        let digest = hash.finalize();
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&digest[..6]);
        mac[0] = (mac[0] & 0xfc) | 0x02;
        mac
    }

    /// An identifier as a record kept it (2 to 255 bytes, as option 61 takes).
    pub fn from_bytes(bytes: Vec<u8>) -> Option<Self> {
        (2..=255).contains(&bytes.len()).then_some(Self(bytes))
    }

    /// The identifier as option 61 carries it.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The IAID.
    pub fn iaid(&self) -> u32 {
        u32::from_be_bytes([self.0[1], self.0[2], self.0[3], self.0[4]])
    }

    /// The DUID (type and UUID), as DHCPv6 would carry it for the same client.
    pub fn duid(&self) -> &[u8] {
        &self.0[5..]
    }

    /// The identifier in hex, as servers' lease files show it (`ff:…`).
    pub fn to_hex(&self) -> String {
        let parts: Vec<String> = self.0.iter().map(|b| format!("{b:02x}")).collect();
        parts.join(":")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_inputs_same_id() {
        let a = ClientId::derive(b"secret", "lan", "c1");
        assert_eq!(a, ClientId::derive(b"secret", "lan", "c1"));
        assert_eq!(a.as_bytes().len(), 23);
        assert_eq!(a.as_bytes()[0], 255);
        assert_eq!(&a.duid()[..2], &[0, 4]);
        assert_eq!(a.duid()[2 + 6] >> 4, 8);
    }

    #[test]
    fn any_input_changes_the_id() {
        let a = ClientId::derive(b"secret", "lan", "c1");
        assert_ne!(a, ClientId::derive(b"other host", "lan", "c1"));
        assert_ne!(a, ClientId::derive(b"secret", "lan2", "c1"));
        assert_ne!(a, ClientId::derive(b"secret", "lan", "c2"));
        // Boundaries between the parts count.
        assert_ne!(
            ClientId::derive(b"s", "ab", "c"),
            ClientId::derive(b"s", "a", "bc")
        );
        assert_ne!(
            a.iaid(),
            ClientId::derive(b"other host", "lan", "c1").iaid()
        );
    }

    #[test]
    fn the_default_mac_is_local_unicast_and_per_host() {
        let mac = ClientId::default_mac(b"secret", "lan", "c1");
        assert_eq!(mac[0] & 0x03, 0x02);
        assert_eq!(mac, ClientId::default_mac(b"secret", "lan", "c1"));
        assert_ne!(mac, ClientId::default_mac(b"other host", "lan", "c1"));
        assert_ne!(mac, ClientId::default_mac(b"secret", "lan", "c2"));
    }

    #[test]
    fn hex_as_lease_files_show_it() {
        let id = ClientId::derive(b"k", "n", "c");
        let hex = id.to_hex();
        assert!(hex.starts_with("ff:"));
        assert_eq!(hex.len(), 23 * 3 - 1);
    }
}
