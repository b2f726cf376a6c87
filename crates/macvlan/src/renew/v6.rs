//! One act on a DHCPv6 lease (IA_NA, RFC 8415, 18.2.4 to 18.2.5): the client resumed from the
//! recorded lease sends RENEW at T1 to the server that gave it (its DUID on the record; to its
//! address when it allowed unicast), REBIND at T2 to all servers, nothing past the valid
//! lifetime. Its UDP socket is opened inside the container's namespace on the endpoint's link,
//! from the link's link-local address, and closed when the exchange ends.
//!
//! - A REPLY for the same address: the record takes the new lifetimes and timers, the address
//!   on the link its new valid lifetime.
//! - One for another address (given in place of ours, or after NoBinding): the link moves
//!   to it.
//! - The lease lost (the server took the address back, has none for us, or refused the
//!   REQUEST that followed NoBinding) or run out unanswered: the address leaves the link and
//!   the store, and the record says `unbound`, its expiry when it ended (so that no RELEASE
//!   is sent for it, and an attach re-run asks again); the next act SOLICITs, asking for the
//!   address it had (a hint). The lease an ADVERTISE offers goes on the record (`pending`, a
//!   renewer's) before its REQUEST, as the v4 discovery's offer does (`super::discover`): a
//!   renewer killed before it records the REPLY leaves that lease named for a take-back, and
//!   the next act SOLICITs again (a pending lease is discovered again, never renewed).

use std::{net::IpAddr, time::SystemTime};

use ipnetwork::IpNetwork;
use oci_macvlan_dhcp::{
    ClientId,
    v6::{self, Event},
};
use oci_macvlan_netlink_core::Netns;

use super::{DhcpRenewal, EXCHANGE, Renewed, discover::Note};
use crate::{
    Error, Result, StorePolicy,
    record::{Dhcp6Record, DhcpRecord, RecordedEndpoint, Renewal},
    source::{dhcp::seed, dhcp6},
};

/// What a v6 discovery of `dhcp`'s lease writes on the record through `note`: the lease an
/// ADVERTISE offers (pending, a renewer's, tried again no sooner than the next backoff: a
/// server that advertises and never replies, or a renewer that dies after the REPLY, is tried
/// less and less often), and, when a REPLY gives no address, what the record said before (the
/// lease noted is no longer to release: unbound if it was the one the record named).
fn noting<'a>(
    dhcp: &DhcpRecord,
    note: Note<'a>,
) -> impl FnMut(Option<&v6::Lease>) -> std::result::Result<(), String> + 'a {
    let mut before = dhcp.clone();
    let was = before.v6.as_mut().map(|v6| {
        v6.renewal.retry_at = None;
        v6.renewal.rediscovery = v6.renewal.pending;
        (v6.lease.address, v6.renewal.failures)
    });
    let failures = was.map_or(0, |(_, failures)| failures);
    let retry = SystemTime::now() + super::backoff(failures.saturating_add(1));
    let mut offered_last = None;
    move |offered| {
        let noted = match (offered, before.v6.as_mut()) {
            (Some(offered), Some(_)) => {
                offered_last = Some(offered.address);
                let mut noted = before.clone();
                if let Some(v6) = noted.v6.as_mut() {
                    v6.lease = offered.clone();
                    v6.renewal.unbound = false;
                    (v6.renewal.pending, v6.renewal.rediscovery) = (true, true);
                    v6.renewal.retry_at = Some(retry);
                }
                noted
            }
            // The lease the record named refused: no longer to release (nor after a later
            // one refused too: what the record says from now on).
            (None, Some(v6)) if offered_last.is_some() && offered_last == was.map(|(a, _)| a) => {
                v6.renewal.unbound = true;
                (v6.renewal.pending, v6.renewal.rediscovery) = (false, false);
                before.clone()
            }
            _ => before.clone(),
        };
        note(&noted).map_err(|err| crate::one_line(&err))
    }
}

/// The address `record` goes on the link with, for `lease`.
fn address_of(record: &Dhcp6Record, lease: &v6::Lease) -> IpNetwork {
    dhcp6::address(&Dhcp6Record {
        lease: lease.clone(),
        ..record.clone()
    })
}

