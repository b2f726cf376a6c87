//! The client's states (RFC 2131, 4.4, figure 5) as a pure machine: it is given "the time is
//! now" ([`Client::tick`]) and "this message came" ([`Client::receive`]), and answers with a
//! [`Step`]: what to send, where, what happened, and when to call it again. It opens no socket
//! and reads no clock, so a renewer can be killed and another started from the stored
//! [`Lease`] ([`Client::resume`]).

use std::{
    net::Ipv4Addr,
    time::{Duration, SystemTime},
};

use crate::{
    ClientId, Lease, Result,
    answer::{self, Answer, Expect, Kind},
    error::Refused,
    message,
};

/// Requests sent in REQUESTING before going back to INIT.
const REQUEST_TRIES: u32 = 4;

/// Who the client is and what it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The link's MAC: `chaddr`, and the frames' source.
    pub mac: [u8; 6],
    /// The client identifier (option 61).
    pub client_id: ClientId,
    /// The hostname to send (option 12).
    pub hostname: Option<String>,
    /// Ask for broadcast answers (an ipvlan link shares its parent's MAC).
    pub broadcast: bool,
    /// The network's `--subnet`: a lease outside it is refused.
    pub subnet: Option<(Ipv4Addr, u8)>,
    /// The shortest wait between retransmissions in RENEWING and REBINDING (RFC 2131: 60 s).
    pub retry_floor: Duration,
}

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum To {
    /// 255.255.255.255 from 0.0.0.0 (or from the leased address when rebinding), over the link.
    Broadcast,
    /// The server, unicast from the leased address.
    Server(Ipv4Addr),
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The DHCP message (the UDP payload).
    pub bytes: Vec<u8>,
    /// Where to.
    pub to: To,
    /// From which address (0.0.0.0 without a lease).
    pub from: Ipv4Addr,
}

/// What happened, for the caller to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A lease was acknowledged after discovery: apply it.
    Bound(Lease),
    /// The lease was extended (renewed or rebound); its address or routes may have changed.
    Extended(Lease),
    /// The server said no: remove the address and its routes; discovery starts again.
    Nak(Ipv4Addr),
    /// The lease ran out unanswered: remove the address and its routes.
    Expired(Lease),
}

/// What the caller does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// A message to send now.
    pub send: Option<Outgoing>,
    /// Something that happened.
    pub event: Option<Event>,
    /// When to call [`Client::tick`] at the latest.
    pub deadline: SystemTime,
}

/// Where the client is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Nothing sent.
    Init,
    /// DISCOVER sent, waiting for an offer.
    Selecting {
        /// The transaction.
        xid: u32,
        /// How many times it was sent.
        sent: u32,
        /// When to send it again.
        next: SystemTime,
    },
    /// REQUEST for an offer sent, waiting for the ACK.
    Requesting {
        /// The transaction.
        xid: u32,
        /// The offer taken.
        offer: Box<Answer>,
        /// How many times it was sent.
        sent: u32,
        /// When to send it again.
        next: SystemTime,
    },
    /// A lease held, nothing in flight.
    Bound(Lease),
    /// REQUEST sent to the lease's server after T1.
    Renewing {
        /// The lease.
        lease: Lease,
        /// The transaction.
        xid: u32,
        /// When to send it again.
        next: SystemTime,
    },
    /// REQUEST broadcast after T2.
    Rebinding {
        /// The lease.
        lease: Lease,
        /// The transaction.
        xid: u32,
        /// When to send it again.
        next: SystemTime,
    },
}

/// A DHCPv4 client's state machine.
#[derive(Debug, Clone)]
pub struct Client {
    config: Config,
    state: State,
    seed: u32,
}

fn backoff(sent: u32) -> Duration {
    Duration::from_secs(1u64 << sent.clamp(1, 6))
}

impl Client {
    /// A client in INIT; `seed` (random) makes its transaction ids.
    pub fn new(config: Config, seed: u32) -> Self {
        Self {
            config,
            state: State::Init,
            seed,
        }
    }

    /// A client in BOUND on a stored lease (the next [`tick`](Self::tick) renews, rebinds or
    /// expires it according to the time).
    pub fn resume(config: Config, lease: Lease, seed: u32) -> Self {
        Self {
            config,
            state: State::Bound(lease),
            seed,
        }
    }

    /// Where the client is.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The lease held, in BOUND, RENEWING or REBINDING.
    pub fn lease(&self) -> Option<&Lease> {
        match &self.state {
            State::Bound(lease)
            | State::Renewing { lease, .. }
            | State::Rebinding { lease, .. } => Some(lease),
            _ => None,
        }
    }

