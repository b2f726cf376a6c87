use super::super::tests::{answer, bound, config, kind, sent};
use super::*;
use crate::v6::{Error, fake::OFFERED, wire};

const OTHER: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0x2001, 0xdb8, 7, 0, 0, 0, 0, 0x51);

#[test]
fn a_reply_to_renew_or_rebind_without_our_address_extends_and_ends_nothing() {
    for rebind in [false, true] {
        let (mut c, lease) = bound(config());
        let now = if rebind { lease.t2 } else { lease.t1 };
        let step = c.tick(now).unwrap();
        let want = if rebind { wire::REBIND } else { wire::RENEW };
        assert_eq!(kind(sent(&step)), want);
        let before = c.state().clone();
        // Success, and no IAADDR at all, or another address only: ours is left as it is.
        for address in [None, Some((OTHER, 80, 100))] {
            let reply = answer(sent(&step), |s| s.address = address);
            assert!(
                matches!(
                    c.receive(&reply, now),
                    Err(Error::Refused(Refused::NoAddress(_)))
                ),
                "rebind {rebind}, {address:?}"
            );
            assert_eq!(c.state(), &before);
            assert_eq!(c.lease(), Some(&lease));
        }
        // Ours with a valid lifetime of 0: the server takes it back.
        let back = answer(sent(&step), |s| s.address = Some((OFFERED, 0, 0)));
        let step = c.receive(&back, now).unwrap();
        assert_eq!(step.event, Some(Event::Lost(lease)));
        assert_eq!(c.state(), &State::Init);
    }
}
