//! A server's ADVERTISE or REPLY, decoded and checked before anything in it is used: its size
//! and option count bounded, every option's length checked against what it must hold, the
//! transaction, the client identifier echoed (ours), a server identifier present (the
//! expected one when the client deals with one), the IA_NA of our IAID, its timers, each
//! address a host's and inside the `--subnet` when there is one. Nothing here panics on any
//! input (a proptest feeds it arbitrary bytes, and every option code with every short length).

use std::net::Ipv6Addr;

use crate::v6::{
    Refused,
    wire::{self, HEADER},
};

/// The largest message a client takes (the UDP payload of an Ethernet frame, and more).
pub const MAX_MESSAGE: usize = 1500;
/// The most options one answer may carry, nested ones counted.
pub const MAX_OPTIONS: usize = 96;
/// The most addresses taken of one IA.
pub const MAX_ADDRESSES: usize = 8;
/// The most name servers taken.
pub const MAX_DNS: usize = 8;
/// A DUID's largest size (RFC 8415, 11.1: 128 bytes and its type).
pub const MAX_DUID: usize = 130;

/// What the client expects of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect<'a> {
    /// The transaction in flight (24 bits).
    pub xid: u32,
    /// The message type that answers it ([`wire::ADVERTISE`] or [`wire::REPLY`]).
    pub kind: u8,
    /// Our DUID (the client identifier sent).
    pub duid: &'a [u8],
    /// Our IA_NA's IAID.
    pub iaid: u32,
    /// The server the client deals with (its DUID), if any.
    pub server: Option<&'a [u8]>,
    /// The network's `--subnet`, when it has one: an address must be inside.
    pub subnet: Option<(Ipv6Addr, u8)>,
}

/// A status code (RFC 8415, 21.13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Success (also when no status code was given).
    Success,
    /// UnspecFail.
    UnspecFail,
    /// NoAddrsAvail.
    NoAddrsAvail,
    /// NoBinding.
    NoBinding,
    /// NotOnLink.
    NotOnLink,
    /// UseMulticast.
    UseMulticast,
    /// Another code.
    Other(u16),
}

impl Status {
    fn of(code: u16) -> Self {
        match code {
            0 => Self::Success,
            1 => Self::UnspecFail,
            2 => Self::NoAddrsAvail,
            3 => Self::NoBinding,
            4 => Self::NotOnLink,
            5 => Self::UseMulticast,
            n => Self::Other(n),
        }
    }

    /// The code's number.
    pub fn code(self) -> u16 {
        match self {
            Self::Success => 0,
            Self::UnspecFail => 1,
            Self::NoAddrsAvail => 2,
            Self::NoBinding => 3,
            Self::NotOnLink => 4,
            Self::UseMulticast => 5,
            Self::Other(n) => n,
        }
    }
}

/// An address of the IA with its lifetimes, in seconds (`u32::MAX`: infinity).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IaAddress {
    /// The address.
    pub address: Ipv6Addr,
    /// Preferred lifetime.
    pub preferred: u32,
    /// Valid lifetime (0: the server takes the address back).
    pub valid: u32,
}

/// A checked answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// [`wire::ADVERTISE`] or [`wire::REPLY`].
    pub kind: u8,
    /// The server's DUID.
    pub server_id: Vec<u8>,
    /// Its preference (0 when not given).
    pub preference: u8,
    /// The message's status code (and the server's text, cut to 128 characters).
    pub status: (Status, String),
    /// The IA_NA of our IAID: T1, T2 (seconds), its status, its addresses (those whose
    /// preferred lifetime exceeds the valid one dropped, RFC 8415, 18.2.10.1).
    pub ia: Option<Ia>,
    /// The server's unicast address (option 12), if it allows unicast.
    pub unicast: Option<Ipv6Addr>,
    /// Name servers (option 23).
    pub dns: Vec<Ipv6Addr>,
    /// Whether the answer carries a rapid commit option.
    pub rapid_commit: bool,
}

/// The IA_NA of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ia {
    /// T1, seconds.
    pub t1: u32,
    /// T2, seconds.
    pub t2: u32,
    /// The IA's status code.
    pub status: Status,
    /// Its addresses.
    pub addresses: Vec<IaAddress>,
}

