//! The client's messages, built with `dhcproto`: DISCOVER, REQUEST in its three forms (selecting,
//! renewing, rebinding) and RELEASE. Each carries the link's MAC as `chaddr`, the client
//! identifier (option 61) and, but RELEASE (and DECLINE), the hostname (option 12, and as the
//! client FQDN, option 81: RFC 4702, the name in canonical wire format, no DNS update asked of
//! the server beyond its own policy) and the parameter request list (options 1, 3, 6, 15, 51,
//! 54, 58, 59, 121).

use std::net::Ipv4Addr;

use dhcproto::{
    Decodable, Encodable,
    v4::{DhcpOption, Flags, MAGIC, Message, MessageType, OptionCode, UnknownOption},
};

use crate::{Error, Result, machine::Config};

/// The options asked for.
pub const PARAMETERS: [OptionCode; 9] = [
    OptionCode::SubnetMask,
    OptionCode::Router,
    OptionCode::DomainNameServer,
    OptionCode::DomainName,
    OptionCode::AddressLeaseTime,
    OptionCode::ServerIdentifier,
    OptionCode::Renewal,
    OptionCode::Rebinding,
    OptionCode::ClasslessStaticRoute,
];

/// Whether `name` can be sent as option 12: 1 to 63 bytes of letters, digits, `-` and `.`
/// (a container's hostname is a label; a dotted one is sent as given).
pub fn hostname_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.len() > 63 {
        return Some("a hostname has 1 to 63 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Some("a hostname has only letters, digits, '-' and '.'");
    }
    None
}

/// An Ethernet BOOTREQUEST with every other field zero and no option, decoded from its bytes.
/// `Message::new_with_id` gives the same message, but its `..Self::default()` first draws a
/// random xid (rand's thread RNG, seeded from the OS: five file syscalls, ~12 µs, on the first
/// message of a process, a hook's DISCOVER) only for it to be replaced.
fn blank() -> Result<Message> {
    let mut header = [0u8; 241];
    header[0] = 1; // op: BOOTREQUEST
    header[1] = 1; // htype: Ethernet
    header[236..240].copy_from_slice(&MAGIC);
    header[240] = 255; // the end option
    Message::from_bytes(&header).map_err(|e| Error::Build(e.to_string()))
}

fn base(config: &Config, xid: u32, ciaddr: Ipv4Addr, kind: MessageType) -> Result<Message> {
    let mut msg = blank()?;
    msg.set_xid(xid).set_ciaddr(ciaddr).set_chaddr(&config.mac);
    // The broadcast flag only while the client has no address (RFC 2131, 4.1).
    if config.broadcast && ciaddr.is_unspecified() {
        msg.set_flags(Flags::default().set_broadcast());
    }
    let opts = msg.opts_mut();
    opts.insert(DhcpOption::MessageType(kind));
    opts.insert(DhcpOption::ClientIdentifier(
        config.client_id.as_bytes().to_vec(),
    ));
    if kind != MessageType::Release && kind != MessageType::Decline {
        opts.insert(DhcpOption::MaxMessageSize(1500));
        opts.insert(DhcpOption::ParameterRequestList(PARAMETERS.to_vec()));
        if let Some(name) = &config.hostname {
            if let Some(problem) = hostname_problem(name) {
                return Err(Error::Build(format!("hostname {name:?}: {problem}")));
            }
            opts.insert(DhcpOption::Hostname(name.clone()));
            if let Some(fqdn) = client_fqdn(name) {
                opts.insert(fqdn);
            }
        }
    }
    Ok(msg)
}

/// Option 81 for `name` (checked by [`hostname_problem`]): flags with only E set (the name in
/// canonical wire format; S clear: the client does no DNS update and asks none, N clear: the
/// server follows its own policy), RCODE1 and RCODE2 255 (RFC 4702, 2.2), and the name as a
/// partial one (no root label: RFC 4702, 2.3.1), which a server completes with its own domain
/// or takes as it is, unless it ends with a dot. A name with an empty label goes as option 12
/// alone.
fn client_fqdn(name: &str) -> Option<DhcpOption> {
    let (body, full) = name
        .strip_suffix('.')
        .map_or((name, false), |body| (body, true));
    let mut data = vec![0x04, 0xff, 0xff];
    for label in body.split('.') {
        let len = u8::try_from(label.len())
            .ok()
            .filter(|l| (1..=63).contains(l))?;
        data.push(len);
        data.extend_from_slice(label.as_bytes());
    }
    if full {
        data.push(0);
    }
    Some(DhcpOption::Unknown(UnknownOption::new(
        OptionCode::ClientFQDN,
        data,
    )))
}

fn bytes(msg: &Message) -> Result<Vec<u8>> {
    msg.to_vec().map_err(|e| Error::Build(e.to_string()))
}

/// DHCPDISCOVER, broadcast.
pub fn discover(config: &Config, xid: u32) -> Result<Vec<u8>> {
    bytes(&base(
        config,
        xid,
        Ipv4Addr::UNSPECIFIED,
        MessageType::Discover,
    )?)
}

/// DHCPREQUEST in SELECTING: the offered address (option 50) from the chosen server (option 54),
/// broadcast, `ciaddr` zero.
pub fn select(config: &Config, xid: u32, address: Ipv4Addr, server: Ipv4Addr) -> Result<Vec<u8>> {
    let mut msg = base(config, xid, Ipv4Addr::UNSPECIFIED, MessageType::Request)?;
    msg.opts_mut()
        .insert(DhcpOption::RequestedIpAddress(address));
    msg.opts_mut().insert(DhcpOption::ServerIdentifier(server));
    bytes(&msg)
}

