use std::{net::Ipv4Addr, time::Duration};

use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode, OptionCode};
use proptest::prelude::*;

use super::*;
use crate::{
    ClientId,
    fake::{self, MAC, OFFERED, SERVER},
    machine::Config,
    message,
};

fn config() -> Config {
    Config {
        mac: MAC,
        client_id: ClientId::derive(b"k", "lan", "c"),
        hostname: Some("web".into()),
        broadcast: false,
        subnet: None,
        retry_floor: Duration::from_secs(1),
    }
}

fn expect(config: &Config, xid: u32) -> Expect<'_> {
    Expect {
        xid,
        mac: config.mac,
        client_id: config.client_id.as_bytes(),
        subnet: config.subnet,
        server: None,
    }
}

fn offer(xid: u32) -> Message {
    let c = config();
    fake::reply(
        &message::discover(&c, xid).expect("builds"),
        MessageType::Offer,
    )
}

#[test]
fn a_good_offer_is_taken() {
    let c = config();
    let answer = check(&fake::bytes(&offer(7)), &expect(&c, 7)).expect("taken");
    assert_eq!(answer.kind, Kind::Offer);
    assert_eq!(answer.address, OFFERED);
    assert_eq!(answer.prefix, 24);
    assert_eq!(answer.router, Some(SERVER));
    assert_eq!(answer.server, SERVER);
    assert_eq!(answer.lease, Some(Duration::from_secs(100)));
}

fn refused(bytes: &[u8], expect: &Expect<'_>) -> Refused {
    check(bytes, expect).expect_err("refused")
}

#[test]
fn wrong_transaction_hardware_or_client_is_refused() {
    let c = config();
    let good = fake::bytes(&offer(7));
    assert!(matches!(
        refused(&good, &expect(&c, 8)),
        Refused::Xid { .. }
    ));
    let mut other = c.clone();
    other.mac = [2, 0, 0, 0, 0, 9];
    assert!(matches!(
        refused(&good, &expect(&other, 7)),
        Refused::Chaddr(_)
    ));
    let mut msg = offer(7);
    msg.opts_mut()
        .insert(DhcpOption::ClientIdentifier(vec![255, 1, 2, 3]));
    assert_eq!(
        refused(&fake::bytes(&msg), &expect(&c, 7)),
        Refused::ClientId
    );
    // Echoing our own id is fine.
    msg.opts_mut().insert(DhcpOption::ClientIdentifier(
        c.client_id.as_bytes().to_vec(),
    ));
    assert!(check(&fake::bytes(&msg), &expect(&c, 7)).is_ok());
}

#[test]
fn server_and_type_are_checked() {
    let c = config();
    let mut e = expect(&c, 7);
    e.server = Some(Ipv4Addr::new(192, 168, 7, 2));
    assert!(matches!(
        refused(&fake::bytes(&offer(7)), &e),
        Refused::Server { .. }
    ));
    let mut msg = offer(7);
    msg.opts_mut().remove(OptionCode::ServerIdentifier);
    assert_eq!(
        refused(&fake::bytes(&msg), &expect(&c, 7)),
        Refused::NoServerId
    );
    let mut msg = offer(7);
    msg.opts_mut()
        .insert(DhcpOption::MessageType(MessageType::Discover));
    assert!(matches!(
        refused(&fake::bytes(&msg), &expect(&c, 7)),
        Refused::MessageType(_)
    ));
    let mut msg = offer(7);
    msg.set_opcode(Opcode::BootRequest);
    assert!(matches!(
        refused(&fake::bytes(&msg), &expect(&c, 7)),
        Refused::NotReply(1)
    ));
}