impl<P: StorePolicy> DhcpRenewal<P> {
    /// The exchange of one v6 act and what it changes on the link and in the store; the
    /// record's new DHCP part.
    pub(super) async fn exchange6(
        &mut self,
        netns: &Netns,
        endpoint: &RecordedEndpoint,
        mut dhcp: DhcpRecord,
        note: Note<'_>,
    ) -> Result<(Renewed, DhcpRecord)> {
        let Some(mut record) = dhcp.v6.clone() else {
            return Err(self.failed("the record has no DHCPv6 lease"));
        };
        let (container, link) = self.link(netns, endpoint).await?;
        let client_id = dhcp
            .client_id_bytes()
            .and_then(ClientId::from_bytes)
            .ok_or_else(|| self.failed("the recorded client identifier is not hex"))?;
        let config = v6::Config {
            client_id,
            hostname: dhcp
                .hostname
                .clone()
                .filter(|h| v6::message::fqdn(h).is_ok()),
            subnet: record.subnet.map(|s| (s.network(), s.prefix())),
        };
        let failed6 = |source: v6::Error| {
            Error::Dhcp(crate::DhcpError::Exchange6 {
                network: self.network.clone(),
                source: Box::new(source),
            })
        };
        let socket = dhcp6::open(netns, &link.name, link.index)
            .map_err(Error::Netlink)?
            .map_err(failed6)?;
        let old = IpAddr::V6(record.lease.address);
        if record.renewal.unbound || record.renewal.pending {
            // The address the lease had is asked for again: a server that has it free gives
            // it back, even one that forgot the lease.
            let mut client = v6::Client::new(config, seed()).with_hint(Some(record.lease.address));
            // An address of ours the link still has (an act killed after applying a lease it
            // had not recorded yet) gives way to the one the server gives.
            let on_link = self
                .ours_on_link(&container, &link, endpoint, false)
                .await?;
            let mut noting = noting(&dhcp, note);
            let lease =
                v6::acquire_noting(&mut client, &socket, EXCHANGE, &mut noting).map_err(failed6)?;
            drop(socket);
            // The REPLY read; the record names its ADVERTISE's lease, not yet the lease in full.
            crate::failpoint::hit("renew:replied6")?;
            let address = address_of(&record, &lease);
            let from = on_link.filter(|ip| *ip != address.ip());
            self.move_to(
                &container,
                &link,
                endpoint,
                from,
                (address, lease.valid_left(SystemTime::now())),
            )
            .await?;
            record.lease = lease;
            record.renewal = Renewal::default();
            dhcp.v6 = Some(record);
            return Ok((
                Renewed::Moved {
                    from,
                    to: address.ip(),
                },
                dhcp,
            ));
        }
        let mut client = v6::Client::resume(config, record.lease.clone(), seed());
        let event = v6::next_event(&mut client, &socket, EXCHANGE).map_err(failed6)?;
        drop(socket);
        let renewed = match event {
            Event::Extended(lease) | Event::Bound(lease) if IpAddr::V6(lease.address) == old => {
                let address = address_of(&record, &lease);
                let lifetime = lease.valid_left(SystemTime::now());
                self.extend(&container, &link, (old, address.prefix()), lifetime)
                    .await?;
                let renewed = Renewed::Extended {
                    address: old,
                    expiry: lease.expiry,
                };
                record.lease = lease;
                renewed
            }
            Event::Extended(lease) | Event::Bound(lease) => {
                let address = address_of(&record, &lease);
                let lifetime = lease.valid_left(SystemTime::now());
                let moved = self
                    .move_to(&container, &link, endpoint, Some(old), (address, lifetime))
                    .await;
                if let Err(err) = moved {
                    // The REPLY gave another address in the old one's place (the old one's valid
                    // lifetime 0, or no binding for it): the old one is no longer ours, and the
                    // new one was not taken. The link keeps neither.
                    record.renewal = self
                        .drop_withdrawn(&container, &link, endpoint, old, err)
                        .await?;
                    let now = SystemTime::now();
                    record.lease.expiry = record.lease.expiry.min(now);
                    record.lease.preferred_until = record.lease.preferred_until.min(now);
                    dhcp.v6 = Some(record);
                    return Ok((Renewed::Refused(old), dhcp));
                }
                record.lease = lease;
                Renewed::Moved {
                    from: Some(old),
                    to: address.ip(),
                }
            }
            Event::Lost(_) | Event::Expired(_) => {
                self.unbind(&container, &link, endpoint, old).await?;
                let now = SystemTime::now();
                let lease = &mut record.lease;
                lease.expiry = lease.expiry.min(now);
                lease.preferred_until = lease.preferred_until.min(now);
                record.renewal = Renewal {
                    unbound: true,
                    retry_at: Some(now),
                    ..Renewal::default()
                };
                dhcp.v6 = Some(record);
                let renewed = if matches!(event, Event::Lost(_)) {
                    Renewed::Refused(old)
                } else {
                    Renewed::Expired(old)
                };
                return Ok((renewed, dhcp));
            }
            Event::Released(_) => {
                return Err(self.failed("the DHCPv6 client released a lease it was renewing"));
            }
        };
        record.renewal = Renewal::default();
        dhcp.v6 = Some(record);
        Ok((renewed, dhcp))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;

    /// A record whose v6 lease of `address` ended (unbound) after `failures` failed acts.
    fn ended(address: &str, failures: u32) -> DhcpRecord {
        let now = SystemTime::now();
        let mut dhcp = super::super::tests::record(now);
        dhcp.v6 = Some(Dhcp6Record {
            duid: "00:04".into(),
            iaid: 7,
            prefix: 128,
            subnet: None,
            slaac: false,
            lease: v6::Lease {
                address: address.parse().unwrap(),
                server_id: vec![0, 1],
                unicast: None,
                dns: Vec::new(),
                obtained: now,
                t1: now,
                t2: now,
                preferred_until: now,
                expiry: now,
            },
            renewal: Renewal {
                unbound: true,
                failures,
                ..Renewal::default()
            },
        });
        dhcp
    }

    /// What `noting` writes for each of `told`, in order.
    fn written(dhcp: &DhcpRecord, told: &[Option<&v6::Lease>]) -> Vec<Dhcp6Record> {
        let mut seen = Vec::new();
        let mut note = |d: &DhcpRecord| -> Result<()> {
            seen.push(d.v6.clone().unwrap());
            Ok(())
        };
        let mut noting = noting(dhcp, &mut note);
        for offered in told {
            noting(*offered).unwrap();
        }
        drop(noting);
        seen
    }

    #[test]
    fn a_renewers_advertised_lease_is_noted_pending_and_retried_later() {
        let dhcp = ended("fd00::50", 2);
        let mut offered = dhcp.v6.clone().unwrap().lease;
        offered.address = "fd00::51".parse().unwrap();
        offered.expiry = SystemTime::now() + Duration::from_secs(600);
        let before = SystemTime::now();
        let seen = written(&dhcp, &[Some(&offered)]);
        let noted = &seen[0];
        assert_eq!(noted.lease, offered);
        assert!(
            noted.renewal.pending && noted.renewal.rediscovery,
            "{noted:?}"
        );
        assert!(!noted.renewal.unbound);
        assert_eq!(noted.renewal.failures, 2, "the failures stay");
        // No sooner than the next backoff (3 failures: 8 s).
        assert!(noted.renewal.retry_at.unwrap() >= before + super::super::backoff(3));
    }

    #[test]
    fn a_reply_without_an_address_puts_back_what_the_record_said() {
        // Another address advertised and given nothing: the record says what it said.
        let dhcp = ended("fd00::50", 0);
        let mut other = dhcp.v6.clone().unwrap().lease;
        other.address = "fd00::51".parse().unwrap();
        let seen = written(&dhcp, &[Some(&other), None]);
        assert_eq!(seen[1], dhcp.v6.clone().unwrap());

        // The pending lease the record named advertised again and given nothing: no longer the
        // container's to release.
        let mut pending = ended("fd00::50", 0);
        let v6 = pending.v6.as_mut().unwrap();
        v6.renewal = Renewal {
            pending: true,
            ..Renewal::default()
        };
        let same = v6.lease.clone();
        let seen = written(&pending, &[Some(&same), None]);
        assert!(
            seen[0].renewal.rediscovery,
            "a pending lease is the renewer's now"
        );
        assert!(seen[1].renewal.unbound, "{:?}", seen[1]);
        assert!(!seen[1].renewal.pending && !seen[1].renewal.rediscovery);

        // Refused, then another lease refused too: the first one stays refused (never named
        // for a release again).
        let seen = written(&pending, &[Some(&same), None, Some(&other), None]);
        assert_eq!(seen[2].lease.address, other.address);
        assert!(seen[3].renewal.unbound, "{:?}", seen[3]);
        assert_eq!(seen[3].lease.address, same.address);
        assert!(!seen[3].renewal.pending, "{:?}", seen[3]);
    }
}
