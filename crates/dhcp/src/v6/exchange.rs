//! The v6 machine driven over a link's socket under one deadline: acquiring a lease, waiting
//! for its next event (renewal at T1, rebinding at T2, expiry), releasing it. The loop is the
//! crate's `drive` module's (shared with v4); here are the v6 client's and UDP socket's sides
//! of it (a message longer than [`MAX_MESSAGE`] is refused here).

use std::{
    io,
    net::Ipv6Addr,
    time::{Duration, Instant, SystemTime},
};

use crate::{
    drive::{self, Machine, Transport, Turn},
    v6::{
        Client, Error, Event, Lease, Outgoing, Refused, Result, State, Step, UdpLink,
        answer::{MAX_MESSAGE, pick},
        lease::lease_of,
    },
};

impl Transport<Outgoing, { MAX_MESSAGE + 1 }> for UdpLink {
    fn name(&self) -> &str {
        &self.link().name
    }
    fn send(&self, out: &Outgoing) -> io::Result<()> {
        UdpLink::send(self, out)
    }
    fn wait(&self, until: Instant) -> io::Result<()> {
        UdpLink::wait(self, until)
    }
    fn next<'b>(
        &self,
        buf: &'b mut [u8; MAX_MESSAGE + 1],
    ) -> io::Result<Option<(&'b [u8], usize)>> {
        UdpLink::next(self, buf)
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
        len: usize,
        now: SystemTime,
    ) -> Result<Turn<Outgoing, Event>> {
        if len > MAX_MESSAGE {
            return Err(Error::Refused(Refused::TooLarge {
                len,
                max: MAX_MESSAGE,
            }));
        }
        Client::receive(self, message, now).map(turn)
    }
    drive::machine_errors!(crate::here::V6_SERVER_PORT);
}

/// Runs `client` from `step` on `socket` until an event comes or `timeout` passes.
fn run(
    client: &mut Client,
    socket: &impl Transport<Outgoing, { MAX_MESSAGE + 1 }>,
    step: Step,
    timeout: Duration,
) -> Result<Event> {
    drive::run(client, socket, turn(step), timeout)
}

/// SOLICIT, ADVERTISE, REQUEST, REPLY on `socket`'s link: the lease, or [`Error::Timeout`]
/// when no server gave one in `timeout`.
pub fn acquire(client: &mut Client, socket: &UdpLink, timeout: Duration) -> Result<Lease> {
    acquire_on(client, socket, timeout, &mut |_| Ok(()))
}

/// [`acquire`], with `note` told, once an ADVERTISE is taken and before its REQUEST goes out,
/// the lease it would give (`Some`: its address, server and lifetimes from now): a caller that
/// writes it down can give back a lease the server commits even if it dies before the REPLY is
/// read. A REPLY to that REQUEST that gives no address (the client solicits again) is told as
/// `None`: the server holds nothing for it; one that gives another address than the one asked
/// for is told as that lease. A REQUEST whose retransmissions ran out unanswered is told
/// nothing: its REPLY may have been lost, and the lease stays noted (until another ADVERTISE
/// is taken and told). An `Err` from `note` ends
/// the exchange ([`Error::Unnoted`]), before the REQUEST it was told of.
pub fn acquire_noting(
    client: &mut Client,
    socket: &UdpLink,
    timeout: Duration,
    note: &mut dyn FnMut(Option<&Lease>) -> std::result::Result<(), String>,
) -> Result<Lease> {
    acquire_on(client, socket, timeout, note)
}

fn acquire_on(
    client: &mut Client,
    socket: &impl Transport<Outgoing, { MAX_MESSAGE + 1 }>,
    timeout: Duration,
    note: &mut dyn FnMut(Option<&Lease>) -> std::result::Result<(), String>,
) -> Result<Lease> {
    let mut noting = Noting {
        client,
        note,
        noted: None,
        requesting: false,
    };
    let step = Machine::tick(&mut noting, SystemTime::now())?;
    match drive::run(&mut noting, socket, step, timeout)? {
        Event::Bound(lease) | Event::Extended(lease) => Ok(lease),
        Event::Lost(_) | Event::Expired(_) | Event::Released(_) => Err(Error::Timeout {
            link: socket.name().to_owned(),
            timeout,
            refused: 0,
            last: None,
            on_host: crate::here::timeout_note(crate::here::V6_SERVER_PORT),
        }),
    }
}

/// A client whose REQUESTs are told to a note before they are sent (again only for another
/// ADVERTISE), and whose REQUEST given nothing is told as `None`.
struct Noting<'a> {
    client: &'a mut Client,
    note: &'a mut dyn FnMut(Option<&Lease>) -> std::result::Result<(), String>,
    /// The ADVERTISE last noted: the address asked for and its server.
    noted: Option<(Ipv6Addr, Vec<u8>)>,
    /// The client was requesting before this step.
    requesting: bool,
}