fn ipv6(data: &[u8]) -> Option<Ipv6Addr> {
    let octets: [u8; 16] = data.get(..16)?.try_into().ok()?;
    Some(Ipv6Addr::from(octets))
}

/// Whether `ip` is inside `net/prefix`.
pub fn contains(net: Ipv6Addr, prefix: u8, ip: Ipv6Addr) -> bool {
    let mask = u128::MAX
        .checked_shl(128 - u32::from(prefix.min(128)))
        .unwrap_or(0);
    u128::from(net) & mask == u128::from(ip) & mask
}

/// Whether `address` can be one host's on the wire: not unspecified, loopback, multicast,
/// nor an IPv4-mapped `::ffff:a.b.c.d` (an IPv6 socket would send to the IPv4 address).
fn unicast(address: Ipv6Addr) -> bool {
    !(address.is_unspecified()
        || address.is_loopback()
        || address.is_multicast()
        || address.to_ipv4_mapped().is_some())
}

fn host_address(address: Ipv6Addr) -> Result<(), Refused> {
    let link_local = address.segments()[0] & 0xffc0 == 0xfe80;
    if !unicast(address) || link_local {
        return Err(Refused::BadAddress(address));
    }
    Ok(())
}

fn status_of(data: &[u8]) -> Result<(Status, String), Refused> {
    let Some(code) = data.get(..2) else {
        return Err(Refused::Malformed(format!(
            "status code of {} bytes",
            data.len()
        )));
    };
    let text = printable(&String::from_utf8_lossy(&data[2..]));
    Ok((Status::of(u16::from_be_bytes([code[0], code[1]])), text))
}

/// A server's text as errors and logs may show it: its first 128 characters, with anything
/// but printable ASCII escaped (`\\n`, `\\u{1b}`): a server forges no log line or terminal
/// escape.
fn printable(text: &str) -> String {
    text.chars()
        .take(128)
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c.to_string()
            } else {
                c.escape_default().to_string()
            }
        })
        .collect()
}

fn exactly(code: u16, data: &[u8], len: usize) -> Result<&[u8], Refused> {
    if data.len() != len {
        return Err(Refused::Malformed(format!(
            "option {code} has {} bytes, not {len}",
            data.len()
        )));
    }
    Ok(data)
}

/// The IA_NA `data` (its IAID already ours), checked.
fn ia_of(data: &[u8], expect: &Expect<'_>, budget: &mut usize) -> Result<Ia, Refused> {
    let (t1, t2) = (wire::u32_at(data, 4), wire::u32_at(data, 8));
    if t2 != 0 && t1 > t2 {
        return Err(Refused::Timers { t1, t2 });
    }
    let mut ia = Ia {
        t1,
        t2,
        status: Status::Success,
        addresses: Vec::new(),
    };
    for (code, inner) in wire::options(&data[12..], budget)? {
        match code {
            wire::OPT_IAADDR => {
                if inner.len() < 24 {
                    return Err(Refused::Malformed(format!(
                        "IAADDR of {} bytes",
                        inner.len()
                    )));
                }
                // The IAADDR's own options (a status code) are walked for the count only.
                wire::options(&inner[24..], budget)?;
                let address = ipv6(inner).ok_or(Refused::Malformed("IAADDR".into()))?;
                host_address(address)?;
                if let Some((net, prefix)) = expect.subnet
                    && !contains(net, prefix, address)
                {
                    return Err(Refused::OutsideSubnet {
                        address,
                        subnet: format!("{net}/{prefix}"),
                    });
                }
                let (preferred, valid) = (wire::u32_at(inner, 16), wire::u32_at(inner, 20));
                if preferred <= valid && ia.addresses.len() < MAX_ADDRESSES {
                    ia.addresses.push(IaAddress {
                        address,
                        preferred,
                        valid,
                    });
                }
            }
            wire::OPT_STATUS_CODE => ia.status = status_of(inner)?.0,
            _ => {}
        }
    }
    Ok(ia)
}

