//! A DHCP lease given back: a RELEASE that real servers accept (dnsmasq ignores one from
//! 0.0.0.0, CNI's scar), sent from the leased address with the container's MAC, unicast to the
//! server that gave the lease. By the time a lease is released (poststop, `network
//! disconnect`, `gc`) the container's link is gone (its namespace died, or detach deleted the
//! link first), so the RELEASE goes from a scratch namespace: a temporary link on the parent
//! with the container's MAC and leased address, deleted before the namespace goes. Every
//! wait is bounded; a release that cannot be sent is given up (the server's lease runs out on
//! its own), never a reason to keep a dead container's record.
//!
//! A DHCPv6 lease beside it (`--ipv6`) is released from the same scratch link: RELEASE from
//! its link-local address (made usable at once: no DAD, set before the link is up), to the
//! server (or all servers), under the DUID and IAID the lease was taken with.

use std::{
    net::{IpAddr, Ipv4Addr},
    time::{Duration, Instant, SystemTime},
};

use ipnetwork::Ipv4Network;
use oci_macvlan_dhcp::{Client, ClientId, Config, OnLink, PacketLink, v6};
use oci_macvlan_netlink_core::{
    ChildKind, Errno, Handle, IpvlanFlag, IpvlanMode, Link, MacvlanMode, Netns, NewChild,
};

use super::dhcp::{Dhcp6Record, DhcpRecord};
use crate::{RecordedEndpoint, sysctl::conf};

/// The temporary link's name in the scratch namespace.
const LINK: &str = "dhcp-release";
/// How long the link may take to come up while the container's own (same MAC) is going.
const UP_WITHIN: Duration = Duration::from_millis(1500);
/// How long the server's (or router's) MAC may take to resolve: the RELEASE waits for it.
const RESOLVED_WITHIN: Duration = Duration::from_millis(1500);
/// The longest pause between two looks at the link's MAC or the neighbour's (the first is 1 ms).
const MAX_PAUSE: Duration = Duration::from_millis(8);

/// How long one take-back's RELEASEs may take, all of its endpoints together (what one
/// endpoint's waits add up to: its link up, the server's ARP, the v6 link-local, the v6 REPLY).
pub(crate) const TAKE_BACK_WITHIN: Duration = Duration::from_secs(8);

/// Sends the RELEASE of `endpoint`'s DHCP lease, if it has one (see the module), within
/// [`TAKE_BACK_WITHIN`]. `Err` says why it could not be sent; the caller goes on either way.
pub(crate) async fn release(endpoint: &RecordedEndpoint) -> Result<(), String> {
    release_until(endpoint, Instant::now() + TAKE_BACK_WITHIN).await
}

