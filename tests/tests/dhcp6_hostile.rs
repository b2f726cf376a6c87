//! Privileged tier: the DHCPv6 client of `crates/dhcp` against a hostile server on the LAN
//! beside Kea 6 (a macvlan of the LAN's link in a namespace of its own): every answer a client
//! must refuse is refused and named in the deadline's error, Kea's lease is taken through a
//! flood, and an oversized answer is refused by its real length.

#![allow(clippy::unwrap_used)]

use std::{
    ffi::OsString,
    net::{Ipv6Addr, SocketAddrV6, UdpSocket},
    os::fd::{AsFd, AsRawFd},
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use nix::{
    sched::{CloneFlags, setns},
    sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrIn6, bind, setsockopt, socket, sockopt,
    },
};
use oci_macvlan_dhcp::v6::{self, Client, Error, wire};
use oci_macvlan_tests::{TestNetns, dhcp_pair::beside_hostile, kea6::Kea6, privileged};

#[path = "dhcp6/common.rs"]
mod common;

use common::*;

/// A namespace beside the LAN's server holding `hst`, a macvlan of the LAN's link.
fn hostile_ns(lan: &TestNetns) -> TestNetns {
    let ns = TestNetns::new("omt-d6hs-");
    lan.ip(&[
        "link", "add", "hst", "link", "srv", "type", "macvlan", "mode", "bridge",
    ]);
    lan.ip(&["link", "set", "hst", "netns", &ns.name]);
    ns.sysctl("net/ipv6/conf/hst/accept_dad", "0");
    ns.ip(&["link", "set", "hst", "up"]);
    ns
}

