//! What a DHCP attach can do before the server's answers come, on a helper thread started once
//! the first DISCOVER is out, so that it costs the attach nothing when the server is slower
//! than it (the attach's thread only waits then; the thread's start, ~0.06 ms on a 2-CPU VM,
//! no longer comes between the OFFER and its REQUEST):
//! - while the server answers the DISCOVER: the packet socket's closer child
//!   (`PacketLink::closer`: its release waits for a grace period of the kernel, which a hook
//!   would otherwise pay before it exits); then it waits for the offer, handed to it once the
//!   offer's REQUEST is out (an exchange that ends without one ends it);
//! - with the offer, telling the front door that the lease is on its way ([`crate::AttachRequest::on_lease`]):
//!   the hook makes ready there the start of the lease's renewer, which it makes once the
//!   exchange is over (told on the attach's thread, once this helper is joined), beside the
//!   rest of the attach; the renewer waits for the container's lock, which the attach holds,
//!   before it reads the record;
//! - the check of the offered address against the host and the LAN (DESIGN.md, rule 9:
//!   `crate::occupied::check_leased_probing`), which [`super::Source::acquire`] then does not
//!   run again for that address. An ACK of another address (a NAK, then another offer), and a
//!   DHCPv6 lease, are checked after, on the attach's own thread, as before.
//!
//! Nothing here decides anything: a refusal found early is the same refusal, taken once the
//! ACK is in (the server's lease given back, its address declined). Where no thread can be
//! made, the closer is made on the attach's thread and the check runs after the ACK; where the
//! helper gets no runtime for its netlink socket, it makes the closer and leaves the check to
//! after the ACK too. So does a network that probes for its addresses (`-o address_probe=on`):
//! the probe listens once for all of a lease's addresses, after the ACK (RFC 2131, 4.4.1). A
//! finding older than [`FRESH`] when the ACK comes (REQUESTs sent again) is dropped and the
//! address checked again. A helper's panic aborts the hook in a release build (`panic =
//! "abort"`): an offer is on the record before it is handed over, and the closer child ends with
//! the process.

use std::{
    net::IpAddr,
    sync::mpsc,
    time::{Duration, Instant},
};

use oci_macvlan_child::Closer;
use oci_macvlan_dhcp::{PacketLink, Waiting};
use oci_macvlan_netlink_core::{Handle, Link};

use super::Ask;
use crate::{Error, Network};

/// How old a finding may be when the ACK comes and still stand for it.
pub(super) const FRESH: Duration = Duration::from_millis(100);

/// What the helper did.
#[derive(Debug, Default)]
pub(super) struct Early {
    /// The socket's closer child, if one was made.
    pub(super) closer: Option<Closer>,
    /// The offered address and what its check found, if it was checked.
    pub(super) checked: Option<(IpAddr, crate::Result<()>)>,
}

