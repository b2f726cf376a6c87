//! A DHCP lease as an endpoint's record keeps it (the DHCP source, `crate::source::dhcp`,
//! writes it; a renewer, a release, `inspect` and `verify` read it).

use std::time::SystemTime;

use ipnetwork::{Ipv4Network, Ipv6Network};
use oci_macvlan_dhcp::{Lease as DhcpLease, v6};
use oci_macvlan_netlink_core::MacAddr;
use serde::{Deserialize, Serialize};

/// A DHCP lease as an endpoint's record keeps it: what a renewer or a release needs, with
/// nothing else to ask (no definition, no server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DhcpRecord {
    /// The client identifier (option 61), as servers' lease files show it (`ff:…`).
    pub client_id: String,
    /// The link's MAC (`chaddr`, and the source of a release's frames).
    #[serde(with = "super::mac_string")]
    pub mac: Option<MacAddr>,
    /// The hostname sent (option 12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Whether answers are asked for broadcast (an ipvlan link shares its parent's MAC).
    #[serde(default)]
    pub broadcast: bool,
    /// For an ipvlan link: its flag (`bridge`, `private`, `vepa`), which the link a release
    /// is sent from must keep (the kernel keeps one per parent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipvlan_flag: Option<String>,
    /// The network's `--subnet`, which a lease must be inside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<Ipv4Network>,
    /// The lease: address, prefix, router, routes, name servers, domain, server, obtained, T1,
    /// T2, expiry.
    pub lease: DhcpLease,
    /// The DHCPv6 lease beside it (`--ipv6`), if the network asks for one. Records written
    /// before it load without.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v6: Option<Dhcp6Record>,
    /// Where the renewer is with this lease (nothing while it is bound and on time).
    #[serde(default, skip_serializing_if = "Renewal::is_quiet")]
    pub renewal: Renewal,
}

/// A DHCPv6 (IA_NA) lease as an endpoint's record keeps it, beside the v4 one: with the
/// v4 record's client identifier (whose DUID and IAID it carries, RFC 4361) and MAC, what a
/// renewer or a release needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dhcp6Record {
    /// The client's DUID (option 1), as Kea's lease file shows it (`00:04:…`).
    pub duid: String,
    /// The IA_NA's IAID.
    pub iaid: u32,
    /// The prefix the address was added with: the network's IPv6 `--subnet`'s, else 128.
    pub prefix: u8,
    /// The network's IPv6 `--subnet`, which a lease must be inside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<Ipv6Network>,
    /// Whether the link also makes SLAAC addresses (`-o ipv6_slaac=true`): `verify` takes
    /// them as explained.
    #[serde(default)]
    pub slaac: bool,
    /// The lease: address, server (DUID, unicast address), name servers, obtained, T1, T2,
    /// preferred and valid lifetimes' ends.
    pub lease: v6::Lease,
    /// Where the renewer is with this lease, as [`DhcpRecord::renewal`] for the v4 one. An
    /// `unbound` v6 lease ended (its address off the link and out of the store, its expiry
    /// set to when it did): a SOLICIT comes at the next act.
    #[serde(default, skip_serializing_if = "Renewal::is_quiet")]
    pub renewal: Renewal,
}

impl Dhcp6Record {
    /// Whether the lease ran out at `now`.
    pub fn expired(&self, now: SystemTime) -> bool {
        self.lease.expiry <= now
    }
}

/// Where a lease's renewer is, kept on the record so that a renewer killed and another started
/// carry on from here (`crate::renew`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Renewal {
    /// The lease ran out or the server refused it (a NAK): its address and routes are gone from
    /// the link and the store; discovery runs at the next act.
    #[serde(default)]
    pub unbound: bool,
    /// Failed acts in a row (the backoff grows with them).
    #[serde(default)]
    pub failures: u32,
    /// When to try again after a failed act.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<SystemTime>,
    /// Why the last act failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// An offer taken, its REQUEST about to go out or out, and no ACK recorded yet (the
    /// attach's or the renewer's discovery): the lease (the offer's) may be the server's, so a
    /// take-back releases it; never kept by a re-run attach, never renewed: the renewer
    /// discovers again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
    /// The pending offer is a renewer's (`crate::renew`), for the lease of a container that
    /// lives, not an attach's (which failed or died if it is still there): keepers keep it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rediscovery: bool,
}

impl Renewal {
    /// Nothing to say: bound, no failure.
    pub fn is_quiet(&self) -> bool {
        *self == Self::default()
    }
}

impl DhcpRecord {
    /// The client identifier's bytes, from its hex.
    pub fn client_id_bytes(&self) -> Option<Vec<u8>> {
        self.client_id
            .split(':')
            .map(|b| u8::from_str_radix(b, 16).ok())
            .collect()
    }

    /// Whether the lease ran out at `now`.
    pub fn expired(&self, now: SystemTime) -> bool {
        self.lease.expiry <= now
    }
}
