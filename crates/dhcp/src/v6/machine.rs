//! The DHCPv6 client's states (RFC 8415, 18) for one IA_NA as a pure machine, like the v4 one:
//! it is given "the time is now" ([`Client::tick`]) and "this message came"
//! ([`Client::receive`]), and answers with a [`Step`]. It opens no socket and reads no clock,
//! so a renewer can be killed and another started from the stored [`Lease`]
//! ([`Client::resume`]).
//!
//! Retransmission is RFC 8415's (15): each wait twice the last, ±10 %, capped (MRT), with a
//! count (MRC) or a duration (MRD: T2 for RENEW, the lease's end for REBIND) as a bound.
//!
//! No rapid commit (RFC 8415, 18.2.1, 21.14): a SOLICIT with it lets every server on the LAN
//! that answers commit an address, and those the client does not take stay held until they
//! expire — on a LAN that is the user's, with a router and perhaps a second server, that is a
//! leak of their addresses for a saving of one round trip. The four-message exchange also
//! checks an ADVERTISE before any server commits anything. A REPLY to a SOLICIT is refused.

use std::{net::Ipv6Addr, time::SystemTime};

use crate::v6::{
    Lease, Refused, Result,
    answer::{self, Answer, Expect, Status, first_address, pick},
    lease::lease_of,
    message::{self, Ids},
    retrans::{RELEASE, RENEW, REQUEST, Retrans, Rng, SOLICIT},
    wire,
};

pub use crate::v6::step::{Config, Event, Outgoing, Step, To};
use crate::v6::step::{event, send};

/// Where the client is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Nothing sent.
    Init,
    /// SOLICIT sent (or due), collecting ADVERTISEs.
    Soliciting {
        /// The transaction.
        xid: u32,
        /// Its retransmission.
        rt: Retrans,
        /// The best ADVERTISE of the first wait.
        best: Option<Box<Answer>>,
    },
    /// REQUEST sent for an advertised address.
    Requesting {
        /// The transaction.
        xid: u32,
        /// Its retransmission.
        rt: Retrans,
        /// The ADVERTISE taken.
        offer: Box<Answer>,
        /// The address asked for.
        address: Ipv6Addr,
    },
    /// A lease held, nothing in flight.
    Bound(Lease),
    /// RENEW sent to the lease's server after T1.
    Renewing {
        /// The lease.
        lease: Lease,
        /// The transaction.
        xid: u32,
        /// Its retransmission.
        rt: Retrans,
    },
    /// REBIND sent to any server after T2.
    Rebinding {
        /// The lease.
        lease: Lease,
        /// The transaction.
        xid: u32,
        /// Its retransmission.
        rt: Retrans,
    },
    /// REQUEST sent for the lease's address after a server answered a RENEW or REBIND with
    /// NoBinding (RFC 8415, 18.2.10.1); the address stays in use meanwhile.
    Reclaiming {
        /// The lease.
        lease: Lease,
        /// The server that answered NoBinding (its DUID): the REQUEST asks it.
        server_id: Vec<u8>,
        /// The transaction.
        xid: u32,
        /// Its retransmission.
        rt: Retrans,
    },
    /// RELEASE sent.
    Releasing {
        /// The lease given up.
        lease: Lease,
        /// The transaction.
        xid: u32,
        /// Its retransmission.
        rt: Retrans,
    },
}

/// A DHCPv6 client's state machine.
#[derive(Debug, Clone)]
pub struct Client {
    config: Config,
    state: State,
    rng: Rng,
    /// The address a SOLICIT asks for, if any.
    hint: Option<Ipv6Addr>,
}

impl Client {
    /// A client in INIT; `seed` (random) makes its transaction ids and jitter.
    pub fn new(config: Config, seed: u32) -> Self {
        Self {
            config,
            state: State::Init,
            rng: Rng(seed),
            hint: None,
        }
    }

    /// A client on a stored lease (the next [`tick`](Self::tick) renews, rebinds or expires
    /// it according to the time).
    pub fn resume(config: Config, lease: Lease, seed: u32) -> Self {
        Self {
            config,
            state: State::Bound(lease),
            rng: Rng(seed),
            hint: None,
        }
    }