    /// The client's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn next_xid(&mut self) -> u32 {
        // A 32-bit LCG (Numerical Recipes): every transaction gets a new id from the seed.
        self.seed = self
            .seed
            .wrapping_mul(1_664_525)
            .wrapping_add(1_013_904_223);
        self.seed
    }

    fn discover(&mut self, now: SystemTime) -> Result<Step> {
        let xid = self.next_xid();
        let bytes = message::discover(&self.config, xid)?;
        let next = now + backoff(1);
        self.state = State::Selecting { xid, sent: 1, next };
        Ok(Step {
            send: Some(broadcast(bytes)),
            event: None,
            deadline: next,
        })
    }

    fn extend(&self, xid: u32, lease: &Lease, to: To) -> Result<Outgoing> {
        Ok(Outgoing {
            bytes: message::extend(&self.config, xid, lease.address)?,
            to,
            from: lease.address,
        })
    }

    /// The time is `now`: (re)send what is due, move on at T1, T2 and expiry.
    pub fn tick(&mut self, now: SystemTime) -> Result<Step> {
        let idle = |deadline| Step {
            send: None,
            event: None,
            deadline,
        };
        match self.state.clone() {
            State::Init => self.discover(now),
            State::Selecting { xid, sent, next } => {
                if now < next {
                    return Ok(idle(next));
                }
                let next = now + backoff(sent + 1);
                self.state = State::Selecting {
                    xid,
                    sent: sent + 1,
                    next,
                };
                let bytes = message::discover(&self.config, xid)?;
                Ok(Step {
                    send: Some(broadcast(bytes)),
                    event: None,
                    deadline: next,
                })
            }
            State::Requesting {
                xid,
                offer,
                sent,
                next,
            } => {
                if now < next {
                    return Ok(idle(next));
                }
                if sent >= REQUEST_TRIES {
                    return self.discover(now);
                }
                let bytes = message::select(&self.config, xid, offer.address, offer.server)?;
                let next = now + backoff(sent + 1);
                self.state = State::Requesting {
                    xid,
                    offer,
                    sent: sent + 1,
                    next,
                };
                Ok(Step {
                    send: Some(broadcast(bytes)),
                    event: None,
                    deadline: next,
                })
            }
            State::Bound(lease) => {
                if now < lease.t1 {
                    return Ok(idle(lease.t1));
                }
                self.state = State::Renewing {
                    next: now,
                    xid: self.next_xid(),
                    lease,
                };
                self.tick(now)
            }
            State::Renewing { lease, xid, next } => {
                if now >= lease.t2 {
                    self.state = State::Rebinding {
                        next: now,
                        xid: self.next_xid(),
                        lease,
                    };
                    return self.tick(now);
                }
                if now < next {
                    return Ok(idle(next));
                }
                let next = self.retry(now, lease.t2);
                let send = self.extend(xid, &lease, To::Server(lease.server))?;
                self.state = State::Renewing { lease, xid, next };
                Ok(Step {
                    send: Some(send),
                    event: None,
                    deadline: next,
                })
            }
            State::Rebinding { lease, xid, next } => {
                if now >= lease.expiry {
                    self.state = State::Init;
                    return Ok(Step {
                        send: None,
                        event: Some(Event::Expired(lease)),
                        deadline: now,
                    });
                }
                if now < next {
                    return Ok(idle(next));
                }
                let next = self.retry(now, lease.expiry);
                let send = self.extend(xid, &lease, To::Broadcast)?;
                self.state = State::Rebinding { lease, xid, next };
                Ok(Step {
                    send: Some(send),
                    event: None,
                    deadline: next,
                })
            }
        }
    }

    /// Half the time left until `until`, at least the floor, at most `until` (RFC 2131, 4.4.5).
    fn retry(&self, now: SystemTime, until: SystemTime) -> SystemTime {
        let left = until.duration_since(now).unwrap_or(Duration::ZERO);
        (now + (left / 2).max(self.config.retry_floor)).min(until)
    }

    /// What the client expects of an answer now; `None` when nothing is in flight.
    pub fn expect(&self) -> Option<Expect<'_>> {
        let (xid, server) = match &self.state {
            State::Selecting { xid, .. } => (*xid, None),
            State::Requesting { xid, offer, .. } => (*xid, Some(offer.server)),
            State::Renewing { xid, lease, .. } => (*xid, Some(lease.server)),
            State::Rebinding { xid, .. } => (*xid, None),
            State::Init | State::Bound(_) => return None,
        };
        Some(Expect {
            xid,
            mac: self.config.mac,
            client_id: self.config.client_id.as_bytes(),
            subnet: self.config.subnet,
            server,
        })
    }

    /// `bytes` (a DHCP message) came at `now`. A refused one changes nothing: the error says
    /// why, and the caller goes on waiting.
    pub fn receive(&mut self, bytes: &[u8], now: SystemTime) -> Result<Step> {
        let Some(expect) = self.expect() else {
            return Err(Refused::MessageType("an answer while nothing is in flight".into()).into());
        };
        let answer = answer::check(bytes, &expect)?;
        let wrong = |kind: Kind| Refused::MessageType(format!("{kind:?} in {}", self.name()));
        match (self.state.clone(), answer.kind) {
            (State::Selecting { xid, .. }, Kind::Offer) => {
                let bytes = message::select(&self.config, xid, answer.address, answer.server)?;
                let next = now + backoff(1);
                self.state = State::Requesting {
                    xid,
                    offer: Box::new(answer),
                    sent: 1,
                    next,
                };
                Ok(Step {
                    send: Some(broadcast(bytes)),
                    event: None,
                    deadline: next,
                })
            }
            (
                State::Requesting { .. } | State::Renewing { .. } | State::Rebinding { .. },
                Kind::Ack,
            ) => {
                if let State::Requesting { offer, .. } = &self.state
                    && offer.address != answer.address
                {
                    // The REQUEST named the offered address; an ACK of another is not an
                    // answer to it (RFC 2131 §4.3.2 has the server ACK the requested one).
                    return Err(Refused::AckedOther {
                        acked: answer.address,
                        requested: offer.address,
                    }
                    .into());
                }
                let first = matches!(self.state, State::Requesting { .. });
                let lease = lease_of(&answer, now);
                self.state = State::Bound(lease.clone());
                Ok(Step {
                    send: None,
                    deadline: lease.t1,
                    event: Some(if first {
                        Event::Bound(lease)
                    } else {
                        Event::Extended(lease)
                    }),
                })
            }
            (
                State::Requesting { .. } | State::Renewing { .. } | State::Rebinding { .. },
                Kind::Nak,
            ) => {
                self.state = State::Init;
                Ok(Step {
                    send: None,
                    event: Some(Event::Nak(answer.server)),
                    deadline: now,
                })
            }
            (_, kind) => Err(wrong(kind).into()),
        }
    }

    /// Gives the lease up: the RELEASE to send (unicast to its server from its address), and
    /// the client is back in INIT. `None` without a lease.
    pub fn release(&mut self) -> Result<Option<Outgoing>> {
        let Some(lease) = self.lease().cloned() else {
            return Ok(None);
        };
        let xid = self.next_xid();
        let bytes = message::release(&self.config, xid, lease.address, lease.server)?;
        self.state = State::Init;
        Ok(Some(Outgoing {
            bytes,
            to: To::Server(lease.server),
            from: lease.address,
        }))
    }

    /// The DECLINE of the client's lease, if it holds one: its address is someone else's (a
    /// conflict probe or a check found a holder). Broadcast from 0.0.0.0 (see
    /// [`message::decline`]); the client is back in INIT.
    pub fn decline(&mut self) -> Result<Option<Outgoing>> {
        let Some(lease) = self.lease().cloned() else {
            return Ok(None);
        };
        let xid = self.next_xid();
        let bytes = message::decline(&self.config, xid, lease.address, lease.server)?;
        self.state = State::Init;
        Ok(Some(broadcast(bytes)))
    }

    fn name(&self) -> &'static str {
        match self.state {
            State::Init => "INIT",
            State::Selecting { .. } => "SELECTING",
            State::Requesting { .. } => "REQUESTING",
            State::Bound(_) => "BOUND",
            State::Renewing { .. } => "RENEWING",
            State::Rebinding { .. } => "REBINDING",
        }
    }
}

fn broadcast(bytes: Vec<u8>) -> Outgoing {
    Outgoing {
        bytes,
        to: To::Broadcast,
        from: Ipv4Addr::UNSPECIFIED,
    }
}

/// The lease an OFFER would give if acknowledged at `now` (its lease time, if it named one;
/// else none: a record of it is expired at once, as nothing says it is held).
pub(crate) fn offered(offer: &Answer, now: SystemTime) -> Lease {
    lease_of(offer, now)
}

/// The lease an ACK (checked, so with a lease time) gives at `now`.
fn lease_of(ack: &Answer, now: SystemTime) -> Lease {
    let length = ack.lease.unwrap_or(Duration::ZERO);
    let (t1, t2) = answer::timers(length, ack.t1, ack.t2);
    Lease {
        address: ack.address,
        prefix: ack.prefix,
        router: ack.router,
        routes: ack.routes.clone(),
        dns: ack.dns.clone(),
        domain: ack.domain.clone(),
        server: ack.server,
        obtained: now,
        t1: now + t1,
        t2: now + t2,
        expiry: now + length,
    }
}

#[cfg(test)]
mod tests;
