//! Address-conflict probes: does anyone on a link answer for an address? For IPv4, an ARP probe
//! (RFC 5227: sender address 0.0.0.0, so that no one's ARP cache learns from it); for IPv6, a
//! neighbour solicitation as duplicate address detection sends it (RFC 4862: source `::`, to
//! the address's solicited-node multicast group; a holder answers with an advertisement to
//! `ff02::1`). Both go out of the link itself over an `AF_PACKET` socket of the caller's
//! namespace, with the link's own MAC as sender: the answers come back to the link.
//!
//! Nothing is announced: no one may update a cache from a probe, and the socket adds nothing
//! to the host.

use std::{
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::{AsFd, AsRawFd, OwnedFd},
    time::{Duration, Instant},
};

use nix::{
    libc,
    poll::{PollFd, PollFlags, PollTimeout, poll},
    sys::socket::{
        AddressFamily, LinkAddr, MsgFlags, SockFlag, SockType, SockaddrLike, bind, recvfrom, send,
        socket,
    },
};

use crate::{Error, Link, MacAddr, Result};

/// How long a probe waits for an answer, at most: every address of one call is probed at once,
/// so this is the whole cost of a call that finds nothing. A machine on the LAN answers an ARP
/// request or a solicitation in well under a millisecond when it is awake; the window leaves
/// room for a busy host, a slow switch and one lost frame (each probe is sent twice,
/// [`PROBE_AGAIN`] apart). RFC 5227's own timing (three probes over one to two seconds, then
/// two more seconds) is made for an address a host takes for itself at boot, not for a
/// container's start; a machine that is asleep longer than this is not seen.
pub const PROBE_WAIT: Duration = Duration::from_millis(120);
/// When each probe is sent a second time.
pub const PROBE_AGAIN: Duration = Duration::from_millis(40);

const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IPV6: u16 = 0x86dd;
const ARP_REQUEST: u16 = 1;
const ARP_REPLY: u16 = 2;
const ND_NEIGHBOR_SOLICIT: u8 = 135;
const ND_NEIGHBOR_ADVERT: u8 = 136;
const ND_OPT_TARGET_LL_ADDR: u8 = 2;
/// The kernel's `PACKET_OUTGOING`: a frame this host sent, looped back to the socket.
const PACKET_OUTGOING: u8 = 4;
/// Ethernet's shortest frame without its checksum: shorter ones are padded.
const MIN_FRAME: usize = 60;

/// Someone answered a probe: the address and the hardware address that answered for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// The address probed for.
    pub ip: IpAddr,
    /// The hardware address that answered for it.
    pub mac: MacAddr,
}

/// The ARP probe for `target` from a link whose MAC is `own`, as a whole Ethernet frame.
pub fn arp_probe(own: MacAddr, target: Ipv4Addr) -> Vec<u8> {
    let mut frame = Vec::with_capacity(MIN_FRAME);
    frame.extend_from_slice(&[0xff; 6]);
    frame.extend_from_slice(&own.0);
    frame.extend_from_slice(&ETH_P_ARP.to_be_bytes());
    frame.extend_from_slice(&1u16.to_be_bytes()); // Ethernet
    frame.extend_from_slice(&0x0800u16.to_be_bytes()); // IPv4
    frame.extend_from_slice(&[6, 4]);
    frame.extend_from_slice(&ARP_REQUEST.to_be_bytes());
    frame.extend_from_slice(&own.0);
    frame.extend_from_slice(&[0; 4]); // sender 0.0.0.0: a probe
    frame.extend_from_slice(&[0; 6]);
    frame.extend_from_slice(&target.octets());
    frame.resize(MIN_FRAME, 0);
    frame
}

