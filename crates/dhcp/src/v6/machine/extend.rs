//! The answers that extend a lease: the REPLY to a RENEW or a REBIND, and the REQUEST a client
//! sends for the same address when the server no longer knows the binding (RFC 8415,
//! 18.2.10.1). A lease is given up only when the server says so: its address back with a
//! valid lifetime of 0 (and no other given in its place), no address for it (NoAddrsAvail,
//! NotOnLink), or a REQUEST for it refused or unanswered. Meanwhile the address stays in use.

use std::time::SystemTime;

use super::{Client, State};
use crate::v6::{
    Lease, Refused, Result,
    answer::{Answer, Status, pick},
    lease::lease_of,
    retrans::{REQUEST, Retrans},
    step::{Event, Step, To, event, send},
    wire,
};

fn refused(status: Status, message: String) -> crate::v6::Error {
    Refused::Status {
        code: status.code(),
        message,
    }
    .into()
}

impl Client {
    /// The lease is gone: INIT, and the caller removes its address.
    fn lost(&mut self, lease: Lease, now: SystemTime) -> Result<Step> {
        self.state = State::Init;
        Ok(event(Event::Lost(lease), now))
    }

    /// A REPLY to the RENEW (`renewing`) or REBIND `xid` of `lease`.
    pub(super) fn extend_reply(
        &mut self,
        answer: Answer,
        (lease, xid, rt): (Lease, u32, Retrans),
        renewing: bool,
        now: SystemTime,
    ) -> Result<Step> {
        let (status, text) = answer.status.clone();
        if renewing && status == Status::UseMulticast && lease.unicast.is_some() {
            // The server wants multicast after all: the same message, to all servers.
            let lease = Lease {
                unicast: None,
                ..lease
            };
            self.state = State::Renewing {
                lease,
                xid,
                rt: Retrans { next: now, ..rt },
            };
            return self.tick(now);
        }
        if status != Status::Success {
            return Err(refused(status, text));
        }
        let Some(ia) = &answer.ia else {
            return Err(Refused::NoAddress("no IA_NA in the REPLY".into()).into());
        };
        match ia.status {
            Status::Success => {}
            // The server no longer knows the binding: a REQUEST for the same IA and address,
            // to the server that answered; the address stays in use meanwhile.
            Status::NoBinding => {
                let xid = self.rng.xid();
                self.state = State::Reclaiming {
                    lease,
                    server_id: answer.server_id.clone(),
                    xid,
                    rt: Retrans::fresh(now),
                };
                return self.tick(now);
            }
            // No address for the client here: it looks for another server.
            Status::NoAddrsAvail | Status::NotOnLink => return self.lost(lease, now),
            other => return Err(refused(other, "in the IA_NA".into())),
        }
        // Addresses the REPLY does not name are left as they are (RFC 8415, 18.2.10.1): an IA
        // without ours extends nothing and ends nothing.
        let ours = ia.addresses.iter().find(|a| a.address == lease.address);
        match ours.copied() {
            Some(given) if given.valid > 0 => {
                let extended = lease_of(&answer, given, now);
                self.state = State::Bound(extended.clone());
                Ok(event(Event::Extended(extended.clone()), extended.t1))
            }
            // A valid lifetime of 0: the server takes the address back. Another it gives in
            // the same REPLY (Kea's answer to a binding it lost: an address of its range) is
            // the lease now, and the caller moves to it (RFC 8415, 18.2.10.1: the client takes
            // the IA's new addresses); without one the lease is lost.
            Some(_) => match pick(&answer, lease.address) {
                Some(given) => {
                    let moved = lease_of(&answer, given, now);
                    self.state = State::Bound(moved.clone());
                    Ok(event(Event::Extended(moved.clone()), moved.t1))
                }
                None => self.lost(lease, now),
            },
            None => Err(Refused::NoAddress(format!(
                "the REPLY's IA_NA does not name {}",
                lease.address
            ))
            .into()),
        }
    }

    /// RECLAIMING at `now`: the REQUEST (re)sent, or the lease lost after REQUEST's tries
    /// (RFC 8415's REQ_MAX_RC), or expired.
    pub(super) fn reclaim_tick(
        &mut self,
        (lease, server_id, xid, rt): (Lease, Vec<u8>, u32, Retrans),
        now: SystemTime,
    ) -> Result<Step> {
        if now >= lease.expiry {
            self.state = State::Init;
            return Ok(event(Event::Expired(lease), now));
        }
        if now < rt.next {
            return Ok(Step {
                send: None,
                event: None,
                deadline: rt.next,
            });
        }
        if rt.sent >= REQUEST.mrc {
            return self.lost(lease, now);
        }
        let address = Some(lease.address);
        let bytes = self.message(wire::REQUEST, xid, &rt, now, address, Some(&server_id))?;
        let rt = self.rng.advance(&rt, REQUEST, now, Some(lease.expiry));
        let deadline = rt.next;
        self.state = State::Reclaiming {
            lease,
            server_id,
            xid,
            rt,
        };
        Ok(send(bytes, To::AllServers, deadline))
    }

    /// A REPLY to the REQUEST for `lease`'s address after NoBinding.
    pub(super) fn reclaim_reply(
        &mut self,
        answer: &Answer,
        lease: Lease,
        now: SystemTime,
    ) -> Result<Step> {
        let gone = |s: Status| {
            matches!(
                s,
                Status::NoAddrsAvail | Status::NotOnLink | Status::NoBinding
            )
        };
        let (status, text) = answer.status.clone();
        if gone(status) {
            return self.lost(lease, now);
        }
        if status != Status::Success {
            return Err(refused(status, text));
        }
        let Some(ia) = &answer.ia else {
            return Err(Refused::NoAddress("no IA_NA in the REPLY".into()).into());
        };
        match ia.status {
            Status::Success => {}
            s if gone(s) => return self.lost(lease, now),
            other => return Err(refused(other, "in the IA_NA".into())),
        }
        // Ours if given, else the one the server chose (the caller moves to it).
        match pick(answer, lease.address) {
            Some(given) => {
                let extended = lease_of(answer, given, now);
                self.state = State::Bound(extended.clone());
                Ok(event(Event::Extended(extended.clone()), extended.t1))
            }
            None => self.lost(lease, now),
        }
    }
}

#[cfg(test)]
mod tests;