/// A hostile server in `ns`: for every SOLICIT it reads on `ff02::1:2` port 547 it answers
/// with ADVERTISEs a client must refuse — another transaction, another client id, no server
/// id, an address outside the subnet, a rapid-commit REPLY, 2000 bytes, bytes that are not
/// DHCPv6 — and a flood of 200 for another transaction, until `stop`. Returns how many
/// SOLICITs it saw. With `only_oversized`, it sends only an ADVERTISE that would be taken
/// but for its 2000 bytes.
fn hostile(ns: &TestNetns, stop: &AtomicBool, only_oversized: bool) -> usize {
    let file = std::fs::File::open(ns.path()).unwrap();
    setns(file.as_fd(), CloneFlags::CLONE_NEWNET).unwrap();
    let index = nix::net::if_::if_nametoindex("hst").unwrap();
    let fd = socket(
        AddressFamily::Inet6,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    setsockopt(&fd, sockopt::BindToDevice, &OsString::from("hst")).unwrap();
    bind(
        fd.as_raw_fd(),
        &SockaddrIn6::from(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 547, 0, 0)),
    )
    .unwrap();
    let socket = UdpSocket::from(fd);
    socket
        .join_multicast_v6(&v6::socket::ALL_SERVERS, index)
        .unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buf = [0u8; 1500];
    let mut seen = 0;
    while !stop.load(Ordering::Relaxed) {
        let Ok((len, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let request = &buf[..len];
        if request.first() != Some(&wire::SOLICIT) {
            continue;
        }
        seen += 1;
        let xid = u32::from_be_bytes([0, request[1], request[2], request[3]]);
        let opts = wire::options(&request[4..], &mut 64).unwrap();
        let find = |code| opts.iter().find(|(c, _)| *c == code).unwrap().1.to_vec();
        let (duid, iaid) = (
            find(wire::OPT_CLIENTID),
            wire::u32_at(&find(wire::OPT_IA_NA), 0),
        );
        let answer = |kind, xid, client: &[u8], server: bool, address: Ipv6Addr, pad: usize| {
            let mut ia = iaid.to_be_bytes().to_vec();
            ia.extend_from_slice(&[0, 0, 0, 10, 0, 0, 0, 20]);
            let mut addr = address.octets().to_vec();
            addr.extend_from_slice(&[0, 0, 0, 30, 0, 0, 0, 60]);
            wire::put_option(&mut ia, wire::OPT_IAADDR, &addr);
            let mut msg = wire::Builder::new(kind, xid);
            msg.option(wire::OPT_CLIENTID, client);
            if server {
                msg.option(wire::OPT_SERVERID, &[0, 2, 0x66, 0x66, 0x66]);
            }
            msg.option(wire::OPT_IA_NA, &ia)
                .option(wire::OPT_PREFERENCE, &[255]);
            if pad > 0 {
                msg.option(999, &vec![0; pad]);
            }
            msg.finish()
        };
        let good: Ipv6Addr = "2001:db8:91::77".parse().unwrap();
        if only_oversized {
            let _ = socket.send_to(&answer(wire::ADVERTISE, xid, &duid, true, good, 2000), from);
            continue;
        }
        let answers = [
            answer(wire::ADVERTISE, xid ^ 1, &duid, true, good, 0),
            answer(wire::ADVERTISE, xid, &[0, 4, 9, 9, 9], true, good, 0),
            answer(wire::ADVERTISE, xid, &duid, false, good, 0),
            answer(
                wire::ADVERTISE,
                xid,
                &duid,
                true,
                "2001:db8:66::1".parse().unwrap(),
                0,
            ),
            answer(wire::REPLY, xid, &duid, true, good, 0),
            answer(wire::ADVERTISE, xid, &duid, true, good, 2000),
            vec![0xa5; 1400],
        ];
        for answer in &answers {
            let _ = socket.send_to(answer, from);
        }
        let flood = answer(wire::ADVERTISE, xid.wrapping_add(7), &duid, true, good, 0);
        for _ in 0..200 {
            let _ = socket.send_to(&flood, from);
        }
    }
    seen
}

#[privileged]
fn a_hostile_server_is_refused_and_named_in_the_deadline_error() {
    let (lan, ns) = lan();
    let bad = hostile_ns(&lan);
    let socket = open(&ns);
    let mut client = Client::new(config(b"k", "c1"), 11);
    let timeout = Duration::from_secs(3);
    // The hostile server's socket is bound before the first SOLICIT goes.
    let (result, took, seen) = beside_hostile(
        Duration::from_millis(300),
        |stop| hostile(&bad, stop, false),
        || v6::acquire(&mut client, &socket, timeout),
    );
    assert!(seen >= 1, "the hostile server saw no SOLICIT");
    match result {
        Err(Error::Timeout { refused, last, .. }) => {
            // Per SOLICIT: 7 checked and refused, the flood's 200.
            assert!(refused >= 207, "{refused} refused");
            assert!(last.is_some());
        }
        other => panic!("a hostile answer was taken: {other:?}"),
    }
    assert!(took < timeout + Duration::from_millis(500), "{took:?}");
    assert!(
        matches!(client.state(), v6::State::Soliciting { best: None, .. }),
        "{:?}",
        client.state()
    );
}

/// With Kea on the same LAN, the hostile server's answers are skipped and Kea's lease taken.
#[privileged]
fn kea6_is_taken_through_a_hostile_flood() {
    let (lan, ns) = lan();
    let kea = Kea6::start(&lan, &kea_config());
    let bad = hostile_ns(&lan);
    let socket = open(&ns);
    let mut client = Client::new(config(b"k", "c1"), 12);
    let (lease, _, seen) = beside_hostile(
        Duration::from_millis(300),
        |stop| hostile(&bad, stop, false),
        || v6::acquire(&mut client, &socket, TIMEOUT),
    );
    assert!(seen >= 1, "the hostile server saw no SOLICIT");
    let lease = lease.unwrap();
    assert!(kea.lease(&lease.address.to_string()).is_some(), "{lease:?}");
    assert_ne!(
        lease.address,
        "2001:db8:91::77".parse::<Ipv6Addr>().unwrap()
    );
}

/// An answer larger than a client takes is refused as such, whole (the socket reads its real
/// length), though the kernel reassembled it from fragments and all else in it is fine.
#[privileged]
fn an_oversized_answer_is_refused_by_its_real_length() {
    let (lan, ns) = lan();
    let bad = hostile_ns(&lan);
    let socket = open(&ns);
    let mut client = Client::new(config(b"k", "c1"), 13);
    let (result, _, seen) = beside_hostile(
        Duration::from_millis(300),
        |stop| hostile(&bad, stop, true),
        || v6::acquire(&mut client, &socket, Duration::from_secs(2)),
    );
    assert!(seen >= 1, "the hostile server saw no SOLICIT");
    match result {
        Err(Error::Timeout {
            refused,
            last: Some(v6::Refused::TooLarge { len, max }),
            ..
        }) => {
            assert!(refused >= 1);
            assert!(len > 2000 && max == v6::answer::MAX_MESSAGE, "{len} {max}");
        }
        other => panic!("not refused as too large: {other:?}"),
    }
}
