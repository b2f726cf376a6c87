//! The answers that extend a lease: the REPLY to a RENEW or a REBIND (RFC 8415, 18.2.10.1). A
//! lease is given up only when the server says so: its address back with a valid lifetime of
//! 0, or no binding or address for it (NoBinding, NoAddrsAvail, NotOnLink). Meanwhile the
//! address stays in use.

use std::time::SystemTime;

use super::{Client, State};
use crate::v6::{
    Lease, Refused, Result,
    answer::{Answer, Status},
    lease::lease_of,
    retrans::Retrans,
    step::{Event, Step, event},
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
            // No binding or address for the client here: it looks for another server.
            Status::NoBinding | Status::NoAddrsAvail | Status::NotOnLink => {
                return self.lost(lease, now);
            }
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
            // A valid lifetime of 0: the server takes the address back.
            Some(_) => self.lost(lease, now),
            None => Err(Refused::NoAddress(format!(
                "the REPLY's IA_NA does not name {}",
                lease.address
            ))
            .into()),
        }
    }
}

#[cfg(test)]
mod tests;
