//! RFC 8415's retransmission (15, 7.6): each wait twice the last, with a random factor RAND
//! of ±10 % (the first SOLICIT's only above 0), capped by a maximum (MRT) and bounded by a
//! count (MRC) or a duration (MRD); and the client's random numbers (transaction ids, RAND),
//! from a seed, so that the machine stays pure.

use std::time::{Duration, SystemTime};

/// How a message is retransmitted (RFC 8415, 7.6): the first wait, the cap (zero: none), the
/// most sends (zero: no count).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Params {
    pub(crate) irt: Duration,
    pub(crate) mrt: Duration,
    pub(crate) mrc: u32,
    /// The first wait's RAND only above 0 (SOLICIT's, RFC 8415, 18.2.1).
    pub(crate) positive: bool,
}

pub(crate) const SOLICIT: Params = Params {
    irt: Duration::from_secs(1),
    mrt: Duration::from_secs(3600),
    mrc: 0,
    positive: true,
};
pub(crate) const REQUEST: Params = Params {
    irt: Duration::from_secs(1),
    mrt: Duration::from_secs(30),
    mrc: 10,
    positive: false,
};
pub(crate) const RENEW: Params = Params {
    irt: Duration::from_secs(10),
    mrt: Duration::from_secs(600),
    mrc: 0,
    positive: false,
};
pub(crate) const RELEASE: Params = Params {
    irt: Duration::from_secs(1),
    mrt: Duration::ZERO,
    mrc: 4,
    positive: false,
};

/// A message's retransmission: when its exchange started, how often it was sent, the last
/// wait, when to send it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retrans {
    /// When the exchange started (the elapsed time option counts from it).
    pub start: SystemTime,
    /// How many times it was sent.
    pub sent: u32,
    /// The last wait (RT).
    pub rt: Duration,
    /// When to send it again.
    pub next: SystemTime,
}

impl Retrans {
    /// An exchange starting at `now`, nothing sent yet.
    pub(crate) fn fresh(now: SystemTime) -> Retrans {
        Retrans {
            start: now,
            sent: 0,
            rt: Duration::ZERO,
            next: now,
        }
    }
}

/// The client's random numbers: a 32-bit LCG (Numerical Recipes) from a seed, as the v4
/// client's transaction ids.
#[derive(Debug, Clone)]
pub(crate) struct Rng(pub(crate) u32);

impl Rng {
    fn random(&mut self) -> u32 {
        // A 32-bit LCG (Numerical Recipes), as the v4 client's.
        self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        self.0
    }

    /// A new transaction id (24 bits).
    pub(crate) fn xid(&mut self) -> u32 {
        self.random() >> 8
    }

    /// RAND of RFC 8415, 15: uniform in [-0.1, 0.1] ([0, 0.1] when `positive`).
    pub(crate) fn jitter(&mut self, positive: bool) -> f64 {
        let unit = f64::from(self.random()) / f64::from(u32::MAX);
        if positive {
            unit * 0.1
        } else {
            unit * 0.2 - 0.1
        }
    }

    /// The next wait after `rt` (none yet when `sent` is 0), capped by `limit` (MRD).
    pub(crate) fn advance(
        &mut self,
        rt: &Retrans,
        p: Params,
        now: SystemTime,
        limit: Option<SystemTime>,
    ) -> Retrans {
        let mut wait = if rt.sent == 0 {
            p.irt.mul_f64(1.0 + self.jitter(p.positive))
        } else {
            rt.rt.mul_f64(2.0 + self.jitter(false))
        };
        if !p.mrt.is_zero() && wait > p.mrt {
            wait = p.mrt.mul_f64(1.0 + self.jitter(false));
        }
        let mut next = now + wait;
        if let Some(limit) = limit {
            next = next.min(limit);
        }
        Retrans {
            start: rt.start,
            sent: rt.sent + 1,
            rt: wait,
            next,
        }
    }
}