/// The RELEASEs of `endpoints`, one container's take-back (poststop, `gc`, a failed attach's
/// undo): all at once, each from its own thread (a v6 RELEASE's wait blocks), all under one
/// deadline; one endpoint's on this thread. Each one's outcome, in order.
pub(crate) async fn release_all(endpoints: &[&RecordedEndpoint]) -> Vec<Result<(), String>> {
    let until = Instant::now() + TAKE_BACK_WITHIN;
    match endpoints {
        [] => Vec::new(),
        [one] => vec![release_until(one, until).await],
        many => std::thread::scope(|scope| {
            let threads: Vec<_> = many
                .iter()
                .map(|endpoint| {
                    scope.spawn(move || {
                        tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .map_err(|e| e.to_string())?
                            .block_on(release_until(endpoint, until))
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|thread| {
                    thread
                        .join()
                        .unwrap_or_else(|_| Err("the release panicked".into()))
                })
                .collect()
        }),
    }
}

/// [`release`] by `until`: what is still waited for then is given up.
async fn release_until(endpoint: &RecordedEndpoint, until: Instant) -> Result<(), String> {
    let (Some(record), Some(lower)) = (&endpoint.dhcp, endpoint.lower) else {
        return Ok(());
    };
    // A lease that ran out or was refused is the server's again already: the server may have
    // given its address to someone else, whose neighbours a RELEASE from it would mislead.
    let (v4, v6) = live(record, SystemTime::now());
    if !v4 && v6.is_none() {
        return Ok(());
    }
    let host = Handle::current().map_err(|e| e.to_string())?;
    let Some(parent) = host.link_by_index(lower).await.map_err(|e| e.to_string())? else {
        return Err(format!("parent link {lower} is gone"));
    };
    let scratch = Netns::new_scratch().map_err(|e| e.to_string())?;
    let inside = Handle::open(&scratch).map_err(|e| e.to_string())?;
    let flag = match record.ipvlan_flag.as_deref() {
        Some("private") => IpvlanFlag::Private,
        Some("vepa") => IpvlanFlag::Vepa,
        _ => IpvlanFlag::Bridge,
    };
    let ipvlan = endpoint.kind.as_deref() == Some("ipvlan");
    let kind = if ipvlan {
        // A DHCP network's ipvlan is in L2 (network create refuses the others).
        ChildKind::Ipvlan {
            mode: IpvlanMode::L2,
            flag,
        }
    } else {
        ChildKind::Macvlan {
            mode: MacvlanMode::Private,
            source_macs: &[],
        }
    };
    host.create_child(&NewChild {
        parent: &parent,
        name: LINK,
        mac: if ipvlan { None } else { record.mac },
        mtu: None,
        target: &scratch,
        kind,
    })
    .await
    .map_err(|e| e.to_string())?;
    let link = inside
        .existing_link(LINK)
        .await
        .map_err(|e| e.to_string())?;
    let sent = tokio::time::timeout_at(
        until.into(),
        sends(&inside, &scratch, &link, record, ipvlan, (v4, v6), until),
    )
    .await
    .unwrap_or_else(|_| Err("given up at the take-back's deadline".into()));
    // Deleted before the namespace goes, whatever happened above: its MAC (and an ipvlan's
    // address, held in its parent's port) is free again at once. Left to the scratch
    // namespace's end, it stayed busy for as long as the kernel's namespace cleanup took (tens
    // of milliseconds idle, over the second a restarted container waits for its MAC when the
    // machine is busy: seen in `dhcp_checks`), which is worth the 20-30 ms the deletion costs.
    let _ = inside.delete_link(&link).await;
    sent
}

/// What [`release_until`] sends from the scratch `link`: the live leases' RELEASEs.
async fn sends(
    inside: &Handle,
    scratch: &Netns,
    link: &Link,
    record: &DhcpRecord,
    ipvlan: bool,
    (v4, v6): (bool, Option<&Dhcp6Record>),
    until: Instant,
) -> Result<(), String> {
    if v6.is_some() {
        // Before the link is up: its link-local address is usable at once.
        scratch
            .write_sysctls(&[
                conf(LINK, "ipv6", "disable_ipv6", "0", false),
                conf(LINK, "ipv6", "accept_dad", "0", false),
                conf(LINK, "ipv6", "accept_ra", "0", false),
                // An ipvlan shares its MAC with its siblings: a link-local address of its own.
                conf(
                    LINK,
                    "ipv6",
                    "addr_gen_mode",
                    if ipvlan { "3" } else { "0" },
                    true,
                ),
            ])
            .map_err(|e| e.to_string())?;
    }
    let sent = match v4 {
        true => send(inside, scratch, link, record).await,
        false => Ok(()),
    };
    let sent6 = match v6 {
        Some(v6) => send6(inside, scratch, link, record, v6, until).await,
        None => Ok(()),
    };
    match (sent, sent6) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(v4), Ok(())) => Err(v4),
        (Ok(()), Err(v6)) => Err(v6),
        (Err(v4), Err(v6)) => Err(format!("{v4}; {v6}")),
    }
}

/// Which of `record`'s leases are still the container's at `now` (v4, v6): neither a lease
/// that ran out nor one the renewer found refused is released.
fn live(record: &DhcpRecord, now: SystemTime) -> (bool, Option<&Dhcp6Record>) {
    let v4 = !record.renewal.unbound && !record.expired(now);
    let v6 = record
        .v6
        .as_ref()
        .filter(|v6| !v6.renewal.unbound && !v6.expired(now));
    (v4, v6)
}

/// The link up, while the container's own (the same MAC on the same parent) may still be
/// going with its namespace: the kernel refuses a second one up until then (its cleanup work,
/// tens of milliseconds after the namespace died). Asked again soon, then less often: each
/// pause is paid in full by a detach.
async fn up(inside: &Handle, link: &Link) -> Result<(), String> {
    let until = Instant::now() + UP_WITHIN;
    let mut pause = Duration::from_millis(1);
    loop {
        match inside.set_link_up(link).await {
            Ok(()) => return Ok(()),
            Err(err) if err.errno() == Some(Errno::EADDRINUSE) && Instant::now() < until => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
            }
            Err(err) => return Err(err.to_string()),
        }
    }
}

