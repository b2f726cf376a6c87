//! One DISCOVER and the offers it brings, and nothing more: what `doctor` asks of a LAN ("does
//! a DHCP server answer here, and what would it give?"). No REQUEST is ever built, so no server
//! commits a lease to the probe: an OFFER is a proposal that the server forgets.
//!
//! The DISCOVER is sent again every [`RESEND`] while nothing answers; after the first offer the
//! probe listens [`LINGER`] more for other servers (a second server on a LAN is worth knowing
//! of), and never past its deadline. Every answer goes through [`answer::check`]; a refused one
//! is counted and its reason kept. [`Schedule`] and its loop are shared with the DHCPv6
//! probe ([`crate::v6::probe`]).

use std::{
    io,
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use crate::{
    ClientId, Error, Refused, Result,
    answer::{self, Expect, Kind},
    drive::Transport,
    machine::{Config, Outgoing, To},
    message,
    socket::PacketLink,
};

/// How long a probe waits for an answer before it sends again.
pub const RESEND: Duration = Duration::from_secs(1);
/// How long a probe listens for other servers after the first answer.
pub const LINGER: Duration = Duration::from_millis(300);
/// The most servers' answers a probe keeps (a flood of offers is counted, not kept).
pub const MAX_ANSWERS: usize = 8;

/// A probe's MAC for the client `id`: taken from the identifier's digest, locally administered
/// and unicast, so that repeated probes with one identity look like one client on the LAN.
pub fn mac_of(id: &ClientId) -> [u8; 6] {
    let bytes = id.as_bytes();
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&bytes[bytes.len() - 6..]);
    mac[0] = (mac[0] & 0xfc) | 0x02;
    mac
}

/// What a probe does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Send the request (again) now.
    Send,
    /// Wait for answers until then.
    Wait(Instant),
    /// Stop: the deadline passed, or the linger after the first answer did.
    Done,
}

/// When a probe sends and when it stops: a pure clock-free schedule (the caller gives the time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    start: Instant,
    end: Instant,
    next_send: Instant,
    sent: u32,
    answered: Option<Instant>,
}

impl Schedule {
    /// A probe started at `start`, ending at `start + timeout` at the latest.
    pub fn new(start: Instant, timeout: Duration) -> Self {
        Self {
            start,
            end: start + timeout,
            next_send: start,
            sent: 0,
            answered: None,
        }
    }

    /// What to do at `now`; [`Due::Send`] counts as sent.
    pub fn due(&mut self, now: Instant) -> Due {
        if now >= self.end {
            return Due::Done;
        }
        if let Some(first) = self.answered {
            let stop = first + LINGER;
            return if now >= stop {
                Due::Done
            } else {
                Due::Wait(stop.min(self.end))
            };
        }
        if now >= self.next_send {
            self.sent += 1;
            self.next_send = now + RESEND;
            return Due::Send;
        }
        Due::Wait(self.next_send.min(self.end))
    }

    /// An answer came at `now` (the first one starts the linger).
    pub fn answered(&mut self, now: Instant) {
        self.answered.get_or_insert(now);
    }

    /// How many times the request was sent.
    pub fn sent(&self) -> u32 {
        self.sent
    }

    /// The time since the start.
    pub fn elapsed(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.start)
    }
}

/// One server's offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The server (option 54).
    pub server: Ipv4Addr,
    /// The address offered.
    pub address: Ipv4Addr,
    /// Its prefix length.
    pub prefix: u8,
    /// The router (option 3), if any.
    pub router: Option<Ipv4Addr>,
    /// Name servers (option 6).
    pub dns: Vec<Ipv4Addr>,
    /// The lease time offered (option 51), if given.
    pub lease: Option<Duration>,
}

/// What a probe heard.
#[derive(Debug, Default)]
pub struct Heard {
    /// Each server's first offer, in the order they came.
    pub offers: Vec<Offer>,
    /// Answers refused (not ours, malformed, hostile).
    pub refused: u32,
    /// The last refusal's reason.
    pub last: Option<Refused>,
    /// How many DISCOVERs were sent.
    pub sent: u32,
}

/// A DISCOVER's transaction and what came back for it.
#[derive(Debug)]
pub struct Probe {
    config: Config,
    xid: u32,
    heard: Heard,
}

impl Probe {
    /// A probe as the client `config` in transaction `xid` (random).
    pub fn new(config: Config, xid: u32) -> Self {
        Self {
            config,
            xid,
            heard: Heard::default(),
        }
    }

