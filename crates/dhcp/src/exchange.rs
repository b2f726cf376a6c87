//! The machine driven over a link's socket under one deadline: acquiring a lease, extending it,
//! releasing it. The deadline covers the whole exchange; a flood of frames cannot hold it past
//! the deadline, and a refused answer is skipped (the reason is kept for the timeout's error).

use std::time::{Duration, Instant, SystemTime};

use crate::{
    Client, Error, Event, Lease, Result,
    socket::{MAX_FRAME, OnLink, PacketLink},
};

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
fn run(client: &mut Client, socket: &PacketLink, timeout: Duration) -> Result<Event> {
    let link = socket.link();
    let failed = |source| Error::Socket {
        link: link.name.clone(),
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
            if Instant::now() >= end {
                break;
            }
        }
        if Instant::now() >= end && next.is_none() {
            return Err(Error::Timeout {
                link: link.name.clone(),
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