/// DHCPREQUEST in RENEWING (unicast to the lease's server) or REBINDING (broadcast): `ciaddr`
/// is the leased address, no option 50 or 54 (RFC 2131, 4.3.2).
pub fn extend(config: &Config, xid: u32, leased: Ipv4Addr) -> Result<Vec<u8>> {
    bytes(&base(config, xid, leased, MessageType::Request)?)
}

/// DHCPDECLINE of `address` (someone else answers for it) to `server`, which leased it:
/// `ciaddr` zero, option 50 naming the address, option 54 the server; broadcast from 0.0.0.0
/// (RFC 2131, 4.4.1: the client has no address it may use).
pub fn decline(config: &Config, xid: u32, address: Ipv4Addr, server: Ipv4Addr) -> Result<Vec<u8>> {
    let mut msg = base(config, xid, Ipv4Addr::UNSPECIFIED, MessageType::Decline)?;
    msg.opts_mut()
        .insert(DhcpOption::RequestedIpAddress(address));
    msg.opts_mut().insert(DhcpOption::ServerIdentifier(server));
    bytes(&msg)
}

/// DHCPRELEASE of `leased` to `server`: `ciaddr` set, option 54 naming the server; sent
/// unicast from the leased address, as servers (dnsmasq among them) require.
pub fn release(config: &Config, xid: u32, leased: Ipv4Addr, server: Ipv4Addr) -> Result<Vec<u8>> {
    let mut msg = base(config, xid, leased, MessageType::Release)?;
    msg.opts_mut().insert(DhcpOption::ServerIdentifier(server));
    bytes(&msg)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::ClientId;

    /// The options of an encoded message, as `(code, value)`, read by hand (no decoder of
    /// dhcproto's in the way).
    fn options(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut found = Vec::new();
        let mut at = 240;
        while at < bytes.len() {
            let code = bytes[at];
            if code == 255 {
                break;
            }
            if code == 0 {
                at += 1;
                continue;
            }
            let len = usize::from(bytes[at + 1]);
            found.push((code, bytes[at + 2..at + 2 + len].to_vec()));
            at += 2 + len;
        }
        found
    }

    fn config(hostname: Option<&str>) -> Config {
        Config {
            mac: [2, 0, 0, 0, 0, 1],
            client_id: ClientId::derive(b"k", "lan", "c"),
            hostname: hostname.map(str::to_owned),
            broadcast: false,
            subnet: None,
            retry_floor: Duration::from_secs(1),
        }
    }

    #[test]
    fn the_blank_message_is_the_one_dhcprotos_constructor_makes() {
        let ciaddr = Ipv4Addr::new(10, 0, 0, 5);
        let mac = [2, 0, 0, 0, 0, 1];
        let mut ours = blank().unwrap();
        ours.set_xid(7).set_ciaddr(ciaddr).set_chaddr(&mac);
        let made = Message::new_with_id(
            7,
            ciaddr,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            &mac,
        );
        assert_eq!(ours, made);
        assert_eq!(ours.to_vec().unwrap(), made.to_vec().unwrap());
    }

    #[test]
    fn the_hostname_goes_as_option_12_and_as_the_client_fqdn() {
        let sent = options(&discover(&config(Some("web1")), 7).unwrap());
        let find = |code| {
            sent.iter()
                .find(|(c, _)| *c == code)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(find(12).as_deref(), Some(&b"web1"[..]));
        // Flags: E alone; RCODE1 and RCODE2 255; "web1" in wire format.
        assert_eq!(
            find(81).as_deref(),
            Some(&[0x04, 0xff, 0xff, 4, b'w', b'e', b'b', b'1'][..])
        );
        let request = options(
            &select(
                &config(Some("a.b")),
                7,
                [10, 0, 0, 5].into(),
                [10, 0, 0, 1].into(),
            )
            .unwrap(),
        );
        let fqdn = request
            .iter()
            .find(|(c, _)| *c == 81)
            .map(|(_, v)| v.clone());
        assert_eq!(
            fqdn.as_deref(),
            Some(&[0x04, 0xff, 0xff, 1, b'a', 1, b'b'][..])
        );
        // A name ending with a dot is a full one (its root label sent); one with an empty
        // label goes as option 12 alone.
        let full = options(&discover(&config(Some("web1.")), 7).unwrap());
        let fqdn = full.iter().find(|(c, _)| *c == 81).map(|(_, v)| v.clone());
        assert_eq!(
            fqdn.as_deref(),
            Some(&[0x04, 0xff, 0xff, 4, b'w', b'e', b'b', b'1', 0][..])
        );
        let empty = options(&discover(&config(Some("a..b")), 7).unwrap());
        assert!(empty.iter().any(|(c, _)| *c == 12), "{empty:?}");
        assert!(!empty.iter().any(|(c, _)| *c == 81), "{empty:?}");
    }

    #[test]
    fn no_hostname_sends_neither() {
        let sent = options(&discover(&config(None), 7).unwrap());
        assert!(!sent.iter().any(|(c, _)| *c == 12 || *c == 81), "{sent:?}");
    }
}
