use super::super::tests::{answer, bound, config, kind, option, secs, sent};
use super::*;
use crate::v6::{
    Error,
    fake::{OFFERED, SERVER_DUID},
};

const OTHER: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0x2001, 0xdb8, 7, 0, 0, 0, 0, 0x51);

fn requested_address(step: &Step) -> Vec<u8> {
    option(sent(step), wire::OPT_IA_NA).expect("an IA_NA")[16..32].to_vec()
}

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

#[test]
fn ours_taken_back_with_another_given_in_its_place_moves_the_lease_to_it() {
    for rebind in [false, true] {
        let (mut c, lease) = bound(config());
        let now = if rebind { lease.t2 } else { lease.t1 };
        let step = c.tick(now).unwrap();
        let moved = answer(sent(&step), |s| {
            s.address = Some((OFFERED, 0, 0));
            s.also = Some((OTHER, 80, 100));
        });
        let step = c.receive(&moved, now).unwrap();
        let Some(Event::Extended(new)) = step.event else {
            panic!("not moved: {:?}", step.event);
        };
        assert_eq!(new.address, OTHER);
        assert_eq!(new.expiry, now + secs(100.0));
        assert_eq!(c.state(), &State::Bound(new.clone()));
        assert_eq!(step.deadline, new.t1);
    }
}

#[test]
fn no_binding_requests_the_same_address_and_keeps_it_meanwhile() {
    let (mut c, lease) = bound(config());
    let step = c.tick(lease.t1).unwrap();
    // NoBinding, even beside the address.
    let unknown = answer(sent(&step), |s| s.ia_status = Some(3));
    let step = c.receive(&unknown, lease.t1).unwrap();
    assert_eq!(step.event, None, "the lease is not lost");
    let out = sent(&step);
    assert_eq!((kind(out), out.to), (wire::REQUEST, To::AllServers));
    assert_eq!(option(out, wire::OPT_SERVERID).unwrap(), SERVER_DUID);
    assert_eq!(requested_address(&step), lease.address.octets());
    assert_eq!(c.lease(), Some(&lease), "the address stays in use");
    // The server grants it again.
    let now = lease.t1 + std::time::Duration::from_secs(1);
    let step = c.receive(&answer(out, |_| {}), now).unwrap();
    let Some(Event::Extended(again)) = step.event else {
        panic!("{step:?}");
    };
    assert_eq!((again.address, again.obtained), (lease.address, now));
    assert_eq!(c.state(), &State::Bound(again));
}

#[test]
fn a_rebind_answered_no_binding_asks_the_server_that_answered() {
    let (mut c, lease) = bound(config());
    let step = c.tick(lease.t2).unwrap();
    let other = vec![0, 2, 5, 5, 5];
    let unknown = answer(sent(&step), |s| {
        s.ia_status = Some(3);
        s.server_id = other.clone();
    });
    let step = c.receive(&unknown, lease.t2).unwrap();
    assert_eq!(kind(sent(&step)), wire::REQUEST);
    assert_eq!(option(sent(&step), wire::OPT_SERVERID).unwrap(), other);
    // An answer from the lease's first server is not the one expected.
    let wrong = answer(sent(&step), |_| {});
    assert!(matches!(
        c.receive(&wrong, lease.t2),
        Err(Error::Refused(Refused::Server))
    ));
}

#[test]
fn the_request_after_no_binding_refused_or_unanswered_loses_the_lease() {
    // Refused: NoAddrsAvail in the IA, or NotOnLink for the message.
    for (ia_status, status) in [(Some(2), None), (None, Some(4))] {
        let (mut c, lease) = bound(config());
        let step = c.tick(lease.t1).unwrap();
        let unknown = answer(sent(&step), |s| s.ia_status = Some(3));
        let step = c.receive(&unknown, lease.t1).unwrap();
        let no = answer(sent(&step), |s| {
            s.ia_status = ia_status;
            s.status = status;
        });
        let step = c.receive(&no, lease.t1).unwrap();
        assert_eq!(step.event, Some(Event::Lost(lease)));
        assert_eq!(c.state(), &State::Init);
    }
    // Unanswered: REQUEST's ten tries, then lost; or the lease's end first, then expired.
    let (mut c, short) = bound(config());
    let step = c.tick(short.t1).unwrap();
    let long = answer(sent(&step), |s| s.address = Some((OFFERED, 8000, 10000)));
    let Some(Event::Extended(long)) = c.receive(&long, short.t1).unwrap().event else {
        panic!()
    };
    for (mut c, lease, tries, end) in [
        (c, long.clone(), Some(10), Event::Lost(long)),
        (
            bound(config()).0,
            short.clone(),
            None,
            Event::Expired(short),
        ),
    ] {
        let step = c.tick(lease.t1).unwrap();
        let unknown = answer(sent(&step), |s| s.ia_status = Some(3));
        let mut step = c.receive(&unknown, lease.t1).unwrap();
        let mut requests = 0;
        let event = loop {
            if let Some(out) = &step.send {
                assert_eq!(kind(out), wire::REQUEST);
                requests += 1;
            }
            if let Some(event) = step.event.take() {
                break event;
            }
            assert!(c.lease().is_some(), "the address stays in use");
            step = c.tick(step.deadline).unwrap();
        };
        assert_eq!(event, end);
        assert!(
            tries.is_none_or(|n| n == requests) && requests >= 5,
            "{requests}"
        );
    }
}