impl Noting<'_> {
    /// Tells the note what the client's new state asks for: an ADVERTISE taken (a REQUEST
    /// about to go out for it), a REPLY that gave another address than the one noted, or
    /// (`answered`: a message read moved the client) a REPLY that gave none.
    fn noted(
        &mut self,
        turn: Turn<Outgoing, Event>,
        now: SystemTime,
        answered: bool,
    ) -> Result<Turn<Outgoing, Event>> {
        let told = match self.client.state() {
            State::Requesting { offer, address, .. } => {
                let this = (*address, offer.server_id.clone());
                match pick(offer, *address) {
                    Some(given) if self.noted.as_ref() != Some(&this) => {
                        Some((this, Some(lease_of(offer, given, now))))
                    }
                    _ => None,
                }
            }
            // The REPLY gave another address than the one asked for (RFC 8415 allows it): the
            // server holds that one.
            State::Bound(lease) => match &self.noted {
                Some((asked, server)) if *asked != lease.address => {
                    Some(((lease.address, server.clone()), Some(lease.clone())))
                }
                _ => None,
            },
            // Soliciting again after a REPLY without an address: the server holds nothing
            // for it. (Not after the REQUEST's retransmissions ran out: its REPLY may have
            // been lost, and the lease stays noted until another ADVERTISE is taken.)
            _ if answered && self.requesting => self
                .noted
                .as_ref()
                .map(|(address, server)| ((*address, server.clone()), None)),
            _ => None,
        };
        if let Some((this, lease)) = told {
            (self.note)(lease.as_ref()).map_err(|why| Error::Unnoted {
                address: this.0,
                why,
            })?;
            self.noted = lease.is_some().then_some(this);
        }
        self.requesting = matches!(self.client.state(), State::Requesting { .. });
        Ok(turn)
    }
}

impl Machine for Noting<'_> {
    type Out = Outgoing;
    type Event = Event;
    type Refused = Refused;
    type Error = Error;
    drive::noting_steps!();
    drive::machine_errors!(crate::here::V6_SERVER_PORT);
}

/// Waits for the client's next event on `socket`'s link (a bound client renews at T1, rebinds
/// at T2, expires at the lease's end), `timeout` at most.
pub fn next_event(client: &mut Client, socket: &UdpLink, timeout: Duration) -> Result<Event> {
    let step = client.tick(SystemTime::now())?;
    run(client, socket, step, timeout)
}