#[test]
fn addresses_and_gateways_are_checked() {
    let mut c = config();
    c.subnet = Some((Ipv4Addr::new(10, 0, 0, 0), 8));
    assert!(matches!(
        refused(&fake::bytes(&offer(7)), &expect(&c, 7)),
        Refused::OutsideSubnet { .. }
    ));
    c.subnet = Some((Ipv4Addr::new(192, 168, 7, 0), 24));
    assert!(check(&fake::bytes(&offer(7)), &expect(&c, 7)).is_ok());
    let c = config();
    let mut msg = offer(7);
    msg.opts_mut()
        .insert(DhcpOption::Router(vec![Ipv4Addr::new(10, 9, 9, 9)]));
    assert!(matches!(
        refused(&fake::bytes(&msg), &expect(&c, 7)),
        Refused::GatewayOutside { .. }
    ));
    let mut msg = offer(7);
    msg.opts_mut()
        .insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 0, 255, 0)));
    assert!(matches!(
        refused(&fake::bytes(&msg), &expect(&c, 7)),
        Refused::BadMask(_)
    ));
    for bad in [
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::new(192, 168, 7, 255),
        Ipv4Addr::new(192, 168, 7, 0),
        Ipv4Addr::new(127, 0, 0, 1),
        Ipv4Addr::new(224, 0, 0, 1),
    ] {
        let mut msg = offer(7);
        msg.set_yiaddr(bad);
        assert!(
            check(&fake::bytes(&msg), &expect(&c, 7)).is_err(),
            "{bad} taken"
        );
    }
}

/// Review 27's finding 8: what a hostile server may not hand out.
#[test]
fn hostile_masks_servers_and_addresses_are_refused() {
    let c = config();
    // A mask wider than /8, with a router it would make "inside".
    for (mask, router) in [
        (Ipv4Addr::UNSPECIFIED, Ipv4Addr::new(8, 8, 8, 8)),
        (Ipv4Addr::new(128, 0, 0, 0), Ipv4Addr::new(200, 1, 2, 3)),
        (Ipv4Addr::new(254, 0, 0, 0), Ipv4Addr::new(193, 1, 2, 3)),
    ] {
        let mut msg = offer(7);
        msg.opts_mut().insert(DhcpOption::SubnetMask(mask));
        msg.opts_mut().insert(DhcpOption::Router(vec![router]));
        assert!(
            matches!(
                refused(&fake::bytes(&msg), &expect(&c, 7)),
                Refused::WideMask(_)
            ),
            "{mask} taken"
        );
    }
    // A /8 is a LAN's widest; a network whose --subnet is wider allows as wide a mask.
    let mut msg = offer(7);
    msg.opts_mut()
        .insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 0, 0, 0)));
    assert!(check(&fake::bytes(&msg), &expect(&c, 7)).is_ok());
    let mut wide = config();
    wide.subnet = Some((Ipv4Addr::new(128, 0, 0, 0), 1));
    let mut msg = offer(7);
    msg.opts_mut()
        .insert(DhcpOption::SubnetMask(Ipv4Addr::new(128, 0, 0, 0)));
    assert!(check(&fake::bytes(&msg), &expect(&wide, 7)).is_ok());
    // Server identifiers no server has, and the leased address itself.
    for bad in [
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::new(0, 1, 2, 3),
        Ipv4Addr::new(127, 0, 0, 1),
        Ipv4Addr::BROADCAST,
        Ipv4Addr::new(224, 0, 0, 9),
        Ipv4Addr::new(240, 0, 0, 1),
        OFFERED,
    ] {
        let mut msg = offer(7);
        msg.opts_mut().insert(DhcpOption::ServerIdentifier(bad));
        assert_eq!(
            refused(&fake::bytes(&msg), &expect(&c, 7)),
            Refused::BadServer(bad),
        );
    }
    // Addresses in blocks no LAN host holds.
    for bad in [
        Ipv4Addr::new(0, 1, 2, 3),
        Ipv4Addr::new(169, 254, 7, 50),
        Ipv4Addr::new(240, 0, 0, 5),
    ] {
        let mut msg = offer(7);
        msg.set_yiaddr(bad);
        msg.opts_mut()
            .insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 0, 0, 0)));
        msg.opts_mut().remove(OptionCode::Router);
        assert_eq!(
            refused(&fake::bytes(&msg), &expect(&c, 7)),
            Refused::BadAddress(bad),
        );
    }
}

#[test]
fn classless_routes_are_decoded_and_checked() {
    let c = config();
    let base = fake::bytes(&offer(7));
    let good = fake::with_raw_option(
        base.clone(),
        121,
        &[0, 192, 168, 7, 1, 16, 10, 5, 192, 168, 7, 2],
    );
    let answer = check(&good, &expect(&c, 7)).expect("taken");
    assert_eq!(answer.routes.len(), 2);
    assert_eq!(answer.routes[1].destination, Ipv4Addr::new(10, 5, 0, 0));
    let outside = fake::with_raw_option(base.clone(), 121, &[0, 10, 0, 0, 1]);
    assert!(matches!(
        refused(&outside, &expect(&c, 7)),
        Refused::GatewayOutside { .. }
    ));
    let cut = fake::with_raw_option(base, 121, &[24, 10, 0]);
    assert!(check(&cut, &expect(&c, 7)).is_err());
}

