use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::{
    ClientId,
    v6::{
        Error,
        fake::{self, OFFERED, SERVER_DUID, Spec},
    },
};

pub(super) fn config() -> Config {
    Config {
        client_id: ClientId::derive(b"secret", "lan", "c1"),
        hostname: Some("web1".into()),
        subnet: None,
    }
}

pub(super) fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_000_000)
}

pub(super) fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

pub(super) fn sent(step: &Step) -> &Outgoing {
    step.send.as_ref().expect("a message sent")
}

pub(super) fn kind(out: &Outgoing) -> u8 {
    out.bytes[0]
}

pub(super) fn option(out: &Outgoing, code: u16) -> Option<Vec<u8>> {
    wire::options(&out.bytes[wire::HEADER..], &mut 64)
        .expect("decodes")
        .into_iter()
        .find(|(c, _)| *c == code)
        .map(|(_, d)| d.to_vec())
}

pub(super) fn answer(out: &Outgoing, spec: impl FnOnce(&mut Spec)) -> Vec<u8> {
    let kind = if kind(out) == wire::SOLICIT {
        wire::ADVERTISE
    } else {
        wire::REPLY
    };
    let mut s = Spec::new(kind);
    spec(&mut s);
    fake::answer(&out.bytes, &s)
}

/// A client bound at `t0()` through the whole exchange, and its lease.
pub(super) fn bound(config: Config) -> (Client, Lease) {
    let mut c = Client::new(config, 42);
    let solicit = c.tick(t0()).unwrap();
    let adv = answer(sent(&solicit), |s| s.preference = Some(255));
    let request = c.receive(&adv, t0()).unwrap();
    let reply = answer(sent(&request), |_| {});
    let step = c.receive(&reply, t0()).unwrap();
    let Some(Event::Bound(lease)) = step.event else {
        panic!("not bound: {step:?}");
    };
    (c, lease)
}

#[test]
fn solicit_advertise_request_reply_binds_with_the_servers_lifetimes() {
    let mut c = Client::new(config(), 1);
    let step = c.tick(t0()).unwrap();
    let out = sent(&step);
    assert_eq!((kind(out), out.to), (wire::SOLICIT, To::AllServers));
    assert_eq!(
        option(out, wire::OPT_CLIENTID).unwrap(),
        config().client_id.duid()
    );
    assert_eq!(option(out, wire::OPT_ELAPSED_TIME).unwrap(), [0, 0]);
    assert_eq!(option(out, wire::OPT_CLIENT_FQDN).unwrap(), b"\0\x04web1");
    assert_eq!(option(out, wire::OPT_SERVERID), None);
    assert_eq!(option(out, wire::OPT_RAPID_COMMIT), None, "no rapid commit");
    // The first wait: 1 s plus up to 10 % (RAND > 0 for the first SOLICIT).
    let first = step.deadline.duration_since(t0()).unwrap();
    assert!(first >= secs(1.0) && first <= secs(1.1), "{first:?}");

    // An ADVERTISE within the first wait is kept, not taken at once.
    let adv = answer(out, |s| s.preference = Some(3));
    let kept = c.receive(&adv, t0() + secs(0.2)).unwrap();
    assert_eq!((kept.send.as_ref(), kept.event.as_ref()), (None, None));
    // At the first wait's end, the REQUEST for it goes, to its server.
    let step = c.tick(step.deadline).unwrap();
    let out = sent(&step);
    assert_eq!(kind(out), wire::REQUEST);
    assert_eq!(option(out, wire::OPT_SERVERID).unwrap(), SERVER_DUID);
    let ia = option(out, wire::OPT_IA_NA).unwrap();
    assert_eq!(wire::u32_at(&ia, 0), config().client_id.iaid());
    assert_eq!(&ia[16..32], &OFFERED.octets());

    let now = step.deadline - secs(0.5);
    let reply = answer(out, |_| {});
    let step = c.receive(&reply, now).unwrap();
    let Some(Event::Bound(lease)) = step.event else {
        panic!("{step:?}");
    };
    assert_eq!(lease.address, OFFERED);
    assert_eq!(lease.server_id, SERVER_DUID);
    assert_eq!(lease.t1, now + secs(40.0));
    assert_eq!(lease.t2, now + secs(70.0));
    assert_eq!(lease.preferred_left(now), secs(80.0));
    assert_eq!(lease.valid_left(now), secs(100.0));
    assert_eq!(step.deadline, lease.t1);
    assert_eq!(c.lease(), Some(&lease));
}

