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
    let link = socket.link();
    match run(client, socket, timeout)? {
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

    use super::*;
    use crate::{
        ClientId, Config,
        fake::{MAC, OFFERED, SERVER},
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