/// Runs `exchange` (the v4 exchange, with what runs beside it), giving it the `waiting`
/// callback of `oci_macvlan_dhcp::acquire_noting`: the first DISCOVER out starts the helper,
/// which makes the closer while the server answers it and waits for the offer; the first
/// offer whose REQUEST is out is handed to it. Returns what `exchange` returned and what the
/// helper did (joined).
pub(super) fn while_answered<T>(
    socket: &PacketLink,
    ask: &Ask<'_>,
    exchange: impl FnOnce(&mut dyn FnMut(Waiting<'_>)) -> T,
) -> (T, Early) {
    let (network, parent, on_lease) = (ask.network, ask.parent, ask.on_lease);
    let probe = super::dhcp_decline::probes(network);
    std::thread::scope(|scope| {
        let mut helper = None;
        let mut here = None;
        // The offer handed to the helper: its address, and when its REQUEST went out.
        let (offer, offered) = mpsc::sync_channel::<(IpAddr, Instant)>(1);
        let (mut offer, mut offered) = (Some(offer), Some(offered));
        let mut waiting = |waiting: Waiting<'_>| match waiting {
            Waiting::Discovering => {
                // Told once.
                let Some(offered) = offered.take() else {
                    return;
                };
                let work = move || {
                    let closer = socket.closer();
                    // No offer (the exchange ended without one): nothing to check.
                    let Ok((ip, requested)) = offered.recv() else {
                        return (closer, None);
                    };
                    if let Some(tell) = on_lease {
                        (tell.0)(&network.name, crate::LeaseStep::Requested);
                    }
                    let checked = (!probe).then(|| check(network, parent, ip)).flatten();
                    (closer, checked.map(|checked| (ip, requested, checked)))
                };
                match std::thread::Builder::new().spawn_scoped(scope, work) {
                    Ok(handle) => helper = Some(handle),
                    // No thread: the closer made here, the check left to the caller.
                    Err(_) => here = Some(socket.closer()),
                }
            }
            Waiting::Requested(offered) => {
                if helper.is_some()
                    && let Some(offer) = offer.take()
                {
                    let _ = offer.send((IpAddr::V4(offered.address), Instant::now()));
                }
            }
        };
        let got = exchange(&mut waiting);
        // Told once the helper is joined: after its `Requested`, always (and only with one).
        let requested = offer.is_none();
        drop(offer.take());
        let early = match (helper, here) {
            (Some(handle), _) => match handle.join() {
                Ok((closer, checked)) => Early {
                    closer,
                    checked: checked
                        .filter(|(_, requested, _)| requested.elapsed() <= FRESH)
                        .map(|(ip, _, checked)| (ip, checked)),
                },
                Err(_) => Early::default(),
            },
            (None, closer) => Early {
                closer: closer.flatten(),
                checked: None,
            },
        };
        if let Some(tell) = on_lease.filter(|_| requested) {
            (tell.0)(&network.name, crate::LeaseStep::Exchanged);
        }
        (got, early)
    })
}

/// [`crate::occupied::check_leased`] of `ip` (no probe) on this thread, in a runtime of its own
/// (its netlink socket needs one); `None` when none can be made (the caller checks).
fn check(network: &Network, parent: Option<&Link>, ip: IpAddr) -> Option<crate::Result<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .ok()?;
    Some(runtime.block_on(async {
        let host = Handle::current().map_err(|source| Error::CheckAddresses {
            network: network.name.clone(),
            source,
        })?;
        crate::occupied::check_leased(&host, network, parent, &[ip]).await
    }))
}

