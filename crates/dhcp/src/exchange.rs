//! The machine driven over a link's socket under one deadline: acquiring a lease, extending it,
//! releasing it. The deadline covers the whole exchange; a flood of frames cannot hold it past
//! the deadline, nor the machine past its own (a retransmission, T1, T2, expiry), and a
//! refused answer is skipped (the reason is kept for the timeout's error).

use std::{
    io,
    time::{Duration, Instant, SystemTime},
};

use crate::{
    Client, Error, Event, Lease, Outgoing, Result,
    socket::{MAX_FRAME, OnLink, PacketLink},
};

/// What the exchange needs of its socket ([`PacketLink`]'s calls): a seam, so that a test can
/// flood the loop without a link.
trait Transport {
    fn name(&self) -> &str;
    fn send(&self, out: &Outgoing) -> io::Result<()>;
    fn wait(&self, until: Instant) -> io::Result<()>;
    fn next<'b>(&self, buf: &'b mut [u8; MAX_FRAME]) -> io::Result<Option<&'b [u8]>>;
}

impl Transport for PacketLink {
    fn name(&self) -> &str {
        &self.link().name
    }
    fn send(&self, out: &Outgoing) -> io::Result<()> {
        PacketLink::send(self, out)
    }
    fn wait(&self, until: Instant) -> io::Result<()> {
        PacketLink::wait(self, until)
    }
    fn next<'b>(&self, buf: &'b mut [u8; MAX_FRAME]) -> io::Result<Option<&'b [u8]>> {
        PacketLink::next(self, buf)
    }
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
fn run(client: &mut Client, socket: &impl Transport, timeout: Duration) -> Result<Event> {
    let name = socket.name();
    let failed = |source| Error::Socket {
        link: name.to_owned(),
        source,
    };
    let end = Instant::now() + timeout;
    let mut buf = Box::new([0u8; MAX_FRAME]);
    let mut step = client.tick(SystemTime::now())?;
    let (mut refused, mut last) = (0, None);
    loop {
        if let Some(out) = &step.send {
            socket.send(out).map_err(failed)?;
        }
        if let Some(event) = step.event.take() {
            return Ok(event);
        }
        let due = step
            .deadline
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        let until = end.min(Instant::now() + due);
        socket.wait(until).map_err(failed)?;
        let mut next = None;
        while let Some(message) = socket.next(&mut buf).map_err(failed)? {
            match client.receive(message, SystemTime::now()) {
                Ok(taken) => {
                    next = Some(taken);
                    break;
                }
                Err(Error::Refused(why)) => {
                    refused += 1;
                    last = Some(why);
                }
                Err(other) => return Err(other),
            }
            // Frames faster than they are read must not keep the machine from its own
            // deadline: a retransmission, T1, T2, expiry are the next tick's.
            if Instant::now() >= end || SystemTime::now() >= step.deadline {
                break;
            }
        }
        if Instant::now() >= end && next.is_none() {
            return Err(Error::Timeout {
                link: name.to_owned(),
                timeout,
                refused,
                last,
            });
        }
        step = match next {
            Some(step) => step,
            None => client.tick(SystemTime::now())?,
        };
    }
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

    impl Transport for Flood {
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
        fn next<'b>(&self, buf: &'b mut [u8; MAX_FRAME]) -> io::Result<Option<&'b [u8]>> {
            buf[..4].fill(0xee);
            Ok(Some(&buf[..4]))
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
