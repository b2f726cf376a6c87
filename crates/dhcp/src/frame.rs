//! DHCP's UDP/IPv4/Ethernet framing, built and checked by hand for the packet socket: a client
//! without an address cannot use the kernel's UDP (RFC 2131, 4.1), so it writes whole frames.

use std::net::Ipv4Addr;

use crate::answer::MAX_MESSAGE;

/// The server's port.
pub const SERVER_PORT: u16 = 67;
/// The client's port.
pub const CLIENT_PORT: u16 = 68;
/// IPv4's Ethernet type.
pub const ETH_P_IP: u16 = 0x0800;
const UDP: u8 = 17;
/// The broadcast MAC.
pub const BROADCAST_MAC: [u8; 6] = [0xff; 6];

fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for part in parts {
        for pair in part.chunks(2) {
            sum += u32::from(u16::from_be_bytes([
                pair[0],
                pair.get(1).copied().unwrap_or(0),
            ]));
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn udp_checksum(src: Ipv4Addr, dst: Ipv4Addr, udp: &[u8]) -> u16 {
    let len = (udp.len() as u16).to_be_bytes();
    let pseudo = [0, UDP, len[0], len[1]];
    match checksum(&[&src.octets(), &dst.octets(), &pseudo, udp]) {
        0 => 0xffff,
        sum => sum,
    }
}

/// The Ethernet frame carrying `payload` from the client (`mac`, `src`, port 68) to `dst` port
/// 67, at `dst_mac`. `payload` is one of our messages, a few hundred bytes.
pub fn build(
    mac: [u8; 6],
    dst_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    payload: &[u8],
) -> Vec<u8> {
    let udp_len = 8 + payload.len();
    let ip_len = 20 + udp_len;
    let mut udp = Vec::with_capacity(udp_len);
    udp.extend_from_slice(&CLIENT_PORT.to_be_bytes());
    udp.extend_from_slice(&SERVER_PORT.to_be_bytes());
    udp.extend_from_slice(&(udp_len as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    let sum = udp_checksum(src, dst, &udp);
    udp[6..8].copy_from_slice(&sum.to_be_bytes());
    let mut ip = vec![0x45, 0x10];
    ip.extend_from_slice(&(ip_len as u16).to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0, 0, 64, UDP, 0, 0]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let sum = checksum(&[&ip]);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let mut frame = Vec::with_capacity(14 + ip_len);
    frame.extend_from_slice(&dst_mac);
    frame.extend_from_slice(&mac);
    frame.extend_from_slice(&ETH_P_IP.to_be_bytes());
    frame.extend_from_slice(&ip);
    frame.extend_from_slice(&udp);
    frame
}

/// The DHCP message in `frame`, if it is an unfragmented IPv4 UDP datagram from port 67 to port
/// 68 whose lengths and IP header checksum hold and whose payload is at most [`MAX_MESSAGE`]
/// bytes.
pub fn parse(frame: &[u8]) -> Option<&[u8]> {
    if frame.get(12..14)? != ETH_P_IP.to_be_bytes() {
        return None;
    }
    let ip = frame.get(14..)?;
    let first = *ip.first()?;
    let ihl = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || ihl < 20 {
        return None;
    }
    let header = ip.get(..ihl)?;
    let total = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let fragment = u16::from_be_bytes([header[6], header[7]]) & 0x3fff;
    if header[9] != UDP || fragment != 0 || total < ihl + 8 || checksum(&[header]) != 0 {
        return None;
    }
    let udp = ip.get(ihl..total)?;
    let src_port = u16::from_be_bytes([udp[0], udp[1]]);
    let dst_port = u16::from_be_bytes([udp[2], udp[3]]);
    let len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    if src_port != SERVER_PORT || dst_port != CLIENT_PORT || len < 8 || len > udp.len() {
        return None;
    }
    // The UDP checksum is not checked: a datagram sent by this same host (a server on a veth,
    // a bridge or another macvlan of the parent) reaches the packet socket with the kernel's
    // partial checksum (CHECKSUM_PARTIAL, offloaded), which would drop good answers. The IP
    // header's checksum and the link's own frame check remain, and the message is checked in
    // full (`answer::check`).
    let payload = &udp[8..len];
    (payload.len() <= MAX_MESSAGE).then_some(payload)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A server's frame: ours with the ports swapped and the checksums redone.
    fn from_server(payload: &[u8]) -> Vec<u8> {
        let mut frame = build(
            [2, 0, 0, 0, 0, 2],
            BROADCAST_MAC,
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::BROADCAST,
            payload,
        );
        frame[34..36].copy_from_slice(&SERVER_PORT.to_be_bytes());
        frame[36..38].copy_from_slice(&CLIENT_PORT.to_be_bytes());
        frame[40..42].copy_from_slice(&[0, 0]);
        let sum = udp_checksum(
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::BROADCAST,
            &frame[34..],
        );
        frame[40..42].copy_from_slice(&sum.to_be_bytes());
        frame
    }

    #[test]
    fn round_trip() {
        let frame = from_server(b"hello dhcp");
        assert_eq!(parse(&frame), Some(&b"hello dhcp"[..]));
        // Our own frame goes the other way: not an answer.
        let ours = build(
            [2; 6],
            BROADCAST_MAC,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::BROADCAST,
            b"x",
        );
        assert_eq!(parse(&ours), None);
    }

    /// `frame` with its IP header checksum made right again.
    fn resum(mut frame: Vec<u8>) -> Vec<u8> {
        frame[24..26].copy_from_slice(&[0, 0]);
        let sum = checksum(&[&frame[14..34]]);
        frame[24..26].copy_from_slice(&sum.to_be_bytes());
        frame
    }

    #[test]
    fn broken_frames_are_dropped() {
        let good = from_server(b"hello dhcp");
        let mut bad_ip_sum = good.clone();
        bad_ip_sum[24] ^= 1;
        let mut fragment = good.clone();
        fragment[20] = 0x20; // more fragments
        let mut long = good.clone();
        long[16..18].copy_from_slice(&9000u16.to_be_bytes());
        let mut tcp = good.clone();
        tcp[23] = 6;
        let mut to_server = good.clone();
        to_server[36..38].copy_from_slice(&SERVER_PORT.to_be_bytes());
        let short = &good[..good.len() - 3];
        assert_eq!(
            parse(&resum(good.clone())),
            parse(&good),
            "resum keeps a good frame"
        );
        for frame in [
            bad_ip_sum,
            resum(fragment),
            resum(long),
            resum(tcp),
            resum(to_server),
            short.to_vec(),
            good[..20].to_vec(),
        ] {
            assert_eq!(parse(&frame), None, "{frame:?}");
        }
        // A partial UDP checksum, as a veth delivers a local sender's datagram: taken.
        let mut partial = good;
        partial[40..42].copy_from_slice(&[0x12, 0x34]);
        assert!(parse(&partial).is_some());
    }

    proptest! {
        #[test]
        fn arbitrary_frames_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1600)) {
            let _ = parse(&bytes);
        }
    }
}
