//! Privileged tier: the DHCPv6 client of `crates/dhcp` (`oci_macvlan_dhcp::v6`) against a real
//! server, Kea's `kea-dhcp6`, started by the test in a "LAN" namespace it made, on a veth
//! whose other end is the client's link in a second namespace. The link is prepared as a
//! caller must (`prepare_link`: no DAD) before it is up; the client's socket is opened inside
//! the client's namespace (on a thread that entered it) and the exchange driven from the
//! test's thread: SOLICIT to REPLY, a RENEW at T1 that Kea logs, a RELEASE that Kea's lease
//! file shows, the same identity's address again and another secret's another one, a LAN
//! without a server, a hostile server whose answers are all refused, and a client resumed from
//! its stored lease that rebinds at T2 to a server restarted meanwhile.
//! (This checks the client alone; through the hook, with the DHCP source: `dhcp6_attach.rs`.)

#![allow(clippy::unwrap_used)]

use std::{
    ffi::OsString,
    net::{Ipv6Addr, SocketAddrV6, UdpSocket},
    os::fd::{AsFd, AsRawFd},
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant, SystemTime},
};

use nix::{
    sched::{CloneFlags, setns},
    sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrIn6, bind, setsockopt, socket, sockopt,
    },
};
use oci_macvlan_dhcp::{
    ClientId,
    v6::{self, Client, Config, Error, Event, OnLink6, UdpLink, wire},
};
use oci_macvlan_tests::{
    TestNetns,
    kea6::{Kea6, Kea6Config},
    privileged,
};

const SUBNET: &str = "2001:db8:91::/64";
const TIMEOUT: Duration = Duration::from_secs(10);

/// A LAN namespace holding `srv` (the server's link) and a client namespace holding `cl0`,
/// its peer, prepared by the client's library before it is up.
fn lan() -> (TestNetns, TestNetns) {
    let lan = TestNetns::new("omt-d6lan-");
    let client = TestNetns::new("omt-d6cl-");
    lan.ip(&[
        "link",
        "add",
        "srv",
        "type",
        "veth",
        "peer",
        "name",
        "cl0",
        "netns",
        &client.name,
    ]);
    // Kea binds the link's link-local address: usable at once, not after DAD.
    lan.sysctl("net/ipv6/conf/srv/accept_dad", "0");
    lan.ip(&["addr", "add", "2001:db8:91::1/64", "dev", "srv", "nodad"]);
    lan.ip(&["link", "set", "srv", "up"]);
    client.inside(|| v6::prepare_link("cl0")).unwrap();
    assert_eq!(client.sysctl_value("net/ipv6/conf/cl0/accept_dad"), "0");
    client.ip(&["link", "set", "cl0", "up"]);
    (lan, client)
}

fn kea_config() -> Kea6Config {
    Kea6Config {
        interface: "srv".into(),
        subnet: SUBNET.into(),
        pool: "2001:db8:91::100-2001:db8:91::1ff".into(),
        preferred_lifetime: 20,
        valid_lifetime: 30,
        renew_timer: 2,
        rebind_timer: 15,
        unicast: None,
    }
}

fn config(secret: &[u8], container: &str) -> Config {
    Config {
        client_id: ClientId::derive(secret, "lan6", container),
        hostname: Some("web1".into()),
        subnet: Some(("2001:db8:91::".parse().unwrap(), 64)),
    }
}

fn open(ns: &TestNetns) -> UdpLink {
    ns.inside(|| {
        let link = OnLink6::named("cl0").unwrap();
        UdpLink::open(&link, Duration::from_secs(3))
    })
    .unwrap()
}

