//! A DHCPv6 server's answers, built for tests.

use std::net::Ipv6Addr;

use crate::v6::wire::{self, Builder};

/// The fake server's DUID (a DUID-LLT).
pub const SERVER_DUID: [u8; 14] = [0, 1, 0, 1, 1, 2, 3, 4, 2, 0, 0, 0, 0, 0x99];
/// The address it gives.
pub const OFFERED: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 7, 0, 0, 0, 0, 0x50);

/// What an answer holds; [`Spec::new`] is a good one.
#[derive(Debug, Clone)]
pub struct Spec {
    /// ADVERTISE or REPLY.
    pub kind: u8,
    /// The transaction; `None`: the request's.
    pub xid: Option<u32>,
    /// The client id; `None`: the request's echoed.
    pub client_id: Option<Vec<u8>>,
    /// The server id; empty: none.
    pub server_id: Vec<u8>,
    /// The IA's IAID; `None`: the request's.
    pub iaid: Option<u32>,
    /// T1, T2.
    pub timers: (u32, u32),
    /// The address and its preferred and valid lifetimes; `None`: no IAADDR.
    pub address: Option<(Ipv6Addr, u32, u32)>,
    /// A second address of the IA, after the first, if any.
    pub also: Option<(Ipv6Addr, u32, u32)>,
    /// The IA's status code.
    pub ia_status: Option<u16>,
    /// The message's status code.
    pub status: Option<u16>,
    /// Preference.
    pub preference: Option<u8>,
    /// Server unicast.
    pub unicast: Option<Ipv6Addr>,
}

impl Spec {
    /// An answer of `kind` giving [`OFFERED`] for 100 s (preferred 80 s), T1 40 s, T2 70 s.
    pub fn new(kind: u8) -> Self {
        Self {
            kind,
            xid: None,
            client_id: None,
            server_id: SERVER_DUID.to_vec(),
            iaid: None,
            timers: (40, 70),
            address: Some((OFFERED, 80, 100)),
            also: None,
            ia_status: None,
            status: None,
            preference: None,
            unicast: None,
        }
    }
}

fn find(request: &[u8], code: u16) -> Option<&[u8]> {
    wire::options(&request[wire::HEADER..], &mut 64)
        .expect("our request decodes")
        .into_iter()
        .find(|(c, _)| *c == code)
        .map(|(_, data)| data)
}

/// The answer `spec` to `request` (one of the client's messages).
pub fn answer(request: &[u8], spec: &Spec) -> Vec<u8> {
    let xid = spec
        .xid
        .unwrap_or(u32::from_be_bytes([0, request[1], request[2], request[3]]));
    let mut msg = Builder::new(spec.kind, xid);
    let client = spec.client_id.clone().unwrap_or_else(|| {
        find(request, wire::OPT_CLIENTID)
            .expect("a client id")
            .to_vec()
    });
    msg.option(wire::OPT_CLIENTID, &client);
    if !spec.server_id.is_empty() {
        msg.option(wire::OPT_SERVERID, &spec.server_id);
    }
    let iaid = spec
        .iaid
        .unwrap_or_else(|| wire::u32_at(find(request, wire::OPT_IA_NA).expect("an IA_NA"), 0));
    let mut ia = Vec::new();
    ia.extend_from_slice(&iaid.to_be_bytes());
    ia.extend_from_slice(&spec.timers.0.to_be_bytes());
    ia.extend_from_slice(&spec.timers.1.to_be_bytes());
    for (address, preferred, valid) in spec.address.into_iter().chain(spec.also) {
        let mut data = address.octets().to_vec();
        data.extend_from_slice(&preferred.to_be_bytes());
        data.extend_from_slice(&valid.to_be_bytes());
        wire::put_option(&mut ia, wire::OPT_IAADDR, &data);
    }
    if let Some(code) = spec.ia_status {
        wire::put_option(&mut ia, wire::OPT_STATUS_CODE, &code.to_be_bytes());
    }
    msg.option(wire::OPT_IA_NA, &ia);
    if let Some(code) = spec.status {
        let mut data = code.to_be_bytes().to_vec();
        data.extend_from_slice(b"because");
        msg.option(wire::OPT_STATUS_CODE, &data);
    }
    if let Some(preference) = spec.preference {
        msg.option(wire::OPT_PREFERENCE, &[preference]);
    }
    if let Some(unicast) = spec.unicast {
        msg.option(wire::OPT_UNICAST, &unicast.octets());
    }
    msg.finish()
}
