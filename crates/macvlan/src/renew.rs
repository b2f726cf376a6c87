//! A DHCP lease kept alive for as long as its container runs: the duty of a keeper
//! (`oci_macvlan_keeper`), which the hook starts per container and DHCP network after an
//! attach and which ends with the container.
//!
//! Everything lives on the endpoint's record ([`DhcpRecord`]: the lease with its timers, and
//! [`Renewal`]: unbound, failures, when to try again), so a keeper killed loses nothing: its
//! standby reads the same record and acts on the same schedule ([`schedule`]). One act, under
//! the container's lock and inside its namespace (opened for that act only):
//!
//! - bound past T1: the client resumes from the recorded lease and runs one bounded exchange
//!   (REQUEST unicast to the server from the leased address; past T2 broadcast; past expiry
//!   nothing is sent): an ACK of the same address gives new timers; an ACK of another address
//!   moves the link to it (store, address, routes, record);
//! - a NAK, or expiry unanswered: the address leaves the link (and its routes with it: it is
//!   the link's only IPv4 address), the store's lease is released, the record says `unbound`;
//! - unbound: discovery (DORA) on the link, and the new lease is applied as above.
//!
//! A failed act (no answer in time, a store that does not answer) is recorded and tried again
//! at a backoff ([`backoff`]) that never passes the lease's next timer. Nothing a server says
//! can make this panic: its answers go through the client's checks.

mod apply;

use std::{
    net::Ipv4Addr,
    time::{Duration, SystemTime},
};

use oci_macvlan_dhcp::{Client, ClientId, Config, Event, OnLink, PacketLink};
use oci_macvlan_keeper::{Container, Duty};
use oci_macvlan_netlink_core::{Handle, Netns};