/// The leased address on the link, while the container's own ipvlan (a sibling on the same
/// parent) may still hold it, going with its namespace: the kernel refuses the address to a
/// second ipvlan until then, as it refuses the link up for the MAC (the same bound).
async fn add_leased(
    inside: &Handle,
    link: &Link,
    address: Ipv4Addr,
    prefix: u8,
) -> Result<(), String> {
    let until = Instant::now() + UP_WITHIN;
    loop {
        match inside.add_address(link, IpAddr::V4(address), prefix).await {
            Ok(()) => return Ok(()),
            Err(err) if err.errno() == Some(Errno::EADDRINUSE) && Instant::now() < until => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => return Err(err.to_string()),
        }
    }
}

/// The RELEASE of the DHCPv6 lease `v6`, from the scratch link's link-local address.
async fn send6(
    inside: &Handle,
    scratch: &Netns,
    link: &Link,
    record: &DhcpRecord,
    v6: &Dhcp6Record,
    until: Instant,
) -> Result<(), String> {
    up(inside, link).await?;
    let client_id = record
        .client_id_bytes()
        .and_then(ClientId::from_bytes)
        .ok_or("the recorded client identifier is not hex")?;
    let socket = super::dhcp6::open(scratch, LINK, link.index)
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let config = v6::Config {
        client_id,
        hostname: None,
        subnet: None,
    };
    let mut client = v6::Client::resume(config, v6.lease.clone(), 0);
    let within = super::dhcp6::RELEASE_WITHIN.min(until.saturating_duration_since(Instant::now()));
    match v6::release(&mut client, &socket, within) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!(
            "no DHCPv6 server answered the RELEASE of {}",
            v6.lease.address
        )),
        Err(err) => Err(err.to_string()),
    }
}

async fn send(
    inside: &Handle,
    scratch: &Netns,
    link: &Link,
    record: &DhcpRecord,
) -> Result<(), String> {
    let lease = &record.lease;
    add_leased(inside, link, lease.address, lease.prefix).await?;
    up(inside, link).await?;
    let on_link = Ipv4Network::new(lease.address, lease.prefix)
        .map(|net| net.contains(lease.server))
        .unwrap_or(false);
    let next_hop = match (on_link, lease.router) {
        (true, _) => lease.server,
        (false, Some(router)) => {
            inside
                .add_default_route(link, IpAddr::V4(router))
                .await
                .map_err(|e| e.to_string())?;
            router
        }
        (false, None) => return Err(format!("no route to server {}", lease.server)),
    };
    let mac = link.mac.map(|m| m.0).or(record.mac.map(|m| m.0));
    let mac = mac.ok_or("the temporary link has no MAC")?;
    let client_id = record
        .client_id_bytes()
        .and_then(ClientId::from_bytes)
        .ok_or("the recorded client identifier is not hex")?;
    let config = Config {
        mac: record.mac.map_or(mac, |m| m.0),
        client_id,
        hostname: None,
        broadcast: record.broadcast,
        subnet: None,
        retry_floor: Duration::from_secs(60),
    };
    let on = OnLink {
        name: LINK.to_owned(),
        index: link.index,
        mac,
    };
    let socket = scratch
        .open_inside("the DHCP release's sockets", || {
            PacketLink::open(&on, Some(lease.address))
        })
        .map_err(|e| e.to_string())?;
    let mut client = Client::resume(config, lease.clone(), 0);
    let sent = oci_macvlan_dhcp::release(&mut client, &socket).map_err(|e| e.to_string());
    // A RELEASE queued for the next hop's MAC stays queued with its socket closed; the packet
    // socket's release waits for a grace period of the kernel: not this run's to wait for.
    socket.close_later();
    sent?;
    resolved(inside, link, next_hop).await
}

