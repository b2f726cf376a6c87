//! Discovery again, for a v4 lease that ended (`unbound`) or whose REQUEST went out with no
//! ACK recorded (`pending`: an act, or the attach, ended between the two): DORA on the link,
//! the offer on the record before its REQUEST goes out, as an attach notes it
//! (`crate::source::dhcp`). A renewer killed before it records the ACK so leaves the lease the
//! server may have committed named, and a take-back gives it back; the next act discovers
//! again (the same client identifier: the server's answer is that lease).

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use oci_macvlan_dhcp::{Client, Config, Lease as DhcpLease, OnLink, PacketLink};
use oci_macvlan_netlink_core::{Handle, Link, Netns};

use super::{DhcpRenewal, EXCHANGE, Renewed};
use crate::{
    Error, Result, StorePolicy,
    record::{DhcpRecord, RecordedEndpoint, Renewal},
    source::{
        dhcp::seed,
        dhcp_decline::{decline_refused, someone_elses},
    },
};

/// Puts the endpoint's DHCP part on the container's record (the act holds its lock).
pub(super) type Note<'a> = &'a mut dyn FnMut(&DhcpRecord) -> Result<()>;

/// Where an act runs: the container's namespace, its handle there, the endpoint's link and
/// record.
pub(super) struct Site<'a> {
    pub(super) netns: &'a Netns,
    pub(super) container: &'a Handle,
    pub(super) link: &'a Link,
    pub(super) endpoint: &'a RecordedEndpoint,
}

impl<P: StorePolicy> DhcpRenewal<P> {
    /// The exchange's `source` error, as the act's.
    pub(super) fn exchange_failed(&self, source: oci_macvlan_dhcp::Error) -> Error {
        Error::Dhcp(crate::DhcpError::Exchange {
            network: self.network.clone(),
            source: Box::new(source),
        })
    }

    /// A new lease for `dhcp`'s endpoint (see the module), applied: the store, the address,
    /// its routes. A pending lease's address may be on the link already (an act killed after
    /// applying it): another address from the server takes its place there.
    pub(super) async fn rediscover(
        &self,
        site: &Site<'_>,
        mut dhcp: DhcpRecord,
        (config, on): (Config, &OnLink),
        others: &[IpNetwork],
        note: Note<'_>,
    ) -> Result<(Renewed, DhcpRecord)> {
        // Only the address on this very link: a pending offer may be someone else's address
        // that an act refused (another endpoint's of this container among them).
        let noted_before = match dhcp.renewal.pending {
            true => {
                let ip = IpAddr::V4(dhcp.lease.address);
                let holders = site
                    .container
                    .address_holders(&[ip])
                    .await
                    .map_err(Error::Netlink)?;
                holders
                    .iter()
                    .any(|(index, _)| *index == site.link.index)
                    .then_some(ip)
            }
            false => None,
        };
        let socket = site
            .netns
            .open_inside(&format!("a DHCP socket on {}", on.name), || {
                PacketLink::open(on, None)
            })
            .map_err(Error::Netlink)?;
        let mut client = Client::new(config, seed());
        // The failures so far stay on the record: a server that offers and never ACKs is
        // still asked less and less often.
        let mut noting = |offered: Option<&DhcpLease>| {
            let mut noted = dhcp.clone();
            noted.renewal.retry_at = None;
            match offered {
                Some(offered) => {
                    noted.lease = offered.clone();
                    (noted.renewal.pending, noted.renewal.unbound) = (true, false);
                }
                // NAKed: the server holds nothing for that offer (no RELEASE for it: its
                // address may be another client's now).
                None => (noted.renewal.pending, noted.renewal.unbound) = (false, true),
            }
            note(&noted).map_err(|err| crate::one_line(&err))
        };
        let lease = oci_macvlan_dhcp::acquire_noting(
            &mut client,
            &socket,
            EXCHANGE,
            &mut noting,
            &mut |_| {},
        )
        .map_err(|err| self.exchange_failed(err))?;
        drop(socket);
        // The ACK read; the record names its offer, not yet the lease in full.
        crate::failpoint::hit("renew:acked")?;
        let to = IpAddr::V4(lease.address);
        let applied = self
            .apply(
                site.netns,
                site.container,
                site.link,
                site.endpoint,
                noted_before,
                (&lease, others),
            )
            .await;
        if let Err(err) = applied {
            // Someone else's address: no one's lease once declined, never to be released from
            // (its holder's neighbours would hear it). The record names the lease it had again,
            // before the DECLINE goes: unbound, or the pending one whose address the link has.
            let restored = match someone_elses(&err) {
                true => {
                    let mut back = dhcp.clone();
                    if noted_before.is_none() {
                        (back.renewal.pending, back.renewal.unbound) = (false, true);
                    }
                    note(&back)
                }
                false => Ok(()),
            };
            decline_refused(site.netns, on, &mut client, &err);
            restored?;
            return Err(err);
        }
        dhcp.lease = lease;
        dhcp.renewal = Renewal::default();
        Ok((
            Renewed::Moved {
                from: noted_before.filter(|from| *from != to),
                to,
            },
            dhcp,
        ))
    }
}
