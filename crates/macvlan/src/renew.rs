//! A DHCP lease kept alive for as long as its container runs: the duty of a keeper
//! (`oci_macvlan_keeper`), which the hook starts per container and DHCP network after an
//! attach and which ends with the container. Both leases of a `--ipv6` network are its: the
//! v4 one here, the DHCPv6 one (IA_NA, RFC 8415) in [`v6`], each on its own schedule.
//!
//! Everything lives on the endpoint's record ([`DhcpRecord`]: the leases with their timers,
//! and a [`Renewal`] each: unbound, failures, when to try again), so a keeper killed loses
//! nothing: its standby reads the same record and acts on the same schedule ([`schedule`],
//! [`schedule6`]). One act, for one family, under the container's lock and inside its
//! namespace (opened for that act only):
//!
//! - bound past T1: the client resumes from the recorded lease and runs one bounded exchange
//!   (v4: REQUEST unicast to the server from the leased address, past T2 broadcast; v6: RENEW
//!   to the server that gave the lease, past T2 REBIND to all servers; past expiry nothing
//!   is sent): an answer for the same address gives new timers and the address on the link
//!   its new lifetime; one for another address moves the link to it (store, address, routes,
//!   record);
//! - a NAK (v6: the server has no address or binding for us and refused the REQUEST for it),
//!   or expiry unanswered: the address leaves the link (and a v4 one's routes with it: it is
//!   the link's only IPv4 address), the store's lease is released, the record says `unbound`;
//! - unbound: discovery (DORA, SOLICIT) on the link, and the new lease is applied as above; the
//!   lease offered (a v4 OFFER's, a v6 ADVERTISE's) goes on the record (`pending`, a
//!   renewer's) before its REQUEST, as at attach ([`discover`], [`v6`]), and a pending lease
//!   (a REQUEST out, no answer recorded) is discovered again.
//!
//! A failed act (no answer in time, a store that does not answer) is recorded and tried again
//! at a backoff ([`backoff`]) that never passes the lease's next timer. Nothing a server says
//! can make this panic: its answers go through the client's checks.

mod apply;
mod discover;
mod routes;
mod v6;

use std::{
    net::IpAddr,
    time::{Duration, SystemTime},
};

use ipnetwork::IpNetwork;
use oci_macvlan_dhcp::{Client, ClientId, Config, Event, OnLink, PacketLink};
use oci_macvlan_keeper::{Container, Duty};
use oci_macvlan_netlink_core::{Handle, Link, Netns};

use crate::{
    ContainerId, Error, Networks, Records, Result, StorePolicy,
    lock::FileLock,
    record::{Dhcp6Record, DhcpRecord, RecordedEndpoint, Renewal},
    source::{
        dhcp::{RETRY_FLOOR, seed},
        dhcp_decline::decline_refused,
    },
};

/// How long one act's exchange may take.
const EXCHANGE: Duration = Duration::from_secs(4);
/// The longest wait between two failed acts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The wait after `failures` failed acts in a row: 2 s, 4 s, … up to [`MAX_BACKOFF`].
pub fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.clamp(1, 6)).min(MAX_BACKOFF)
}

/// When the renewer acts next on `dhcp`'s v4 lease, at `now`: T1 while bound before it; then
/// at once, or when a failed act said to try again, but never past the next timer (T2,
/// expiry).
pub fn schedule(dhcp: &DhcpRecord, now: SystemTime) -> SystemTime {
    let lease = &dhcp.lease;
    due((lease.t1, lease.t2, lease.expiry), &dhcp.renewal, now)
}

/// When the renewer acts next on a DHCPv6 lease, at `now`: as [`schedule`], on its own
/// timers and [`Renewal`].
pub fn schedule6(v6: &Dhcp6Record, now: SystemTime) -> SystemTime {
    let lease = &v6.lease;
    due((lease.t1, lease.t2, lease.expiry), &v6.renewal, now)
}

fn due(
    (t1, t2, expiry): (SystemTime, SystemTime, SystemTime),
    renewal: &Renewal,
    now: SystemTime,
) -> SystemTime {
    // A pending lease (a REQUEST out, no ACK recorded) is discovered again, as an unbound one.
    if renewal.unbound || renewal.pending {
        return renewal.retry_at.unwrap_or(now);
    }
    if now < t1 {
        return t1;
    }
    let timer = if now < t2 { t2 } else { expiry };
    renewal.retry_at.map_or(now, |at| at.min(timer))
}

