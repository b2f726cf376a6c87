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
//!   address it had (a hint).

use std::{net::IpAddr, time::SystemTime};

use ipnetwork::IpNetwork;
use oci_macvlan_dhcp::{
    ClientId,
    v6::{self, Event},
};
use oci_macvlan_netlink_core::Netns;

use super::{DhcpRenewal, EXCHANGE, Renewed};
use crate::{
    Error, Result, StorePolicy,
    record::{Dhcp6Record, DhcpRecord, RecordedEndpoint, Renewal},
    source::{dhcp::seed, dhcp6},
};

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
        if record.renewal.unbound {
            // The address the lease had is asked for again: a server that has it free gives
            // it back, even one that forgot the lease.
            let mut client = v6::Client::new(config, seed()).with_hint(Some(record.lease.address));
            let lease = v6::acquire(&mut client, &socket, EXCHANGE).map_err(failed6)?;
            drop(socket);
            let address = address_of(&record, &lease);
            self.move_to(
                &container,
                &link,
                endpoint,
                None,
                (address, lease.valid_left(SystemTime::now())),
            )
            .await?;
            record.lease = lease;
            record.renewal = Renewal::default();
            dhcp.v6 = Some(record);
            return Ok((
                Renewed::Moved {
                    from: None,
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
