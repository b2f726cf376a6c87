//! A DHCP lease whose address is someone else's (RFC 2131, 4.4.1): the conflict probe's switch,
//! and the DECLINE that gives such a lease back. A DECLINE goes broadcast from 0.0.0.0 out of
//! the container's link: a RELEASE would go from the address itself and mislead its holder's
//! neighbours.

use std::net::IpAddr;

use oci_macvlan_dhcp::{Client, ClientId, Config, OnLink, PacketLink};
use oci_macvlan_netlink_core::Netns;

use super::{
    Ask,
    dhcp::{DhcpRecord, RETRY_FLOOR, seed},
};
use crate::{Error, Network};

/// Whether a lease's new address is probed for on the LAN (RFC 2131, 4.4.1) before the link
/// gets it: only when the network asks in so many words (`-o address_probe=on`). The probe
/// waits its whole window when no one answers (`netlink_core::probe::PROBE_WAIT`, 120 ms),
/// five times what the rest of a DHCP attach costs here; the host, router and neighbour
/// checks run on every lease.
pub(super) fn probes(net: &Network) -> bool {
    crate::occupied::probes(net) && net.options.get("address_probe").is_some_and(|v| v == "on")
}

/// Declines `record`'s v4 lease when `ip`, its address, is someone else's (a host, router or
/// neighbour has it, or it answered the probe): a DECLINE broadcast from 0.0.0.0 out of the
/// container's link (RFC 2131, 4.4.1), and the record marked unbound, so that the undo's
/// RELEASE, which would go from that address and mislead its holder's neighbours, leaves the v4
/// lease alone (a v6 lease beside it is still released). A DECLINE that cannot be sent is given
/// up: the server's lease runs out.
pub(super) fn decline_held(ask: &Ask<'_>, record: &mut DhcpRecord, ip: IpAddr) {
    if ip != IpAddr::V4(record.lease.address) {
        return;
    }
    record.renewal.unbound = true;
    let (Some(link), Some(mac), Some(client_id)) = (
        ask.link,
        record.mac,
        record.client_id_bytes().and_then(ClientId::from_bytes),
    ) else {
        return;
    };
    let config = Config {
        mac: mac.0,
        client_id,
        hostname: None,
        broadcast: record.broadcast,
        subnet: None,
        retry_floor: RETRY_FLOOR,
    };
    let on = OnLink {
        name: link.ifname.to_owned(),
        index: link.index,
        mac: mac.0,
    };
    let Ok(netns) = Netns::open(link.netns) else {
        return;
    };
    let Ok(socket) = netns.open_inside(&format!("a DHCP socket on {}", link.ifname), || {
        PacketLink::open(&on, None)
    }) else {
        return;
    };
    let mut client = Client::resume(config, record.lease.clone(), seed());
    let _ = oci_macvlan_dhcp::decline(&mut client, &socket);
}

/// A new lease the renewer refused (`err`): when its address is someone else's (the host, a
/// router or a neighbour has it, or another container here), `client`'s lease is declined out
/// of the link `on` of `netns` (from 0.0.0.0), so the server neither keeps it bound to this
/// client nor leases it again; given up if it cannot be sent.
pub(crate) fn decline_refused(netns: &Netns, on: &OnLink, client: &mut Client, err: &Error) {
    if !someone_elses(err) {
        return;
    }
    if let Ok(socket) = netns.open_inside(&format!("a DHCP socket on {}", on.name), || {
        PacketLink::open(on, None)
    }) {
        let _ = oci_macvlan_dhcp::decline(client, &socket);
    }
}

/// Whether `err` refused a lease's address as someone else's (the host, a router or a
/// neighbour has it, or another container here): a refusal that changed nothing.
pub(crate) fn someone_elses(err: &Error) -> bool {
    matches!(
        err,
        Error::AddressOnLan { .. } | Error::Dhcp(crate::DhcpError::AddressHeld { .. })
    )
}
