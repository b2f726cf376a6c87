use super::*;

const OWN: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
const OTHER: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x99]);

/// An ARP packet as a holder (`sha`, `spa`) sends it to `tha`, `tpa`.
fn arp(op: u16, sha: MacAddr, spa: [u8; 4], tha: MacAddr, tpa: [u8; 4]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&tha.0);
    f.extend_from_slice(&sha.0);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&sha.0);
    f.extend_from_slice(&spa);
    f.extend_from_slice(&tha.0);
    f.extend_from_slice(&tpa);
    f
}

#[test]
fn the_arp_probe_is_rfc_5227s() {
    let frame = arp_probe(OWN, Ipv4Addr::new(192, 168, 77, 53));
    assert_eq!(frame.len(), MIN_FRAME);
    assert_eq!(&frame[0..6], &[0xff; 6], "broadcast");
    assert_eq!(&frame[6..12], &OWN.0);
    assert_eq!(&frame[12..14], &[0x08, 0x06]);
    assert_eq!(&frame[14..22], &[0, 1, 8, 0, 6, 4, 0, 1], "an ARP request");
    assert_eq!(
        &frame[22..28],
        &OWN.0,
        "sender hardware address: the link's"
    );
    assert_eq!(&frame[28..32], &[0; 4], "sender 0.0.0.0");
    assert_eq!(&frame[32..38], &[0; 6]);
    assert_eq!(&frame[38..42], &[192, 168, 77, 53]);
    // Our own probe, looped back, is no answer.
    assert_eq!(
        arp_answer(&frame, OWN, Ipv4Addr::new(192, 168, 77, 53)),
        None
    );
}

#[test]
fn arp_answers_are_told_apart() {
    let target = Ipv4Addr::new(192, 168, 77, 53);
    let t = target.octets();
    let held = Some(Answer {
        ip: IpAddr::V4(target),
        mac: OTHER,
    });
    // Linux's answer to a probe: a reply from the target to 0.0.0.0.
    assert_eq!(
        arp_answer(&arp(2, OTHER, t, OWN, [0; 4]), OWN, target),
        held
    );
    // Someone announcing the address, or asking from it, uses it.
    assert_eq!(arp_answer(&arp(1, OTHER, t, OWN, t), OWN, target), held);
    // Another address, another probe, our own frames, truncated frames: no answer.
    let other = [192, 168, 77, 54];
    assert_eq!(
        arp_answer(&arp(2, OTHER, other, OWN, [0; 4]), OWN, target),
        None
    );
    // Another machine's probe for it: it takes the address at the same moment.
    assert_eq!(
        arp_answer(&arp(1, OTHER, [0; 4], OWN, t), OWN, target),
        held
    );
    assert_eq!(
        arp_answer(&arp_probe(OTHER, target), OWN, target),
        held,
        "a concurrent probe"
    );
    assert_eq!(
        arp_answer(&arp(1, OTHER, [0; 4], OWN, other), OWN, target),
        None,
        "a probe for another address"
    );
    assert_eq!(arp_answer(&arp(2, OWN, t, OWN, [0; 4]), OWN, target), None);
    let reply = arp(2, OTHER, t, OWN, [0; 4]);
    for len in 0..reply.len() - 1 {
        assert_eq!(arp_answer(&reply[..len], OWN, target), None, "{len} bytes");
    }
}

#[test]
fn the_solicitation_is_dads() {
    let target: Ipv6Addr = "fd00:77::1234:5678".parse().unwrap();
    let frame = dad_solicitation(OWN, target);
    assert_eq!(frame.len(), 14 + 40 + 24);
    assert_eq!(&frame[0..6], &[0x33, 0x33, 0xff, 0x34, 0x56, 0x78]);
    assert_eq!(&frame[12..14], &[0x86, 0xdd]);
    assert_eq!(
        &frame[18..22],
        &[0, 24, 58, 255],
        "length, ICMPv6, hop limit"
    );
    assert_eq!(&frame[22..38], &[0; 16], "source ::");
    let dst: [u8; 16] = frame[38..54].try_into().unwrap();
    assert_eq!(
        Ipv6Addr::from(dst),
        "ff02::1:ff34:5678".parse::<Ipv6Addr>().unwrap()
    );
    assert_eq!(frame[54], ND_NEIGHBOR_SOLICIT);
    assert_eq!(&frame[62..78], &target.octets());
    // The checksum sums to zero over the pseudo-header and the message.
    assert_eq!(
        icmpv6_checksum(Ipv6Addr::UNSPECIFIED, Ipv6Addr::from(dst), &frame[54..]),
        0
    );
}

