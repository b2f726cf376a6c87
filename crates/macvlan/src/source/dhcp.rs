//! The LAN's own DHCP server as an address source (`--ipam-driver dhcp`, issue 27). It runs once
//! the link is made ([`super::Runs::AfterLink`]): the exchange (`oci_macvlan_dhcp`) runs on the
//! container's link, its sockets opened inside the container's namespace, so its frames carry
//! the link's own MAC and no promiscuous parent is needed. The client identifier and the link's
//! default MAC derive from this host's key, the network and the container
//! (`oci_macvlan_dhcp::ClientId`), so a re-created container asks for, and gets, its old lease,
//! and two hosts cloned from one image never collide.
//!
//! What the server leased is kept twice: as a lease of the network in the lease store (so that
//! `inspect`, `verify`, `gc` and the one address space per store see it as any other), and on
//! the endpoint's record as a [`DhcpRecord`], with everything a renewer needs (the server, the
//! client identifier, the timers, the router, the routes). Its RELEASE is in
//! `super::dhcp_release`.
//!
//! DHCPv6 (`--ipv6`, `super::dhcp6`) runs beside it: its exchange on the same link at the same
//! time (one deadline for both), under the DUID and IAID of the same [`ClientId`]; its lease
//! on the record beside `lease` ([`Dhcp6Record`]), in the store beside the v4 one, and one more
//! [`Acquired`] for the link. Release and `verify` take each lease the record has.

use std::{
    hash::{BuildHasher, Hasher},
    net::IpAddr,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, SystemTime},
};

use ipnetwork::{IpNetwork, Ipv4Network};
use oci_macvlan_dhcp::{Client, ClientId, Config, Lease as DhcpLease, OnLink, PacketLink};
use oci_macvlan_ipam::{Lease, LeaseStore, LeaseStoreExt};
use oci_macvlan_netlink_core::{ChildKind, IpvlanFlag, Netns};

pub use crate::record::{Dhcp6Record, DhcpRecord, Renewal};

use super::{Acquired, Ask, Refused, SourceRoute, Taken};
use crate::{Error, Network, Records};

/// The shortest wait between a renewer's retransmissions (RFC 2131: 60 s).
pub(crate) const RETRY_FLOOR: Duration = Duration::from_secs(60);

/// What [`server_wait`] says, in nanoseconds.
static SERVER_WAIT: AtomicU64 = AtomicU64::new(0);

fn add_server_wait(waited: Duration) {
    let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
    SERVER_WAIT.fetch_add(nanos, Ordering::Relaxed);
}

/// How long this process's attaches have waited for their DHCP servers' answers, all
/// exchanges together (a `--ipv6` network's two, which run at once, count as the longer of
/// the two): the hook's journal gives it, so that an attach's own time can be told from its
/// server's (dnsmasq, for one, waits seconds before it offers an address it has not leased).
pub fn server_wait() -> Duration {
    Duration::from_nanos(SERVER_WAIT.load(Ordering::Relaxed))
}

/// A transaction seed no other run shares (std's per-process random hasher keys).
pub(crate) fn seed() -> u32 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    // Truncated on purpose: a transaction id is 32 bits.
    hasher.finish() as u32
}

fn ipvlan_flag(kind: ChildKind<'_>) -> Option<String> {
    match kind {
        ChildKind::Ipvlan { flag, .. } => Some(
            match flag {
                IpvlanFlag::Bridge => "bridge",
                IpvlanFlag::Private => "private",
                IpvlanFlag::Vepa => "vepa",
            }
            .to_owned(),
        ),
        ChildKind::Macvlan { .. } => None,
    }
}

fn failed6(network: &str, source: oci_macvlan_dhcp::v6::Error) -> Refused {
    refused(Error::Dhcp(crate::DhcpError::Exchange6 {
        network: network.to_owned(),
        source: Box::new(source),
    }))
}

/// A noted offer's renewal: pending (see [`Renewal::pending`]).
fn pending() -> Renewal {
    Renewal {
        pending: true,
        ..Renewal::default()
    }
}

fn refused(error: Error) -> Refused {
    Refused {
        error: Box::new(error),
        maybe_taken: false,
        server_lease: None,
    }
}

