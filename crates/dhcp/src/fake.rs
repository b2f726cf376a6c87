//! A server's answers, built for tests.

use std::net::Ipv4Addr;

use dhcproto::{
    Decodable, Encodable,
    v4::{DhcpOption, Message, MessageType, Opcode},
};

/// The client's MAC.
pub const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// The server.
pub const SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 7, 1);
/// The address offered.
pub const OFFERED: Ipv4Addr = Ipv4Addr::new(192, 168, 7, 50);

/// A reply to the request `request` (its xid, chaddr, client id), of `kind`.
pub fn reply(request: &[u8], kind: MessageType) -> Message {
    let req = Message::from_bytes(request).expect("our request decodes");
    let mut msg = Message::new_with_id(
        req.xid(),
        Ipv4Addr::UNSPECIFIED,
        if kind == MessageType::Nak {
            Ipv4Addr::UNSPECIFIED
        } else {
            OFFERED
        },
        SERVER,
        Ipv4Addr::UNSPECIFIED,
        &req.chaddr()[..6],
    );
    msg.set_opcode(Opcode::BootReply);
    let opts = msg.opts_mut();
    opts.insert(DhcpOption::MessageType(kind));
    opts.insert(DhcpOption::ServerIdentifier(SERVER));
    if kind != MessageType::Nak {
        opts.insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)));
        opts.insert(DhcpOption::Router(vec![SERVER]));
        opts.insert(DhcpOption::AddressLeaseTime(100));
        opts.insert(DhcpOption::DomainNameServer(vec![SERVER]));
    }
    msg
}

/// `msg` encoded.
pub fn bytes(msg: &Message) -> Vec<u8> {
    msg.to_vec().expect("encodes")
}

/// Appends a raw option before the end option of `bytes`.
pub fn with_raw_option(mut bytes: Vec<u8>, code: u8, data: &[u8]) -> Vec<u8> {
    let end = bytes
        .iter()
        .rposition(|b| *b == 255)
        .expect("an end option");
    bytes.truncate(end);
    bytes.push(code);
    bytes.push(data.len() as u8);
    bytes.extend_from_slice(data);
    bytes.push(255);
    bytes
}