#[test]
fn the_best_preference_of_the_first_wait_is_taken_and_255_at_once() {
    let mut c = Client::new(config(), 2);
    let step = c.tick(t0()).unwrap();
    let solicit = sent(&step).clone();
    let low = answer(&solicit, |s| s.preference = Some(1));
    let mut high_spec = Spec::new(wire::ADVERTISE);
    high_spec.preference = Some(7);
    high_spec.server_id = vec![0, 2, 7, 7, 7];
    let high = fake::answer(&solicit.bytes, &high_spec);
    c.receive(&low, t0()).unwrap();
    c.receive(&high, t0()).unwrap();
    c.receive(&low, t0()).unwrap();
    let step = c.tick(step.deadline).unwrap();
    assert_eq!(
        option(sent(&step), wire::OPT_SERVERID).unwrap(),
        [0, 2, 7, 7, 7]
    );

    let mut c = Client::new(config(), 3);
    let step = c.tick(t0()).unwrap();
    let top = answer(sent(&step), |s| s.preference = Some(255));
    let step = c.receive(&top, t0()).unwrap();
    assert_eq!(kind(sent(&step)), wire::REQUEST);
}

#[test]
fn an_advertise_after_the_first_wait_is_taken_at_once_and_no_address_is_refused() {
    let mut c = Client::new(config(), 4);
    let first = c.tick(t0()).unwrap();
    let second = c.tick(first.deadline).unwrap();
    let out = sent(&second).clone();
    assert_eq!(kind(&out), wire::SOLICIT);
    assert_ne!(option(&out, wire::OPT_ELAPSED_TIME).unwrap(), [0, 0]);
    let none = answer(&out, |s| {
        s.address = None;
        s.ia_status = Some(2);
    });
    assert!(matches!(
        c.receive(&none, first.deadline),
        Err(Error::Refused(Refused::NoAddress(_)))
    ));
    let step = c.receive(&answer(&out, |_| {}), first.deadline).unwrap();
    assert_eq!(kind(sent(&step)), wire::REQUEST);
}

#[test]
fn a_solicit_carries_the_hint_and_takes_whatever_is_offered() {
    let plain = Client::new(config(), 1).tick(t0()).unwrap();
    let ia = option(sent(&plain), wire::OPT_IA_NA).unwrap();
    assert_eq!(ia.len(), 12, "no IAADDR without a hint");
    let hint: Ipv6Addr = "2001:db8:7::77".parse().unwrap();
    let mut c = Client::new(config(), 1).with_hint(Some(hint));
    let step = c.tick(t0()).unwrap();
    let ia = option(sent(&step), wire::OPT_IA_NA).unwrap();
    assert_eq!(&ia[16..32], &hint.octets());
    // Lifetimes 0: the client asks, the server decides.
    assert_eq!(&ia[32..40], &[0; 8]);
    // Another address offered: taken.
    let adv = answer(sent(&step), |s| s.preference = Some(255));
    let request = c.receive(&adv, t0()).unwrap();
    assert_eq!(
        &option(sent(&request), wire::OPT_IA_NA).unwrap()[16..32],
        &OFFERED.octets()
    );
}

#[test]
fn solicit_waits_double_with_jitter_and_are_capped() {
    let mut c = Client::new(config(), 5);
    let mut now = t0();
    let mut last = Duration::ZERO;
    for n in 0..20 {
        let step = c.tick(now).unwrap();
        assert!(step.send.is_some());
        let wait = step.deadline.duration_since(now).unwrap();
        if n > 0 && last < secs(1000.0) {
            assert!(
                wait >= last.mul_f64(1.9) && wait <= last.mul_f64(2.1),
                "{n}: {last:?} → {wait:?}"
            );
        }
        assert!(wait <= secs(3960.0), "past SOL_MAX_RT + 10 %: {wait:?}");
        last = wait;
        now = step.deadline;
    }
    assert!(last >= secs(3240.0));
}