#[test]
fn size_and_option_count_are_capped() {
    let c = config();
    let mut big = fake::bytes(&offer(7));
    big.resize(MAX_MESSAGE + 1, 0);
    assert!(matches!(
        refused(&big, &expect(&c, 7)),
        Refused::TooLarge { .. }
    ));
    let mut many = fake::bytes(&offer(7));
    for _ in 0..MAX_OPTIONS {
        many = fake::with_raw_option(many, 224, &[1]);
    }
    assert!(matches!(
        refused(&many, &expect(&c, 7)),
        Refused::TooManyOptions { .. }
    ));
    let mut past = fake::bytes(&offer(7));
    past.truncate(past.len() - 1);
    past.extend_from_slice(&[224, 40, 1]);
    assert!(matches!(
        refused(&past, &expect(&c, 7)),
        Refused::Malformed(_)
    ));
    assert!(matches!(
        refused(&[0; 100], &expect(&c, 7)),
        Refused::Malformed(_)
    ));
}

#[test]
fn an_ack_needs_a_lease_time() {
    let c = config();
    let mut msg = fake::reply(&message::discover(&c, 7).expect("builds"), MessageType::Ack);
    msg.opts_mut().remove(OptionCode::AddressLeaseTime);
    assert_eq!(
        refused(&fake::bytes(&msg), &expect(&c, 7)),
        Refused::NoLeaseTime
    );
}

#[test]
fn timers_default_and_fall_back() {
    let l = Duration::from_secs(1000);
    assert_eq!(
        timers(l, None, None),
        (Duration::from_secs(500), Duration::from_secs(875))
    );
    let s = Duration::from_secs;
    assert_eq!(timers(l, Some(s(100)), Some(s(200))), (s(100), s(200)));
    // Nonsense from the server: T2 past the lease, T1 past T2.
    assert_eq!(timers(l, Some(s(900)), Some(s(2000))), (s(500), s(875)));
    assert_eq!(timers(l, Some(s(300)), Some(s(200))), (s(200), s(200)));
}

/// Every option code, with every short length, after a good offer's options: the decoder never
/// sees an option the client does not read (dhcproto asserts fixed lengths of some, e.g. 80, 81,
/// 94, and panics in a debug build), and one the client reads with a wrong length is refused.
#[test]
fn any_option_of_any_short_length_is_dropped_or_refused_never_a_panic() {
    let c = config();
    let good = fake::bytes(&offer(7));
    let end = good.iter().rposition(|&b| b == 255).expect("an end option");
    for code in 1..=254u8 {
        for len in 0..=6u8 {
            let mut bytes = good[..end].to_vec();
            bytes.extend([code, len]);
            bytes.extend((0..len).map(|i| i.wrapping_mul(37)));
            bytes.push(255);
            let outcome = std::panic::catch_unwind(|| check(&bytes, &expect(&c, 7)));
            let Ok(outcome) = outcome else {
                panic!("option {code} of {len} bytes panicked the parser");
            };
            // Options the client does not read change nothing.
            if shape(code).is_none() && code != 121 {
                assert!(outcome.is_ok(), "option {code}/{len}: {outcome:?}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Arbitrary bytes never panic the parser.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1600)) {
        let c = config();
        let _ = check(&bytes, &expect(&c, 7));
    }

    /// A real offer with its options' area scrambled never panics the parser, and a taken
    /// answer always holds what the checks promise.
    #[test]
    fn scrambled_options_never_panic(
        tail in proptest::collection::vec(any::<u8>(), 0..400),
        cut in 240usize..400,
    ) {
        let c = config();
        let mut bytes = fake::bytes(&offer(7));
        bytes.truncate(cut.min(bytes.len()));
        bytes.extend_from_slice(&tail);
        if let Ok(answer) = check(&bytes, &expect(&c, 7)) {
            if let Some(router) = answer.router {
                prop_assert!(contains(answer.address, answer.prefix, router));
            }
            for route in &answer.routes {
                prop_assert!(route.prefix <= 32);
            }
        }
    }
}