/// A lease's family: the renewer acts on each on its own schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    /// When `dhcp`'s lease of this family is due at `now`; `None`: it has none.
    fn due(self, dhcp: &DhcpRecord, now: SystemTime) -> Option<SystemTime> {
        match self {
            Self::V4 => Some(schedule(dhcp, now)),
            Self::V6 => dhcp.v6.as_ref().map(|v6| schedule6(v6, now)),
        }
    }

    /// The family's [`Renewal`] on `dhcp`.
    fn renewal(self, dhcp: &mut DhcpRecord) -> Option<&mut Renewal> {
        match self {
            Self::V4 => Some(&mut dhcp.renewal),
            Self::V6 => dhcp.v6.as_mut().map(|v6| &mut v6.renewal),
        }
    }
}

/// What one act did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Renewed {
    /// The server extended the lease of `address` until `expiry`.
    Extended {
        /// The address.
        address: IpAddr,
        /// The new expiry.
        expiry: SystemTime,
    },
    /// The link moved to a new lease (after a NAK, an expiry, or an ACK of another address).
    Moved {
        /// The address given up, if the link still had one.
        from: Option<IpAddr>,
        /// The new address.
        to: IpAddr,
    },
    /// The server refused the lease (a NAK; v6: no address or binding for it): its address
    /// is gone from the link.
    Refused(IpAddr),
    /// The lease ran out unanswered: its address is gone from the link.
    Expired(IpAddr),
}

/// Told what each act did, or why it failed (the front door journals it).
pub type Report = Box<dyn FnMut(&Result<Renewed>)>;

/// Renews the DHCP lease of one container's endpoint on one network (a keeper's [`Duty`]).
pub struct DhcpRenewal<P> {
    stores: P,
    networks: Networks,
    records: Records,
    container_id: ContainerId,
    network: String,
    report: Report,
    /// Failed acts in a row, and no act before when: a failure that could not be written on
    /// the record still backs off.
    failures: u32,
    not_before: Option<SystemTime>,
    /// The container's namespace path names another namespace now: nothing left to keep.
    gone: bool,
}

impl<P> std::fmt::Debug for DhcpRenewal<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DhcpRenewal")
            .field("container_id", &self.container_id)
            .field("network", &self.network)
            .finish_non_exhaustive()
    }
}

impl<P: StorePolicy> DhcpRenewal<P> {
    /// The renewal of `container_id`'s lease on `network`; `report` is told what each act did
    /// or why it failed (the front door journals it).
    pub fn new(
        stores: P,
        networks: Networks,
        records: Records,
        container_id: ContainerId,
        network: String,
        report: Report,
    ) -> Self {
        Self {
            stores,
            networks,
            records,
            container_id,
            network,
            report,
            failures: 0,
            not_before: None,
            gone: false,
        }
    }

    /// The endpoint's DHCP record, if the container's record still has it.
    fn endpoint(&self) -> Result<Option<(crate::Record, usize)>> {
        let Some(record) = self.records.read(&self.container_id)? else {
            return Ok(None);
        };
        let found = record
            .endpoints
            .iter()
            .position(|e| e.network == self.network && e.dhcp.is_some());
        Ok(found.map(|i| (record, i)))
    }

    /// The container's lock and its record, re-read under it, if it still has the endpoint.
    /// No lock is taken (its file made again) for a record that is gone: a detach removed both.
    fn locked(&self) -> Result<Option<(FileLock, crate::Record, usize)>> {
        if self.endpoint()?.is_none() {
            return Ok(None);
        }
        let lock = self.records.lock(&self.container_id)?;
        match self.endpoint()? {
            Some((record, at)) => Ok(Some((lock, record, at))),
            None => {
                if self.records.read(&self.container_id)?.is_none() {
                    lock.remove_file()?;
                }
                Ok(None)
            }
        }
    }

    fn failed(&self, reason: impl Into<String>) -> Error {
        Error::Dhcp(crate::DhcpError::Renewal {
            network: self.network.clone(),
            container: self.container_id.to_string(),
            reason: reason.into(),
        })
    }

