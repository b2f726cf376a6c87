//! Discovery again, for a v4 lease that ended (`unbound`) or whose REQUEST went out with no
//! ACK recorded (`pending`: an act, or the attach, ended between the two): DORA on the link,
//! the offer on the record before its REQUEST goes out, as an attach notes it
//! (`crate::source::dhcp`). A renewer killed before it records the ACK so leaves the lease the
//! server may have committed named, and a take-back gives it back; the next act discovers
//! again (the same client identifier: the server's answer is that lease). The keepers keep
//! such a lease (`Renewal::rediscovery`), unlike an attach's pending offer.
//!
//! An offer stays on the record for as long as its REQUEST goes unanswered (a server that
//! offers and then goes quiet): a take-back then releases it although the server may never
//! have committed it, and may have offered its address to someone else meanwhile. That is the
//! attach's trade too, over a longer time; servers ignore a RELEASE of a lease they do not hold
//! for that client.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use oci_macvlan_dhcp::{Client, Config, Lease as DhcpLease, OnLink, PacketLink};
use oci_macvlan_netlink_core::{Handle, Link, Netns};

use super::{DhcpRenewal, EXCHANGE, Renewed, apply::withdrawn};
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
    /// its routes. An IPv4 address the link still has (an act killed after applying a lease it
    /// had not recorded yet; a DHCP link has no other) gives way to the one the server gives.
    pub(super) async fn rediscover(
        &self,
        site: &Site<'_>,
        mut dhcp: DhcpRecord,
        (config, on): (Config, &OnLink),
        others: &[IpNetwork],
        note: Note<'_>,
    ) -> Result<(Renewed, DhcpRecord)> {
        let on_link = site
            .container
            .global_addresses(site.link)
            .await
            .map_err(Error::Netlink)?
            .into_iter()
            .find(IpAddr::is_ipv4);
        let socket = site
            .netns
            .open_inside(&format!("a DHCP socket on {}", on.name), || {
                PacketLink::open(on, None)
            })
            .map_err(Error::Netlink)?;
        let mut client = Client::new(config, seed());
        // What the record said when the act began, put back when an offer is NAKed (the server
        // holds nothing for it). Its failures stay: a server that offers and never ACKs is
        // asked less and less often.
        let mut before = dhcp.clone();
        before.renewal.retry_at = None;
        let mut noting = |offered: Option<&DhcpLease>| {
            let noted = match offered {
                Some(offered) => {
                    let mut noted = before.clone();
                    noted.lease = offered.clone();
                    noted.renewal.unbound = false;
                    (noted.renewal.pending, noted.renewal.rediscovery) = (true, true);
                    noted
                }
                None => before.clone(),
            };
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
        // The same address again: given its new lifetime, not taken off first.
        let from = on_link.filter(|ip| *ip != to);
        let applied = self
            .apply(
                site.netns,
                site.container,
                site.link,
                site.endpoint,
                from,
                (&lease, others),
            )
            .await;
        if let Err(err) = applied {
            if !someone_elses(&err) {
                return Err(err);
            }
            // Someone else's address: no one's lease once declined, never to be released from
            // (its holder's neighbours would hear it). The record names what it named before,
            // and never that address as ours, before the DECLINE goes; where the link has it
            // (a lease an act applied before it was refused), it leaves the link and the store.
            let mut back = dhcp.clone();
            if on_link == Some(to) {
                self.unbind(site.container, site.endpoint, to).await?;
                back.renewal = withdrawn(&err);
                note(&back)?;
                decline_refused(site.netns, on, &mut client, &err);
                return Ok((Renewed::Refused(to), back));
            }
            if back.lease.address == lease.address {
                (back.renewal.pending, back.renewal.unbound) = (false, true);
            }
            let restored = note(&back);
            decline_refused(site.netns, on, &mut client, &err);
            restored?;
            return Err(err);
        }
        dhcp.lease = lease;
        dhcp.renewal = Renewal::default();
        Ok((Renewed::Moved { from, to }, dhcp))
    }
}