/// A flood of frames that answer nothing does not hold the probe past its deadline.
#[test]
fn a_flood_does_not_hold_the_probe() {
    let target = Ipv4Addr::new(192, 168, 77, 53);
    let junk = arp(1, OTHER, [192, 168, 77, 9], OWN, [192, 168, 77, 10]);
    let started = Instant::now();
    // Never empty (for 5 s: the bound of a loop that ignores the deadline).
    let mut next = |buf: &mut [u8]| {
        if started.elapsed() > Duration::from_secs(5) {
            return Ok(None);
        }
        buf[..junk.len()].copy_from_slice(&junk);
        Ok(Some(junk.len()))
    };
    let answer = |frame: &[u8]| arp_answer(frame, OWN, target);
    let mut buf = vec![0u8; 2048];
    let drained = drain(&mut next, &mut buf, &answer, started + PROBE_WAIT).unwrap();
    let took = started.elapsed();
    assert_eq!(drained, Drained::TimeUp);
    assert!(took < Duration::from_secs(1), "held for {took:?}");
    // An answer in the flood is found; an empty queue is said.
    let reply = arp(2, OTHER, target.octets(), OWN, [0; 4]);
    let mut once = Some(reply);
    let mut next = |buf: &mut [u8]| {
        Ok(once.take().map(|f| {
            buf[..f.len()].copy_from_slice(&f);
            f.len()
        }))
    };
    let deadline = Instant::now() + PROBE_WAIT;
    assert!(matches!(
        drain(&mut next, &mut buf, &answer, deadline).unwrap(),
        Drained::Found(_)
    ));
    assert_eq!(
        drain(&mut next, &mut buf, &answer, deadline).unwrap(),
        Drained::Empty
    );
}

/// A neighbour advertisement as Linux answers DAD: to ff02::1, with the target's MAC.
fn na(from: MacAddr, target: Ipv6Addr, tlla: Option<MacAddr>, hop: u8) -> Vec<u8> {
    let mut icmp = vec![ND_NEIGHBOR_ADVERT, 0, 0, 0, 0x20, 0, 0, 0];
    icmp.extend_from_slice(&target.octets());
    if let Some(mac) = tlla {
        icmp.extend_from_slice(&[ND_OPT_TARGET_LL_ADDR, 1]);
        icmp.extend_from_slice(&mac.0);
    }
    let mut f = vec![0x33, 0x33, 0, 0, 0, 1];
    f.extend_from_slice(&from.0);
    f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
    f.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    f.extend_from_slice(&[58, hop]);
    f.extend_from_slice(&target.octets());
    f.extend_from_slice(&"ff02::1".parse::<Ipv6Addr>().unwrap().octets());
    f.extend_from_slice(&icmp);
    f
}

#[test]
fn advertisements_are_told_apart() {
    let target: Ipv6Addr = "fd00:77::53".parse().unwrap();
    let held = |mac| {
        Some(Answer {
            ip: IpAddr::V6(target),
            mac,
        })
    };
    let router = MacAddr([0x02, 0, 0, 0, 0, 0x42]);
    assert_eq!(
        na_answer(&na(OTHER, target, Some(router), 255), OWN, target),
        held(router)
    );
    assert_eq!(
        na_answer(&na(OTHER, target, None, 255), OWN, target),
        held(OTHER)
    );
    let elsewhere: Ipv6Addr = "fd00:77::54".parse().unwrap();
    assert_eq!(
        na_answer(&na(OTHER, elsewhere, None, 255), OWN, target),
        None
    );
    assert_eq!(
        na_answer(&na(OTHER, target, None, 64), OWN, target),
        None,
        "routed"
    );
    assert_eq!(na_answer(&na(OWN, target, None, 255), OWN, target), None);
    // Another machine's DAD for it: it takes the address at the same moment.
    let solicitation = dad_solicitation(OTHER, target);
    assert_eq!(na_answer(&solicitation, OWN, target), held(OTHER));
    // Our own, another address's, and a solicitation from an address (a lookup) are not.
    assert_eq!(na_answer(&dad_solicitation(OWN, target), OWN, target), None);
    assert_eq!(
        na_answer(&dad_solicitation(OTHER, elsewhere), OWN, target),
        None
    );
    let mut lookup = dad_solicitation(OTHER, target);
    lookup[22..38].copy_from_slice(&elsewhere.octets());
    assert_eq!(na_answer(&lookup, OWN, target), None);
    let frame = na(OTHER, target, Some(router), 255);
    for len in 0..78 {
        assert_eq!(na_answer(&frame[..len], OWN, target), None, "{len} bytes");
    }
}