/// Whether `frame` (an Ethernet frame) says that someone holds `target`: an ARP reply from it,
/// or any ARP packet sent from it by another machine than `own`, or another machine's probe
/// for it (sender 0.0.0.0: it is taking the address at the same moment; RFC 5227, 2.1.1).
pub fn arp_answer(frame: &[u8], own: MacAddr, target: Ipv4Addr) -> Option<Answer> {
    let arp = frame.get(14..42)?;
    if frame.get(12..14)? != ETH_P_ARP.to_be_bytes() || arp[0..6] != [0, 1, 8, 0, 6, 4] {
        return None;
    }
    let op = u16::from_be_bytes([arp[6], arp[7]]);
    let sha: [u8; 6] = arp[8..14].try_into().ok()?;
    let spa = Ipv4Addr::new(arp[14], arp[15], arp[16], arp[17]);
    let tpa = Ipv4Addr::new(arp[24], arp[25], arp[26], arp[27]);
    let probing = op == ARP_REQUEST && spa.is_unspecified() && tpa == target;
    if !(spa == target || probing) || sha == own.0 || !(op == ARP_REPLY || op == ARP_REQUEST) {
        return None;
    }
    Some(Answer {
        ip: IpAddr::V4(target),
        mac: MacAddr(sha),
    })
}

/// `ff02::1:ffXX:XXXX`, the solicited-node multicast group of `target`.
fn solicited_node(target: Ipv6Addr) -> Ipv6Addr {
    let t = target.octets();
    let mut group = [0u8; 16];
    group[0] = 0xff;
    group[1] = 0x02;
    group[11] = 0x01;
    group[12] = 0xff;
    group[13..].copy_from_slice(&t[13..]);
    Ipv6Addr::from(group)
}

/// The ICMPv6 checksum of `body` between `src` and `dst` (RFC 4443, 2.3).
fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, body: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            let word = u16::from_be_bytes([pair[0], pair.get(1).copied().unwrap_or(0)]);
            sum += u32::from(word);
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&(body.len() as u32).to_be_bytes());
    add(&[0, 0, 0, 58]);
    add(body);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The duplicate-address-detection solicitation for `target` from a link whose MAC is `own`, as