    /// The client with `hint`, the address its SOLICITs ask for (RFC 8415, 18.2.1: an IA_NA
    /// address as a hint, lifetimes 0): the last one this identity held, which a server that
    /// still has it free gives again. Any address the server offers is taken all the same.
    pub fn with_hint(self, hint: Option<Ipv6Addr>) -> Self {
        Self { hint, ..self }
    }

    /// Where the client is.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The client's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The lease held, in BOUND, RENEWING, REBINDING or RECLAIMING.
    pub fn lease(&self) -> Option<&Lease> {
        match &self.state {
            State::Bound(lease)
            | State::Renewing { lease, .. }
            | State::Rebinding { lease, .. }
            | State::Reclaiming { lease, .. } => Some(lease),
            _ => None,
        }
    }

    fn ids(&self) -> Ids<'_> {
        Ids {
            duid: self.config.client_id.duid(),
            iaid: self.config.client_id.iaid(),
            hostname: self.config.hostname.as_deref(),
        }
    }

    fn message(
        &self,
        kind: u8,
        xid: u32,
        rt: &Retrans,
        now: SystemTime,
        address: Option<Ipv6Addr>,
        server: Option<&[u8]>,
    ) -> Result<Vec<u8>> {
        // Hundredths of a second since the exchange began; 0 in its first message.
        let elapsed = if rt.sent == 0 {
            0
        } else {
            let cs = now.duration_since(rt.start).unwrap_or_default().as_millis() / 10;
            u16::try_from(cs).unwrap_or(u16::MAX)
        };
        message::build(kind, &self.ids(), xid, elapsed, address, server)
    }

    /// Starts soliciting: the first SOLICIT now, or after a first wait when `delay` (a server
    /// that answered a REQUEST with no address is not asked again at once).
    fn solicit(&mut self, now: SystemTime, delay: bool) -> Result<Step> {
        let xid = self.rng.xid();
        let mut rt = Retrans::fresh(now);
        if delay {
            rt.next = now + SOLICIT.irt.mul_f64(1.0 + self.rng.jitter(true));
        }
        self.state = State::Soliciting {
            xid,
            rt,
            best: None,
        };
        self.tick(now)
    }

    fn request(&mut self, offer: Box<Answer>, now: SystemTime) -> Result<Step> {
        let Some(address) = first_address(&offer) else {
            return self.solicit(now, true);
        };
        let xid = self.rng.xid();
        self.state = State::Requesting {
            xid,
            rt: Retrans::fresh(now),
            offer,
            address,
        };
        self.tick(now)
    }

    /// The time is `now`: (re)send what is due, move on at T1, T2 and the lease's end.
    pub fn tick(&mut self, now: SystemTime) -> Result<Step> {
        let idle = |deadline| Step {
            send: None,
            event: None,
            deadline,
        };
        match self.state.clone() {
            State::Init => self.solicit(now, false),
            State::Soliciting { xid, rt, best } => {
                if now < rt.next {
                    return Ok(idle(rt.next));
                }
                if let Some(best) = best {
                    return self.request(best, now);
                }
                let bytes = self.message(wire::SOLICIT, xid, &rt, now, self.hint, None)?;
                let rt = self.rng.advance(&rt, SOLICIT, now, None);
                let deadline = rt.next;
                self.state = State::Soliciting {
                    xid,
                    rt,
                    best: None,
                };
                Ok(send(bytes, To::AllServers, deadline))
            }
            State::Requesting {
                xid,
                rt,
                offer,
                address,
            } => {
                if now < rt.next {
                    return Ok(idle(rt.next));
                }
                if rt.sent >= REQUEST.mrc {
                    return self.solicit(now, false);
                }
                let bytes = self.message(
                    wire::REQUEST,
                    xid,
                    &rt,
                    now,
                    Some(address),
                    Some(&offer.server_id),
                )?;
                let rt = self.rng.advance(&rt, REQUEST, now, None);
                let deadline = rt.next;
                self.state = State::Requesting {
                    xid,
                    rt,
                    offer,
                    address,
                };
                Ok(send(bytes, To::AllServers, deadline))
            }
            State::Bound(lease) => {
                if now >= lease.t1 {
                    let xid = self.rng.xid();
                    self.state = State::Renewing {
                        lease,
                        xid,
                        rt: Retrans::fresh(now),
                    };
                    return self.tick(now);
                }
                Ok(idle(lease.t1))
            }
            State::Renewing { lease, xid, rt } => {
                if now >= lease.t2 {
                    let xid = self.rng.xid();
                    self.state = State::Rebinding {
                        lease,
                        xid,
                        rt: Retrans::fresh(now),
                    };
                    return self.tick(now);
                }
                if now < rt.next {
                    return Ok(idle(rt.next));
                }
                let to = lease.unicast.map_or(To::AllServers, To::Server);
                let bytes = self.message(
                    wire::RENEW,
                    xid,
                    &rt,
                    now,
                    Some(lease.address),
                    Some(&lease.server_id),
                )?;
                let rt = self.rng.advance(&rt, RENEW, now, Some(lease.t2));
                let deadline = rt.next;
                self.state = State::Renewing { lease, xid, rt };
                Ok(send(bytes, to, deadline))
            }
            State::Rebinding { lease, xid, rt } => {
                if now >= lease.expiry {
                    self.state = State::Init;
                    return Ok(Step {
                        send: None,
                        event: Some(Event::Expired(lease)),
                        deadline: now,
                    });
                }
                if now < rt.next {
                    return Ok(idle(rt.next));
                }
                let bytes = self.message(wire::REBIND, xid, &rt, now, Some(lease.address), None)?;
                // REB_TIMEOUT and REB_MAX_RT are RENEW's.
                let rt = self.rng.advance(&rt, RENEW, now, Some(lease.expiry));
                let deadline = rt.next;
                self.state = State::Rebinding { lease, xid, rt };
                Ok(send(bytes, To::AllServers, deadline))
            }
            State::Reclaiming {
                lease,
                server_id,
                xid,
                rt,
            } => self.reclaim_tick((lease, server_id, xid, rt), now),
            State::Releasing { lease, xid, rt } => {
                if now < rt.next {
                    return Ok(idle(rt.next));
                }
                if rt.sent >= RELEASE.mrc {
                    self.state = State::Init;
                    return Ok(Step {
                        send: None,
                        event: Some(Event::Released(false)),
                        deadline: now,
                    });
                }
                let to = lease.unicast.map_or(To::AllServers, To::Server);
                let bytes = self.message(
                    wire::RELEASE,
                    xid,
                    &rt,
                    now,
                    Some(lease.address),
                    Some(&lease.server_id),
                )?;
                let rt = self.rng.advance(&rt, RELEASE, now, None);
                let deadline = rt.next;
                self.state = State::Releasing { lease, xid, rt };
                Ok(send(bytes, to, deadline))
            }
        }
    }

    /// What the client expects of an answer now; `None` when nothing is in flight.
    pub fn expect(&self) -> Option<Expect<'_>> {
        let (xid, kind, server) = match &self.state {
            State::Soliciting { xid, .. } => (*xid, wire::ADVERTISE, None),
            State::Requesting { xid, offer, .. } => {
                (*xid, wire::REPLY, Some(offer.server_id.as_slice()))
            }
            State::Renewing { xid, lease, .. } | State::Releasing { xid, lease, .. } => {
                (*xid, wire::REPLY, Some(lease.server_id.as_slice()))
            }
            State::Rebinding { xid, .. } => (*xid, wire::REPLY, None),
            State::Reclaiming { xid, server_id, .. } => {
                (*xid, wire::REPLY, Some(server_id.as_slice()))
            }
            State::Init | State::Bound(_) => return None,
        };
        Some(Expect {
            xid,
            kind,
            duid: self.config.client_id.duid(),
            iaid: self.config.client_id.iaid(),
            server,
            subnet: self.config.subnet,
        })
    }

    /// `bytes` (a DHCPv6 message) came at `now`. A refused one changes nothing: the error says
    /// why, and the caller goes on waiting.
    pub fn receive(&mut self, bytes: &[u8], now: SystemTime) -> Result<Step> {
        let Some(expect) = self.expect() else {
            return Err(Refused::MessageType(bytes.first().copied().unwrap_or(0)).into());
        };
        let answer = answer::check(bytes, &expect)?;
        match self.state.clone() {
            State::Soliciting { xid, rt, best } => {
                if first_address(&answer).is_none() {
                    return Err(no_address(&answer).into());
                }
                // After the first wait, or a preference of 255: at once (RFC 8415, 18.2.1).
                if answer.preference == 255 || rt.sent > 1 {
                    return self.request(Box::new(answer), now);
                }
                let better = best
                    .as_ref()
                    .is_none_or(|b| answer.preference > b.preference);
                let best = if better { Some(Box::new(answer)) } else { best };
                let deadline = rt.next;
                self.state = State::Soliciting { xid, rt, best };
                Ok(Step {
                    send: None,
                    event: None,
                    deadline,
                })
            }
            State::Requesting { address, .. } => {
                let (status, text) = answer.status.clone();
                match status {
                    Status::Success => {}
                    Status::NoAddrsAvail => return self.solicit(now, true),
                    _ => {
                        return Err(Refused::Status {
                            code: status.code(),
                            message: text,
                        }
                        .into());
                    }
                }
                let granted = answer.ia.as_ref().map(|ia| ia.status) == Some(Status::Success);
                match pick(&answer, address).filter(|_| granted) {
                    Some(given) => {
                        let lease = lease_of(&answer, given, now);
                        self.state = State::Bound(lease.clone());
                        Ok(event(Event::Bound(lease.clone()), lease.t1))
                    }
                    // No address in the REPLY (NoAddrsAvail in the IA): solicit again.
                    None => self.solicit(now, true),
                }
            }
            State::Renewing { lease, xid, rt } => {
                self.extend_reply(answer, (lease, xid, rt), true, now)
            }
            State::Rebinding { lease, xid, rt } => {
                self.extend_reply(answer, (lease, xid, rt), false, now)
            }
            State::Reclaiming { lease, .. } => self.reclaim_reply(&answer, lease, now),
            State::Releasing { lease, xid, rt } => {
                if answer.status.0 == Status::UseMulticast && lease.unicast.is_some() {
                    // As for RENEW: the same RELEASE, to all servers; not released yet (and
                    // sent once more even when the unicast ones used REL_MAX_RC up).
                    let lease = Lease {
                        unicast: None,
                        ..lease
                    };
                    let sent = rt.sent.min(RELEASE.mrc - 1);
                    self.state = State::Releasing {
                        lease,
                        xid,
                        rt: Retrans {
                            next: now,
                            sent,
                            ..rt
                        },
                    };
                    return self.tick(now);
                }
                self.state = State::Init;
                Ok(event(Event::Released(true), now))
            }
            State::Init | State::Bound(_) => Err(Refused::MessageType(answer.kind).into()),
        }
    }

    /// Gives the lease up: the client sends RELEASE (at once, and again per RFC 8415's
    /// REL_MAX_RC until answered) and ends in INIT with [`Event::Released`]. The caller
    /// removes the address first (RFC 8415, 18.2.7). `None` without a lease.
    pub fn release(&mut self, now: SystemTime) -> Result<Option<Step>> {
        let Some(lease) = self.lease().cloned() else {
            return Ok(None);
        };
        let xid = self.rng.xid();
        self.state = State::Releasing {
            lease,
            xid,
            rt: Retrans::fresh(now),
        };
        self.tick(now).map(Some)
    }
}

fn no_address(answer: &Answer) -> Refused {
    let status = answer.ia.as_ref().map_or(answer.status.0, |ia| ia.status);
    Refused::NoAddress(format!("status {status:?}"))
}

mod extend;
#[cfg(test)]
mod tests;