/// Leases an address for `ask`'s link from the LAN's server (see [`super::Source::acquire`]).
/// A re-run of this container's own attach keeps the lease its record holds while it lasts:
/// no exchange, no release.
pub(super) fn acquire(store: &mut dyn LeaseStore, ask: &Ask<'_>) -> Result<Taken, Refused> {
    let net = ask.network;
    let failed = |source: oci_macvlan_dhcp::Error| {
        refused(Error::Dhcp(crate::DhcpError::Exchange {
            network: net.name.clone(),
            source: Box::new(source),
        }))
    };
    let (Some(dhcp), Some(link)) = (net.dhcp, ask.link) else {
        return Err(failed(oci_macvlan_dhcp::Error::Build(
            "the DHCP source runs on a made link of a DHCP network".into(),
        )));
    };
    let now = SystemTime::now();
    let kept = ask
        .previous
        .filter(|_| ask.held_before)
        .and_then(|e| e.dhcp.as_ref())
        .filter(|r| {
            !r.expired(now) && !r.renewal.unbound && !r.renewal.pending && r.mac == link.mac
        })
        .filter(|r| {
            // A v6 lease being discovered again (a renewer's pending one, or one a REPLY
            // refused) is no lease to keep: the attach asks again.
            !dhcp.ipv6
                || r.v6.as_ref().is_some_and(|v6| {
                    !v6.expired(now) && !v6.renewal.unbound && !v6.renewal.pending
                })
        });
    // The offer's address as checked while the server answered (see `super::dhcp_early`).
    let mut checked = None;
    let record = match kept {
        Some(kept) => kept.clone(),
        None => {
            let secret = ask.secret.ok_or_else(|| {
                failed(oci_macvlan_dhcp::Error::Build(
                    "this host's key is unknown".into(),
                ))
            })?;
            let mac = link.mac.ok_or_else(|| {
                failed(oci_macvlan_dhcp::Error::Build(format!(
                    "link {} has no MAC",
                    link.ifname
                )))
            })?;
            let client_id = ClientId::derive(secret, &net.name, &ask.owner.container_id);
            // Sent only if option 12 can carry it; another is left out, not an error.
            let hostname = ask
                .hostname
                .filter(|h| oci_macvlan_dhcp::message::hostname_problem(h).is_none())
                .map(str::to_owned);
            let broadcast = matches!(ask.kind, ChildKind::Ipvlan { .. });
            let config = Config {
                mac: mac.0,
                client_id: client_id.clone(),
                hostname: hostname.clone(),
                broadcast,
                subnet: dhcp.subnet.map(|s| (s.network(), s.prefix())),
                retry_floor: RETRY_FLOOR,
            };
            let on = OnLink {
                name: link.ifname.to_owned(),
                index: link.index,
                mac: mac.0,
            };
            let reopened;
            let netns = match link.opened {
                Some(netns) => netns,
                None => {
                    reopened = Netns::open(link.netns)
                        .map_err(|err| refused(Error::ContainerNetns(err)))?;
                    &reopened
                }
            };
            let socket = netns
                .open_inside(&format!("a DHCP socket on {}", link.ifname), || {
                    PacketLink::open(&on, None)
                })
                .map_err(|err| refused(Error::Netlink(err)))?;
            let socket6 = if dhcp.ipv6 {
                let opened = super::dhcp6::open(netns, link.ifname, link.index)
                    .map_err(|err| refused(Error::Netlink(err)))?;
                Some(opened.map_err(|err| failed6(&net.name, err))?)
            } else {
                None
            };
            let config6 = super::dhcp6::config(&client_id, hostname.as_deref(), &dhcp);
            // The address this identity was last given, asked for again.
            let hint = ask
                .hints
                .filter(|_| dhcp.ipv6)
                .and_then(|dir| super::dhcp6_hint::read(dir, &client_id));
            let mut client6 = oci_macvlan_dhcp::v6::Client::new(config6, seed()).with_hint(hint);
            let mut client = Client::new(config, seed());
            let record_of = |lease: &DhcpLease, v6, renewal| DhcpRecord {
                client_id: client_id.to_hex(),
                mac: Some(mac),
                hostname: hostname.clone(),
                broadcast,
                ipvlan_flag: ipvlan_flag(ask.kind),
                subnet: dhcp.subnet,
                lease: lease.clone(),
                v6,
                renewal,
            };
            // The offers taken (v4, and v6 on a `--ipv6` network), on the endpoint's record
            // before their REQUESTs go out (see `super::dhcp_notes`).
            let notes = super::dhcp_notes::Notes::new(ask.note, dhcp.timeout());
            let mut note = |offered: Option<&DhcpLease>| {
                notes.v4(offered.map(|offered| record_of(offered, None, pending())))
            };
            // Both exchanges at once, each under the network's deadline; while the server
            // answers the REQUEST, the socket's closer and the offer's check are made beside.
            let ((lease, v6), early) = super::dhcp_early::while_answered(&socket, ask, |waiting| {
                super::dhcp6::beside(socket6.as_ref(), &mut client6, &dhcp, &notes, || {
                    let got = oci_macvlan_dhcp::acquire_noting(
                        &mut client,
                        &socket,
                        dhcp.timeout(),
                        &mut note,
                        waiting,
                    );
                    notes.v4_over(got.is_ok());
                    got
                })
            });
            checked = early.checked;
            // The two exchanges ran at once: the server's share is the longer wait.
            add_server_wait(
                socket
                    .waited()
                    .max(socket6.as_ref().map_or(Duration::ZERO, |s| s.waited())),
            );
            // Its release waits for a grace period of the kernel: not this run's to wait for.
            socket.close_with(early.closer);
            // A REQUEST went out unanswered (or the ACK was refused): the server may hold
            // the offer's lease all the same, and gets it back with the rest (the v6 one too,
            // unless it went back at once).
            let unanswered = |err, with_v6| {
                let mut refusal = failed(err);
                refusal.server_lease = notes.given_back(with_v6).map(Box::new);
                refusal
            };
            let lease = match (lease, socket6.as_ref(), &v6) {
                (Ok(lease), ..) => lease,
                (Err(err), Some(socket6), Some(Ok(_))) => {
                    // The v6 lease goes back at once: no attach keeps it.
                    super::dhcp6::release_now(&mut client6, socket6);
                    return Err(unanswered(err, false));
                }
                (Err(err), ..) => return Err(unanswered(err, true)),
            };
            let given = |v6| record_of(&lease, v6, Renewal::default());
            match v6.transpose() {
                Ok(v6) => {
                    if let (Some(dir), Some(v6)) = (ask.hints, &v6) {
                        super::dhcp6_hint::write(dir, &client_id, v6.lease.address);
                    }
                    given(v6)
                }
                Err(err) => {
                    // The v4 lease is given back once the link is gone (its RELEASE goes from
                    // a link with the container's MAC), and a v6 one whose REQUEST went out
                    // unanswered with it.
                    let mut refusal = failed6(&net.name, err);
                    refusal.server_lease = Some(Box::new(given(notes.v6_noted())));
                    return Err(refusal);
                }
            }
        }
    };
    // Refused from here on, a lease this run took goes back to the server (once the link,
    // with its MAC, is gone): nothing else would name it.
    let give_back = |mut refusal: Refused| {
        if kept.is_none() {
            refusal.server_lease = Some(Box::new(record.clone()));
        }
        refusal
    };
    if kept.is_none() {
        // Between the server's ACK and the full record: the noted offer names its lease.
        crate::failpoint::hit("attach:net:dhcp-acked").map_err(|err| give_back(refused(err)))?;
    }
    let lease = &record.lease;
    let ip = IpAddr::V4(lease.address);
    let address = IpNetwork::new(ip, lease.prefix).map_err(|_| {
        give_back(failed(oci_macvlan_dhcp::Error::Build(format!(
            "prefix {} of {ip}",
            lease.prefix
        ))))
    })?;
    let mut stored = vec![Lease {
        ip,
        subnet: IpNetwork::new(address.network(), lease.prefix).unwrap_or(address),
        network: net.name.clone(),
        owner: ask.owner.clone(),
        host: None,
    }];
    // What is left of the lease (all of a new one; a kept one's rest) is the kernel's lifetime.
    let now = SystemTime::now();
    let mut acquired_all = vec![acquired_at(lease, address, now)];
    if let Some(v6) = &record.v6 {
        let got = super::dhcp6::acquired(v6, now);
        stored.push(Lease {
            ip: got.address.ip(),
            subnet: IpNetwork::new(got.address.network(), got.address.prefix())
                .unwrap_or(got.address),
            network: net.name.clone(),
            owner: ask.owner.clone(),
            host: None,
        });
        acquired_all.push(got);
    }
    // The store's copy: refused when another owner holds an address here (a container of
    // another network on the same LAN).
    let held = store.transaction(|txn| {
        for stored in &stored {
            match txn.lease_of(stored.ip)? {
                Some(other) if other.network != stored.network || other.owner != stored.owner => {
                    return Ok(Some((stored.ip, other)));
                }
                Some(_) => {}
                None => txn.insert(stored)?,
            }
        }
        Ok(None)
    });
    match held {
        Ok(None) => {}
        Ok(Some((ip, other))) => {
            return Err(give_back(refused(Error::Dhcp(
                crate::DhcpError::AddressHeld {
                    network: net.name.clone(),
                    ip,
                    holder: format!("{} ({})", other.owner.container_id, other.network),
                },
            ))));
        }
        Err(source) => {
            return Err(give_back(Refused {
                maybe_taken: source.maybe_written(),
                error: Box::new(Error::Lease {
                    network: net.name.clone(),
                    source: Box::new(source),
                }),
                server_lease: None,
            }));
        }
    }
    // A new exchange on a link an earlier run made: its old lease's addresses go.
    let stale = match (kept, ask.previous.and_then(|e| e.dhcp.as_ref())) {
        (None, Some(old)) => std::iter::once(IpAddr::V4(old.lease.address))
            .chain(old.v6.iter().map(|v6| IpAddr::V6(v6.lease.address)))
            .filter(|ip| !acquired_all.iter().any(|a| a.address.ip() == *ip))
            .collect(),
        _ => Vec::new(),
    };
    // What the container's earlier run holds, bound, is its own still: a new exchange that
    // gets it again does not give it back if the attach then fails.
    let held: Vec<IpAddr> = match ask.previous.and_then(|e| e.dhcp.as_ref()) {
        Some(old) if ask.held_before => {
            let v4 = !old.renewal.unbound && !old.renewal.pending && !old.expired(now);
            let v6 = old
                .v6
                .as_ref()
                .filter(|v6| !v6.renewal.unbound && !v6.renewal.pending && !v6.expired(now));
            (v4.then_some(IpAddr::V4(old.lease.address)).into_iter())
                .chain(v6.map(|v6| IpAddr::V6(v6.lease.address)))
                .collect()
        }
        _ => Vec::new(),
    };
    Ok(Taken {
        new: if kept.is_some() {
            Vec::new()
        } else {
            (acquired_all.iter().map(|a| a.address.ip()))
                .filter(|ip| !held.contains(ip))
                .collect()
        },
        acquired: acquired_all,
        dhcp: Some(record),
        stale,
        checked,
    })
}

