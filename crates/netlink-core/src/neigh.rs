//! What a namespace already knows of the machines on its links: its neighbour table (ARP and
//! NDP entries), and the name of a link by index (to say whose entry it is).

use std::net::IpAddr;

use futures_util::TryStreamExt;
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourState,
};

use crate::{Errno, Error, Handle, KernelError, Link, MacAddr, Result};

/// An entry of the neighbour table that says a machine answers for `ip` on link `index`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    /// The link the entry is on.
    pub index: u32,
    /// The address the machine answers for.
    pub ip: IpAddr,
    /// The machine's hardware address (none for an entry without one).
    pub mac: Option<MacAddr>,
}

/// Whether an entry in `state`, with a hardware address `mac` (or none), says that a machine
/// answers for its address: it did (reachable, stale, being re-checked) or the administrator
/// says so (permanent, or `nud noarp` with a hardware address: never checked, always used). An
/// address being resolved (incomplete) or that nobody answered (failed) is held by no one.
pub fn holds_address(state: NeighbourState, mac: Option<MacAddr>) -> bool {
    match state {
        NeighbourState::Reachable
        | NeighbourState::Stale
        | NeighbourState::Delay
        | NeighbourState::Probe
        | NeighbourState::Permanent => true,
        NeighbourState::Noarp => mac.is_some_and(|mac| mac.0 != [0; 6]),
        _ => false,
    }
}

impl Handle {
    /// The entries of the neighbour table on link `index` for any of `ips`, both families, that
    /// say a machine holds the address ([`holds_address`]); proxy entries are not read. One
    /// dump of the table: for an attach that asks for a static address, or `network create`.
    pub async fn neighbours_holding(&self, index: u32, ips: &[IpAddr]) -> Result<Vec<Neighbour>> {
        let list = |err: rtnetlink::Error| Error::ListNeighbours { source: err.into() };
        let mut found = Vec::new();
        let mut dump = self.inner.neighbours().get().execute();
        while let Some(msg) = dump.try_next().await.map_err(list)? {
            if msg.header.ifindex != index || msg.header.flags.contains(NeighbourFlags::Proxy) {
                continue;
            }
            let mut ip = None;
            let mut mac = None;
            for attr in &msg.attributes {
                match attr {
                    NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                        ip = Some(IpAddr::V4(*v4));
                    }
                    NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                        ip = Some(IpAddr::V6(*v6));
                    }
                    NeighbourAttribute::LinkLayerAddress(bytes) => {
                        mac = <[u8; 6]>::try_from(bytes.as_slice()).ok().map(MacAddr);
                    }
                    _ => {}
                }
            }
            if !holds_address(msg.header.state, mac) {
                continue;
            }
            if let Some(ip) = ip.filter(|ip| ips.contains(ip)) {
                found.push(Neighbour { index, ip, mac });
            }
        }
        Ok(found)
    }

    /// Looks a link up by index (one `RTM_GETLINK`). A missing link is `Ok(None)`.
    pub async fn link_by_index(&self, index: u32) -> Result<Option<Link>> {
        let request = self.inner.link().get().match_index(index);
        match request.execute().try_next().await {
            Ok(msg) => Ok(msg.map(Link::from_message)),
            Err(err) => match KernelError::from(err) {
                KernelError::Errno(Errno::ENODEV) => Ok(None),
                source => Err(Error::GetLink {
                    name: format!("#{index}"),
                    source,
                }),
            },
        }
    }
}