/// a whole Ethernet frame: source `::`, no link-layer option, to the solicited-node group.
pub fn dad_solicitation(own: MacAddr, target: Ipv6Addr) -> Vec<u8> {
    let dst = solicited_node(target);
    let d = dst.octets();
    let mut icmp = vec![ND_NEIGHBOR_SOLICIT, 0, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&target.octets());
    let sum = icmpv6_checksum(Ipv6Addr::UNSPECIFIED, dst, &icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut frame = Vec::with_capacity(14 + 40 + icmp.len());
    frame.extend_from_slice(&[0x33, 0x33, d[12], d[13], d[14], d[15]]);
    frame.extend_from_slice(&own.0);
    frame.extend_from_slice(&ETH_P_IPV6.to_be_bytes());
    frame.extend_from_slice(&[0x60, 0, 0, 0]);
    frame.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    frame.extend_from_slice(&[58, 255]);
    frame.extend_from_slice(&Ipv6Addr::UNSPECIFIED.octets());
    frame.extend_from_slice(&d);
    frame.extend_from_slice(&icmp);
    frame
}

/// Whether `frame` (an Ethernet frame) is a neighbour advertisement for `target` from another
/// machine than `own` (the answer names the target link-layer address it carries, or else the
/// frame's source), or another machine's duplicate address detection for it (a solicitation
/// from `::`: it is taking the address at the same moment; RFC 4862, 5.4.3).
pub fn na_answer(frame: &[u8], own: MacAddr, target: Ipv6Addr) -> Option<Answer> {
    if frame.get(12..14)? != ETH_P_IPV6.to_be_bytes() {
        return None;
    }
    let ip6 = frame.get(14..54)?;
    // Version 6, ICMPv6 straight after the header, hop limit 255 (RFC 4861, 7.1.2).
    if ip6[0] >> 4 != 6 || ip6[6] != 58 || ip6[7] != 255 {
        return None;
    }
    let icmp = frame.get(54..)?;
    if icmp.len() < 24 || icmp[1] != 0 {
        return None;
    }
    let advertised: [u8; 16] = icmp[8..24].try_into().ok()?;
    if Ipv6Addr::from(advertised) != target {
        return None;
    }
    let source: [u8; 6] = frame[6..12].try_into().ok()?;
    let from_unspecified = ip6[8..24] == [0; 16];
    match icmp[0] {
        ND_NEIGHBOR_ADVERT => {}
        ND_NEIGHBOR_SOLICIT if from_unspecified && source != own.0 => {
            return Some(Answer {
                ip: IpAddr::V6(target),
                mac: MacAddr(source),
            });
        }
        _ => return None,
    }
    let mut mac = source;
    let mut options = &icmp[24..];
    while options.len() >= 8 {
        let len = usize::from(options[1]) * 8;
        if len == 0 || len > options.len() {
            break;
        }
        if options[0] == ND_OPT_TARGET_LL_ADDR
            && let Ok(addr) = <[u8; 6]>::try_from(&options[2..8])
        {
            mac = addr;
        }
        options = &options[len..];
    }
    if mac == own.0 || source == own.0 {
        return None;
    }
    Some(Answer {
        ip: IpAddr::V6(target),
        mac: MacAddr(mac),
    })
}

/// A raw `AF_PACKET` socket (close-on-exec, non-blocking) bound to the link of `index` and to
/// `protocol` (an ethertype, host order), in the caller's namespace: what the address-conflict
/// probe and a DHCP client send whole frames through and receive them from.
pub fn packet_socket(index: u32, protocol: u16) -> io::Result<OwnedFd> {
    // Protocol 0: nothing is received until the bind names the link and the protocol.
    let fd = socket(
        AddressFamily::Packet,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    let sll = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: protocol.to_be(),
        sll_ifindex: i32::try_from(index)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    };
    let len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // nix has no safe constructor of a `sockaddr_ll`.
    #[allow(unsafe_code)]
    // SAFETY: `sll` is a whole, initialised `sockaddr_ll` that lives across the call, and
    // `len` is its size: `from_raw` reads exactly those bytes, once, and copies them.
    let addr = unsafe { LinkAddr::from_raw((&raw const sll).cast(), Some(len)) }
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    bind(fd.as_raw_fd(), &addr)?;
    Ok(fd)
}

/// A packet socket bound to one link and one protocol.
struct PacketSocket {
    fd: OwnedFd,
}

impl PacketSocket {
    fn open(link: &Link, protocol: u16) -> io::Result<Self> {
        Ok(Self {
            fd: packet_socket(link.index, protocol)?,
        })
    }

    fn send(&self, frame: &[u8]) -> io::Result<()> {
        send(self.fd.as_raw_fd(), frame, MsgFlags::empty())?;
        Ok(())
    }

    /// The next frame another machine sent, if one is queued.
    fn next(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        loop {
            match recvfrom::<LinkAddr>(self.fd.as_raw_fd(), buf) {
                Ok((_, Some(from))) if from.pkttype() == PACKET_OUTGOING => {}
                Ok((len, _)) => return Ok(Some(len)),
                Err(nix::errno::Errno::EAGAIN) => return Ok(None),
                Err(nix::errno::Errno::EINTR) => {}
                Err(errno) => return Err(errno.into()),
            }
        }
    }
}

/// What [`drain`] found in a socket's queue.
#[derive(Debug, PartialEq, Eq)]
enum Drained {
    Found(Answer),
    /// The queue is empty.
    Empty,
    /// The deadline passed while frames kept coming (a flood must not hold the caller).
    TimeUp,
}

/// Reads the frames `next` has queued until one is an `answer`, the queue is empty, or
/// `deadline` passes.
fn drain(
    next: &mut dyn FnMut(&mut [u8]) -> io::Result<Option<usize>>,
    buf: &mut [u8],
    answer: &dyn Fn(&[u8]) -> Option<Answer>,
    deadline: Instant,
) -> io::Result<Drained> {
    while let Some(len) = next(buf)? {
        if let Some(found) = buf.get(..len).and_then(answer) {
            return Ok(Drained::Found(found));
        }
        if Instant::now() >= deadline {
            return Ok(Drained::TimeUp);
        }
    }
    Ok(Drained::Empty)
}

/// Probes `link` for each of `ips` at once and waits for an answer, [`PROBE_WAIT`] at most
/// (less when one comes): the first answer, or `None` when no one answered. An answer from one
/// of `ours` (the caller's own links' MACs) is none. The link must be up and have a MAC (an
/// Ethernet link of the caller's namespace).
pub fn probe(link: &Link, ips: &[IpAddr], ours: &[MacAddr]) -> Result<Option<Answer>> {
    let Some(first) = ips.first() else {
        return Ok(None);
    };
    let failed = |address: IpAddr| {
        move |source: io::Error| Error::Probe {
            link: link.name.clone(),
            address,
            source,
        }
    };
    let own = link
        .mac
        .ok_or_else(|| failed(*first)(io::Error::from(io::ErrorKind::Unsupported)))?;
    let v4: Vec<Ipv4Addr> = ips
        .iter()
        .filter_map(|ip| match ip {
            IpAddr::V4(v4) => Some(*v4),
            IpAddr::V6(_) => None,
        })
        .collect();
    let v6: Vec<Ipv6Addr> = ips
        .iter()
        .filter_map(|ip| match ip {
            IpAddr::V6(v6) => Some(*v6),
            IpAddr::V4(_) => None,
        })
        .collect();
    let mut probes: Vec<(PacketSocket, Vec<Vec<u8>>, IpAddr)> = Vec::new();
    if let Some(at) = v4.first() {
        let socket = PacketSocket::open(link, ETH_P_ARP).map_err(failed(IpAddr::V4(*at)))?;
        let frames = v4.iter().map(|ip| arp_probe(own, *ip)).collect();
        probes.push((socket, frames, IpAddr::V4(*at)));
    }
    if let Some(at) = v6.first() {
        let socket = PacketSocket::open(link, ETH_P_IPV6).map_err(failed(IpAddr::V6(*at)))?;
        let frames = v6.iter().map(|ip| dad_solicitation(own, *ip)).collect();
        probes.push((socket, frames, IpAddr::V6(*at)));
    }
    let answer = |frame: &[u8]| {
        v4.iter()
            .find_map(|ip| arp_answer(frame, own, *ip))
            .or_else(|| v6.iter().find_map(|ip| na_answer(frame, own, *ip)))
            .filter(|answer| !ours.contains(&answer.mac))
    };
    let start = Instant::now();
    let mut sent_again = false;
    for (socket, frames, at) in &probes {
        for frame in frames {
            socket.send(frame).map_err(failed(*at))?;
        }
    }
    let mut buf = vec![0u8; 2048];
    let deadline = start + PROBE_WAIT;
    loop {
        for (socket, _, at) in &probes {
            let mut next = |buf: &mut [u8]| socket.next(buf);
            match drain(&mut next, &mut buf, &answer, deadline).map_err(failed(*at))? {
                Drained::Found(found) => return Ok(Some(found)),
                Drained::TimeUp => return Ok(None),
                Drained::Empty => {}
            }
        }
        let elapsed = start.elapsed();
        if elapsed >= PROBE_WAIT {
            return Ok(None);
        }
        if !sent_again && elapsed >= PROBE_AGAIN {
            sent_again = true;
            for (socket, frames, at) in &probes {
                for frame in frames {
                    socket.send(frame).map_err(failed(*at))?;
                }
            }
        }
        let until = if sent_again { PROBE_WAIT } else { PROBE_AGAIN };
        let wait = until.saturating_sub(elapsed);
        let mut fds: Vec<PollFd<'_>> = probes
            .iter()
            .map(|(socket, _, _)| PollFd::new(socket.fd.as_fd(), PollFlags::POLLIN))
            .collect();
        let timeout =
            PollTimeout::try_from(wait.max(Duration::from_millis(1))).unwrap_or(PollTimeout::ZERO);
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(errno) => return Err(failed(*first)(errno.into())),
        }
    }
}

#[cfg(test)]
mod tests;
