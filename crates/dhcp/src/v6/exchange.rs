//! The v6 machine driven over a link's socket under one deadline: acquiring a lease, waiting
//! for its next event (renewal at T1, rebinding at T2, expiry), releasing it. A flood cannot
//! hold the exchange past its deadline; a refused answer is skipped and counted (the last
//! reason kept for the timeout's error).

use std::time::{Duration, Instant, SystemTime};

use crate::v6::{Client, Error, Event, Lease, Refused, Result, Step, UdpLink, answer::MAX_MESSAGE};

/// Runs `client` from `step` on `socket` until an event comes or `timeout` passes.
fn run(client: &mut Client, socket: &UdpLink, mut step: Step, timeout: Duration) -> Result<Event> {
    let link = socket.link();
    let failed = |source| Error::Socket {
        link: link.name.clone(),
        source,
    };
    let end = Instant::now() + timeout;
    let mut buf = Box::new([0u8; MAX_MESSAGE + 1]);
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
        socket.wait(end.min(Instant::now() + due)).map_err(failed)?;
        let mut next = None;
        while let Some((message, len)) = socket.next(&mut buf).map_err(failed)? {
            let taken = if len > MAX_MESSAGE {
                Err(Error::Refused(Refused::TooLarge {
                    len,
                    max: MAX_MESSAGE,
                }))
            } else {
                client.receive(message, SystemTime::now())
            };
            match taken {
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

/// SOLICIT, ADVERTISE, REQUEST, REPLY on `socket`'s link: the lease, or [`Error::Timeout`]
/// when no server gave one in `timeout`.
pub fn acquire(client: &mut Client, socket: &UdpLink, timeout: Duration) -> Result<Lease> {
    let step = client.tick(SystemTime::now())?;
    match run(client, socket, step, timeout)? {
        Event::Bound(lease) | Event::Extended(lease) => Ok(lease),
        Event::Lost(_) | Event::Expired(_) | Event::Released(_) => Err(Error::Timeout {
            link: socket.link().name.clone(),
            timeout,
            refused: 0,
            last: None,
        }),
    }
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
