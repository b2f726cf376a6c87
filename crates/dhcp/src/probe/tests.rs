use std::time::{Duration, Instant};

use dhcproto::{
    Decodable,
    v4::{DhcpOption, Message, MessageType, OptionCode},
};

use super::*;
use crate::fake::{self, MAC, OFFERED, SERVER};

fn config(subnet: Option<(Ipv4Addr, u8)>) -> Config {
    Config {
        mac: MAC,
        client_id: ClientId::derive(b"k", "doctor", "lan0"),
        hostname: None,
        broadcast: false,
        subnet,
        retry_floor: Duration::from_secs(1),
    }
}

fn from(server: Ipv4Addr, mut msg: Message) -> Vec<u8> {
    msg.opts_mut().insert(DhcpOption::ServerIdentifier(server));
    fake::bytes(&msg)
}

#[test]
fn the_schedule_resends_each_second_and_stops_at_the_deadline() {
    let t0 = Instant::now();
    let ms = |n| t0 + Duration::from_millis(n);
    let mut s = Schedule::new(t0, Duration::from_millis(2500));
    assert_eq!(s.due(t0), Due::Send);
    assert_eq!(s.due(ms(10)), Due::Wait(ms(1000)));
    assert_eq!(s.due(ms(1000)), Due::Send);
    assert_eq!(s.due(ms(2000)), Due::Send);
    // The next send would be at 3 s: the wait ends at the deadline instead.
    assert_eq!(s.due(ms(2100)), Due::Wait(ms(2500)));
    assert_eq!(s.due(ms(2500)), Due::Done);
    assert_eq!(s.sent(), 3);
    assert_eq!(s.elapsed(ms(2500)), Duration::from_millis(2500));
}

#[test]
fn the_schedule_lingers_after_the_first_answer_within_the_deadline() {
    let t0 = Instant::now();
    let ms = |n| t0 + Duration::from_millis(n);
    let mut s = Schedule::new(t0, Duration::from_secs(3));
    assert_eq!(s.due(t0), Due::Send);
    s.answered(ms(200));
    s.answered(ms(250)); // the first answer counts
    assert_eq!(s.due(ms(300)), Due::Wait(ms(500)));
    // No resend while lingering.
    assert_eq!(s.due(ms(499)), Due::Wait(ms(500)));
    assert_eq!(s.due(ms(500)), Due::Done);
    assert_eq!(s.sent(), 1);
    // An answer just before the deadline: the linger is cut by it.
    let mut s = Schedule::new(t0, Duration::from_secs(1));
    assert_eq!(s.due(t0), Due::Send);
    s.answered(ms(900));
    assert_eq!(s.due(ms(901)), Due::Wait(ms(1000)));
    assert_eq!(s.due(ms(1000)), Due::Done);
}

#[test]
fn the_discover_is_ours_and_the_only_message() {
    let probe = Probe::new(config(None), 0x1234_5678);
    let out = probe.discover().unwrap();
    assert_eq!(out.to, To::Broadcast);
    assert_eq!(out.from, Ipv4Addr::UNSPECIFIED);
    let msg = Message::from_bytes(&out.bytes).unwrap();
    assert_eq!(msg.opts().msg_type(), Some(MessageType::Discover));
    assert_eq!(msg.xid(), 0x1234_5678);
    assert_eq!(&msg.chaddr()[..6], &MAC);
    assert!(matches!(
        msg.opts().get(OptionCode::ClientIdentifier),
        Some(DhcpOption::ClientIdentifier(id)) if id.as_slice() == config(None).client_id.as_bytes()
    ));
    // Nothing asks for an address or names a server: no server commits anything to it.
    assert!(msg.opts().get(OptionCode::RequestedIpAddress).is_none());
    assert!(msg.opts().get(OptionCode::ServerIdentifier).is_none());
}

#[test]
fn offers_are_kept_once_per_server_and_the_rest_counted() {
    let mut probe = Probe::new(config(None), 7);
    let discover = probe.discover().unwrap().bytes;
    let offer = fake::reply(&discover, MessageType::Offer);
    assert!(probe.receive(&fake::bytes(&offer)));
    // The same server again (an answer to the resent DISCOVER): not a second offer, not refused.
    assert!(!probe.receive(&fake::bytes(&offer)));
    let other = Ipv4Addr::new(192, 168, 7, 2);
    assert!(probe.receive(&from(other, offer.clone())));
    // An ACK to a DISCOVER, another transaction, another MAC: refused.
    assert!(!probe.receive(&fake::bytes(&fake::reply(&discover, MessageType::Ack))));
    let mut wrong_xid = offer.clone();
    wrong_xid.set_xid(8);
    assert!(!probe.receive(&fake::bytes(&wrong_xid)));
    let mut other_mac = offer.clone();
    other_mac.set_chaddr(&[2, 9, 9, 9, 9, 9]);
    assert!(!probe.receive(&fake::bytes(&other_mac)));
    assert!(!probe.receive(b"garbage"));
    let heard = probe.heard();
    assert_eq!(heard.refused, 4);
    assert!(matches!(heard.last, Some(Refused::Malformed(_))));
    assert_eq!(heard.offers.len(), 2);
    let first = &heard.offers[0];
    assert_eq!(
        (first.server, first.address, first.prefix, first.router),
        (SERVER, OFFERED, 24, Some(SERVER))
    );
    assert_eq!(first.lease, Some(Duration::from_secs(100)));
    assert_eq!(first.dns, [SERVER]);
    assert_eq!(heard.offers[1].server, other);
}

#[test]
fn an_offer_outside_the_subnet_is_refused() {
    let mut probe = Probe::new(config(Some((Ipv4Addr::new(10, 0, 0, 0), 8))), 7);
    let discover = probe.discover().unwrap().bytes;
    assert!(!probe.receive(&fake::bytes(&fake::reply(&discover, MessageType::Offer))));
    let heard = probe.heard();
    assert!(heard.offers.is_empty());
    assert!(matches!(heard.last, Some(Refused::OutsideSubnet { .. })));
}

#[test]
fn a_flood_of_servers_keeps_a_bounded_list() {
    let mut probe = Probe::new(config(None), 7);
    let discover = probe.discover().unwrap().bytes;
    let offer = fake::reply(&discover, MessageType::Offer);
    for i in 0..50u8 {
        probe.receive(&from(Ipv4Addr::new(192, 168, 7, 100 + i), offer.clone()));
    }
    assert_eq!(probe.heard().offers.len(), MAX_ANSWERS);
}

#[test]
fn the_probe_mac_is_stable_local_and_unicast() {
    let id = ClientId::derive(b"host", "oci-macvlan doctor", "eth0");
    let mac = mac_of(&id);
    assert_eq!(
        mac,
        mac_of(&ClientId::derive(b"host", "oci-macvlan doctor", "eth0"))
    );
    assert_ne!(
        mac,
        mac_of(&ClientId::derive(b"host", "oci-macvlan doctor", "eth1"))
    );
    assert_eq!(mac[0] & 0x03, 0x02, "locally administered, unicast");
}