#[test]
fn a_refused_answer_changes_nothing() {
    let mut c = Client::new(config(), 6);
    let step = c.tick(t0()).unwrap();
    let before = c.state().clone();
    let wrong = answer(sent(&step), |s| s.xid = Some(1));
    assert!(matches!(
        c.receive(&wrong, t0()),
        Err(Error::Refused(Refused::Xid { .. }))
    ));
    let other = answer(sent(&step), |s| s.client_id = Some(vec![0, 4, 1]));
    assert!(c.receive(&other, t0()).is_err());
    assert!(c.receive(&[0xff; 3], t0()).is_err());
    assert_eq!(c.state(), &before);
}

#[test]
fn request_gives_up_after_ten_and_no_addrs_avail_solicits_again() {
    let mut c = Client::new(config(), 7);
    let step = c.tick(t0()).unwrap();
    let adv = answer(sent(&step), |s| s.preference = Some(255));
    let mut step = c.receive(&adv, t0()).unwrap();
    let mut requests = 0;
    loop {
        match step.send.as_ref().map(kind) {
            Some(wire::REQUEST) => requests += 1,
            Some(wire::SOLICIT) => break,
            other => panic!("{other:?}"),
        }
        step = c.tick(step.deadline).unwrap();
    }
    assert_eq!(requests, 10);

    let mut c = Client::new(config(), 8);
    let step = c.tick(t0()).unwrap();
    let adv = answer(sent(&step), |s| s.preference = Some(255));
    let step = c.receive(&adv, t0()).unwrap();
    // NoAddrsAvail in the IA, even beside an address.
    let none = answer(sent(&step), |s| s.ia_status = Some(2));
    let step = c.receive(&none, t0()).unwrap();
    // Soliciting again, after a wait: the server is not asked again at once.
    assert!(step.send.is_none() && step.event.is_none());
    assert!(matches!(c.state(), State::Soliciting { .. }));
    assert!(step.deadline >= t0() + secs(1.0));
    assert_eq!(kind(sent(&c.tick(step.deadline).unwrap())), wire::SOLICIT);
}

#[test]
fn renew_at_t1_to_the_server_then_extended() {
    let (mut c, lease) = bound(config());
    let idle = c.tick(lease.t1 - secs(1.0)).unwrap();
    assert_eq!((idle.send, idle.deadline), (None, lease.t1));
    let step = c.tick(lease.t1).unwrap();
    let out = sent(&step);
    assert_eq!((kind(out), out.to), (wire::RENEW, To::AllServers));
    assert_eq!(option(out, wire::OPT_SERVERID).unwrap(), SERVER_DUID);
    // REN_TIMEOUT 10 s ± 10 %.
    let wait = step.deadline.duration_since(lease.t1).unwrap();
    assert!(wait >= secs(9.0) && wait <= secs(11.0), "{wait:?}");
    let now = lease.t1 + secs(1.0);
    let step = c.receive(&answer(out, |_| {}), now).unwrap();
    let Some(Event::Extended(renewed)) = step.event else {
        panic!("{step:?}");
    };
    assert_eq!(renewed.address, lease.address);
    assert_eq!(renewed.t1, now + secs(40.0));
}

#[test]
fn renew_goes_unicast_when_allowed_and_multicast_again_on_use_multicast() {
    let mut c = Client::new(config(), 9);
    let step = c.tick(t0()).unwrap();
    let adv = answer(sent(&step), |s| s.preference = Some(255));
    let step = c.receive(&adv, t0()).unwrap();
    let server: Ipv6Addr = "2001:db8:7::1".parse().unwrap();
    let reply = answer(sent(&step), |s| s.unicast = Some(server));
    let step = c.receive(&reply, t0()).unwrap();
    let Some(Event::Bound(lease)) = step.event else {
        panic!()
    };
    assert_eq!(lease.unicast, Some(server));
    let step = c.tick(lease.t1).unwrap();
    assert_eq!(sent(&step).to, To::Server(server));
    let use_multicast = answer(sent(&step), |s| s.status = Some(5));
    let again = c.receive(&use_multicast, lease.t1).unwrap();
    let out = sent(&again);
    assert_eq!((kind(out), out.to), (wire::RENEW, To::AllServers));
}

