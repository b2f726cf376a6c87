//! A server's answer, decoded and checked before anything in it is used. Every refusal names
//! why; nothing here panics on any input (a proptest feeds it arbitrary bytes).

use std::{net::Ipv4Addr, time::Duration};

use dhcproto::{
    Decodable,
    v4::{self, DhcpOption, MessageType, OptionCode},
};

use crate::{Refused, lease::Route, routes};

/// The largest DHCP message (UDP payload) a client takes: an Ethernet frame's worth.
pub const MAX_MESSAGE: usize = 1500;
/// The most options one answer may carry (pads not counted).
pub const MAX_OPTIONS: usize = 96;
/// BOOTP's fixed header and the magic cookie, before the options.
const HEADER: usize = 240;
const COOKIE: [u8; 4] = [99, 130, 83, 99];

/// What the client expects of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect<'a> {
    /// The transaction in flight.
    pub xid: u32,
    /// The link's MAC, the request's `chaddr`.
    pub mac: [u8; 6],
    /// The client identifier sent (an answer that echoes another is not ours).
    pub client_id: &'a [u8],
    /// The network's `--subnet`, when it has one: the address must be inside.
    pub subnet: Option<(Ipv4Addr, u8)>,
    /// The server the client deals with (selected, or the lease's), if any.
    pub server: Option<Ipv4Addr>,
}

/// The kind of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// DHCPOFFER.
    Offer,
    /// DHCPACK.
    Ack,
    /// DHCPNAK.
    Nak,
}

/// A checked answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// What it is.
    pub kind: Kind,
    /// The server that sent it (option 54).
    pub server: Ipv4Addr,
    /// The address offered or acknowledged (none in a NAK).
    pub address: Ipv4Addr,
    /// The leased subnet's prefix length.
    pub prefix: u8,
    /// The first router, inside the leased subnet.
    pub router: Option<Ipv4Addr>,
    /// Classless static routes.
    pub routes: Vec<Route>,
    /// Name servers.
    pub dns: Vec<Ipv4Addr>,
    /// Domain name.
    pub domain: Option<String>,
    /// The lease time (option 51); `None` when absent (an OFFER may omit it, an ACK may not).
    pub lease: Option<Duration>,
    /// T1 (option 58) when given.
    pub t1: Option<Duration>,
    /// T2 (option 59) when given.
    pub t2: Option<Duration>,
}

/// What an option the client reads may hold: the exact length, or the unit its length is a
/// multiple of (then at least one unit, and at most one option's worth: 255 bytes).
#[derive(Clone, Copy)]
enum Shape {
    Exactly(usize),
    Units(usize),
}

/// The options the client reads, with their shapes. Every other option is dropped before the
/// message reaches the decoder: an option the client never uses cannot refuse, confuse or (with
/// a length the decoder assumes, as dhcproto's debug assertions do) crash it.
fn shape(code: u8) -> Option<Shape> {
    Some(match code {
        // Subnet mask, lease time, server identifier, T1, T2.
        1 | 51 | 54 | 58 | 59 => Shape::Exactly(4),
        // Message type.
        53 => Shape::Exactly(1),
        // Router, name servers.
        3 | 6 => Shape::Units(4),
        // Domain name, client identifier.
        15 | 61 => Shape::Units(1),
        _ => return None,
    })
}