/// What the lease gives the link (see [`acquired_at`]), now.
pub(crate) fn acquired(lease: &DhcpLease, address: IpNetwork) -> Acquired {
    acquired_at(lease, address, SystemTime::now())
}

/// What the lease gives the link at `now`: its router is the default gateway, unless classless
/// static routes came (RFC 3442: then the router option is ignored, and a default route among
/// them is the gateway); the address's lifetime is what is left of the lease (a kept lease's
/// rest, not its whole length).
pub(crate) fn acquired_at(lease: &DhcpLease, address: IpNetwork, now: SystemTime) -> Acquired {
    let mut gateway = if lease.routes.is_empty() {
        lease.router.map(IpAddr::V4)
    } else {
        None
    };
    let mut routes = Vec::new();
    for route in &lease.routes {
        let via = (!route.gateway.is_unspecified()).then_some(IpAddr::V4(route.gateway));
        if route.prefix == 0 {
            if gateway.is_none() {
                gateway = via;
            }
            continue;
        }
        if let Ok(destination) = Ipv4Network::new(route.destination, route.prefix) {
            routes.push(SourceRoute {
                destination: IpNetwork::V4(destination),
                via,
            });
        }
    }
    Acquired {
        address,
        gateway,
        routes,
        lifetime: Some(lease.left(now)),
    }
}

