//! The exchange driven over fake links: NAKs, notes, floods.

use std::{
    cell::{Cell, RefCell},
    collections::VecDeque,
    net::Ipv4Addr,
};

use dhcproto::{
    Decodable,
    v4::{Message, MessageType},
};

use super::*;
use crate::{
    ClientId, Config,
    fake::{MAC, OFFERED, SERVER, bytes, reply},
};

/// A server on a link of its own: an OFFER to each DISCOVER, a NAK to each of the first
/// `naks` REQUESTs, an ACK to the rest.
struct Naks {
    sent: RefCell<Vec<MessageType>>,
    queue: RefCell<VecDeque<Vec<u8>>>,
    naks: Cell<u32>,
}

impl Naks {
    fn new(naks: u32) -> Self {
        Self {
            sent: RefCell::new(Vec::new()),
            queue: RefCell::new(VecDeque::new()),
            naks: Cell::new(naks),
        }
    }
}

impl Transport<Outgoing, MAX_FRAME> for Naks {
    fn name(&self) -> &str {
        "nak0"
    }
    fn send(&self, out: &Outgoing) -> io::Result<()> {
        let msg = Message::from_bytes(&out.bytes).expect("decodes");
        let kind = msg.opts().msg_type().expect("a type");
        self.sent.borrow_mut().push(kind);
        let answer = match kind {
            MessageType::Discover => MessageType::Offer,
            MessageType::Request if self.naks.get() > 0 => {
                self.naks.set(self.naks.get() - 1);
                MessageType::Nak
            }
            _ => MessageType::Ack,
        };
        self.queue
            .borrow_mut()
            .push_back(bytes(&reply(&out.bytes, answer)));
        Ok(())
    }
    fn wait(&self, _until: Instant) -> io::Result<()> {
        Ok(())
    }
    fn next<'b>(&self, buf: &'b mut [u8; MAX_FRAME]) -> io::Result<Option<(&'b [u8], usize)>> {
        let Some(answer) = self.queue.borrow_mut().pop_front() else {
            return Ok(None);
        };
        buf[..answer.len()].copy_from_slice(&answer);
        Ok(Some((&buf[..answer.len()], answer.len())))
    }
}

#[test]
fn a_nak_of_the_request_starts_the_exchange_again() {
    use MessageType::{Discover, Request};
    let server = Naks::new(2);
    let mut client = Client::new(config(), 1);
    let lease = acquire_on(
        &mut client,
        &server,
        Duration::from_secs(5),
        &mut |_| Ok(()),
        &mut |_| {},
    )
    .expect("a lease");
    assert_eq!(lease.address, OFFERED);
    assert_eq!(
        *server.sent.borrow(),
        [Discover, Request, Discover, Request, Discover, Request]
    );
}

#[test]
fn a_naked_offer_is_told_to_the_note_as_refused_before_the_next_one() {
    let server = Naks::new(1);
    let mut client = Client::new(config(), 1);
    let mut told = Vec::new();
    let lease = acquire_on(
        &mut client,
        &server,
        Duration::from_secs(5),
        &mut |offered| {
            told.push(offered.map(|o| o.address));
            Ok(())
        },
        &mut |_| {},
    )
    .expect("a lease");
    assert_eq!(lease.address, OFFERED);
    // The first offer, its NAK (nothing held: no RELEASE for it), the second offer.
    assert_eq!(told, [Some(OFFERED), None, Some(OFFERED)]);
}

#[test]
fn a_nak_that_cannot_be_noted_ends_the_exchange_said_as_a_nak() {
    use MessageType::{Discover, Request};
    let server = Naks::new(1);
    let mut client = Client::new(config(), 1);
    let err = acquire_on(
        &mut client,
        &server,
        Duration::from_secs(5),
        &mut |offered| match offered {
            Some(_) => Ok(()),
            None => Err("disk full".into()),
        },
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::NakUnnoted { address, ref why } if address == OFFERED && why == "disk full"),
        "{err:?}"
    );
    let said = err.to_string();
    assert!(
        said.starts_with(&format!(
            "the NAK of the REQUEST for {OFFERED} could not be noted"
        )),
        "{said}"
    );
    // Nothing more went out after the NAK.
    assert_eq!(*server.sent.borrow(), [Discover, Request]);
}

#[test]
fn waiting_is_told_once_per_offer_after_its_request_and_before_the_answer() {
    use MessageType::{Discover, Request};
    let server = Naks::new(1);
    let mut client = Client::new(config(), 1);
    let mut told = Vec::new();
    let lease = acquire_on(
        &mut client,
        &server,
        Duration::from_secs(5),
        &mut |_| Ok(()),
        &mut |requested| {
            // The REQUEST is out, its answer not read yet.
            told.push((
                requested.address,
                server.sent.borrow().clone(),
                server.queue.borrow().len(),
            ));
        },
    )
    .expect("a lease");
    assert_eq!(lease.address, OFFERED);
    assert_eq!(
        told,
        [
            (OFFERED, vec![Discover, Request], 1),
            (OFFERED, vec![Discover, Request, Discover, Request], 1),
        ]
    );
}