    /// The DISCOVER, broadcast from 0.0.0.0 (each send the same transaction).
    pub fn discover(&self) -> Result<Outgoing> {
        Ok(Outgoing {
            bytes: message::discover(&self.config, self.xid)?,
            to: To::Broadcast,
            from: Ipv4Addr::UNSPECIFIED,
        })
    }

    /// `bytes` (a DHCP message) came: `true` when it is a server's first offer. An answer that
    /// is no OFFER for this transaction, or that [`answer::check`] refuses, is counted.
    pub fn receive(&mut self, bytes: &[u8]) -> bool {
        let expect = Expect {
            xid: self.xid,
            mac: self.config.mac,
            client_id: self.config.client_id.as_bytes(),
            subnet: self.config.subnet,
            server: None,
        };
        let answer = match answer::check(bytes, &expect) {
            Ok(answer) if answer.kind == Kind::Offer => answer,
            Ok(answer) => {
                self.refuse(Refused::MessageType(format!(
                    "{:?} to a DISCOVER",
                    answer.kind
                )));
                return false;
            }
            Err(why) => {
                self.refuse(why);
                return false;
            }
        };
        let seen = self.heard.offers.iter().any(|o| o.server == answer.server);
        if seen || self.heard.offers.len() >= MAX_ANSWERS {
            return false;
        }
        self.heard.offers.push(Offer {
            server: answer.server,
            address: answer.address,
            prefix: answer.prefix,
            router: answer.router,
            dns: answer.dns,
            lease: answer.lease,
        });
        true
    }

    fn refuse(&mut self, why: Refused) {
        self.heard.refused = self.heard.refused.saturating_add(1);
        self.heard.last = Some(why);
    }

    /// What was heard.
    pub fn heard(self) -> Heard {
        self.heard
    }
}

/// What [`listen`] needs of a probe (v4's and v6's).
pub(crate) trait Ask {
    /// The request sent.
    type Out;
    /// The probe's error.
    type Error;
    /// The request, `elapsed` into the probe.
    fn ask(&self, elapsed: Duration) -> Result<Self::Out, Self::Error>;
    /// `message` (`len` long before the buffer cut it) came: `true` when it is a server's
    /// first answer.
    fn hear(&mut self, message: &[u8], len: usize) -> bool;
    /// The socket of `link` failed.
    fn socket_error(link: &str, source: io::Error) -> Self::Error;
}

/// Runs `probe`'s [`Schedule`] on `socket` for `timeout` at most: the request sent while
/// nothing answers, every answer heard, the linger after the first. How many requests went.
pub(crate) fn listen<P: Ask, const N: usize>(
    probe: &mut P,
    socket: &impl Transport<P::Out, N>,
    timeout: Duration,
) -> Result<u32, P::Error> {
    let failed = |source| P::socket_error(socket.name(), source);
    let mut schedule = Schedule::new(Instant::now(), timeout);
    let mut buf = Box::new([0u8; N]);
    loop {
        let now = Instant::now();
        match schedule.due(now) {
            Due::Done => return Ok(schedule.sent()),
            Due::Send => socket
                .send(&probe.ask(schedule.elapsed(now))?)
                .map_err(failed)?,
            Due::Wait(until) => {
                socket.wait(until).map_err(failed)?;
                while let Some((message, len)) = socket.next(&mut buf).map_err(failed)? {
                    let now = Instant::now();
                    if probe.hear(message, len) {
                        schedule.answered(now);
                    }
                    // A flood of messages cannot hold the probe past its wait.
                    if now >= until {
                        break;
                    }
                }
            }
        }
    }
}

impl Ask for Probe {
    type Out = Outgoing;
    type Error = Error;
    fn ask(&self, _elapsed: Duration) -> Result<Outgoing> {
        self.discover()
    }
    fn hear(&mut self, message: &[u8], _len: usize) -> bool {
        self.receive(message)
    }
    fn socket_error(link: &str, source: io::Error) -> Error {
        Error::Socket {
            link: link.to_owned(),
            source,
        }
    }
}

/// Sends a DISCOVER as `config` on `socket`'s link (transaction `xid`) and listens `timeout`
/// at most (see the module): the offers, and the answers refused. Never sends anything else.
pub fn probe(config: Config, xid: u32, socket: &PacketLink, timeout: Duration) -> Result<Heard> {
    let mut probe = Probe::new(config, xid);
    let sent = listen(&mut probe, socket, timeout)?;
    let mut heard = probe.heard();
    heard.sent = sent;
    Ok(heard)
}

#[cfg(test)]
mod tests;
