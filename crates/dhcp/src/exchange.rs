//! The machine driven over a link's socket under one deadline: acquiring a lease, extending it,
//! releasing it. The loop is the crate's `drive` module's (shared with v6); here are the v4 client's and
//! packet socket's sides of it.

use std::{
    io,
    net::Ipv4Addr,
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
    drive::machine_errors!(crate::here::V4_SERVER_PORT);
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

/// DISCOVER, OFFER, REQUEST, ACK on `socket`'s link: the lease, or [`Error::Timeout`] when no
/// server answered in `timeout`, or [`Error::Nak`] when the server refused the request.
pub fn acquire(client: &mut Client, socket: &PacketLink, timeout: Duration) -> Result<Lease> {
    acquire_noting(client, socket, timeout, &mut |_| Ok(()))
}

/// [`acquire`], with `note` told, once an offer is taken and before its REQUEST goes out, the
/// lease that offer would give (its address, prefix, router, server and offered length from
/// now): a caller that writes it down can give back a lease the server commits even if it dies
/// before the ACK is read. An `Err` from `note` ends the exchange ([`Error::Unnoted`]) with no
/// REQUEST sent.
pub fn acquire_noting(
    client: &mut Client,
    socket: &PacketLink,
    timeout: Duration,
    note: &mut dyn FnMut(&Lease) -> std::result::Result<(), String>,
) -> Result<Lease> {
    let link = socket.link();
    match run_noting(client, socket, timeout, note)? {
        Event::Bound(lease) | Event::Extended(lease) => Ok(lease),
        Event::Nak(server) => Err(Error::Nak {
            link: link.name.clone(),
            server,
        }),
        Event::Expired(_) => Err(Error::Timeout {
            link: link.name.clone(),
            timeout,
            refused: 0,
            last: None,
            on_host: crate::here::timeout_note(crate::here::V4_SERVER_PORT),
        }),
    }
}

/// [`run`], with `note` told each offer taken before its REQUEST goes out.
fn run_noting(
    client: &mut Client,
    socket: &impl Transport<Outgoing, MAX_FRAME>,
    timeout: Duration,
    note: &mut dyn FnMut(&Lease) -> std::result::Result<(), String>,
) -> Result<Event> {
    let mut noting = Noting {
        client,
        note,
        noted: None,
    };
    let step = Machine::tick(&mut noting, SystemTime::now())?;
    drive::run(&mut noting, socket, step, timeout)
}

/// A client whose moves into REQUESTING are told to a note before their REQUEST is sent (again
/// only for another offer: one taken after the REQUESTs of the first went unanswered).
struct Noting<'a> {
    client: &'a mut Client,
    note: &'a mut dyn FnMut(&Lease) -> std::result::Result<(), String>,
    /// The offer last noted: its address and server.
    noted: Option<(Ipv4Addr, Ipv4Addr)>,
}

impl Noting<'_> {
    fn noted(
        &mut self,
        turn: Turn<Outgoing, Event>,
        now: SystemTime,
    ) -> Result<Turn<Outgoing, Event>> {
        if let crate::State::Requesting { offer, .. } = self.client.state()
            && self.noted != Some((offer.address, offer.server))
        {
            self.noted = Some((offer.address, offer.server));
            let offered = crate::machine::offered(offer, now);
            (self.note)(&offered).map_err(|why| Error::Unnoted {
                address: offered.address,
                why,
            })?;
        }
        Ok(turn)
    }
}

impl Machine for Noting<'_> {
    type Out = Outgoing;
    type Event = Event;
    type Refused = Refused;
    type Error = Error;
    fn tick(&mut self, now: SystemTime) -> Result<Turn<Outgoing, Event>> {
        let turn = Machine::tick(&mut *self.client, now)?;
        self.noted(turn, now)
    }
    fn receive(
        &mut self,
        message: &[u8],
        len: usize,
        now: SystemTime,
    ) -> Result<Turn<Outgoing, Event>> {
        let turn = Machine::receive(&mut *self.client, message, len, now)?;
        self.noted(turn, now)
    }
    drive::machine_errors!(crate::here::V4_SERVER_PORT);
}

/// Sends the DECLINE of the client's lease, if it holds one (see [`Client::decline`]); the
/// client is back in INIT.
pub fn decline(client: &mut Client, socket: &PacketLink) -> Result<()> {
    let Some(out) = client.decline()? else {
        return Ok(());
    };
    socket.send(&out).map_err(|source| Error::Socket {
        link: socket.link().name.clone(),
        source,
    })
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
    use std::{cell::RefCell, net::Ipv4Addr};

    use dhcproto::{
        Decodable,
        v4::{Message, MessageType},
    };

    use super::*;
    use crate::{
        ClientId, Config,
        fake::{self, MAC, OFFERED, SERVER},
    };

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
                .push(fake::bytes(&fake::reply(&out.bytes, kind)));
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
                noted.push((offered.clone(), server.got.borrow().clone()));
                Ok(())
            },
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
        let err = run_noting(&mut client, &server, Duration::from_secs(2), &mut |_| {
            Err("disk full".into())
        })
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
}