/// What `verify` finds wrong with `lease`, a DHCP network's lease in the store: no DHCP lease
/// on the holder's record explains it, it is not that lease's address, the lease ran out, or
/// its address is outside the network's `--subnet`.
pub(super) fn lease_problem(network: &Network, lease: &Lease, records: &Records) -> Option<String> {
    let record = match records.read(lease.owner.container_id.as_str()) {
        Ok(Some(record)) => record,
        // The holder's record (or its absence) is judged by `verify` itself.
        Ok(None) | Err(_) => return None,
    };
    let Some(dhcp) = record
        .endpoints
        .iter()
        .find(|e| e.network == lease.network && e.ifname == lease.owner.ifname)
        .and_then(|e| e.dhcp.as_ref())
    else {
        return Some("no DHCP lease on the container's record explains it".into());
    };
    if lease.ip.is_ipv6() {
        return super::dhcp6::lease_problem(
            lease.ip,
            dhcp.v6.as_ref(),
            network.dhcp.and_then(|d| d.subnet6),
        );
    }
    if IpAddr::V4(dhcp.lease.address) != lease.ip {
        return Some(format!(
            "the container's DHCP lease is of {}, not this address",
            dhcp.lease.address
        ));
    }
    if let Some(subnet) = network.dhcp.and_then(|d| d.subnet)
        && !subnet.contains(dhcp.lease.address)
    {
        return Some(format!("outside the network's --subnet {subnet}"));
    }
    if dhcp.expired(SystemTime::now()) {
        return Some(format!(
            "its DHCP lease from {} ran out at {}",
            dhcp.lease.server,
            humantime::format_rfc3339_seconds(dhcp.lease.expiry)
        ));
    }
    None
}

#[cfg(test)]
mod tests;
