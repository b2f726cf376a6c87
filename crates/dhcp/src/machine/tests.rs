use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dhcproto::{
    Decodable,
    v4::{DhcpOption, Message, MessageType, OptionCode},
};

use super::*;
use crate::fake::{self, MAC, OFFERED, SERVER};

fn config() -> Config {
    Config {
        mac: MAC,
        client_id: ClientId::derive(b"k", "lan", "c"),
        hostname: Some("web".into()),
        broadcast: true,
        subnet: None,
        retry_floor: Duration::from_secs(1),
    }
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_000_000 + secs)
}

fn sent(step: &Step) -> Message {
    let out = step.send.as_ref().expect("something sent");
    Message::from_bytes(&out.bytes).expect("decodes")
}

/// INIT → SELECTING → REQUESTING → BOUND at t=0.
fn bound() -> (Client, Lease) {
    let mut client = Client::new(config(), 42);
    let discover = client.tick(at(0)).expect("discover");
    let d = sent(&discover);
    assert_eq!(d.opts().msg_type(), Some(MessageType::Discover));
    assert!(d.flags().broadcast());
    assert_eq!(&d.chaddr()[..6], &MAC);
    assert!(matches!(
        d.opts().get(OptionCode::Hostname),
        Some(DhcpOption::Hostname(h)) if h == "web"
    ));
    let Some(DhcpOption::ParameterRequestList(asked)) =
        d.opts().get(OptionCode::ParameterRequestList)
    else {
        panic!("no parameter request list");
    };
    let codes: Vec<u8> = asked.iter().map(|c| u8::from(*c)).collect();
    assert_eq!(codes, [1, 3, 6, 15, 51, 54, 58, 59, 121]);
    let out = discover.send.as_ref().expect("sent");
    let offer = fake::bytes(&fake::reply(&out.bytes, MessageType::Offer));
    let request = client.receive(&offer, at(0)).expect("offer taken");
    let r = sent(&request);
    assert_eq!(r.opts().msg_type(), Some(MessageType::Request));
    assert_eq!(r.xid(), d.xid());
    assert!(
        matches!(r.opts().get(OptionCode::RequestedIpAddress), Some(DhcpOption::RequestedIpAddress(a)) if *a == OFFERED)
    );
    assert!(
        matches!(r.opts().get(OptionCode::ServerIdentifier), Some(DhcpOption::ServerIdentifier(s)) if *s == SERVER)
    );
    let mut ack = fake::reply(
        &request.send.as_ref().expect("sent").bytes,
        MessageType::Ack,
    );
    ack.opts_mut().insert(DhcpOption::Renewal(10));
    ack.opts_mut().insert(DhcpOption::Rebinding(20));
    let step = client
        .receive(&fake::bytes(&ack), at(0))
        .expect("ack taken");
    let Some(Event::Bound(lease)) = step.event else {
        panic!("not bound: {step:?}");
    };
    assert_eq!(lease.address, OFFERED);
    assert_eq!(lease.t1, at(10));
    assert_eq!(lease.t2, at(20));
    assert_eq!(lease.expiry, at(100));
    assert_eq!(step.deadline, at(10));
    (client, lease)
}

#[test]
fn dora_binds() {
    bound();
}

#[test]
fn renews_at_t1_unicast_and_rebinds_at_t2_broadcast() {
    let (mut client, lease) = bound();
    assert!(client.tick(at(5)).expect("tick").send.is_none());
    let renew = client.tick(at(10)).expect("renew");
    let out = renew.send.as_ref().expect("sent");
    assert_eq!(out.to, To::Server(SERVER));
    assert_eq!(out.from, OFFERED);
    let m = sent(&renew);
    assert_eq!(m.ciaddr(), OFFERED);
    assert!(!m.flags().broadcast(), "no broadcast flag with an address");
    assert!(m.opts().get(OptionCode::ServerIdentifier).is_none());
    assert!(m.opts().get(OptionCode::RequestedIpAddress).is_none());
    // Retransmitted at half the time left to T2.
    assert_eq!(renew.deadline, at(15));
    assert!(client.tick(at(12)).expect("tick").send.is_none());
    let again = client.tick(at(15)).expect("again");
    assert_eq!(sent(&again).xid(), m.xid());
    let rebind = client.tick(at(20)).expect("rebind");
    let out = rebind.send.as_ref().expect("sent");
    assert_eq!(out.to, To::Broadcast);
    assert_ne!(sent(&rebind).xid(), m.xid());
    assert_eq!(rebind.deadline, at(60));
    let expired = client.tick(at(100)).expect("expired");
    assert_eq!(expired.event, Some(Event::Expired(lease)));
    assert_eq!(client.state(), &State::Init);
}

