//! The DHCPv6 half of the DHCP source (`--ipam-driver dhcp --ipv6`): one IA_NA lease beside
//! the v4 one, on the same link, under the DUID and IAID of the same [`ClientId`] (RFC 4361),
//! so a re-created container asks for, and gets, its old v6 address too.
//!
//! The link was prepared before it came up ([`crate::sysctl::dhcp6_sysctls`]: no DAD, router
//! advertisements accepted, SLAAC only with `-o ipv6_slaac=true`): its link-local address,
//! which the exchange sends from, is usable at once, and the leased address is added `nodad`.
//! The leased address gets the network's IPv6 `--subnet`'s prefix, else /128; the default
//! route and the on-link prefix are the router advertisements' business, as on any host.

use std::{net::IpAddr, time::SystemTime};

use ipnetwork::{IpNetwork, Ipv6Network};
use oci_macvlan_dhcp::{
    ClientId,
    v6::{self, OnLink6, UdpLink},
};
use oci_macvlan_netlink_core::Netns;

use super::{Acquired, Dhcp6Record, dhcp_notes::Notes};
use crate::network::DhcpIpam;

/// How long the link may take to have its link-local address (it came up just before).
const LINK_LOCAL_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// The v6 client's socket on the link `ifname` (index `index`) of `netns`, opened inside it:
/// `Err` outside, the namespace could not be entered; inside, the v6 client's own error.
pub(crate) fn open(
    netns: &Netns,
    ifname: &str,
    index: u32,
) -> oci_macvlan_netlink_core::Result<Result<UdpLink, v6::Error>> {
    let on = OnLink6 {
        name: ifname.to_owned(),
        index,
    };
    netns.open_inside(&format!("a DHCPv6 socket on {ifname}"), || {
        Ok(UdpLink::open(&on, LINK_LOCAL_WITHIN))
    })
}

/// The v6 client's settings for `client_id` on a network of `dhcp`.
pub(super) fn config(client_id: &ClientId, hostname: Option<&str>, dhcp: &DhcpIpam) -> v6::Config {
    v6::Config {
        client_id: client_id.clone(),
        // Sent only if the FQDN option can carry it.
        hostname: hostname
            .filter(|h| v6::message::fqdn(h).is_ok())
            .map(str::to_owned),
        subnet: dhcp.subnet6.map(|s| (s.network(), s.prefix())),
    }
}

/// Runs `v4` (the v4 exchange) on this thread and, with `socket6`, `client6`'s SOLICIT …
/// REPLY on it at the same time, each lease it asks for noted in `notes` before its REQUEST:
/// both results, the v6 one as its record.
pub(super) fn beside<T: Send>(
    socket6: Option<&UdpLink>,
    client6: &mut v6::Client,
    dhcp: &DhcpIpam,
    notes: &Notes<'_>,
    v4: impl FnOnce() -> T,
) -> (T, Option<Result<Dhcp6Record, v6::Error>>) {
    std::thread::scope(|scope| {
        let v6 = socket6.map(|socket| scope.spawn(|| exchange(socket, client6, dhcp, notes)));
        let got = v4();
        let v6 = v6.map(|handle| {
            handle
                .join()
                .unwrap_or_else(|_| Err(v6::Error::Build("the DHCPv6 exchange panicked".into())))
        });
        (got, v6)
    })
}

fn exchange(
    socket: &UdpLink,
    client: &mut v6::Client,
    dhcp: &DhcpIpam,
    notes: &Notes<'_>,
) -> Result<Dhcp6Record, v6::Error> {
    let id = &client.config().client_id;
    let (duid, iaid) = (hex(id.duid()), id.iaid());
    let record = |lease: v6::Lease, renewal| Dhcp6Record {
        duid: duid.clone(),
        iaid,
        prefix: dhcp.subnet6.map_or(128, |s| s.prefix()),
        subnet: dhcp.subnet6,
        slaac: dhcp.slaac,
        lease,
        renewal,
    };
    let mut note = |offered: Option<&v6::Lease>| {
        let pending = crate::record::Renewal {
            pending: true,
            ..Default::default()
        };
        notes.v6(offered.map(|lease| record(lease.clone(), pending)))
    };
    let lease = v6::acquire_noting(client, socket, dhcp.timeout(), &mut note)?;
    Ok(record(lease, Default::default()))
}

/// Gives `client`'s lease back on `socket` at once (an attach that keeps no lease: the v4
/// exchange failed), in a bounded wait; given up if no server answers (it runs out).
pub(super) fn release_now(client: &mut v6::Client, socket: &UdpLink) {
    let _ = v6::release(client, socket, RELEASE_WITHIN);
}

