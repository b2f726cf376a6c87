//! Nexthop objects (`ip nexthop`, Linux 5.3+): a route that names one by id (`RTA_NH_ID`) carries
//! no gateway of its own when `net.ipv4.nexthop_compat_mode` is 0, so its router is read here.
//! rtnetlink has no message for `RTM_GETNEXTHOP`: the request and the answers are laid out by
//! hand (`include/uapi/linux/nexthop.h`), over a plain netlink socket of the caller's namespace.

use std::{
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use nix::errno::Errno;
use rtnetlink::sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

const RTM_NEWNEXTHOP: u16 = 104;
const RTM_GETNEXTHOP: u16 = 106;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NHA_ID: u16 = 1;
const NHA_GROUP: u16 = 2;
const NHA_OIF: u16 = 5;
const NHA_GATEWAY: u16 = 6;
const NLA_TYPE_MASK: u16 = !0xc000;
/// `struct nlmsghdr` and `struct nhmsg`.
const HEADER: usize = 16;
const NHMSG: usize = 8;
/// The most answers one dump may take: a host with more nexthop objects than this is not one
/// this reads whole (what is read is still checked).
const MAX_MESSAGES: usize = 65_536;

/// One nexthop object: a gateway (with the link it goes out of), or a group of others.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Nexthop {
    /// The object's id (`NHA_ID`), which routes name with `RTA_NH_ID`.
    pub id: u32,
    /// Its gateway, for a single nexthop.
    pub gateway: Option<IpAddr>,
    /// The index of the link it goes out of.
    pub oif: Option<u32>,
    /// The members' ids, for a group.
    pub group: Vec<u32>,
}

/// The dump request: `RTM_GETNEXTHOP`, every family.
pub(crate) fn dump_request(seq: u32) -> Vec<u8> {
    let len = (HEADER + NHMSG) as u32;
    let mut buf = Vec::with_capacity(HEADER + NHMSG);
    buf.extend_from_slice(&len.to_ne_bytes());
    buf.extend_from_slice(&RTM_GETNEXTHOP.to_ne_bytes());
    buf.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.extend_from_slice(&[0; NHMSG]);
    buf
}

/// What one datagram of the answer held.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// More datagrams follow.
    More,
    /// The dump is over.
    Done,
    /// The kernel refused (an errno, positive).
    Refused(i32),
}

