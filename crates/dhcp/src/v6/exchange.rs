//! The v6 machine driven over a link's socket under one deadline: acquiring a lease, waiting
//! for its next event (renewal at T1, rebinding at T2, expiry), releasing it. The loop is the
//! crate's `drive` module's (shared with v4); here are the v6 client's and UDP socket's sides
//! of it (a message longer than [`MAX_MESSAGE`] is refused here).

use std::{
    io,
    time::{Duration, Instant, SystemTime},
};

use crate::{
    drive::{self, Machine, Transport, Turn},
    v6::{
        Client, Error, Event, Lease, Outgoing, Refused, Result, Step, UdpLink, answer::MAX_MESSAGE,
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
    let step = client.tick(SystemTime::now())?;
    match run(client, socket, step, timeout)? {
        Event::Bound(lease) | Event::Extended(lease) => Ok(lease),
        Event::Lost(_) | Event::Expired(_) | Event::Released(_) => Err(Error::Timeout {
            link: socket.link().name.clone(),
            timeout,
            refused: 0,
            last: None,
            on_host: crate::here::timeout_note(crate::here::V6_SERVER_PORT),
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

#[cfg(test)]
mod tests {
    use std::{cell::RefCell, net::Ipv6Addr};

    use super::*;
    use crate::{
        ClientId,
        v6::{Config, wire},
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