/// The options of `bytes` walked with every length checked (parts of one option concatenated,
/// RFC 3396), and what is kept of them: the message rebuilt with only the options the client
/// reads, each checked against its shape, and option 121's raw data (decoded by [`routes`]).
fn scan(bytes: &[u8]) -> Result<(Vec<u8>, Vec<u8>), Refused> {
    if bytes.len() > MAX_MESSAGE {
        return Err(Refused::TooLarge {
            len: bytes.len(),
            max: MAX_MESSAGE,
        });
    }
    if bytes.len() < HEADER || bytes[236..HEADER] != COOKIE {
        return Err(Refused::Malformed("no DHCP header and magic cookie".into()));
    }
    let mut rest = &bytes[HEADER..];
    let mut count = 0;
    let mut kept: Vec<(u8, Vec<u8>)> = Vec::new();
    let mut routes = Vec::new();
    while let Some((&code, tail)) = rest.split_first() {
        match code {
            0 => rest = tail,
            255 => break,
            _ => {
                let Some((&len, tail)) = tail.split_first() else {
                    return Err(Refused::Malformed(format!("option {code} has no length")));
                };
                let Some(data) = tail.get(..usize::from(len)) else {
                    return Err(Refused::Malformed(format!(
                        "option {code} runs past the end"
                    )));
                };
                count += 1;
                if count > MAX_OPTIONS {
                    return Err(Refused::TooManyOptions {
                        count,
                        max: MAX_OPTIONS,
                    });
                }
                if code == 121 {
                    routes.extend_from_slice(data);
                } else if shape(code).is_some() {
                    match kept.iter_mut().find(|(c, _)| *c == code) {
                        Some((_, whole)) => whole.extend_from_slice(data),
                        None => kept.push((code, data.to_vec())),
                    }
                }
                rest = &tail[usize::from(len)..];
            }
        }
    }
    let mut clean = bytes[..HEADER].to_vec();
    for (code, data) in kept {
        let fits = match shape(code) {
            Some(Shape::Exactly(n)) => data.len() == n,
            Some(Shape::Units(n)) => !data.is_empty() && data.len() % n == 0 && data.len() <= 255,
            None => false,
        };
        if !fits {
            return Err(Refused::Malformed(format!(
                "option {code} has {} bytes",
                data.len()
            )));
        }
        clean.push(code);
        clean.push(data.len() as u8);
        clean.extend_from_slice(&data);
    }
    clean.push(255);
    Ok((clean, routes))
}

/// The mask's prefix length, if its ones are contiguous.
fn prefix_of(mask: Ipv4Addr) -> Result<u8, Refused> {
    let bits = u32::from(mask);
    if bits.leading_ones() + bits.trailing_zeros() != 32 {
        return Err(Refused::BadMask(mask));
    }
    Ok(bits.leading_ones() as u8)
}

/// Whether `ip` is inside `net/prefix`.
pub fn contains(net: Ipv4Addr, prefix: u8, ip: Ipv4Addr) -> bool {
    let mask = u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0);
    u32::from(net) & mask == u32::from(ip) & mask
}

/// The shortest prefix taken from a server's subnet mask when the network has no `--subnet`
/// that allows a wider one. Below it "the router is inside the leased subnet" means next to
/// nothing (a /0 holds every gateway) and the on-link route would cover a large part of the
/// internet (a /1 is half of it); no LAN a container joins is wider than a class A.
pub const MIN_PREFIX: u8 = 8;

/// Whether `address` is in a block no LAN host may hold: 0.0.0.0/8 ("this network"),
/// 127.0.0.0/8, 169.254.0.0/16 (link-local, never leased), 224.0.0.0/4 and 240.0.0.0/4
/// (multicast, reserved and broadcast).
fn reserved(address: Ipv4Addr) -> bool {
    let [first, ..] = address.octets();
    first == 0
        || address.is_loopback()
        || address.is_link_local()
        || address.is_multicast()
        || first >= 240
}

fn host_address(address: Ipv4Addr, prefix: u8) -> Result<(), Refused> {
    let bad = reserved(address)
        || (prefix < 31 && {
            let host =
                u32::from(address) & !u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            host == 0 || host == !u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
        });
    if bad {
        return Err(Refused::BadAddress(address));
    }
    Ok(())
}