/// Releases the client's lease, if it holds one: RELEASE sent until the server answers (then
/// `true`) or RFC 8415's four tries pass unanswered (`false`), `timeout` at most (then
/// `false` too). The caller removes the address first, and forgets the lease either way.
pub fn release(client: &mut Client, socket: &UdpLink, timeout: Duration) -> Result<bool> {
    let Some(step) = client.release(SystemTime::now())? else {
        return Ok(false);
    };
    match run(client, socket, step, timeout) {
        Ok(Event::Released(answered)) => Ok(answered),
        Ok(_) => Ok(false),
        Err(Error::Timeout { .. }) => Ok(false),
        Err(other) => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use std::{cell::RefCell, net::Ipv6Addr};

    use super::*;
    use crate::{
        ClientId,
        v6::{Config, fake, wire},
    };

    /// A socket whose queue is never empty: a refused message each time it is read.
    struct Flood {
        sent: RefCell<Vec<Outgoing>>,
    }

    impl Transport<Outgoing, { MAX_MESSAGE + 1 }> for Flood {
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
        fn next<'b>(
            &self,
            buf: &'b mut [u8; MAX_MESSAGE + 1],
        ) -> io::Result<Option<(&'b [u8], usize)>> {
            buf[..4].copy_from_slice(&[wire::REPLY, 0xee, 0xee, 0xee]);
            Ok(Some((&buf[..4], 4)))
        }
    }

    /// A server that advertises and replies at once (the fake's answers; preference 255, so
    /// the first ADVERTISE is taken without the first wait); the first `empty` REPLYs give no
    /// address (the IA's NoAddrsAvail).
    struct Answers {
        sent: RefCell<Vec<u8>>,
        queue: RefCell<Vec<Vec<u8>>>,
        empty: std::cell::Cell<u32>,
        /// The address the REPLYs give, if not the one advertised.
        reply_with: Option<Ipv6Addr>,
    }

    impl Answers {
        fn new(empty: u32) -> Self {
            Self {
                sent: RefCell::new(Vec::new()),
                queue: RefCell::new(Vec::new()),
                empty: std::cell::Cell::new(empty),
                reply_with: None,
            }
        }
    }

    impl Transport<Outgoing, { MAX_MESSAGE + 1 }> for Answers {
        fn name(&self) -> &str {
            "fake0"
        }
        fn send(&self, out: &Outgoing) -> io::Result<()> {
            let kind = out.bytes[0];
            self.sent.borrow_mut().push(kind);
            let mut spec = match kind {
                wire::SOLICIT => fake::Spec::new(wire::ADVERTISE),
                wire::REQUEST => fake::Spec::new(wire::REPLY),
                _ => return Ok(()),
            };
            spec.preference = Some(255);
            if let (wire::REQUEST, Some(other), Some((_, preferred, valid))) =
                (kind, self.reply_with, spec.address)
            {
                spec.address = Some((other, preferred, valid));
            }
            if kind == wire::REQUEST && self.empty.get() > 0 {
                self.empty.set(self.empty.get() - 1);
                spec.address = None;
                spec.ia_status = Some(2);
            }
            self.queue
                .borrow_mut()
                .push(fake::answer(&out.bytes, &spec));
            Ok(())
        }
        fn wait(&self, until: Instant) -> io::Result<()> {
            if self.queue.borrow().is_empty() {
                let left = until.saturating_duration_since(Instant::now());
                std::thread::sleep(left.min(Duration::from_millis(5)));
            }
            Ok(())
        }
        fn next<'b>(
            &self,
            buf: &'b mut [u8; MAX_MESSAGE + 1],
        ) -> io::Result<Option<(&'b [u8], usize)>> {
            let mut queue = self.queue.borrow_mut();
            if queue.is_empty() {
                return Ok(None);
            }
            let message = queue.remove(0);
            buf[..message.len()].copy_from_slice(&message);
            Ok(Some((&buf[..message.len()], message.len())))
        }
    }

    fn client() -> Client {
        let config = Config {
            client_id: ClientId::derive(b"k", "lan", "c"),
            hostname: None,
            subnet: None,
        };
        Client::new(config, 1)
    }

    /// The advertised lease is noted once, before its REQUEST is sent; a REPLY that gives no
    /// address is noted as `None` before the next SOLICIT's ADVERTISE is noted in turn.
    #[test]
    fn the_advertised_lease_is_noted_before_its_request_and_a_reply_without_it_as_none() {
        let server = Answers::new(1);
        let mut client = client();
        let mut told = Vec::new();
        let lease = acquire_on(
            &mut client,
            &server,
            Duration::from_secs(5),
            &mut |offered| {
                told.push((offered.map(|l| l.address), server.sent.borrow().clone()));
                Ok(())
            },
        )
        .expect("a lease");
        assert_eq!(lease.address, fake::OFFERED);
        let (s, r) = (wire::SOLICIT, wire::REQUEST);
        assert_eq!(
            told,
            [
                (Some(fake::OFFERED), vec![s]),
                (None, vec![s, r]),
                (Some(fake::OFFERED), vec![s, r, s]),
            ]
        );
        assert_eq!(*server.sent.borrow(), [s, r, s, r]);
    }

    /// A REPLY that gives another address than the one asked for: the server holds that one,
    /// and the note is told it.
    #[test]
    fn a_reply_of_another_address_is_noted_as_that_lease() {
        let other: Ipv6Addr = "2001:db8::77".parse().unwrap();
        assert_ne!(other, fake::OFFERED);
        let server = Answers {
            reply_with: Some(other),
            ..Answers::new(0)
        };
        let mut client = client();
        let mut told = Vec::new();
        let lease = acquire_on(
            &mut client,
            &server,
            Duration::from_secs(5),
            &mut |offered| {
                told.push(offered.map(|l| l.address));
                Ok(())
            },
        )
        .expect("a lease");
        assert_eq!(lease.address, other);
        assert_eq!(told, [Some(fake::OFFERED), Some(other)]);
    }

    /// A note that fails ends the exchange before the REQUEST it was told of.
    #[test]
    fn a_failed_note_sends_no_request() {
        let server = Answers::new(0);
        let mut client = client();
        let err = acquire_on(&mut client, &server, Duration::from_secs(5), &mut |_| {
            Err("disk full".into())
        })
        .unwrap_err();
        assert!(
            matches!(err, Error::Unnoted { address, ref why } if address == fake::OFFERED && why == "disk full"),
            "{err:?}"
        );
        assert_eq!(*server.sent.borrow(), [wire::SOLICIT]);
    }

    #[test]
    fn a_flood_does_not_keep_the_client_from_renewing_at_t1() {
        let now = SystemTime::now();
        let lease = Lease {
            address: "2001:db8::5".parse().unwrap(),
            server_id: vec![0, 2, 1, 1, 1],
            unicast: None,
            dns: Vec::<Ipv6Addr>::new(),
            obtained: now,
            t1: now + Duration::from_millis(50),
            t2: now + Duration::from_secs(3600),
            preferred_until: now + Duration::from_secs(3600),
            expiry: now + Duration::from_secs(7200),
        };
        let config = Config {
            client_id: ClientId::derive(b"k", "lan", "c"),
            hostname: None,
            subnet: None,
        };
        let mut client = Client::resume(config, lease, 1);
        let flood = Flood {
            sent: RefCell::new(Vec::new()),
        };
        let step = client.tick(now).unwrap();
        let err = run(&mut client, &flood, step, Duration::from_millis(400)).unwrap_err();
        assert!(
            matches!(err, Error::Timeout { refused, .. } if refused > 0),
            "{err:?}"
        );
        let kinds: Vec<u8> = flood.sent.borrow().iter().map(|o| o.bytes[0]).collect();
        assert_eq!(kinds, [wire::RENEW], "T1 passed under the flood");
    }
}