#[test]
fn another_status_in_the_ia_changes_nothing() {
    let (mut c, lease) = bound(config());
    let step = c.tick(lease.t1).unwrap();
    // UnspecFail in the IA: the client goes on renewing.
    let failed = answer(sent(&step), |s| s.ia_status = Some(1));
    let before = c.state().clone();
    assert!(matches!(
        c.receive(&failed, lease.t1),
        Err(Error::Refused(Refused::Status { code: 1, .. }))
    ));
    assert_eq!(c.state(), &before);
}

#[test]
fn unanswered_renew_rebinds_at_t2_and_expires_at_the_end() {
    let (mut c, lease) = bound(config());
    let mut now = lease.t1;
    let mut renews = 0;
    let rebind = loop {
        let step = c.tick(now).unwrap();
        if let Some(out) = &step.send {
            if kind(out) == wire::REBIND {
                break out.clone();
            }
            assert_eq!(kind(out), wire::RENEW);
            renews += 1;
        }
        assert!(step.deadline <= lease.t2, "a renewal wait past T2");
        now = step.deadline;
    };
    assert!(renews >= 2, "{renews}");
    assert_eq!(now, lease.t2);
    assert_eq!(option(&rebind, wire::OPT_SERVERID), None);
    let expired = loop {
        let step = c.tick(now).unwrap();
        if let Some(event) = step.event {
            break event;
        }
        assert!(step.deadline <= lease.expiry);
        now = step.deadline;
    };
    assert_eq!(now, lease.expiry);
    assert_eq!(expired, Event::Expired(lease));
    assert_eq!(c.state(), &State::Init);
}

#[test]
fn a_rebind_answered_by_another_server_extends() {
    let (mut c, lease) = bound(config());
    let step = c.tick(lease.t2).unwrap();
    assert_eq!(kind(sent(&step)), wire::REBIND);
    let reply = answer(sent(&step), |s| s.server_id = vec![0, 2, 5, 5, 5]);
    let step = c.receive(&reply, lease.t2).unwrap();
    let Some(Event::Extended(rebound)) = step.event else {
        panic!("{step:?}");
    };
    assert_eq!(rebound.server_id, [0, 2, 5, 5, 5]);
}

#[test]
fn a_client_resumed_from_the_stored_lease_renews_at_t1() {
    let (_, lease) = bound(config());
    let stored = serde_json::to_string(&lease).unwrap();
    let mut c = Client::resume(config(), serde_json::from_str(&stored).unwrap(), 77);
    assert_eq!(c.tick(lease.t1 - secs(0.5)).unwrap().send, None);
    let step = c.tick(lease.t1).unwrap();
    assert_eq!(kind(sent(&step)), wire::RENEW);
    // Resumed past the lease's end: it expires at once.
    let mut late = Client::resume(config(), lease.clone(), 78);
    let mut now = lease.expiry;
    let event = loop {
        let step = late.tick(now).unwrap();
        if let Some(event) = step.event {
            break event;
        }
        now = step.deadline;
    };
    assert_eq!(event, Event::Expired(lease));
}

#[test]
fn release_is_answered_or_given_up_after_four() {
    let (mut c, lease) = bound(config());
    let step = c.release(t0()).unwrap().unwrap();
    let out = sent(&step);
    assert_eq!(kind(out), wire::RELEASE);
    assert_eq!(option(out, wire::OPT_SERVERID).unwrap(), SERVER_DUID);
    assert_eq!(
        &option(out, wire::OPT_IA_NA).unwrap()[16..32],
        &lease.address.octets()
    );
    let step = c.receive(&answer(out, |_| {}), t0()).unwrap();
    assert_eq!(step.event, Some(Event::Released(true)));
    assert_eq!(c.release(t0()).unwrap(), None);

    let (mut c, _) = bound(config());
    let mut step = c.release(t0()).unwrap().unwrap();
    let mut sends = 0;
    let event = loop {
        sends += usize::from(step.send.is_some());
        if let Some(event) = step.event {
            break event;
        }
        step = c.tick(step.deadline).unwrap();
    };
    assert_eq!((sends, event), (4, Event::Released(false)));
}