/// Waits until the kernel knows `next_hop`'s MAC on `link`: the RELEASE it queued has left then.
/// An answer on the LAN takes well under a millisecond: looked for soon, then less often.
async fn resolved(inside: &Handle, link: &Link, next_hop: Ipv4Addr) -> Result<(), String> {
    let until = Instant::now() + RESOLVED_WITHIN;
    let mut pause = Duration::from_millis(1);
    loop {
        let known = inside
            .neighbours_holding(link.index, &[IpAddr::V4(next_hop)])
            .await
            .map_err(|e| e.to_string())?;
        if !known.is_empty() {
            return Ok(());
        }
        if Instant::now() >= until {
            return Err(format!("{next_hop} did not answer ARP"));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::net::Ipv6Addr;

    use oci_macvlan_dhcp::Lease as DhcpLease;

    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    /// A record with a v4 lease until `v4_until` and a v6 one until `v6_until`.
    pub(in crate::source) fn record(v4_until: SystemTime, v6_until: SystemTime) -> DhcpRecord {
        let obtained = SystemTime::UNIX_EPOCH;
        DhcpRecord {
            client_id: "01:02".into(),
            mac: None,
            hostname: None,
            broadcast: false,
            ipvlan_flag: None,
            subnet: None,
            lease: DhcpLease {
                address: Ipv4Addr::new(192, 168, 1, 50),
                prefix: 24,
                router: None,
                routes: Vec::new(),
                dns: Vec::new(),
                domain: None,
                server: Ipv4Addr::new(192, 168, 1, 1),
                obtained,
                t1: obtained,
                t2: obtained,
                expiry: v4_until,
            },
            v6: Some(Dhcp6Record {
                duid: "00:04:01".into(),
                iaid: 1,
                prefix: 128,
                subnet: None,
                slaac: false,
                lease: v6::Lease {
                    address: Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x50),
                    server_id: vec![0, 1],
                    unicast: None,
                    dns: Vec::new(),
                    obtained,
                    t1: obtained,
                    t2: obtained,
                    preferred_until: v6_until,
                    expiry: v6_until,
                },
                renewal: Default::default(),
            }),
            renewal: Default::default(),
        }
    }

    #[test]
    fn an_expired_lease_is_not_released() {
        let now = SystemTime::now();
        let (past, future) = (now - HOUR, now + HOUR);
        let both = record(future, future);
        assert_eq!(live(&both, now), (true, both.v6.as_ref()));
        assert!(!live(&record(past, future), now).0);
        assert!(live(&record(past, future), now).1.is_some());
        assert_eq!(live(&record(future, past), now), (true, None));
        assert_eq!(live(&record(past, past), now), (false, None));
        let mut unbound = both.clone();
        unbound.renewal.unbound = true;
        assert!(!live(&unbound, now).0);
        // A v6 lease the server said it holds nothing for, whatever its recorded expiry.
        let mut unbound6 = both.clone();
        unbound6.v6.as_mut().unwrap().renewal.unbound = true;
        assert_eq!(live(&unbound6, now), (true, None));
    }

    #[test]
    fn a_release_of_expired_leases_sends_nothing() {
        // A parent that cannot exist: any attempt to send would fail on it.
        let past = SystemTime::now() - HOUR;
        let endpoint: RecordedEndpoint = serde_json::from_value(serde_json::json!({
            "network": "lan",
            "ifname": "eth1",
            "lower": 0x7fff_fff0u32,
        }))
        .expect("an endpoint");
        let endpoint = RecordedEndpoint {
            dhcp: Some(record(past, past)),
            ..endpoint
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        assert_eq!(runtime.block_on(release(&endpoint)), Ok(()));
    }
}