#[test]
fn an_ack_while_renewing_extends() {
    let (mut client, _) = bound();
    let renew = client.tick(at(10)).expect("renew");
    let ack = fake::reply(&renew.send.as_ref().expect("sent").bytes, MessageType::Ack);
    let step = client.receive(&fake::bytes(&ack), at(11)).expect("ack");
    let Some(Event::Extended(lease)) = step.event else {
        panic!("not extended");
    };
    assert_eq!(lease.expiry, at(111));
    assert!(matches!(client.state(), State::Bound(_)));
}

#[test]
fn a_nak_goes_back_to_init() {
    let (mut client, _) = bound();
    let renew = client.tick(at(10)).expect("renew");
    let nak = fake::reply(&renew.send.as_ref().expect("sent").bytes, MessageType::Nak);
    let step = client.receive(&fake::bytes(&nak), at(11)).expect("nak");
    assert_eq!(step.event, Some(Event::Nak(SERVER)));
    assert_eq!(client.state(), &State::Init);
    let discover = client.tick(at(11)).expect("discover");
    assert_eq!(
        sent(&discover).opts().msg_type(),
        Some(MessageType::Discover)
    );
}

#[test]
fn refused_answers_change_nothing() {
    let mut client = Client::new(config(), 1);
    let discover = client.tick(at(0)).expect("discover");
    let before = client.state().clone();
    let mut offer = fake::reply(
        &discover.send.as_ref().expect("sent").bytes,
        MessageType::Offer,
    );
    offer.set_xid(offer.xid() ^ 1);
    assert!(client.receive(&fake::bytes(&offer), at(0)).is_err());
    let ack = fake::reply(
        &discover.send.as_ref().expect("sent").bytes,
        MessageType::Ack,
    );
    assert!(
        client.receive(&fake::bytes(&ack), at(0)).is_err(),
        "an ACK while selecting"
    );
    assert_eq!(client.state(), &before);
    // Nothing in flight while bound.
    let (mut client, _) = bound();
    assert!(client.receive(&fake::bytes(&ack), at(1)).is_err());
}

/// Review 27's finding 8: in REQUESTING, an ACK of another address than the requested one is
/// refused and the client keeps waiting.
#[test]
fn an_ack_of_another_address_is_refused_while_requesting() {
    let mut client = Client::new(config(), 1);
    let discover = client.tick(at(0)).expect("discover");
    let offer = fake::reply(
        &discover.send.as_ref().expect("sent").bytes,
        MessageType::Offer,
    );
    let request = client
        .receive(&fake::bytes(&offer), at(0))
        .expect("offer taken");
    let before = client.state().clone();
    let mut ack = fake::reply(
        &request.send.as_ref().expect("sent").bytes,
        MessageType::Ack,
    );
    let other = Ipv4Addr::new(192, 168, 7, 77);
    assert_ne!(other, OFFERED);
    ack.set_yiaddr(other);
    let err = client
        .receive(&fake::bytes(&ack), at(0))
        .expect_err("an ACK of another address");
    assert!(err.to_string().contains("192.168.7.77"), "{err}");
    assert_eq!(client.state(), &before);
    ack.set_yiaddr(OFFERED);
    let step = client
        .receive(&fake::bytes(&ack), at(0))
        .expect("the requested one");
    assert!(matches!(step.event, Some(Event::Bound(_))));
}