use crate::{
    ContainerId, Error, Networks, Records, Result, StorePolicy,
    lock::FileLock,
    record::{DhcpRecord, RecordedEndpoint, Renewal},
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

/// When the renewer acts next on `dhcp`, at `now`: T1 while bound before it; then at once, or
/// when a failed act said to try again, but never past the next timer (T2, expiry).
pub fn schedule(dhcp: &DhcpRecord, now: SystemTime) -> SystemTime {
    let (lease, renewal) = (&dhcp.lease, &dhcp.renewal);
    if renewal.unbound {
        return renewal.retry_at.unwrap_or(now);
    }
    if now < lease.t1 {
        return lease.t1;
    }
    let timer = if now < lease.t2 {
        lease.t2
    } else {
        lease.expiry
    };
    renewal.retry_at.map_or(now, |at| at.min(timer))
}

/// What one act did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Renewed {
    /// The server extended the lease of `address` until `expiry`.
    Extended {
        /// The address.
        address: Ipv4Addr,
        /// The new expiry.
        expiry: SystemTime,
    },
    /// The link moved to a new lease (after a NAK, an expiry, or an ACK of another address).
    Moved {
        /// The address given up, if the link still had one.
        from: Option<Ipv4Addr>,
        /// The new address.
        to: Ipv4Addr,
    },
    /// The server refused the lease (NAK): its address is gone from the link.
    Refused(Ipv4Addr),
    /// The lease ran out unanswered: its address is gone from the link.
    Expired(Ipv4Addr),
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
        Error::DhcpRenewal {
            network: self.network.clone(),
            container: self.container_id.to_string(),
            reason: reason.into(),
        }
    }

    /// One act (see the module); `Ok(None)`: nothing was due (another keeper acted already).
    fn act_once(&mut self, container: &Container) -> Result<Option<Renewed>> {
        let Some((_lock, mut record, at)) = self.locked()? else {
            return Ok(None);
        };
        let endpoint = record.endpoints[at].clone();
        let Some(dhcp) = endpoint.dhcp.clone() else {
            return Ok(None);
        };
        if schedule(&dhcp, SystemTime::now()) > SystemTime::now() {
            return Ok(None);
        }
        let file = container.netns().map_err(|e| self.failed(e.to_string()))?;
        let netns = Netns::from_file(file, format!("/proc/{}/ns/net", container.pid()))
            .map_err(Error::ContainerNetns)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| self.failed(format!("no runtime: {e}")))?;
        let (renewed, dhcp) = runtime.block_on(self.exchange(&netns, &endpoint, dhcp))?;
        record.endpoints[at].dhcp = Some(dhcp);
        self.records.write(&record)?;
        Ok(Some(renewed))
    }

    /// The exchange of one act and what it changes on the link and in the store; the record's
    /// new DHCP part.
    async fn exchange(
        &mut self,
        netns: &Netns,
        endpoint: &RecordedEndpoint,
        mut dhcp: DhcpRecord,
    ) -> Result<(Renewed, DhcpRecord)> {
        let container = Handle::open(netns).map_err(Error::ContainerNetns)?;
        let link = match container.link_by_name(&endpoint.ifname).await {
            Ok(Some(link)) if endpoint.is(&link) => link,
            Ok(_) => return Err(self.failed(format!("link {} is gone", endpoint.ifname))),
            Err(err) => return Err(Error::Netlink(err)),
        };
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
        let exchange_failed = |source: oci_macvlan_dhcp::Error| Error::Dhcp {
            network: self.network.clone(),
            source: Box::new(source),
        };
        let old = dhcp.lease.address;
        if dhcp.renewal.unbound {
            let socket = netns
                .open_inside(&format!("a DHCP socket on {}", link.name), || {
                    PacketLink::open(&on, None)
                })
                .map_err(Error::Netlink)?;
            let mut client = Client::new(config, seed());
            let lease = oci_macvlan_dhcp::acquire(&mut client, &socket, EXCHANGE)
                .map_err(exchange_failed)?;
            let to = lease.address;
            self.apply(netns, &container, &link, endpoint, None, &lease)
                .await
                .inspect_err(|err| decline_refused(netns, &on, &mut client, err))?;
            dhcp.lease = lease;
            dhcp.renewal = Renewal::default();
            return Ok((Renewed::Moved { from: None, to }, dhcp));
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
            .map_err(exchange_failed)?;
        drop(socket);
        let renewed = match event {
            Event::Extended(lease) | Event::Bound(lease)
                if lease.address == old && lease.prefix == dhcp.lease.prefix =>
            {
                self.extend(&container, &link, &lease).await?;
                let renewed = Renewed::Extended {
                    address: old,
                    expiry: lease.expiry,
                };
                dhcp.lease = lease;
                renewed
            }
            Event::Extended(lease) | Event::Bound(lease) => {
                let to = lease.address;
                self.apply(netns, &container, &link, endpoint, Some(old), &lease)
                    .await
                    .inspect_err(|err| decline_refused(netns, &on, &mut client, err))?;
                dhcp.lease = lease;
                Renewed::Moved {
                    from: Some(old),
                    to,
                }
            }
            Event::Nak(_) | Event::Expired(_) => {
                self.unbind(&container, endpoint, old).await?;
                dhcp.renewal = Renewal {
                    unbound: true,
                    retry_at: Some(SystemTime::now()),
                    ..Renewal::default()
                };
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
        match self.endpoint() {
            Ok(found) => {
                let (record, at) = found?;
                let dhcp = record.endpoints.get(at)?.dhcp.as_ref()?;
                let due = schedule(dhcp, SystemTime::now());
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
        match self.act_once(container) {
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
                    if let Some(dhcp) = record.endpoints[at].dhcp.as_mut() {
                        let renewal = &mut dhcp.renewal;
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
mod tests {
    use oci_macvlan_dhcp::Lease as DhcpLease;

    use super::*;

    fn record(t0: SystemTime) -> DhcpRecord {
        DhcpRecord {
            client_id: "ff".into(),
            mac: None,
            hostname: None,
            broadcast: false,
            ipvlan_flag: None,
            subnet: None,
            v6: None,
            lease: DhcpLease {
                address: Ipv4Addr::new(192, 168, 1, 50),
                prefix: 24,
                router: None,
                routes: Vec::new(),
                dns: Vec::new(),
                domain: None,
                server: Ipv4Addr::new(192, 168, 1, 1),
                obtained: t0,
                t1: t0 + Duration::from_secs(50),
                t2: t0 + Duration::from_secs(85),
                expiry: t0 + Duration::from_secs(100),
            },
            renewal: Renewal::default(),
        }
    }

    #[test]
    fn acts_come_at_t1_then_at_once_or_at_the_retry_never_past_the_next_timer() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let s = Duration::from_secs;
        let mut dhcp = record(t0);
        assert_eq!(schedule(&dhcp, t0), t0 + s(50));
        assert_eq!(schedule(&dhcp, t0 + s(60)), t0 + s(60));
        dhcp.renewal.retry_at = Some(t0 + s(70));
        assert_eq!(schedule(&dhcp, t0 + s(60)), t0 + s(70));
        // A retry past T2 comes at T2 (rebinding), past expiry at expiry.
        dhcp.renewal.retry_at = Some(t0 + s(200));
        assert_eq!(schedule(&dhcp, t0 + s(60)), t0 + s(85));
        assert_eq!(schedule(&dhcp, t0 + s(90)), t0 + s(100));
        assert_eq!(schedule(&dhcp, t0 + s(120)), t0 + s(100));
        // Before T1 a stale retry does not count.
        assert_eq!(schedule(&dhcp, t0), t0 + s(50));
        dhcp.renewal.unbound = true;
        assert_eq!(schedule(&dhcp, t0), t0 + s(200));
        dhcp.renewal.retry_at = None;
        assert_eq!(schedule(&dhcp, t0 + s(7)), t0 + s(7));
    }

    #[test]
    fn the_backoff_grows_and_is_bounded() {
        assert_eq!(backoff(0), Duration::from_secs(2));
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(2), Duration::from_secs(4));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }
}