    /// One act on `family`'s lease (see the module); `Ok(None)`: nothing was due (another
    /// keeper acted already).
    fn act_once(&mut self, container: &Container, family: Family) -> Result<Option<Renewed>> {
        let Some((_lock, mut record, at)) = self.locked()? else {
            return Ok(None);
        };
        let endpoint = record.endpoints[at].clone();
        let Some(dhcp) = endpoint.dhcp.clone() else {
            return Ok(None);
        };
        let others = self.other_subnets(&record, at);
        let now = SystemTime::now();
        if family.due(&dhcp, now).is_none_or(|due| due > now) {
            return Ok(None);
        }
        let file = container.netns().map_err(|e| self.failed(e.to_string()))?;
        let netns =
            Netns::from_file(file, container.netns_name()).map_err(Error::ContainerNetns)?;
        // A namespace made since at the path it is watched by (with the old one's inode) is not
        // the container's: its lease is never renewed there.
        if let Some(liveness) = record.liveness.as_ref().filter(|l| l.process.is_none())
            && !liveness.is_netns(&netns)?
        {
            self.gone = true;
            return Err(self.failed(format!(
                "{} names another network namespace now",
                container.netns_name()
            )));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| self.failed(format!("no runtime: {e}")))?;
        // An offer noted before its REQUEST: on the record, under this act's lock.
        let (records, mut noted) = (self.records.clone(), record.clone());
        let mut note = |dhcp: &DhcpRecord| {
            noted.endpoints[at].dhcp = Some(dhcp.clone());
            records.write(&noted)
        };
        let (renewed, dhcp) = match family {
            Family::V4 => {
                runtime.block_on(self.exchange(&netns, &endpoint, dhcp, &others, &mut note))?
            }
            Family::V6 => runtime.block_on(self.exchange6(&netns, &endpoint, dhcp, &mut note))?,
        };
        record.endpoints[at].dhcp = Some(dhcp);
        self.records.write(&record)?;
        Ok(Some(renewed))
    }

    /// The container's namespace's handle and `endpoint`'s link in it.
    async fn link(&self, netns: &Netns, endpoint: &RecordedEndpoint) -> Result<(Handle, Link)> {
        let container = Handle::open(netns).map_err(Error::ContainerNetns)?;
        match container.link_by_name(&endpoint.ifname).await {
            Ok(Some(link)) if endpoint.is(&link) => Ok((container, link)),
            Ok(_) => Err(self.failed(format!("link {} is gone", endpoint.ifname))),
            Err(err) => Err(Error::Netlink(err)),
        }
    }

    /// The exchange of one v4 act and what it changes on the link and in the store; the
    /// record's new DHCP part.
    async fn exchange(
        &mut self,
        netns: &Netns,
        endpoint: &RecordedEndpoint,
        mut dhcp: DhcpRecord,
        others: &[IpNetwork],
        note: discover::Note<'_>,
    ) -> Result<(Renewed, DhcpRecord)> {
        let (container, link) = self.link(netns, endpoint).await?;
        let mac = link
            .mac
            .or(dhcp.mac)
            .ok_or_else(|| self.failed("the link has no MAC"))?;
        let client_id = dhcp
            .client_id_bytes()
            .and_then(ClientId::from_bytes)
            .ok_or_else(|| self.failed("the recorded client identifier is not hex"))?;
        let config = Config {
            mac: dhcp.mac.map_or(mac.0, |m| m.0),
            client_id,
            hostname: dhcp.hostname.clone(),
            broadcast: dhcp.broadcast,
            subnet: dhcp.subnet.map(|s| (s.network(), s.prefix())),
            retry_floor: RETRY_FLOOR,
        };
        let on = OnLink {
            name: link.name.clone(),
            index: link.index,
            mac: mac.0,
        };
        let old = dhcp.lease.address;
        if dhcp.renewal.unbound || dhcp.renewal.pending {
            let site = discover::Site {
                netns,
                container: &container,
                link: &link,
                endpoint,
            };
            return self
                .rediscover(&site, dhcp, (config, &on), others, note)
                .await;
        }
        // A lease that ran out has no address to send from: the kernel took it at the end of
        // its lifetime (the client's first tick says Expired, sending nothing).
        let from = (!dhcp.expired(SystemTime::now())).then_some(old);
        let socket = netns
            .open_inside(&format!("a DHCP socket on {}", link.name), || {
                PacketLink::open(&on, from)
            })
            .map_err(Error::Netlink)?;
        let mut client = Client::resume(config, dhcp.lease.clone(), seed());
        let event = oci_macvlan_dhcp::next_event(&mut client, &socket, EXCHANGE)
            .map_err(|err| self.exchange_failed(err))?;
        drop(socket);
        let renewed = match event {
            Event::Extended(lease) | Event::Bound(lease)
                if lease.address == old && lease.prefix == dhcp.lease.prefix =>
            {
                let lifetime = lease.left(SystemTime::now());
                self.extend(&container, &link, (IpAddr::V4(old), lease.prefix), lifetime)
                    .await?;
                // Another router or other routes: the link's follow.
                self.reroute(netns, &container, &link, (&dhcp.lease, &lease), others)
                    .await?;
                let renewed = Renewed::Extended {
                    address: IpAddr::V4(old),
                    expiry: lease.expiry,
                };
                dhcp.lease = lease;
                renewed
            }
            Event::Extended(lease) | Event::Bound(lease) => {
                let (from, to) = (IpAddr::V4(old), IpAddr::V4(lease.address));
                let moved = self
                    .apply(
                        netns,
                        &container,
                        &link,
                        endpoint,
                        Some(from),
                        (&lease, others),
                    )
                    .await;
                if let Err(err) = moved {
                    decline_refused(netns, &on, &mut client, &err);
                    // The server leased another address in the old one's place: the old one is
                    // no longer ours, and the new one was not taken. The link keeps neither.
                    dhcp.renewal = self
                        .drop_withdrawn(&container, &link, endpoint, from, err)
                        .await?;
                    return Ok((Renewed::Refused(from), dhcp));
                }
                dhcp.lease = lease;
                Renewed::Moved {
                    from: Some(from),
                    to,
                }
            }
            Event::Nak(_) | Event::Expired(_) => {
                self.unbind(&container, &link, endpoint, IpAddr::V4(old))
                    .await?;
                dhcp.renewal = Renewal {
                    unbound: true,
                    retry_at: Some(SystemTime::now()),
                    ..Renewal::default()
                };
                let old = IpAddr::V4(old);
                return Ok((
                    if matches!(event, Event::Nak(_)) {
                        Renewed::Refused(old)
                    } else {
                        Renewed::Expired(old)
                    },
                    dhcp,
                ));
            }
        };
        dhcp.renewal = Renewal::default();
        Ok((renewed, dhcp))
    }
}