fn u16_at(buf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(buf.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}

/// Parses one datagram of the dump's answer into `into`. Malformed bytes end the datagram: what
/// was whole before them is kept.
pub(crate) fn parse(buf: &[u8], into: &mut Vec<Nexthop>) -> Parsed {
    let mut at = 0;
    while let (Some(len), Some(kind)) = (u32_at(buf, at), u16_at(buf, at + 4)) {
        let len = len as usize;
        if len < HEADER || at + len > buf.len() {
            break;
        }
        let msg = &buf[at..at + len];
        match kind {
            NLMSG_DONE => return Parsed::Done,
            NLMSG_ERROR => {
                let code = u32_at(msg, HEADER).map_or(0, |c| c as i32);
                return if code == 0 {
                    Parsed::Done
                } else {
                    Parsed::Refused(-code)
                };
            }
            RTM_NEWNEXTHOP if msg.len() >= HEADER + NHMSG => {
                into.push(parse_nexthop(&msg[HEADER + NHMSG..]));
            }
            _ => {}
        }
        at += len.next_multiple_of(4);
    }
    Parsed::More
}

fn parse_nexthop(mut attrs: &[u8]) -> Nexthop {
    let mut nh = Nexthop::default();
    while let (Some(len), Some(kind)) = (u16_at(attrs, 0), u16_at(attrs, 2)) {
        let len = usize::from(len);
        if len < 4 || len > attrs.len() {
            break;
        }
        let value = &attrs[4..len];
        match kind & NLA_TYPE_MASK {
            NHA_ID => nh.id = u32_at(value, 0).unwrap_or(0),
            NHA_OIF => nh.oif = u32_at(value, 0),
            NHA_GATEWAY => {
                nh.gateway = match value.len() {
                    4 => <[u8; 4]>::try_from(value)
                        .ok()
                        .map(|b| IpAddr::V4(Ipv4Addr::from(b))),
                    16 => <[u8; 16]>::try_from(value)
                        .ok()
                        .map(|b| IpAddr::V6(Ipv6Addr::from(b))),
                    _ => None,
                };
            }
            // `struct nexthop_grp`: id (u32), weight, two reserved fields; 8 bytes each.
            NHA_GROUP => nh.group = value.chunks_exact(8).filter_map(|c| u32_at(c, 0)).collect(),
            _ => {}
        }
        attrs = attrs.get(len.next_multiple_of(4)..).unwrap_or_default();
    }
    nh
}

/// The gateways (with their links' indexes, 0 for none) that the nexthop `id` sends through:
/// its own, or its members' for a group.
pub fn gateways_of(nexthops: &[Nexthop], id: u32) -> Vec<(IpAddr, u32)> {
    let Some(nh) = nexthops.iter().find(|nh| nh.id == id) else {
        return Vec::new();
    };
    let own = nh.gateway.map(|gw| (gw, nh.oif.unwrap_or(0)));
    let members = nh
        .group
        .iter()
        .filter_map(|member| nexthops.iter().find(|nh| nh.id == *member))
        .filter_map(|m| m.gateway.map(|gw| (gw, m.oif.unwrap_or(0))));
    own.into_iter().chain(members).collect()
}

/// Every nexthop object of the calling thread's namespace (one dump). A kernel without them
/// (`EOPNOTSUPP`, `EINVAL`) has none.
pub fn nexthops() -> io::Result<Vec<Nexthop>> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    socket.send(&dump_request(1), 0)?;
    let mut found = Vec::new();
    for _ in 0..MAX_MESSAGES {
        let (buf, _) = socket.recv_from_full()?;
        match parse(&buf, &mut found) {
            Parsed::More => {}
            Parsed::Done => return Ok(found),
            Parsed::Refused(code)
                if code == Errno::EOPNOTSUPP as i32 || code == Errno::EINVAL as i32 =>
            {
                return Ok(Vec::new());
            }
            Parsed::Refused(code) => return Err(io::Error::from_raw_os_error(code)),
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(value);
        out.resize(out.len().next_multiple_of(4), 0);
        out
    }

    fn message(kind: u16, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&((HEADER + body.len()) as u32).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(&[0; 10]);
        out.extend_from_slice(body);
        out
    }

    fn nexthop(attrs: &[Vec<u8>]) -> Vec<u8> {
        let mut body = vec![2, 0, 0, 0, 0, 0, 0, 0];
        for a in attrs {
            body.extend_from_slice(a);
        }
        message(RTM_NEWNEXTHOP, &body)
    }

    #[test]
    fn the_request_is_a_dump_of_every_family() {
        let req = dump_request(7);
        assert_eq!(req.len(), 24);
        assert_eq!(u32_at(&req, 0), Some(24));
        assert_eq!(u16_at(&req, 4), Some(RTM_GETNEXTHOP));
        assert_eq!(u16_at(&req, 6), Some(NLM_F_REQUEST | NLM_F_DUMP));
        assert_eq!(u32_at(&req, 8), Some(7));
        assert_eq!(&req[16..], &[0; 8]);
    }

    #[test]
    fn gateways_groups_and_the_end_of_the_dump_are_read() {
        let mut buf = nexthop(&[
            attr(NHA_ID, &5u32.to_ne_bytes()),
            attr(NHA_OIF, &3u32.to_ne_bytes()),
            attr(NHA_GATEWAY, &[192, 168, 77, 1]),
        ]);
        let v6: Ipv6Addr = "fd00::1".parse().unwrap();
        buf.extend(nexthop(&[
            attr(NHA_ID, &6u32.to_ne_bytes()),
            attr(NHA_OIF, &4u32.to_ne_bytes()),
            attr(NHA_GATEWAY, &v6.octets()),
        ]));
        let mut group = Vec::new();
        for id in [5u32, 6] {
            group.extend_from_slice(&id.to_ne_bytes());
            group.extend_from_slice(&[1, 0, 0, 0]);
        }
        buf.extend(nexthop(&[
            attr(NHA_ID, &9u32.to_ne_bytes()),
            attr(NHA_GROUP, &group),
        ]));
        let mut found = Vec::new();
        assert_eq!(parse(&buf, &mut found), Parsed::More);
        assert_eq!(
            parse(&message(NLMSG_DONE, &[0; 4]), &mut found),
            Parsed::Done
        );
        assert_eq!(found.len(), 3);
        let v4 = IpAddr::V4(Ipv4Addr::new(192, 168, 77, 1));
        assert_eq!(gateways_of(&found, 5), [(v4, 3)]);
        assert_eq!(gateways_of(&found, 9), [(v4, 3), (IpAddr::V6(v6), 4)]);
        assert_eq!(gateways_of(&found, 1), []);
    }

    #[test]
    fn a_refusal_and_malformed_bytes_are_read_as_such() {
        let mut found = Vec::new();
        let refused = message(NLMSG_ERROR, &(-95i32).to_ne_bytes());
        assert_eq!(parse(&refused, &mut found), Parsed::Refused(95));
        // A length past the end: nothing read, no panic.
        let mut bad = nexthop(&[attr(NHA_ID, &5u32.to_ne_bytes())]);
        bad[0] = 200;
        assert_eq!(parse(&bad, &mut found), Parsed::More);
        // An attribute that claims more than there is.
        let mut short = nexthop(&[attr(NHA_GATEWAY, &[10, 0, 0, 1])]);
        let at = HEADER + NHMSG;
        short[at] = 60;
        assert_eq!(parse(&short, &mut found), Parsed::More);
        assert_eq!(found.last().and_then(|nh| nh.gateway), None);
    }
}
