use proptest::prelude::*;

use super::*;
use crate::{
    ClientId,
    v6::{
        fake::{self, OFFERED, SERVER_DUID, Spec},
        message::{self, Ids},
        wire,
    },
};

fn id() -> ClientId {
    ClientId::derive(b"k", "lan", "c")
}

const XID: u32 = 0x00ab_cdef;

fn solicit(id: &ClientId) -> Vec<u8> {
    let ids = Ids {
        duid: id.duid(),
        iaid: id.iaid(),
        hostname: Some("web"),
    };
    message::build(wire::SOLICIT, &ids, XID, 0, None, None).expect("builds")
}

fn expect(id: &ClientId) -> Expect<'_> {
    Expect {
        xid: XID,
        kind: wire::ADVERTISE,
        duid: id.duid(),
        iaid: id.iaid(),
        server: None,
        subnet: None,
    }
}

fn advertise(spec: impl FnOnce(&mut Spec)) -> Vec<u8> {
    let mut s = Spec::new(wire::ADVERTISE);
    spec(&mut s);
    fake::answer(&solicit(&id()), &s)
}

#[test]
fn a_good_advertise_is_taken() {
    let id = id();
    let answer = check(&advertise(|s| s.preference = Some(9)), &expect(&id)).expect("taken");
    assert_eq!(answer.server_id, SERVER_DUID);
    assert_eq!(answer.preference, 9);
    let ia = answer.ia.expect("our IA");
    assert_eq!((ia.t1, ia.t2), (40, 70));
    assert_eq!(
        ia.addresses,
        [IaAddress {
            address: OFFERED,
            preferred: 80,
            valid: 100
        }]
    );
}

#[test]
fn another_transaction_client_or_server_is_refused() {
    let id = id();
    let e = expect(&id);
    assert!(matches!(
        check(&advertise(|s| s.xid = Some(XID ^ 1)), &e),
        Err(Refused::Xid { .. })
    ));
    assert_eq!(
        check(&advertise(|s| s.client_id = Some(vec![0, 4, 9, 9])), &e),
        Err(Refused::ClientId)
    );
    assert_eq!(
        check(&advertise(|s| s.server_id = Vec::new()), &e),
        Err(Refused::NoServerId)
    );
    let other = [0, 2, 9, 9, 9];
    let from_lease = Expect {
        server: Some(&other),
        ..e.clone()
    };
    assert_eq!(check(&advertise(|_| {}), &from_lease), Err(Refused::Server));
    // A REPLY to a SOLICIT: a rapid commit not asked for.
    assert_eq!(
        check(&advertise(|s| s.kind = wire::REPLY), &e),
        Err(Refused::RapidCommit)
    );
    // Without a client id at all.
    let mut bare = wire::Builder::new(wire::ADVERTISE, XID);
    bare.option(wire::OPT_SERVERID, &SERVER_DUID);
    assert_eq!(check(&bare.finish(), &e), Err(Refused::ClientId));
}

#[test]
fn addresses_outside_the_subnet_or_no_hosts_are_refused() {
    let id = id();
    let inside = Expect {
        subnet: Some(("2001:db8:7::".parse().unwrap(), 64)),
        ..expect(&id)
    };
    assert!(check(&advertise(|_| {}), &inside).is_ok());
    let outside = Expect {
        subnet: Some(("2001:db8:8::".parse().unwrap(), 64)),
        ..expect(&id)
    };
    assert!(matches!(
        check(&advertise(|_| {}), &outside),
        Err(Refused::OutsideSubnet { .. })
    ));
    for bad in ["fe80::1", "ff02::1", "::1", "::", "::ffff:192.0.2.7"] {
        let bytes = advertise(|s| s.address = Some((bad.parse().unwrap(), 1, 2)));
        assert!(
            matches!(check(&bytes, &expect(&id)), Err(Refused::BadAddress(_))),
            "{bad}"
        );
    }
}

#[test]
fn a_server_unicast_address_no_unicast_reaches_is_ignored() {
    let id = id();
    for bad in ["::", "::1", "ff02::1", "ff05::1:3", "::ffff:192.0.2.7"] {
        let bytes = advertise(|s| s.unicast = Some(bad.parse().unwrap()));
        let answer = check(&bytes, &expect(&id)).expect("taken, the option ignored");
        assert_eq!(answer.unicast, None, "{bad}");
    }
    for good in ["2001:db8:7::1", "fe80::1"] {
        let ip: Ipv6Addr = good.parse().unwrap();
        let answer = check(&advertise(|s| s.unicast = Some(ip)), &expect(&id)).expect("taken");
        assert_eq!(answer.unicast, Some(ip), "{good}");
    }
}

#[test]
fn timers_and_lifetimes_are_checked() {
    let id = id();
    assert_eq!(
        check(&advertise(|s| s.timers = (80, 70)), &expect(&id)),
        Err(Refused::Timers { t1: 80, t2: 70 })
    );
    // Preferred past valid: the address is dropped (RFC 8415, 18.2.10.1).
    let answer = check(
        &advertise(|s| s.address = Some((OFFERED, 200, 100))),
        &expect(&id),
    )
    .expect("taken");
    assert!(answer.ia.expect("IA").addresses.is_empty());
    // Another IAID's IA is not ours.
    let answer = check(&advertise(|s| s.iaid = Some(id.iaid() ^ 1)), &expect(&id)).expect("taken");
    assert_eq!(answer.ia, None);
}