/// Decodes and checks `bytes`, a DHCP message (the UDP payload), against `expect`.
pub fn check(bytes: &[u8], expect: &Expect<'_>) -> Result<Answer, Refused> {
    let (clean, raw_routes) = scan(bytes)?;
    let msg = v4::Message::from_bytes(&clean).map_err(|e| Refused::Malformed(e.to_string()))?;
    if msg.opcode() != v4::Opcode::BootReply {
        return Err(Refused::NotReply(u8::from(msg.opcode())));
    }
    if msg.xid() != expect.xid {
        return Err(Refused::Xid {
            got: msg.xid(),
            want: expect.xid,
        });
    }
    if msg.chaddr().get(..6) != Some(&expect.mac[..]) {
        let shown: Vec<String> = msg
            .chaddr()
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect();
        return Err(Refused::Chaddr(shown.join(":")));
    }
    let opts = msg.opts();
    if let Some(DhcpOption::ClientIdentifier(id)) = opts.get(OptionCode::ClientIdentifier)
        && id.as_slice() != expect.client_id
    {
        return Err(Refused::ClientId);
    }
    let kind = match opts.msg_type() {
        Some(MessageType::Offer) => Kind::Offer,
        Some(MessageType::Ack) => Kind::Ack,
        Some(MessageType::Nak) => Kind::Nak,
        other => return Err(Refused::MessageType(format!("{other:?}"))),
    };
    let Some(DhcpOption::ServerIdentifier(server)) = opts.get(OptionCode::ServerIdentifier) else {
        return Err(Refused::NoServerId);
    };
    let server = *server;
    if reserved(server) || (kind != Kind::Nak && server == msg.yiaddr()) {
        return Err(Refused::BadServer(server));
    }
    if let Some(want) = expect.server
        && want != server
    {
        return Err(Refused::Server { got: server, want });
    }
    let mut answer = Answer {
        kind,
        server,
        address: msg.yiaddr(),
        prefix: 32,
        router: None,
        routes: Vec::new(),
        dns: Vec::new(),
        domain: None,
        lease: None,
        t1: None,
        t2: None,
    };
    if kind == Kind::Nak {
        return Ok(answer);
    }
    let address = msg.yiaddr();
    let prefix = match (opts.get(OptionCode::SubnetMask), expect.subnet) {
        (Some(DhcpOption::SubnetMask(mask)), _) => prefix_of(*mask)?,
        (_, Some((_, prefix))) => prefix,
        _ => return Err(Refused::NoMask),
    };
    if prefix < MIN_PREFIX && expect.subnet.is_none_or(|(_, p)| p > prefix) {
        return Err(Refused::WideMask(prefix));
    }
    host_address(address, prefix)?;
    if let Some((net, p)) = expect.subnet
        && (!contains(net, p, address) || prefix < p)
    {
        return Err(Refused::OutsideSubnet {
            address,
            subnet: format!("{net}/{p}"),
        });
    }
    let leased = format!("{address}/{prefix}");
    let inside = |gateway: Ipv4Addr| {
        if contains(address, prefix, gateway) && gateway != address {
            Ok(gateway)
        } else {
            Err(Refused::GatewayOutside {
                gateway,
                subnet: leased.clone(),
            })
        }
    };
    if let Some(DhcpOption::Router(routers)) = opts.get(OptionCode::Router)
        && let Some(first) = routers.first()
    {
        answer.router = Some(inside(*first)?);
    }
    let routes = routes::decode(&raw_routes)?;
    for route in &routes {
        if !route.gateway.is_unspecified() {
            inside(route.gateway)?;
        }
    }
    if let Some(DhcpOption::DomainNameServer(dns)) = opts.get(OptionCode::DomainNameServer) {
        answer.dns = dns.iter().copied().take(8).collect();
    }
    if let Some(DhcpOption::DomainName(domain)) = opts.get(OptionCode::DomainName) {
        answer.domain = Some(domain.chars().take(253).collect());
    }
    let secs = |code| match opts.get(code) {
        Some(
            DhcpOption::AddressLeaseTime(s) | DhcpOption::Renewal(s) | DhcpOption::Rebinding(s),
        ) => Some(Duration::from_secs(u64::from(*s))),
        _ => None,
    };
    answer.lease = secs(OptionCode::AddressLeaseTime);
    answer.t1 = secs(OptionCode::Renewal);
    answer.t2 = secs(OptionCode::Rebinding);
    if kind == Kind::Ack && answer.lease.is_none_or(|l| l.is_zero()) {
        return Err(Refused::NoLeaseTime);
    }
    answer.address = address;
    answer.prefix = prefix;
    answer.routes = routes;
    Ok(answer)
}

/// T1 and T2 for a lease of `lease`: the server's when they make sense (0 < T1 < T2 < lease),
/// else RFC 2131's defaults, 0.5 and 0.875 of the lease.
pub fn timers(lease: Duration, t1: Option<Duration>, t2: Option<Duration>) -> (Duration, Duration) {
    let default_t2 = lease.mul_f64(0.875);
    let t2 = t2
        .filter(|t| !t.is_zero() && *t < lease)
        .unwrap_or(default_t2);
    let t1 = t1
        .filter(|t| !t.is_zero() && *t < t2)
        .unwrap_or_else(|| lease.mul_f64(0.5).min(t2));
    (t1, t2)
}

#[cfg(test)]
mod tests;
