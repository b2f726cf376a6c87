//! What a DHCP attach writes on the endpoint's record while its leases are in flight: the v4
//! offer taken (before its REQUEST goes out) and, on a `--ipv6` network, the v6 lease an
//! ADVERTISE offers (before its REQUEST), so that a hook killed before the answers are in
//! still names every lease a server may have committed, and the take-back gives them back.
//! The two exchanges run at once, on two threads; the record holds both, so one note writes
//! both parts. A record's v4 lease is not optional: the v6 REQUEST waits until the v4 offer is
//! noted, and none goes out once the v4 exchange is over without a lease (the attach fails
//! anyway). A NAK of the v4 REQUEST leaves the offer on the record, unbound (the server holds
//! nothing for it: no RELEASE), still carrying the v6 part. What is noted here is what was
//! written: a note whose write fails changes nothing (its exchange ends before its REQUEST).

use std::{
    sync::{Condvar, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use super::{Dhcp6Record, DhcpRecord, Note};

/// The record's leases in flight, noted from both exchanges' threads.
pub(super) struct Notes<'a> {
    note: Option<Note<'a>>,
    noted: Mutex<Noted>,
    changed: Condvar,
    /// How long a v6 note waits for the v4 offer at most (the exchanges' deadline).
    within: Duration,
}

#[derive(Default, Clone)]
struct Noted {
    /// The v4 offer's record (pending; unbound once its REQUEST was NAKed).
    v4: Option<DhcpRecord>,
    /// The v6 lease whose REQUEST is out (pending).
    v6: Option<Dhcp6Record>,
    /// The v4 exchange is over: `Some(true)` with a lease, `Some(false)` without.
    v4_over: Option<bool>,
}

impl Noted {
    /// A v4 offer whose REQUEST may be answered: one the v6 part can be noted with.
    fn offered(&self) -> bool {
        self.v4.as_ref().is_some_and(|r| !r.renewal.unbound)
    }

    /// The record's DHCP part as noted now.
    fn record(&self) -> Option<DhcpRecord> {
        let mut record = self.v4.clone()?;
        record.v6.clone_from(&self.v6);
        Some(record)
    }
}

impl<'a> Notes<'a> {
    /// Notes through `note` (none: nothing is written, and nothing waits); a v6 note waits
    /// `within` at most for the v4 offer.
    pub(super) fn new(note: Option<Note<'a>>, within: Duration) -> Self {
        Self {
            note,
            noted: Mutex::new(Noted::default()),
            changed: Condvar::new(),
            within,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Noted> {
        self.noted.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `next` (if there is a v4 part to write it in) and, once written, holds it as
    /// noted.
    fn write(&self, noted: &mut Noted, next: Noted) -> Result<(), String> {
        if let (Some(note), Some(record)) = (&self.note, next.record()) {
            (note.0)(&record).map_err(|err| crate::one_line(&err))?;
        }
        *noted = next;
        self.changed.notify_all();
        Ok(())
    }

    /// The v4 exchange took `offered` (its record, pending), or (`None`) its REQUEST was
    /// NAKed: the offer stays on the record, unbound.
    pub(super) fn v4(&self, offered: Option<DhcpRecord>) -> Result<(), String> {
        let mut noted = self.lock();
        let mut next = noted.clone();
        match (offered, next.v4.as_mut()) {
            (Some(record), _) => next.v4 = Some(record),
            (None, Some(refused)) if !refused.renewal.unbound => refused.renewal.unbound = true,
            (None, _) => return Ok(()),
        }
        self.write(&mut noted, next)
    }

    /// The v4 exchange is over, `leased` or not: a v6 note waiting for its offer waits no
    /// more, and none is noted (nor its REQUEST sent) after a v4 exchange without a lease.
    pub(super) fn v4_over(&self, leased: bool) {
        self.lock().v4_over = Some(leased);
        self.changed.notify_all();
    }

    /// The v6 exchange's REQUEST is about to go out for `offered` (its record, pending), or
    /// (`None`) its REPLY gave no address: the server holds nothing for it.
    pub(super) fn v6(&self, offered: Option<Dhcp6Record>) -> Result<(), String> {
        let mut noted = self.lock();
        // A v6 part noted already is replaced as it is (a REPLY of another address: the
        // server holds that one now, whatever the v4 exchange did since).
        if offered.is_some() && self.note.is_some() && noted.v6.is_none() {
            let deadline = Instant::now() + self.within;
            while !noted.offered() && noted.v4_over.is_none() {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                noted = self
                    .changed
                    .wait_timeout(noted, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            if noted.v4_over == Some(false) {
                return Err("the DHCPv4 exchange ended without a lease".into());
            }
            if !noted.offered() {
                return Err("no IPv4 offer to note it beside".into());
            }
        }
        let next = Noted {
            v6: offered,
            ..noted.clone()
        };
        self.write(&mut noted, next)
    }

    /// The record's DHCP part as noted (`with_v6`: its v6 part too), for a refusal to give
    /// back: `None` when nothing a server may hold is noted.
    pub(super) fn given_back(&self, with_v6: bool) -> Option<DhcpRecord> {
        let noted = self.lock();
        let mut record = noted.record()?;
        if !with_v6 {
            record.v6 = None;
        }
        (!record.renewal.unbound || record.v6.is_some()).then_some(record)
    }

    /// The v6 part noted, if any (a REQUEST out and no REPLY read).
    pub(super) fn v6_noted(&self) -> Option<Dhcp6Record> {
        self.lock().v6.clone()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::SystemTime;

    use super::*;

    const LONG: Duration = Duration::from_secs(30);

    /// The v4 part of a record (pending) and its v6 part.
    fn parts() -> (DhcpRecord, Dhcp6Record) {
        let until = SystemTime::now() + LONG;
        let mut record = super::super::dhcp_release::tests::record(until, until);
        record.renewal.pending = true;
        let v6 = record.v6.take().unwrap();
        (record, v6)
    }

    /// Runs `f` with notes written into a list (what the endpoint's record was, in order).
    fn noting(f: impl FnOnce(&Notes<'_>)) -> Vec<DhcpRecord> {
        let written = Mutex::new(Vec::new());
        let write = |record: &DhcpRecord| -> crate::Result<()> {
            written.lock().unwrap().push(record.clone());
            Ok(())
        };
        f(&Notes::new(Some(Note(&write)), LONG));
        written.into_inner().unwrap()
    }

    #[test]
    fn a_v6_offer_is_written_beside_the_v4_one() {
        let (v4, v6) = parts();
        let written = noting(|notes| {
            notes.v4(Some(v4.clone())).unwrap();
            notes.v6(Some(v6.clone())).unwrap();
            assert_eq!(notes.v6_noted().unwrap(), v6);
        });
        assert_eq!(written.len(), 2);
        assert_eq!(written[0].v6, None);
        assert_eq!(written[1].lease, v4.lease);
        assert_eq!(written[1].v6.as_ref(), Some(&v6));
        assert!(written[1].renewal.pending);
    }

    #[test]
    fn a_v6_offer_first_waits_for_the_v4_one() {
        let (v4, v6) = parts();
        let written = noting(|notes| {
            std::thread::scope(|scope| {
                let early = scope.spawn(|| notes.v6(Some(v6.clone())));
                std::thread::sleep(Duration::from_millis(50));
                // Nothing is written, and the v6 note still waits, before the v4 offer.
                assert!(notes.v6_noted().is_none());
                notes.v4(Some(v4.clone())).unwrap();
                early.join().unwrap().unwrap();
            });
        });
        assert_eq!(written.len(), 2, "the v4 offer, then both");
        assert_eq!(written[1].v6.as_ref(), Some(&v6));
    }

    #[test]
    fn a_v6_offer_with_no_v4_one_is_refused_and_writes_nothing() {
        let (_, v6) = parts();
        let written = noting(|notes| {
            notes.v4_over(false);
            let err = notes.v6(Some(v6.clone())).unwrap_err();
            assert!(err.contains("without a lease"), "{err}");
            assert!(notes.v6_noted().is_none());
            assert!(notes.given_back(true).is_none());
        });
        assert!(written.is_empty());
        // Bounded: with the v4 exchange still on, a v6 note waits `within` at most.
        let write = |_: &DhcpRecord| -> crate::Result<()> { Ok(()) };
        let notes = Notes::new(Some(Note(&write)), Duration::from_millis(20));
        assert!(notes.v6(Some(v6)).is_err());
    }

    #[test]
    fn no_v6_offer_is_noted_once_the_v4_exchange_failed_with_an_offer() {
        let (v4, v6) = parts();
        let written = noting(|notes| {
            notes.v4(Some(v4.clone())).unwrap();
            notes.v4_over(false);
            let err = notes.v6(Some(v6.clone())).unwrap_err();
            assert!(err.contains("without a lease"), "{err}");
            assert!(notes.v6_noted().is_none());
        });
        assert_eq!(written.len(), 1, "the v4 offer alone");
    }

    /// A REPLY of another address than the one noted replaces the v6 part as it is, even once
    /// the v4 exchange failed: the server holds that lease.
    #[test]
    fn a_noted_v6_part_is_replaced_whatever_the_v4_exchange_did_since() {
        let (v4, v6) = parts();
        let mut other = v6.clone();
        other.lease.address = "fd00::77".parse().unwrap();
        let written = noting(|notes| {
            notes.v4(Some(v4.clone())).unwrap();
            notes.v6(Some(v6.clone())).unwrap();
            notes.v4_over(false);
            notes.v6(Some(other.clone())).unwrap();
            assert_eq!(notes.v6_noted().as_ref(), Some(&other));
        });
        assert_eq!(written.last().and_then(|r| r.v6.as_ref()), Some(&other));
    }

    #[test]
    fn a_note_whose_write_fails_notes_nothing() {
        let (v4, v6) = parts();
        let fail =
            |_: &DhcpRecord| -> crate::Result<()> { Err(crate::Error::Injected("disk full")) };
        let notes = Notes::new(Some(Note(&fail)), LONG);
        assert!(notes.v4(Some(v4)).unwrap_err().contains("disk full"));
        assert!(notes.given_back(true).is_none(), "an offer never requested");
        notes.v4_over(true);
        assert!(notes.v6(Some(v6)).is_err());
        assert!(notes.v6_noted().is_none());
    }

    #[test]
    fn a_nak_keeps_the_offer_unbound_with_its_v6_part() {
        let (v4, v6) = parts();
        let written = noting(|notes| {
            notes.v4(Some(v4.clone())).unwrap();
            notes.v6(Some(v6.clone())).unwrap();
            notes.v4(None).unwrap();
            // A second NAK (no new offer between) writes nothing more.
            notes.v4(None).unwrap();
            let back = notes.given_back(true).unwrap();
            assert!(back.renewal.unbound);
            assert_eq!(back.v6.as_ref(), Some(&v6));
            // The v6 lease given back at once: nothing a server holds is left.
            assert!(notes.given_back(false).is_none());
            // A REPLY with no address: the v6 part goes.
            notes.v6(None).unwrap();
            assert!(notes.given_back(true).is_none());
        });
        assert_eq!(written.len(), 4);
        assert!(written[2].renewal.unbound);
        assert_eq!(written[2].v6.as_ref(), Some(&v6));
        assert_eq!(written[3].v6, None);
    }

    #[test]
    fn with_no_writer_nothing_waits() {
        let (_, v6) = parts();
        let notes = Notes::new(None, LONG);
        let started = Instant::now();
        notes.v6(Some(v6.clone())).unwrap();
        assert!(started.elapsed() < LONG);
        assert_eq!(notes.v6_noted(), Some(v6));
        assert!(
            notes.given_back(true).is_none(),
            "no v4 part to give back with"
        );
    }
}