/// What the early check found for `new` (the addresses a lease gave): its finding for the one
/// it checked, if the ACK kept that address, and the addresses still to check. An offer's
/// address that the ACK did not keep is none of the lease's: its finding is dropped.
pub(super) fn still_to_check(
    new: &[IpAddr],
    checked: Option<(IpAddr, crate::Result<()>)>,
) -> (crate::Result<()>, Vec<IpAddr>) {
    match checked {
        Some((ip, found)) if new.contains(&ip) => {
            (found, new.iter().copied().filter(|n| *n != ip).collect())
        }
        _ => (Ok(()), new.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use std::{net::Ipv4Addr, sync::Mutex, time::SystemTime};

    use oci_macvlan_dhcp::{Lease as DhcpLease, OnLink};
    use oci_macvlan_ipam::Owner;
    use oci_macvlan_netlink_core::{ChildKind, MacvlanMode};

    use super::*;
    use crate::{LeaseStep, NetworkSpec, OnLease};

    /// A DHCP network that probes for its addresses: the helper leaves the check to after
    /// the ACK, and needs no netlink.
    fn probing() -> Network {
        NetworkSpec {
            name: "lan".into(),
            driver: "macvlan".into(),
            options: vec!["parent=eth0".into(), "address_probe=on".into()],
            ipam_driver: "dhcp".into(),
            ..Default::default()
        }
        .validate(format!("{:0>64}", "lan"), "2026-12-06T00:00:00Z".into())
        .unwrap()
    }

    /// What `while_answered` does around `exchange` on a packet socket of `lo` (root): the
    /// steps it told and whether the closer was made.
    fn around(exchange: impl FnOnce(&mut dyn FnMut(Waiting<'_>))) -> (Vec<LeaseStep>, bool) {
        let network = probing();
        let owner = Owner {
            container_id: "c1".into(),
            ifname: "eth0".into(),
        };
        let told = Mutex::new(Vec::new());
        let tell = |_: &str, step| told.lock().unwrap().push(step);
        let ask = Ask {
            network: &network,
            owner: &owner,
            static_ips: &[],
            held_before: false,
            link: None,
            kind: ChildKind::Macvlan {
                mode: MacvlanMode::Bridge,
                source_macs: &[],
            },
            secret: None,
            hostname: None,
            previous: None,
            note: None,
            hints: None,
            parent: None,
            on_lease: Some(OnLease(&tell)),
        };
        let lo = OnLink {
            name: "lo".into(),
            index: 1,
            mac: [0; 6],
        };
        let socket = PacketLink::open(&lo, None).expect("a packet socket on lo (root)");
        let ((), early) = while_answered(&socket, &ask, exchange);
        assert!(
            early.checked.is_none(),
            "a probing network is checked after the ACK"
        );
        let closer = early.closer.is_some();
        socket.close_with(early.closer);
        (told.into_inner().unwrap(), closer)
    }

    fn offered() -> DhcpLease {
        let now = SystemTime::now();
        DhcpLease {
            address: Ipv4Addr::new(10, 1, 0, 5),
            prefix: 24,
            router: None,
            routes: Vec::new(),
            dns: Vec::new(),
            domain: None,
            server: Ipv4Addr::new(10, 1, 0, 1),
            obtained: now,
            t1: now + Duration::from_secs(50),
            t2: now + Duration::from_secs(87),
            expiry: now + Duration::from_secs(100),
        }
    }

    #[test]
    fn the_closer_is_made_while_the_discover_is_answered_even_if_no_offer_comes() {
        let (told, closer) = around(|waiting| waiting(Waiting::Discovering));
        assert!(closer);
        // No offer: no renewer made ready, none started.
        assert!(told.is_empty(), "{told:?}");
    }

    #[test]
    fn the_offer_handed_over_tells_its_request_then_the_exchange_over() {
        let lease = offered();
        let (told, closer) = around(|waiting| {
            waiting(Waiting::Discovering);
            waiting(Waiting::Requested(&lease));
            // A second offer's REQUEST (after a NAK) is not handed over again.
            waiting(Waiting::Requested(&lease));
        });
        assert!(closer);
        assert_eq!(told, [LeaseStep::Requested, LeaseStep::Exchanged]);
    }

    fn held(ip: IpAddr) -> crate::Result<()> {
        Err(Error::AddressOnLan {
            ip,
            network: "lan".into(),
            holder: "the host's link eth0".into(),
        })
    }

    #[test]
    fn an_early_finding_counts_only_for_an_address_the_ack_kept() {
        let (v4, other, v6): (IpAddr, IpAddr, IpAddr) = (
            "10.1.0.5".parse().unwrap(),
            "10.1.0.6".parse().unwrap(),
            "fd00::5".parse().unwrap(),
        );
        // Nothing checked early: all of it is still to check.
        let (found, rest) = still_to_check(&[v4, v6], None);
        assert!(found.is_ok());
        assert_eq!(rest, [v4, v6]);
        // The offer's address checked and kept: only the rest.
        let (found, rest) = still_to_check(&[v4, v6], Some((v4, Ok(()))));
        assert!(found.is_ok());
        assert_eq!(rest, [v6]);
        // Found held: the refusal stands.
        let (found, rest) = still_to_check(&[v4], Some((v4, held(v4))));
        assert!(matches!(found, Err(Error::AddressOnLan { ip, .. }) if ip == v4));
        assert!(rest.is_empty());
        // The ACK gave another address than the offer: the offer's finding is dropped, and the
        // ACK's address is checked.
        let (found, rest) = still_to_check(&[other], Some((v4, held(v4))));
        assert!(found.is_ok());
        assert_eq!(rest, [other]);
    }
}
