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
    pub ip: IpAddr,
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
        if options[0] == ND_OPT_TARGET_LL_ADDR {
            if let Ok(addr) = <[u8; 6]>::try_from(&options[2..8]) {
                mac = addr;
            }
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

/// A packet socket bound to one link and one protocol.
struct PacketSocket {
    fd: OwnedFd,
}

impl PacketSocket {
    fn open(link: &Link, protocol: u16) -> io::Result<Self> {
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
            sll_ifindex: i32::try_from(link.index)
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
        Ok(Self { fd })
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
mod tests {
    use super::*;

    const OWN: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
    const OTHER: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x99]);

    /// An ARP packet as a holder (`sha`, `spa`) sends it to `tha`, `tpa`.
    fn arp(op: u16, sha: MacAddr, spa: [u8; 4], tha: MacAddr, tpa: [u8; 4]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&tha.0);
        f.extend_from_slice(&sha.0);
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4]);
        f.extend_from_slice(&op.to_be_bytes());
        f.extend_from_slice(&sha.0);
        f.extend_from_slice(&spa);
        f.extend_from_slice(&tha.0);
        f.extend_from_slice(&tpa);
        f
    }

    #[test]
    fn the_arp_probe_is_rfc_5227s() {
        let frame = arp_probe(OWN, Ipv4Addr::new(192, 168, 77, 53));
        assert_eq!(frame.len(), MIN_FRAME);
        assert_eq!(&frame[0..6], &[0xff; 6], "broadcast");
        assert_eq!(&frame[6..12], &OWN.0);
        assert_eq!(&frame[12..14], &[0x08, 0x06]);
        assert_eq!(&frame[14..22], &[0, 1, 8, 0, 6, 4, 0, 1], "an ARP request");
        assert_eq!(
            &frame[22..28],
            &OWN.0,
            "sender hardware address: the link's"
        );
        assert_eq!(&frame[28..32], &[0; 4], "sender 0.0.0.0");
        assert_eq!(&frame[32..38], &[0; 6]);
        assert_eq!(&frame[38..42], &[192, 168, 77, 53]);
        // Our own probe, looped back, is no answer.
        assert_eq!(
            arp_answer(&frame, OWN, Ipv4Addr::new(192, 168, 77, 53)),
            None
        );
    }

    #[test]
    fn arp_answers_are_told_apart() {
        let target = Ipv4Addr::new(192, 168, 77, 53);
        let t = target.octets();
        let held = Some(Answer {
            ip: IpAddr::V4(target),
            mac: OTHER,
        });
        // Linux's answer to a probe: a reply from the target to 0.0.0.0.
        assert_eq!(
            arp_answer(&arp(2, OTHER, t, OWN, [0; 4]), OWN, target),
            held
        );
        // Someone announcing the address, or asking from it, uses it.
        assert_eq!(arp_answer(&arp(1, OTHER, t, OWN, t), OWN, target), held);
        // Another address, another probe, our own frames, truncated frames: no answer.
        let other = [192, 168, 77, 54];
        assert_eq!(
            arp_answer(&arp(2, OTHER, other, OWN, [0; 4]), OWN, target),
            None
        );
        // Another machine's probe for it: it takes the address at the same moment.
        assert_eq!(
            arp_answer(&arp(1, OTHER, [0; 4], OWN, t), OWN, target),
            held
        );
        assert_eq!(
            arp_answer(&arp_probe(OTHER, target), OWN, target),
            held,
            "a concurrent probe"
        );
        assert_eq!(
            arp_answer(&arp(1, OTHER, [0; 4], OWN, other), OWN, target),
            None,
            "a probe for another address"
        );
        assert_eq!(arp_answer(&arp(2, OWN, t, OWN, [0; 4]), OWN, target), None);
        let reply = arp(2, OTHER, t, OWN, [0; 4]);
        for len in 0..reply.len() - 1 {
            assert_eq!(arp_answer(&reply[..len], OWN, target), None, "{len} bytes");
        }
    }

    #[test]
    fn the_solicitation_is_dads() {
        let target: Ipv6Addr = "fd00:77::1234:5678".parse().unwrap();
        let frame = dad_solicitation(OWN, target);
        assert_eq!(frame.len(), 14 + 40 + 24);
        assert_eq!(&frame[0..6], &[0x33, 0x33, 0xff, 0x34, 0x56, 0x78]);
        assert_eq!(&frame[12..14], &[0x86, 0xdd]);
        assert_eq!(
            &frame[18..22],
            &[0, 24, 58, 255],
            "length, ICMPv6, hop limit"
        );
        assert_eq!(&frame[22..38], &[0; 16], "source ::");
        let dst: [u8; 16] = frame[38..54].try_into().unwrap();
        assert_eq!(
            Ipv6Addr::from(dst),
            "ff02::1:ff34:5678".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(frame[54], ND_NEIGHBOR_SOLICIT);
        assert_eq!(&frame[62..78], &target.octets());
        // The checksum sums to zero over the pseudo-header and the message.
        assert_eq!(
            icmpv6_checksum(Ipv6Addr::UNSPECIFIED, Ipv6Addr::from(dst), &frame[54..]),
            0
        );
    }

    /// A flood of frames that answer nothing does not hold the probe past its deadline.
    #[test]
    fn a_flood_does_not_hold_the_probe() {
        let target = Ipv4Addr::new(192, 168, 77, 53);
        let junk = arp(1, OTHER, [192, 168, 77, 9], OWN, [192, 168, 77, 10]);
        let started = Instant::now();
        // Never empty (for 5 s: the bound of a loop that ignores the deadline).
        let mut next = |buf: &mut [u8]| {
            if started.elapsed() > Duration::from_secs(5) {
                return Ok(None);
            }
            buf[..junk.len()].copy_from_slice(&junk);
            Ok(Some(junk.len()))
        };
        let answer = |frame: &[u8]| arp_answer(frame, OWN, target);
        let mut buf = vec![0u8; 2048];
        let drained = drain(&mut next, &mut buf, &answer, started + PROBE_WAIT).unwrap();
        let took = started.elapsed();
        assert_eq!(drained, Drained::TimeUp);
        assert!(took < Duration::from_secs(1), "held for {took:?}");
        // An answer in the flood is found; an empty queue is said.
        let reply = arp(2, OTHER, target.octets(), OWN, [0; 4]);
        let mut once = Some(reply);
        let mut next = |buf: &mut [u8]| {
            Ok(once.take().map(|f| {
                buf[..f.len()].copy_from_slice(&f);
                f.len()
            }))
        };
        let deadline = Instant::now() + PROBE_WAIT;
        assert!(matches!(
            drain(&mut next, &mut buf, &answer, deadline).unwrap(),
            Drained::Found(_)
        ));
        assert_eq!(
            drain(&mut next, &mut buf, &answer, deadline).unwrap(),
            Drained::Empty
        );
    }

    /// A neighbour advertisement as Linux answers DAD: to ff02::1, with the target's MAC.
    fn na(from: MacAddr, target: Ipv6Addr, tlla: Option<MacAddr>, hop: u8) -> Vec<u8> {
        let mut icmp = vec![ND_NEIGHBOR_ADVERT, 0, 0, 0, 0x20, 0, 0, 0];
        icmp.extend_from_slice(&target.octets());
        if let Some(mac) = tlla {
            icmp.extend_from_slice(&[ND_OPT_TARGET_LL_ADDR, 1]);
            icmp.extend_from_slice(&mac.0);
        }
        let mut f = vec![0x33, 0x33, 0, 0, 0, 1];
        f.extend_from_slice(&from.0);
        f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
        f.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
        f.extend_from_slice(&[58, hop]);
        f.extend_from_slice(&target.octets());
        f.extend_from_slice(&"ff02::1".parse::<Ipv6Addr>().unwrap().octets());
        f.extend_from_slice(&icmp);
        f
    }

    #[test]
    fn advertisements_are_told_apart() {
        let target: Ipv6Addr = "fd00:77::53".parse().unwrap();
        let held = |mac| {
            Some(Answer {
                ip: IpAddr::V6(target),
                mac,
            })
        };
        let router = MacAddr([0x02, 0, 0, 0, 0, 0x42]);
        assert_eq!(
            na_answer(&na(OTHER, target, Some(router), 255), OWN, target),
            held(router)
        );
        assert_eq!(
            na_answer(&na(OTHER, target, None, 255), OWN, target),
            held(OTHER)
        );
        let elsewhere: Ipv6Addr = "fd00:77::54".parse().unwrap();
        assert_eq!(
            na_answer(&na(OTHER, elsewhere, None, 255), OWN, target),
            None
        );
        assert_eq!(
            na_answer(&na(OTHER, target, None, 64), OWN, target),
            None,
            "routed"
        );
        assert_eq!(na_answer(&na(OWN, target, None, 255), OWN, target), None);
        // Another machine's DAD for it: it takes the address at the same moment.
        let solicitation = dad_solicitation(OTHER, target);
        assert_eq!(na_answer(&solicitation, OWN, target), held(OTHER));
        // Our own, another address's, and a solicitation from an address (a lookup) are not.
        assert_eq!(na_answer(&dad_solicitation(OWN, target), OWN, target), None);
        assert_eq!(
            na_answer(&dad_solicitation(OTHER, elsewhere), OWN, target),
            None
        );
        let mut lookup = dad_solicitation(OTHER, target);
        lookup[22..38].copy_from_slice(&elsewhere.octets());
        assert_eq!(na_answer(&lookup, OWN, target), None);
        let frame = na(OTHER, target, Some(router), 255);
        for len in 0..78 {
            assert_eq!(na_answer(&frame[..len], OWN, target), None, "{len} bytes");
        }
    }
}
