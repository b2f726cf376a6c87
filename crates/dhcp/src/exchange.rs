//! The machine driven over a link's socket under one deadline: acquiring a lease, extending it,
//! releasing it. The loop is the crate's `drive` module's (shared with v6); here are the v4 client's and
//! packet socket's sides of it.

use std::{
    io,
    time::{Duration, Instant, SystemTime},
};

use crate::{
    Client, Error, Event, Lease, Outgoing, Refused, Result, Step,
    drive::{self, Machine, Transport, Turn},
    socket::{MAX_FRAME, OnLink, PacketLink},
};

impl Transport<Outgoing, MAX_FRAME> for PacketLink {
    fn name(&self) -> &str {
        &self.link().name
    }
    fn send(&self, out: &Outgoing) -> io::Result<()> {
        PacketLink::send(self, out)
    }
    fn wait(&self, until: Instant) -> io::Result<()> {
        PacketLink::wait(self, until)
    }
    fn next<'b>(&self, buf: &'b mut [u8; MAX_FRAME]) -> io::Result<Option<(&'b [u8], usize)>> {
        Ok(PacketLink::next(self, buf)?.map(|frame| (frame, frame.len())))
    }
}

fn turn(step: Step) -> Turn<Outgoing, Event> {
    Turn {
        send: step.send,
        event: step.event,
        deadline: step.deadline,
    }
}

impl Machine for Client {
    type Out = Outgoing;
    type Event = Event;
    type Refused = Refused;
    type Error = Error;
    fn tick(&mut self, now: SystemTime) -> Result<Turn<Outgoing, Event>> {
        Client::tick(self, now).map(turn)
    }
    fn receive(
        &mut self,
        message: &[u8],
        _len: usize,
        now: SystemTime,
    ) -> Result<Turn<Outgoing, Event>> {
        Client::receive(self, message, now).map(turn)
    }
    drive::machine_errors!();
}

/// The default deadline of a whole exchange (`--ipam-opt dhcp_timeout=`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens the sockets for `client` on `link`, in the caller's namespace (see [`PacketLink`]).
pub fn open(client: &Client, link: &OnLink) -> Result<PacketLink> {
    PacketLink::open(link, client.lease().map(|lease| lease.address)).map_err(|source| {
        Error::Socket {
            link: link.name.clone(),
            source,
        }
    })
}

/// Runs `client` on `socket` until an event comes or `timeout` passes.
fn run(
    client: &mut Client,
    socket: &impl Transport<Outgoing, MAX_FRAME>,
    timeout: Duration,
) -> Result<Event> {
    let step = Machine::tick(client, SystemTime::now())?;
    drive::run(client, socket, step, timeout)
}

/// How many NAKs of its REQUEST an exchange starts again after (RFC 2131 §4.4.1: the client
/// restarts the configuration). A server that offered one address to several clients at once
/// (dnsmasq reserves none while it offers) NAKs all but the first to ask for it; one that NAKs
/// every time is given up on at once after these, not at the deadline.
const NAK_RESTARTS: u32 = 8;

/// DISCOVER, OFFER, REQUEST, ACK on `socket`'s link: the lease, or [`Error::Timeout`] when no
/// server answered in `timeout`, or [`Error::Nak`] when the server refused the request more
/// often than it is asked again ([`NAK_RESTARTS`], within `timeout`).
pub fn acquire(client: &mut Client, socket: &PacketLink, timeout: Duration) -> Result<Lease> {
    acquire_on(client, socket, timeout)
}

fn acquire_on(
    client: &mut Client,
    socket: &impl Transport<Outgoing, MAX_FRAME>,
    timeout: Duration,
) -> Result<Lease> {
    let end = Instant::now() + timeout;
    let mut naks = 0;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let event = run(client, socket, left).map_err(|err| match err {
            // The whole exchange's deadline, not what was left of it after a NAK.
            Error::Timeout {
                link,
                refused,
                last,
                ..
            } => Error::Timeout {
                link,
                timeout,
                refused,
                last,
            },
            other => other,
        })?;
        match event {
            Event::Bound(lease) | Event::Extended(lease) => return Ok(lease),
            // The client is back in INIT: the next run discovers again.
            Event::Nak(_) if naks < NAK_RESTARTS && Instant::now() < end => naks += 1,
            Event::Nak(server) => {
                return Err(Error::Nak {
                    link: socket.name().to_owned(),
                    server,
                });
            }
            Event::Expired(_) => {
                return Err(Error::Timeout {
                    link: socket.name().to_owned(),
                    timeout,
                    refused: 0,
                    last: None,
                });
            }
        }
    }
}

/// Waits for the client's next event on `socket`'s link (a bound client renews at T1, rebinds
/// at T2, expires at the lease's end), `timeout` at most.
pub fn next_event(client: &mut Client, socket: &PacketLink, timeout: Duration) -> Result<Event> {
    run(client, socket, timeout)
}

/// Sends the RELEASE of the client's lease, if it holds one (`socket` opened with it); the
/// client is back in INIT.
pub fn release(client: &mut Client, socket: &PacketLink) -> Result<()> {
    let Some(out) = client.release()? else {
        return Ok(());
    };
    socket.send(&out).map_err(|source| Error::Socket {
        link: socket.link().name.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use std::{
        cell::{Cell, RefCell},
        collections::VecDeque,
        net::Ipv4Addr,
    };

    use dhcproto::{Decodable, v4::MessageType};

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
            let msg = dhcproto::v4::Message::from_bytes(&out.bytes).expect("decodes");
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

    fn config() -> Config {
        Config {
            mac: MAC,
            client_id: ClientId::derive(b"k", "lan", "c"),
            hostname: None,
            broadcast: false,
            subnet: None,
            retry_floor: Duration::from_secs(1),
        }
    }

    #[test]
    fn a_nak_of_the_request_starts_the_exchange_again() {
        use MessageType::{Discover, Request};
        let server = Naks::new(2);
        let mut client = Client::new(config(), 1);
        let lease = acquire_on(&mut client, &server, Duration::from_secs(5)).expect("a lease");
        assert_eq!(lease.address, OFFERED);
        assert_eq!(
            *server.sent.borrow(),
            [Discover, Request, Discover, Request, Discover, Request]
        );
    }

    #[test]
    fn a_server_that_naks_every_request_is_given_up_on_at_once() {
        let server = Naks::new(u32::MAX);
        let mut client = Client::new(config(), 1);
        let started = Instant::now();
        let err = acquire_on(&mut client, &server, Duration::from_secs(5)).unwrap_err();
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
}