#[test]
fn another_secret_is_another_duid_and_iaid() {
    let mut other = config();
    other.client_id = ClientId::derive(b"another host", "lan", "c1");
    let a = Client::new(config(), 1).tick(t0()).unwrap();
    let b = Client::new(other, 1).tick(t0()).unwrap();
    assert_ne!(
        option(sent(&a), wire::OPT_CLIENTID),
        option(sent(&b), wire::OPT_CLIENTID)
    );
    assert_ne!(
        option(sent(&a), wire::OPT_IA_NA).unwrap()[..4],
        option(sent(&b), wire::OPT_IA_NA).unwrap()[..4]
    );
}

#[test]
fn timers_left_to_the_client_are_half_and_four_fifths_of_preferred() {
    let mut c = Client::new(config(), 10);
    let step = c.tick(t0()).unwrap();
    let adv = answer(sent(&step), |s| s.preference = Some(255));
    let step = c.receive(&adv, t0()).unwrap();
    let reply = answer(sent(&step), |s| {
        s.timers = (0, 0);
        s.address = Some((OFFERED, 100, 200));
    });
    let Some(Event::Bound(lease)) = c.receive(&reply, t0()).unwrap().event else {
        panic!()
    };
    assert_eq!(lease.t1, t0() + secs(50.0));
    assert_eq!(lease.t2, t0() + secs(80.0));
}

#[test]
fn timers_at_the_valid_lifetime_still_renew_before_it_ends() {
    let mut c = Client::new(config(), 11);
    let step = c.tick(t0()).unwrap();
    let adv = answer(sent(&step), |s| s.preference = Some(255));
    let step = c.receive(&adv, t0()).unwrap();
    // T1 = T2 = the valid lifetime: renewing would start as the address dies.
    let reply = answer(sent(&step), |s| s.timers = (100, 100));
    let Some(Event::Bound(lease)) = c.receive(&reply, t0()).unwrap().event else {
        panic!()
    };
    assert_eq!((lease.t1, lease.t2), (t0() + secs(40.0), t0() + secs(64.0)));
    let step = c.tick(lease.t1).unwrap();
    assert_eq!(kind(sent(&step)), wire::RENEW);
    assert!(step.deadline < lease.expiry);
}

#[test]
fn use_multicast_to_a_unicast_release_sends_it_to_all_servers() {
    let mut c = Client::new(config(), 12);
    let step = c.tick(t0()).unwrap();
    let adv = answer(sent(&step), |s| s.preference = Some(255));
    let step = c.receive(&adv, t0()).unwrap();
    let server: Ipv6Addr = "2001:db8:7::1".parse().unwrap();
    let reply = answer(sent(&step), |s| s.unicast = Some(server));
    c.receive(&reply, t0()).unwrap();
    let step = c.release(t0()).unwrap().unwrap();
    assert_eq!(sent(&step).to, To::Server(server));
    let use_multicast = answer(sent(&step), |s| s.status = Some(5));
    let again = c.receive(&use_multicast, t0()).unwrap();
    assert_eq!(again.event, None, "not released yet");
    let out = sent(&again);
    assert_eq!((kind(out), out.to), (wire::RELEASE, To::AllServers));
    let done = c.receive(&answer(out, |_| {}), t0()).unwrap();
    assert_eq!(done.event, Some(Event::Released(true)));

    // The fourth (last) unicast RELEASE answered UseMulticast: one more goes, to all servers.
    let (_, mut lease) = bound(config());
    lease.unicast = Some(server);
    let mut c = Client::resume(config(), lease, 13);
    let mut step = c.release(t0()).unwrap().unwrap();
    for _ in 1..4 {
        step = c.tick(step.deadline).unwrap();
    }
    assert_eq!(sent(&step).to, To::Server(server));
    let use_multicast = answer(sent(&step), |s| s.status = Some(5));
    let again = c.receive(&use_multicast, step.deadline).unwrap();
    assert_eq!(sent(&again).to, To::AllServers);
    let last = c.tick(again.deadline).unwrap();
    assert_eq!(last.event, Some(Event::Released(false)));
}