fn hex(bytes: &[u8]) -> String {
    let parts: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(":")
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(5), "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn seed() -> u32 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

#[privileged]
fn acquire_then_renew_at_t1_then_release_on_kea6() {
    let (lan, ns) = lan();
    let kea = Kea6::start(&lan, &kea_config());
    let socket = open(&ns);
    let mut client = Client::new(config(b"this host's secret", "c1"), seed());
    let lease = v6::acquire(&mut client, &socket, TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}; Kea's log: {}", kea.log()));
    let last = lease.address.segments()[7];
    assert_eq!(
        lease.address.segments()[..7],
        [0x2001, 0xdb8, 0x91, 0, 0, 0, 0]
    );
    assert!(
        (0x100..=0x1ff).contains(&last),
        "outside Kea's pool: {lease:?}"
    );
    assert_eq!(lease.length(), Duration::from_secs(30));
    assert_eq!(
        lease.preferred_left(lease.obtained),
        Duration::from_secs(20)
    );
    assert_eq!(
        lease.t1.duration_since(lease.obtained).unwrap(),
        Duration::from_secs(2)
    );
    assert_eq!(
        lease.t2.duration_since(lease.obtained).unwrap(),
        Duration::from_secs(15)
    );

    let address = lease.address.to_string();
    let held = kea.lease(&address).expect("Kea's lease file has the lease");
    assert_eq!(held.duid, hex(client.config().client_id.duid()));
    assert_eq!(held.iaid, client.config().client_id.iaid());
    assert_eq!((held.valid_lifetime, held.preferred_lifetime), (30, 20));
    assert!(held.hostname.starts_with("web1"), "{held:?}");

    // The address on the link, as an attach applies it: without DAD.
    ns.ip(&[
        "-6",
        "addr",
        "add",
        &format!("{address}/128"),
        "dev",
        "cl0",
        "nodad",
    ]);
    let renews = kea.logged("DHCP6_LEASE_RENEW");
    let before = Instant::now();
    let event = v6::next_event(&mut client, &socket, Duration::from_secs(6)).unwrap();
    let Event::Extended(renewed) = event else {
        panic!("not renewed: {event:?}");
    };
    assert_eq!(renewed.address, lease.address);
    assert!(renewed.obtained > lease.obtained);
    // Not before T1 (2 s after the REPLY), and answered at once.
    let took = before.elapsed();
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(4),
        "{took:?}"
    );
    assert_eq!(kea.logged("DHCP6_LEASE_RENEW"), renews + 1, "{}", kea.log());

    ns.ip(&["-6", "addr", "del", &format!("{address}/128"), "dev", "cl0"]);
    assert!(v6::release(&mut client, &socket, Duration::from_secs(3)).unwrap());
    wait_for("Kea still holds the released lease", || {
        kea.lease(&address).is_none()
    });
}

#[privileged]
fn the_same_identity_gets_the_same_address_and_another_secret_another() {
    let (lan, ns) = lan();
    let kea = Kea6::start(&lan, &kea_config());
    let socket = open(&ns);
    let take = |secret: &[u8]| {
        let mut client = Client::new(config(secret, "c1"), seed());
        v6::acquire(&mut client, &socket, TIMEOUT).unwrap().address
    };
    let first = take(b"host A");
    assert_eq!(
        take(b"host A"),
        first,
        "the same identity got another address"
    );
    // Two hosts cloned from one image: the same container and network, another secret.
    let other = take(b"host B");
    assert_ne!(
        other, first,
        "another host's container got the same address"
    );
    let a = kea.lease(&first.to_string()).unwrap();
    let b = kea.lease(&other.to_string()).unwrap();
    assert_ne!(a.duid, b.duid);
}

#[privileged]
fn no_server_ends_in_the_deadline_error_within_the_timeout() {
    let (_lan, ns) = lan();
    let socket = open(&ns);
    let mut client = Client::new(config(b"k", "c1"), 1);
    let timeout = Duration::from_secs(2);
    let start = Instant::now();
    let result = v6::acquire(&mut client, &socket, timeout);
    let took = start.elapsed();
    match result {
        Err(Error::Timeout {
            link,
            timeout: t,
            refused,
            last,
        }) => {
            assert_eq!((link.as_str(), t, refused, last), ("cl0", timeout, 0, None));
        }
        other => panic!("not the deadline's error: {other:?}"),
    }
    assert!(
        took >= timeout && took < timeout + Duration::from_millis(500),
        "{took:?}"
    );
}

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
    let stop = AtomicBool::new(false);
    let mut client = Client::new(config(b"k", "c1"), 11);
    let timeout = Duration::from_secs(3);
    let (result, took, seen) = std::thread::scope(|scope| {
        let server = scope.spawn(|| hostile(&bad, &stop, false));
        // The hostile server's socket is bound before the first SOLICIT goes.
        std::thread::sleep(Duration::from_millis(300));
        let start = Instant::now();
        let result = v6::acquire(&mut client, &socket, timeout);
        let took = start.elapsed();
        stop.store(true, Ordering::Relaxed);
        (result, took, server.join().unwrap())
    });
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
    let stop = AtomicBool::new(false);
    let mut client = Client::new(config(b"k", "c1"), 12);
    let lease = std::thread::scope(|scope| {
        let server = scope.spawn(|| hostile(&bad, &stop, false));
        std::thread::sleep(Duration::from_millis(300));
        let lease = v6::acquire(&mut client, &socket, TIMEOUT);
        stop.store(true, Ordering::Relaxed);
        assert!(
            server.join().unwrap() >= 1,
            "the hostile server saw no SOLICIT"
        );
        lease
    })
    .unwrap();
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
    let stop = AtomicBool::new(false);
    let mut client = Client::new(config(b"k", "c1"), 13);
    let result = std::thread::scope(|scope| {
        let server = scope.spawn(|| hostile(&bad, &stop, true));
        std::thread::sleep(Duration::from_millis(300));
        let result = v6::acquire(&mut client, &socket, Duration::from_secs(2));
        stop.store(true, Ordering::Relaxed);
        assert!(
            server.join().unwrap() >= 1,
            "the hostile server saw no SOLICIT"
        );
        result
    });
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

