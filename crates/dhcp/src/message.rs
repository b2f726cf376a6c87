//! The client's messages, built with `dhcproto`: DISCOVER, REQUEST in its three forms (selecting,
//! renewing, rebinding) and RELEASE. Each carries the link's MAC as `chaddr`, the client
//! identifier (option 61) and, but RELEASE, the hostname (option 12) and the parameter request
//! list (options 1, 3, 6, 15, 51, 54, 58, 59, 121).

use std::net::Ipv4Addr;

use dhcproto::{
    Encodable,
    v4::{DhcpOption, Flags, Message, MessageType, Opcode, OptionCode},
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

fn base(config: &Config, xid: u32, ciaddr: Ipv4Addr, kind: MessageType) -> Result<Message> {
    let mut msg = Message::new_with_id(
        xid,
        ciaddr,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        &config.mac,
    );
    msg.set_opcode(Opcode::BootRequest);
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
        }
    }
    Ok(msg)
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
