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

/// How many NAKs of its REQUEST an exchange starts again after (RFC 2131 §4.4.1: the client
/// restarts the configuration). A server that offered one address to several clients at once
/// (dnsmasq reserves none while it offers) NAKs all but the first to ask for it; one that NAKs
/// every time is given up on at once after these, not at the deadline.
const NAK_RESTARTS: u32 = 8;

/// DISCOVER, OFFER, REQUEST, ACK on `socket`'s link: the lease, or [`Error::Timeout`] when no
/// server answered in `timeout`, or [`Error::Nak`] when the server refused the request more
/// often than it is asked again ([`NAK_RESTARTS`], within `timeout`).
pub fn acquire(client: &mut Client, socket: &PacketLink, timeout: Duration) -> Result<Lease> {
    acquire_on(client, socket, timeout, &mut |_| Ok(()), &mut |_| {})
}

/// [`acquire`], with `note` told, once an offer is taken and before its REQUEST goes out, the
/// lease that offer would give (`Some`: its address, prefix, router, server and offered length
/// from now): a caller that writes it down can give back a lease the server commits even if it
/// dies before the ACK is read. An `Err` from `note` ends the exchange ([`Error::Unnoted`]) with
/// no REQUEST sent. A NAK of that REQUEST is told as `None` (the server holds nothing for the
/// offer: a caller must not give it back, its address may be another client's now; an `Err`
/// then ends the exchange with [`Error::NakUnnoted`]); the exchange starts again, and the next
/// offer is noted too. `waiting` is called once that
/// REQUEST has gone out (the first time), with the same lease, while the server's ACK is
/// awaited: work of the caller's that would otherwise follow the ACK is done in the server's
/// time (the hook makes its packet socket's closer there).
pub fn acquire_noting(
    client: &mut Client,
    socket: &PacketLink,
    timeout: Duration,
    note: &mut dyn FnMut(Option<&Lease>) -> std::result::Result<(), String>,
    waiting: &mut dyn FnMut(&Lease),
) -> Result<Lease> {
    acquire_on(client, socket, timeout, note, waiting)
}

fn acquire_on(
    client: &mut Client,
    socket: &impl Transport<Outgoing, MAX_FRAME>,
    timeout: Duration,
    note: &mut dyn FnMut(Option<&Lease>) -> std::result::Result<(), String>,
    waiting: &mut dyn FnMut(&Lease),
) -> Result<Lease> {
    let end = Instant::now() + timeout;
    let mut naks = 0;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let event = run_noting(client, socket, left, note, waiting).map_err(|err| match err {
            // The whole exchange's deadline, not what was left of it after a NAK.
            Error::Timeout {
                link,
                refused,
                last,
                on_host,
                ..
            } => Error::Timeout {
                link,
                timeout,
                refused,
                last,
                on_host,
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
                    on_host: crate::here::timeout_note(crate::here::V4_SERVER_PORT),
                });
            }
        }
    }
}

/// [`run`], with `note` told each offer taken before its REQUEST goes out, and `waiting` once
/// that REQUEST is out.
fn run_noting(
    client: &mut Client,
    socket: &impl Transport<Outgoing, MAX_FRAME>,
    timeout: Duration,
    note: &mut dyn FnMut(Option<&Lease>) -> std::result::Result<(), String>,
    waiting: &mut dyn FnMut(&Lease),
) -> Result<Event> {
    let mut noting = Noting {
        client,
        note,
        noted: None,
        waiting,
        requested: None,
    };
    let step = Machine::tick(&mut noting, SystemTime::now())?;
    drive::run(&mut noting, socket, step, timeout)
}

/// A client whose moves into REQUESTING are told to a note before their REQUEST is sent (again
/// only for another offer: one taken after the REQUESTs of the first went unanswered).
struct Noting<'a> {
    client: &'a mut Client,
    note: &'a mut dyn FnMut(Option<&Lease>) -> std::result::Result<(), String>,
    /// The offer last noted: its address and server.
    noted: Option<(Ipv4Addr, Ipv4Addr)>,
    /// Told once the noted offer's REQUEST is out (see [`acquire_noting`]).
    waiting: &'a mut dyn FnMut(&Lease),
    /// The noted offer's lease, until `waiting` is told of it.
    requested: Option<Lease>,
}

impl Noting<'_> {
    /// Tells the note what the client's new state asks for: an offer taken (its REQUEST about
    /// to go out), or the noted one NAKed (an event of its own: whether an answer moved the
    /// client, `_answered`, is not needed).
    fn noted(
        &mut self,
        turn: Turn<Outgoing, Event>,
        now: SystemTime,
        _answered: bool,
    ) -> Result<Turn<Outgoing, Event>> {
        // A NAK of the noted offer's REQUEST: the server holds nothing for it (it may have
        // given the address to another client), so the note must stop naming it.
        if let (Some(Event::Nak(_)), Some((address, _))) = (&turn.event, self.noted) {
            self.noted = None;
            (self.note)(None).map_err(|why| Error::NakUnnoted { address, why })?;
        }
        if let crate::State::Requesting { offer, .. } = self.client.state()
            && self.noted != Some((offer.address, offer.server))
        {
            self.noted = Some((offer.address, offer.server));
            let offered = crate::machine::offered(offer, now);
            (self.note)(Some(&offered)).map_err(|why| Error::Unnoted {
                address: offered.address,
                why,
            })?;
            self.requested = Some(offered);
        }
        Ok(turn)
    }
}

impl Machine for Noting<'_> {
    type Out = Outgoing;
    type Event = Event;
    type Refused = Refused;
    type Error = Error;
    drive::noting_steps!();
    fn sent(&mut self) {
        if let crate::State::Requesting { .. } = self.client.state()
            && let Some(requested) = self.requested.take()
        {
            (self.waiting)(&requested);
        }
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
mod tests;