/// The renewer killed after the exchange loses nothing: a client resumed from the stored lease
/// (JSON) renews at T1; with the server down the RENEW goes unanswered, and at T2 the client
/// rebinds (to any server), which the server, back up on its lease file with a new server
/// identifier, answers.
#[privileged]
fn a_resumed_client_renews_and_rebinds_at_t2_when_the_server_was_down() {
    let (lan, ns) = lan();
    let mut conf = kea_config();
    conf.renew_timer = 1;
    conf.rebind_timer = 3;
    let kea = Kea6::start(&lan, &conf);
    let socket = open(&ns);
    let c = config(b"k", "c1");
    let mut client = Client::new(c.clone(), seed());
    let lease = v6::acquire(&mut client, &socket, TIMEOUT).unwrap();
    let stored = serde_json::to_string(&lease).unwrap();
    drop(client);
    let lease_dir = kea.stop();

    let mut client = Client::resume(c, serde_json::from_str(&stored).unwrap(), seed());
    let (event, kea) = std::thread::scope(|scope| {
        let back = scope.spawn(|| {
            // Down past T1 (1 s after the REPLY), back before T2 (3 s).
            std::thread::sleep(Duration::from_millis(1800));
            Kea6::start_again(lease_dir, &lan, &conf)
        });
        let event = v6::next_event(&mut client, &socket, Duration::from_secs(8));
        (event, back.join().unwrap())
    });
    let event = event.unwrap_or_else(|e| panic!("{e}; Kea's log: {}", kea.log()));
    let Event::Extended(rebound) = event else {
        panic!("not rebound: {event:?}");
    };
    assert_eq!(rebound.address, lease.address);
    assert_ne!(
        rebound.server_id, lease.server_id,
        "the same server id after a restart"
    );
    let took = rebound.obtained.duration_since(lease.obtained).unwrap();
    assert!(
        took >= Duration::from_secs(3),
        "extended before T2: {took:?}"
    );
    assert!(kea.lease(&lease.address.to_string()).is_some());
    // The one message Kea got after it came back extended the lease (Kea logs a REBIND's
    // extension as DHCP6_LEASE_RENEW); a RENEW would name the old server and be dropped.
    assert_eq!(kea.logged("DHCP6_BUFFER_RECEIVED"), 1, "{}", kea.log());
    assert_eq!(kea.logged("DHCP6_LEASE_RENEW"), 1, "{}", kea.log());
}

/// A server that offers unicast (option 12) is renewed by unicast to its address once the
/// link has a route to it (Kea logs the RENEW received on its unicast address), and by
/// multicast while it has none (the leased address added as a /128, no router).
#[privileged]
fn renew_goes_unicast_to_a_server_that_offers_it_when_the_link_reaches_it() {
    let (lan, ns) = lan();
    let mut conf = kea_config();
    conf.unicast = Some("2001:db8:91::1".into());
    conf.renew_timer = 1;
    let kea = Kea6::start(&lan, &conf);
    let socket = open(&ns);
    let mut client = Client::new(config(b"k", "c1"), seed());
    let lease = v6::acquire(&mut client, &socket, TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}; Kea's log: {}", kea.log()));
    assert_eq!(lease.unicast, Some("2001:db8:91::1".parse().unwrap()));
    let received = |to: &str| {
        kea.log()
            .lines()
            .filter(|l| l.contains("DHCP6_BUFFER_RECEIVED") && l.contains(&format!(" to {to}:")))
            .count()
    };
    let multicast = received("ff02::1:2");
    let address = lease.address.to_string();
    ns.ip(&[
        "-6",
        "addr",
        "add",
        &format!("{address}/128"),
        "dev",
        "cl0",
        "nodad",
    ]);
    let event = v6::next_event(&mut client, &socket, Duration::from_secs(5)).unwrap();
    assert!(matches!(event, Event::Extended(_)), "{event:?}");
    assert_eq!(received("ff02::1:2"), multicast + 1, "{}", kea.log());
    assert_eq!(received("2001:db8:91::1"), 0, "{}", kea.log());

    // The address with the subnet's prefix, as a caller with `--subnet` adds it: the server's
    // address is on the link.
    ns.ip(&["-6", "addr", "del", &format!("{address}/128"), "dev", "cl0"]);
    ns.ip(&[
        "-6",
        "addr",
        "add",
        &format!("{address}/64"),
        "dev",
        "cl0",
        "nodad",
    ]);
    let event = v6::next_event(&mut client, &socket, Duration::from_secs(5)).unwrap();
    assert!(matches!(event, Event::Extended(_)), "{event:?}");
    assert_eq!(received("2001:db8:91::1"), 1, "{}", kea.log());
    assert_eq!(received("ff02::1:2"), multicast + 1, "{}", kea.log());
}