/// How long a RELEASE waits for the server's REPLY (resent meanwhile).
pub(super) const RELEASE_WITHIN: std::time::Duration = std::time::Duration::from_secs(3);

/// Bytes as servers' lease files show them (`00:04:…`).
pub(super) fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The leased address with the prefix it goes on the link with.
pub(crate) fn address(record: &Dhcp6Record) -> IpNetwork {
    let lease = &record.lease;
    Ipv6Network::new(lease.address, record.prefix)
        .or_else(|_| Ipv6Network::new(lease.address, 128))
        .map_or_else(
            |_| IpNetwork::V6(Ipv6Network::from(lease.address)),
            IpNetwork::V6,
        )
}

/// What the v6 lease gives the link at `now`: its address, no gateway (router advertisements
/// decide the default route), the valid lifetime it has left.
pub(super) fn acquired(record: &Dhcp6Record, now: SystemTime) -> Acquired {
    Acquired {
        address: address(record),
        gateway: None,
        routes: Vec::new(),
        lifetime: Some(record.lease.valid_left(now)),
    }
}

/// What `verify` finds wrong with `ip`, a v6 lease of the store that `record` (the holder's
/// endpoint's v6 lease, if any) is to explain.
pub(super) fn lease_problem(
    ip: IpAddr,
    record: Option<&Dhcp6Record>,
    subnet: Option<Ipv6Network>,
) -> Option<String> {
    let Some(v6) = record else {
        return Some("no DHCPv6 lease on the container's record explains it".into());
    };
    if IpAddr::V6(v6.lease.address) != ip {
        return Some(format!(
            "the container's DHCPv6 lease is of {}, not this address",
            v6.lease.address
        ));
    }
    if let Some(subnet) = subnet
        && !subnet.contains(v6.lease.address)
    {
        return Some(format!("outside the network's --subnet {subnet}"));
    }
    if v6.expired(SystemTime::now()) {
        return Some(format!(
            "its DHCPv6 lease ran out at {}",
            humantime::format_rfc3339_seconds(v6.lease.expiry)
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;

    fn record(prefix: u8, expiry: Duration) -> Dhcp6Record {
        let now = SystemTime::now();
        Dhcp6Record {
            duid: "00:04".into(),
            iaid: 7,
            prefix,
            subnet: None,
            slaac: false,
            lease: v6::Lease {
                address: "fd00:1::50".parse().unwrap(),
                server_id: vec![0, 1],
                unicast: None,
                dns: Vec::new(),
                obtained: now,
                t1: now,
                t2: now,
                preferred_until: now + expiry,
                expiry: now + expiry,
            },
            renewal: Default::default(),
        }
    }

    #[test]
    fn the_address_takes_the_recorded_prefix_and_no_gateway() {
        let r = record(64, Duration::from_secs(600));
        let got = acquired(&r, r.lease.obtained);
        assert_eq!(got.address.to_string(), "fd00:1::50/64");
        assert_eq!(got.gateway, None);
        let r = record(128, Duration::ZERO);
        assert_eq!(acquired(&r, r.lease.obtained).address.prefix(), 128);
    }

    /// A kept lease's address gets what is left of it, not its whole length (review 27, 7).
    #[test]
    fn the_lifetime_is_what_is_left() {
        let r = record(64, Duration::from_secs(600));
        let later = r.lease.obtained + Duration::from_secs(200);
        assert_eq!(acquired(&r, later).lifetime, Some(Duration::from_secs(400)));
        let past = r.lease.obtained + Duration::from_secs(700);
        assert_eq!(acquired(&r, past).lifetime, Some(Duration::ZERO));
    }

    #[test]
    fn verify_flags_an_expired_or_unexplained_v6_lease() {
        let ip: IpAddr = "fd00:1::50".parse().unwrap();
        let live = record(128, Duration::from_secs(600));
        assert_eq!(lease_problem(ip, Some(&live), None), None);
        let dead = record(128, Duration::ZERO);
        assert!(
            lease_problem(ip, Some(&dead), None)
                .unwrap()
                .contains("ran out")
        );
        assert!(lease_problem(ip, None, None).unwrap().contains("explains"));
        let other: IpAddr = "fd00:1::51".parse().unwrap();
        assert!(
            lease_problem(other, Some(&live), None)
                .unwrap()
                .contains("not this")
        );
        let subnet = Some("fd00:2::/64".parse().unwrap());
        assert!(
            lease_problem(ip, Some(&live), subnet)
                .unwrap()
                .contains("outside")
        );
    }
}