/// Decodes and checks `bytes`, a DHCPv6 message (the UDP payload), against `expect`.
pub fn check(bytes: &[u8], expect: &Expect<'_>) -> Result<Answer, Refused> {
    if bytes.len() > MAX_MESSAGE {
        return Err(Refused::TooLarge {
            len: bytes.len(),
            max: MAX_MESSAGE,
        });
    }
    let Some(header) = bytes.get(..HEADER) else {
        return Err(Refused::Malformed(format!(
            "{} bytes, no header",
            bytes.len()
        )));
    };
    let xid = u32::from_be_bytes([0, header[1], header[2], header[3]]);
    if header[0] != expect.kind {
        if expect.kind == wire::ADVERTISE && header[0] == wire::REPLY {
            return Err(Refused::RapidCommit);
        }
        return Err(Refused::MessageType(header[0]));
    }
    if xid != expect.xid & 0x00ff_ffff {
        return Err(Refused::Xid {
            got: xid,
            want: expect.xid & 0x00ff_ffff,
        });
    }
    let mut budget = MAX_OPTIONS;
    let options = wire::options(&bytes[HEADER..], &mut budget)?;
    let mut answer = Answer {
        kind: header[0],
        server_id: Vec::new(),
        preference: 0,
        status: (Status::Success, String::new()),
        ia: None,
        unicast: None,
        dns: Vec::new(),
        rapid_commit: false,
    };
    let (mut client_id, mut server_id) = (None, None);
    for (code, data) in options {
        match code {
            wire::OPT_CLIENTID | wire::OPT_SERVERID => {
                let slot = if code == wire::OPT_CLIENTID {
                    &mut client_id
                } else {
                    &mut server_id
                };
                if slot.is_some() {
                    return Err(Refused::Malformed(format!("option {code} twice")));
                }
                *slot = Some(data);
            }
            wire::OPT_IA_NA => {
                if data.len() < 12 {
                    return Err(Refused::Malformed(format!("IA_NA of {} bytes", data.len())));
                }
                if wire::u32_at(data, 0) != expect.iaid {
                    // Another IA's: walked for the count only.
                    wire::options(&data[12..], &mut budget)?;
                    continue;
                }
                if answer.ia.is_some() {
                    return Err(Refused::Malformed("our IA_NA twice".into()));
                }
                answer.ia = Some(ia_of(data, expect, &mut budget)?);
            }
            wire::OPT_PREFERENCE => answer.preference = exactly(code, data, 1)?[0],
            // A server address no unicast can reach (::, ::1, ff02::1, ::ffff:a.b.c.d) is
            // ignored: RENEW and RELEASE go to all servers, as without the option.
            wire::OPT_UNICAST => {
                answer.unicast = ipv6(exactly(code, data, 16)?).filter(|ip| unicast(*ip));
            }
            wire::OPT_STATUS_CODE => answer.status = status_of(data)?,
            wire::OPT_RAPID_COMMIT => {
                exactly(code, data, 0)?;
                answer.rapid_commit = true;
            }
            wire::OPT_DNS_SERVERS => {
                if data.is_empty() || data.len() % 16 != 0 {
                    return Err(Refused::Malformed(format!(
                        "name servers of {} bytes",
                        data.len()
                    )));
                }
                answer.dns = data
                    .chunks_exact(16)
                    .filter_map(ipv6)
                    .take(MAX_DNS)
                    .collect();
            }
            _ => {}
        }
    }
    if client_id != Some(expect.duid) {
        return Err(Refused::ClientId);
    }
    let server_id = server_id
        .filter(|id| (3..=MAX_DUID).contains(&id.len()))
        .ok_or(Refused::NoServerId)?;
    if let Some(want) = expect.server
        && want != server_id
    {
        return Err(Refused::Server);
    }
    answer.server_id = server_id.to_vec();
    Ok(answer)
}

/// The first usable address an ADVERTISE offers (none when the IA says NoAddrsAvail).
pub(crate) fn first_address(answer: &Answer) -> Option<Ipv6Addr> {
    let ia = answer.ia.as_ref()?;
    if answer.status.0 != Status::Success || ia.status != Status::Success {
        return None;
    }
    ia.addresses.iter().find(|a| a.valid > 0).map(|a| a.address)
}

/// The address of `answer` to take: `want` if given (valid), else the first valid one (the
/// IA's status is the caller's to read).
pub(crate) fn pick(answer: &Answer, want: Ipv6Addr) -> Option<IaAddress> {
    let ia = answer.ia.as_ref()?;
    let valid = ia.addresses.iter().filter(|a| a.valid > 0);
    valid
        .clone()
        .find(|a| a.address == want)
        .or_else(|| valid.clone().next())
        .copied()
}

#[cfg(test)]
mod tests;