#[test]
fn a_server_that_naks_every_request_is_given_up_on_at_once() {
    let server = Naks::new(u32::MAX);
    let mut client = Client::new(config(), 1);
    let started = Instant::now();
    let err = acquire_on(
        &mut client,
        &server,
        Duration::from_secs(5),
        &mut |_| Ok(()),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::Nak { server, .. } if server == SERVER),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    let requests = server
        .sent
        .borrow()
        .iter()
        .filter(|k| **k == MessageType::Request)
        .count();
    assert_eq!(requests, NAK_RESTARTS as usize + 1);
}

/// A socket whose queue is never empty: a refused frame each time it is read.
struct Flood {
    sent: RefCell<Vec<Outgoing>>,
}

impl Transport<Outgoing, MAX_FRAME> for Flood {
    fn name(&self) -> &str {
        "flood0"
    }
    fn send(&self, out: &Outgoing) -> io::Result<()> {
        self.sent.borrow_mut().push(out.clone());
        Ok(())
    }
    fn wait(&self, _until: Instant) -> io::Result<()> {
        Ok(())
    }
    fn next<'b>(&self, buf: &'b mut [u8; MAX_FRAME]) -> io::Result<Option<(&'b [u8], usize)>> {
        buf[..4].fill(0xee);
        Ok(Some((&buf[..4], 4)))
    }
}

/// A server that offers to a DISCOVER and acknowledges a REQUEST, keeping what it got.
struct Server {
    got: RefCell<Vec<MessageType>>,
    queue: RefCell<Vec<Vec<u8>>>,
}

impl Transport<Outgoing, MAX_FRAME> for Server {
    fn name(&self) -> &str {
        "srv0"
    }
    fn send(&self, out: &Outgoing) -> io::Result<()> {
        let msg = Message::from_bytes(&out.bytes).unwrap();
        let kind = match msg.opts().msg_type() {
            Some(MessageType::Discover) => MessageType::Offer,
            _ => MessageType::Ack,
        };
        self.got.borrow_mut().push(msg.opts().msg_type().unwrap());
        self.queue
            .borrow_mut()
            .push(bytes(&reply(&out.bytes, kind)));
        Ok(())
    }
    fn wait(&self, _until: Instant) -> io::Result<()> {
        Ok(())
    }
    fn next<'b>(&self, buf: &'b mut [u8; MAX_FRAME]) -> io::Result<Option<(&'b [u8], usize)>> {
        let Some(msg) = self.queue.borrow_mut().pop() else {
            return Ok(None);
        };
        buf[..msg.len()].copy_from_slice(&msg);
        Ok(Some((&buf[..msg.len()], msg.len())))
    }
}

fn config() -> Config {
    Config {
        mac: MAC,
        client_id: ClientId::derive(b"k", "lan", "c"),
        hostname: None,
        broadcast: true,
        subnet: None,
        retry_floor: Duration::from_secs(1),
    }
}

fn server() -> Server {
    Server {
        got: RefCell::new(Vec::new()),
        queue: RefCell::new(Vec::new()),
    }
}

#[test]
fn the_offer_is_noted_once_before_its_request_goes_out() {
    let server = server();
    let mut client = Client::new(config(), 1);
    let mut noted = Vec::new();
    let event = run_noting(
        &mut client,
        &server,
        Duration::from_secs(2),
        &mut |offered| {
            let offered = offered.cloned().expect("an offer, not a NAK");
            noted.push((offered, server.got.borrow().clone()));
            Ok(())
        },
        &mut |_| {},
    )
    .unwrap();
    assert!(
        matches!(event, Event::Bound(ref l) if l.address == OFFERED),
        "{event:?}"
    );
    assert_eq!(noted.len(), 1);
    let (offered, sent_before) = &noted[0];
    assert_eq!((offered.address, offered.server), (OFFERED, SERVER));
    assert_eq!(offered.length(), Duration::from_secs(100));
    assert_eq!(
        sent_before,
        &vec![MessageType::Discover],
        "noted after the REQUEST"
    );
}

#[test]
fn a_failed_note_sends_no_request() {
    let server = server();
    let mut client = Client::new(config(), 1);
    let err = run_noting(
        &mut client,
        &server,
        Duration::from_secs(2),
        &mut |_| Err("disk full".into()),
        &mut |_| panic!("no REQUEST went out"),
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::Unnoted { address, ref why } if address == OFFERED && why == "disk full"),
        "{err:?}"
    );
    assert_eq!(*server.got.borrow(), vec![MessageType::Discover]);
}

#[test]
fn a_flood_does_not_keep_the_client_from_renewing_at_t1() {
    let now = SystemTime::now();
    let lease = Lease {
        address: OFFERED,
        prefix: 24,
        router: None,
        routes: Vec::new(),
        dns: Vec::<Ipv4Addr>::new(),
        domain: None,
        server: SERVER,
        obtained: now,
        t1: now + Duration::from_millis(50),
        t2: now + Duration::from_secs(3600),
        expiry: now + Duration::from_secs(7200),
    };
    let config = Config {
        mac: MAC,
        client_id: ClientId::derive(b"k", "lan", "c"),
        hostname: None,
        broadcast: true,
        subnet: None,
        retry_floor: Duration::from_secs(1),
    };
    let mut client = Client::resume(config, lease, 1);
    let flood = Flood {
        sent: RefCell::new(Vec::new()),
    };
    let err = run(&mut client, &flood, Duration::from_millis(400)).unwrap_err();
    assert!(
        matches!(err, Error::Timeout { refused, .. } if refused > 0),
        "{err:?}"
    );
    assert_eq!(flood.sent.borrow().len(), 1, "T1 passed under the flood");
}