impl<P: StorePolicy> Duty for DhcpRenewal<P> {
    fn next(&mut self) -> Option<SystemTime> {
        if self.gone {
            return None;
        }
        match self.endpoint() {
            Ok(found) => {
                let (record, at) = found?;
                let dhcp = record.endpoints.get(at)?.dhcp.as_ref()?;
                let now = SystemTime::now();
                let due = [Family::V4, Family::V6]
                    .into_iter()
                    .filter_map(|family| family.due(dhcp, now))
                    .min()?;
                Some(
                    self.not_before
                        .map_or(due, |not_before| due.max(not_before)),
                )
            }
            // A record that cannot be read now is read again later.
            Err(_) => Some(SystemTime::now() + MAX_BACKOFF),
        }
    }

    fn act(&mut self, container: &Container) {
        for family in [Family::V4, Family::V6] {
            self.act_on(container, family);
        }
    }
}

impl<P: StorePolicy> DhcpRenewal<P> {
    /// One act on `family`'s lease if it is due, its outcome reported and a failure recorded.
    fn act_on(&mut self, container: &Container, family: Family) {
        match self.act_once(container, family) {
            Ok(None) => {}
            Ok(Some(renewed)) => {
                (self.failures, self.not_before) = (0, None);
                (self.report)(&Ok(renewed));
            }
            Err(err) => {
                self.failures = self.failures.saturating_add(1);
                // The failure on the record, so that a standby taking over backs off too.
                let reason = crate::one_line(&err);
                let recorded = self.locked().and_then(|locked| {
                    let Some((_lock, mut record, at)) = locked else {
                        return Ok(());
                    };
                    if let Some(renewal) = record.endpoints[at]
                        .dhcp
                        .as_mut()
                        .and_then(|dhcp| family.renewal(dhcp))
                    {
                        renewal.failures = renewal.failures.saturating_add(1);
                        renewal.retry_at = Some(SystemTime::now() + backoff(renewal.failures));
                        renewal.last_error = Some(reason);
                    }
                    self.records.write(&record)
                });
                (self.report)(&Err(err));
                match recorded {
                    Ok(()) => self.not_before = None,
                    Err(err) => {
                        self.not_before = Some(SystemTime::now() + backoff(self.failures));
                        (self.report)(&Err(err));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