#[test]
fn selecting_retransmits_with_backoff_and_requesting_gives_up() {
    let mut client = Client::new(config(), 1);
    let first = client.tick(at(0)).expect("discover");
    assert_eq!(first.deadline, at(2));
    let second = client.tick(at(2)).expect("again");
    assert_eq!(sent(&second).xid(), sent(&first).xid());
    assert_eq!(second.deadline, at(6));
    let offer = fake::reply(
        &first.send.as_ref().expect("sent").bytes,
        MessageType::Offer,
    );
    let mut now = 2;
    let mut step = client
        .receive(&fake::bytes(&offer), at(now))
        .expect("offer");
    for _ in 0..3 {
        now = step
            .deadline
            .duration_since(at(0))
            .expect("later")
            .as_secs();
        step = client.tick(at(now)).expect("request again");
        assert_eq!(sent(&step).opts().msg_type(), Some(MessageType::Request));
    }
    now = step
        .deadline
        .duration_since(at(0))
        .expect("later")
        .as_secs();
    let restart = client.tick(at(now)).expect("discover again");
    assert_eq!(
        sent(&restart).opts().msg_type(),
        Some(MessageType::Discover)
    );
}

#[test]
fn a_stored_lease_resumes() {
    let (_, lease) = bound();
    let stored = serde_json::to_string(&lease).expect("serializes");
    let back: Lease = serde_json::from_str(&stored).expect("deserializes");
    assert_eq!(back, lease);
    // Restarted past T2: the first tick rebinds.
    let mut client = Client::resume(config(), back, 9);
    let step = client.tick(at(30)).expect("rebind");
    assert_eq!(step.send.as_ref().map(|o| o.to), Some(To::Broadcast));
    assert!(matches!(client.state(), State::Rebinding { .. }));
    // Restarted past expiry: expired, no message.
    let mut client = Client::resume(config(), lease.clone(), 9);
    let step = client.tick(at(200)).expect("expire");
    assert_eq!(step.event, Some(Event::Expired(lease)));
}

#[test]
fn release_from_the_lease_to_its_server() {
    let (mut client, _) = bound();
    let out = client
        .release()
        .expect("builds")
        .expect("a lease to release");
    assert_eq!(out.to, To::Server(SERVER));
    assert_eq!(out.from, OFFERED);
    let m = Message::from_bytes(&out.bytes).expect("decodes");
    assert_eq!(m.opts().msg_type(), Some(MessageType::Release));
    assert_eq!(m.ciaddr(), OFFERED);
    assert!(
        matches!(m.opts().get(OptionCode::ServerIdentifier), Some(DhcpOption::ServerIdentifier(s)) if *s == SERVER)
    );
    assert!(
        matches!(m.opts().get(OptionCode::ClientIdentifier), Some(DhcpOption::ClientIdentifier(id)) if id == client.config().client_id.as_bytes())
    );
    assert_eq!(client.state(), &State::Init);
    assert!(client.release().expect("nothing").is_none());
}

/// RFC 2131, 4.4.1: an address someone else answers for is declined, broadcast from 0.0.0.0
/// (never from the address itself), naming it (option 50) and its server (option 54).
#[test]
fn decline_broadcasts_the_address_and_its_server() {
    let (mut client, _) = bound();
    let out = client
        .decline()
        .expect("builds")
        .expect("a lease to decline");
    assert_eq!(out.to, To::Broadcast);
    assert_eq!(out.from, Ipv4Addr::UNSPECIFIED);
    let m = Message::from_bytes(&out.bytes).expect("decodes");
    assert_eq!(m.opts().msg_type(), Some(MessageType::Decline));
    assert_eq!(m.ciaddr(), Ipv4Addr::UNSPECIFIED);
    assert!(
        matches!(m.opts().get(OptionCode::RequestedIpAddress), Some(DhcpOption::RequestedIpAddress(a)) if *a == OFFERED)
    );
    assert!(
        matches!(m.opts().get(OptionCode::ServerIdentifier), Some(DhcpOption::ServerIdentifier(s)) if *s == SERVER)
    );
    assert!(m.opts().get(OptionCode::ParameterRequestList).is_none());
    assert_eq!(client.state(), &State::Init);
    assert!(client.decline().expect("nothing").is_none());
}

#[test]
fn a_bad_hostname_is_not_sent() {
    let mut c = config();
    c.hostname = Some("a b".into());
    assert!(Client::new(c, 1).tick(at(0)).is_err());
}
