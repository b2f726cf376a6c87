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

use std::{net::IpAddr, time::SystemTime};

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
    /// its routes. An address of ours the link still has (an act killed after applying a lease
    /// it had not recorded yet) gives way to the one the server gives.
    pub(super) async fn rediscover(
        &self,
        site: &Site<'_>,
        mut dhcp: DhcpRecord,
        (config, on): (Config, &OnLink),
        others: &[IpNetwork],
        note: Note<'_>,
    ) -> Result<(Renewed, DhcpRecord)> {
        let on_link = self
            .ours_on_link(site.container, site.link, site.endpoint, true)
            .await?;
        let socket = site
            .netns
            .open_inside(&format!("a DHCP socket on {}", on.name), || {
                PacketLink::open(on, None)
            })
            .map_err(Error::Netlink)?;
        let mut client = Client::new(config, seed());
        // What the record said when the act began, put back when an offer is NAKed (the server
        // holds nothing for it); a pending lease there is this renewer's now. Its failures
        // stay, and a noted offer is not acted on again before the next backoff: a server that
        // offers and never ACKs, or a renewer that dies after the ACK, is tried less and less
        // often.
        let mut before = dhcp.clone();
        before.renewal.retry_at = None;
        before.renewal.rediscovery = before.renewal.pending;
        let retry = SystemTime::now() + super::backoff(before.renewal.failures.saturating_add(1));
        let mut offered_last = None;
        let mut noting = |offered: Option<&DhcpLease>| {
            let noted = match offered {
                Some(offered) => {
                    offered_last = Some(offered.address);
                    let mut noted = before.clone();
                    noted.lease = offered.clone();
                    noted.renewal.unbound = false;
                    (noted.renewal.pending, noted.renewal.rediscovery) = (true, true);
                    noted.renewal.retry_at = Some(retry);
                    noted
                }
                // The NAKed address is what the record named as pending: no longer to release
                // (nor after a later offer NAKed too: what the record says from now on).
                None if offered_last == Some(before.lease.address) => {
                    before.renewal.unbound = true;
                    (before.renewal.pending, before.renewal.rediscovery) = (false, false);
                    before.clone()
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
        let Err(err) = applied else {
            dhcp.lease = lease;
            dhcp.renewal = Renewal::default();
            return Ok((Renewed::Moved { from, to }, dhcp));
        };
        if !someone_elses(&err) {
            return Err(err);
        }
        // Someone else's address: no one's lease once declined, never to be released from
        // (its holder's neighbours would hear it). The record first names it as ours no
        // longer, then the DECLINE goes. An address of ours on the link is not ours either
        // (the server gave that one in its place): the record says so, then it leaves the link
        // and the store, and discovery comes no sooner than the retry floor, as after a bound
        // lease's refused move.
        let mut back = before;
        if let Some(ours) = on_link {
            back.renewal = withdrawn(&err);
            note(&back)?;
            self.unbind(site.container, site.link, site.endpoint, ours)
                .await?;
            decline_refused(site.netns, on, &mut client, &err);
            return Ok((Renewed::Refused(ours), back));
        }
        if back.lease.address == lease.address {
            back.renewal.unbound = true;
            (back.renewal.pending, back.renewal.rediscovery) = (false, false);
        }
        // Not written: no DECLINE (the record may still name the address for a take-back).
        note(&back)?;
        decline_refused(site.netns, on, &mut client, &err);
        Err(err)
    }
}