#[test]
fn statuses_are_read() {
    let id = id();
    let answer = check(
        &advertise(|s| {
            s.address = None;
            s.ia_status = Some(2);
            s.status = Some(5);
        }),
        &expect(&id),
    )
    .expect("taken");
    assert_eq!(answer.status, (Status::UseMulticast, "because".into()));
    assert_eq!(answer.ia.expect("IA").status, Status::NoAddrsAvail);
}

#[test]
fn oversized_and_overcrowded_answers_are_refused() {
    let id = id();
    let mut big = advertise(|_| {});
    wire::put_option(&mut big, 999, &[0; 1500]);
    assert!(matches!(
        check(&big, &expect(&id)),
        Err(Refused::TooLarge { .. })
    ));
    let mut crowded = advertise(|_| {});
    for _ in 0..MAX_OPTIONS {
        wire::put_option(&mut crowded, 999, &[]);
    }
    assert_eq!(check(&crowded, &expect(&id)), Err(Refused::TooManyOptions));
}

/// Every option code IANA has assigned so far (all under 256) and the highest, at top level,
/// inside our IA_NA and inside its IAADDR, with every length from 0 to 40 (shorter than any
/// fixed part the client reads, and past it): refused or taken, never a panic.
#[test]
fn any_option_of_any_short_length_is_refused_or_taken_without_a_panic() {
    let id = id();
    let e = expect(&id);
    for code in (0u16..=255).chain([65535]) {
        for len in 0..=40usize {
            let data = vec![0x5a; len];
            // At top level.
            let mut top = advertise(|_| {});
            wire::put_option(&mut top, code, &data);
            let _ = check(&top, &e);
            // Inside our IA_NA, after its header.
            let mut ia = id.iaid().to_be_bytes().to_vec();
            ia.extend_from_slice(&[0; 8]);
            wire::put_option(&mut ia, code, &data);
            let mut msg = wire::Builder::new(wire::ADVERTISE, XID);
            msg.option(wire::OPT_CLIENTID, id.duid())
                .option(wire::OPT_SERVERID, &SERVER_DUID)
                .option(wire::OPT_IA_NA, &ia);
            let _ = check(&msg.finish(), &e);
            // Our IA_NA itself cut short, and an IAADDR of `len` with the option nested.
            let mut short = wire::Builder::new(wire::ADVERTISE, XID);
            short
                .option(wire::OPT_CLIENTID, id.duid())
                .option(wire::OPT_SERVERID, &SERVER_DUID)
                .option(wire::OPT_IA_NA, &ia[..len.min(ia.len())]);
            let _ = check(&short.finish(), &e);
            let mut addr = OFFERED.octets().to_vec();
            addr.extend_from_slice(&[0; 8]);
            wire::put_option(&mut addr, code, &data);
            let mut ia2 = id.iaid().to_be_bytes().to_vec();
            ia2.extend_from_slice(&[0; 8]);
            wire::put_option(&mut ia2, wire::OPT_IAADDR, &addr[..len.min(addr.len())]);
            let mut nested = wire::Builder::new(wire::ADVERTISE, XID);
            nested
                .option(wire::OPT_CLIENTID, id.duid())
                .option(wire::OPT_SERVERID, &SERVER_DUID)
                .option(wire::OPT_IA_NA, &ia2);
            let _ = check(&nested.finish(), &e);
        }
    }
    // The fixed-length ones are refused when short.
    for (code, good) in [(7u16, 1usize), (12, 16), (14, 0)] {
        for len in 0..=17 {
            if len == good {
                continue;
            }
            let mut bytes = advertise(|_| {});
            wire::put_option(&mut bytes, code, &vec![1; len]);
            assert!(
                matches!(check(&bytes, &e), Err(Refused::Malformed(_))),
                "option {code} of {len} bytes"
            );
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1600)) {
        let id = id();
        let _ = check(&bytes, &expect(&id));
    }

    #[test]
    fn a_good_answer_mutated_never_panics(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
    ) {
        let id = id();
        let mut bytes = advertise(|s| { s.status = Some(1); s.preference = Some(3); });
        for (at, value) in flips {
            let len = bytes.len();
            bytes[at % len] = value;
        }
        bytes.truncate(cut % (bytes.len() + 1));
        let _ = check(&bytes, &expect(&id));
    }
}

#[test]
fn a_servers_status_text_keeps_no_control_characters() {
    let mut data = vec![0, 5];
    data.extend_from_slice(b"bad\nforged line \x1b[31mred\x7f");
    let (status, text) = status_of(&data).expect("read");
    assert_eq!(status, Status::UseMulticast);
    assert!(!text.chars().any(char::is_control), "{text:?}");
    assert_eq!(text, "bad\\nforged line \\u{1b}[31mred\\u{7f}");
    // Bounded: 128 characters of the server's, each escaped at most to `\u{10ffff}`.
    let long = [vec![0, 0], vec![0x1b; 1000]].concat();
    assert_eq!(status_of(&long).expect("read").1.len(), 128 * 6);
}
