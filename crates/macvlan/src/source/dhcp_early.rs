//! What a DHCP attach can do once it knows the offer and before the server's ACK comes: made on
//! a helper thread while the server answers the REQUEST, so that it costs the attach nothing
//! when the server is slower than it (the hook's thread only waits then):
//! - telling the front door that the lease is on its way ([`crate::AttachRequest::on_lease`]):
//!   the hook makes ready there the start of the lease's renewer and hands it back;
//! - the packet socket's closer child (`PacketLink::closer`: its release waits for a grace
//!   period of the kernel, which a hook would otherwise pay before it exits), which starts
//!   that renewer once it has closed the socket: no process is made for it on the attach's
//!   thread (the front door is told so once this helper is joined; it starts the renewer
//!   itself where no closer could be made); the renewer waits for the container's lock,
//!   which the attach holds, before it reads the record;
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
//! "abort"`): the offer is on the record by then, and the closer child, let go by the
//! process's end, closes the socket and starts the keeper, which finds only an offer and ends.

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use oci_macvlan_child::Closer;
use oci_macvlan_dhcp::{Lease as DhcpLease, PacketLink};
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
/// callback of `oci_macvlan_dhcp::acquire_noting`: the first offer whose REQUEST is out starts
/// the helper on it. Returns what `exchange` returned and what the helper did (joined).
pub(super) fn while_answered<T>(
    socket: &PacketLink,
    ask: &Ask<'_>,
    exchange: impl FnOnce(&mut dyn FnMut(&DhcpLease)) -> T,
) -> (T, Early) {
    let (network, parent, on_lease) = (ask.network, ask.parent, ask.on_lease);
    let probe = super::dhcp_decline::probes(network);
    std::thread::scope(|scope| {
        let mut helper = None;
        let mut here = None;
        let mut waiting = |offered: &DhcpLease| {
            if helper.is_some() || here.is_some() {
                return;
            }
            let ip = IpAddr::V4(offered.address);
            let work = move || {
                // The renewer, if the front door starts one, is started by the closer child.
                let then =
                    on_lease.and_then(|tell| (tell.0)(&network.name, crate::LeaseStep::Requested));
                let closer = socket.closer(then);
                (
                    closer,
                    (!probe).then(|| check(network, parent, ip)).flatten(),
                )
            };
            match std::thread::Builder::new().spawn_scoped(scope, work) {
                Ok(handle) => helper = Some((ip, Instant::now(), handle)),
                // No thread: the closer made here, the check left to the caller.
                Err(_) => here = Some(socket.closer(None)),
            }
        };
        let got = exchange(&mut waiting);
        // Told once the helper is joined: after its `Requested`, always.
        let exchanged = on_lease.filter(|_| helper.is_some());
        let early = match (helper, here) {
            (Some((ip, started, handle)), _) => match handle.join() {
                Ok((closer, checked)) => Early {
                    closer,
                    checked: checked
                        .filter(|_| started.elapsed() <= FRESH)
                        .map(|checked| (ip, checked)),
                },
                Err(_) => Early::default(),
            },
            (None, closer) => Early {
                closer: closer.flatten(),
                checked: None,
            },
        };
        if let Some(tell) = exchanged {
            let carried = early.closer.as_ref().is_some_and(Closer::starts);
            (tell.0)(&network.name, crate::LeaseStep::Exchanged { carried });
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
    use super::*;

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
