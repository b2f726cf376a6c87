//! Privileged tier: the DHCPv4 client of `crates/dhcp` against a real server, Kea, started by
//! the test in a "LAN" namespace it made, on a veth whose other end is the client's link in a
//! second namespace. The client's sockets are opened inside the client's namespace (on a thread
//! that entered it, as the core would with `Netns::run_inside`) and the exchange is driven from
//! the test's thread, over the client's packet socket and state machine: DORA, a RENEW at T1, a RELEASE that Kea's lease file shows, and a
//! LAN without a server, which must end in the deadline's error within the timeout.
//! (Not yet wired into an attach: this checks the client alone.)

#![allow(clippy::unwrap_used)]

use std::{
    ffi::OsString,
    net::{Ipv4Addr, SocketAddrV4, UdpSocket},
    os::fd::{AsFd, AsRawFd},
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use dhcproto::{
    Decodable, Encodable,
    v4::{DhcpOption, Message, MessageType, Opcode},
};

use nix::{
    sched::{CloneFlags, setns},
    sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrIn, bind, setsockopt, socket, sockopt,
    },
};
use oci_macvlan_dhcp::{Client, ClientId, Config, Error, Event, OnLink, Route};
use oci_macvlan_tests::{
    TestNetns,
    dhcp_pair::{beside_hostile, server_and_client},
    kea::{Kea, KeaConfig},
    privileged,
};

const SERVER: &str = "192.168.91.1";
/// The hostile server's address, on a macvlan of the LAN's link in a namespace of its own.
const HOSTILE: Ipv4Addr = Ipv4Addr::new(192, 168, 91, 66);

/// A LAN namespace holding `srv` (the server's link, `SERVER`/24) and a client namespace
/// holding `cl0`, its peer.
fn lan() -> (TestNetns, TestNetns) {
    let (lan, client) = server_and_client("omt-dlan-", "omt-dcl-");
    lan.ip(&["link", "set", "srv", "up"]);
    lan.ip(&["addr", "add", &format!("{SERVER}/24"), "dev", "srv"]);
    client.ip(&["link", "set", "cl0", "up"]);
    (lan, client)
}

fn kea(lan: &TestNetns) -> Kea {
    Kea::start(lan, &kea_config())
}

fn kea_config() -> KeaConfig {
    KeaConfig {
        interface: "srv".into(),
        subnet: "192.168.91.0/24".into(),
        pool: "192.168.91.100 - 192.168.91.150".into(),
        router: SERVER.into(),
        // 10.5.0.0/16 via 192.168.91.1.
        routes_hex: Some("100A05C0A85B01".into()),
        valid_lifetime: 30,
        renew_timer: 2,
        rebind_timer: 20,
    }
}

/// `cl0` of `ns`: its index and MAC.
fn on_link(ns: &TestNetns) -> OnLink {
    let link = ns.link("cl0").unwrap();
    let mac: Vec<u8> = link["address"]
        .as_str()
        .unwrap()
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect();
    OnLink {
        name: "cl0".into(),
        index: u32::try_from(link["ifindex"].as_u64().unwrap()).unwrap(),
        mac: mac.try_into().unwrap(),
    }
}

fn config(link: &OnLink, container: &str) -> Config {
    Config {
        mac: link.mac,
        client_id: ClientId::derive(b"this host's secret", "lan", container),
        hostname: Some("web1".into()),
        broadcast: false,
        subnet: Some((Ipv4Addr::new(192, 168, 91, 0), 24)),
        retry_floor: Duration::from_secs(1),
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(5), "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[privileged]
fn dora_then_renew_at_t1_then_release_on_kea() {
    let (lan, ns) = lan();
    let kea = kea(&lan);
    let link = on_link(&ns);
    let mut client = Client::new(config(&link, "c1"), 0x5eed);
    let socket = ns
        .inside(|| oci_macvlan_dhcp::open(&client, &link))
        .unwrap();
    let lease =
        oci_macvlan_dhcp::acquire(&mut client, &socket, oci_macvlan_dhcp::DEFAULT_TIMEOUT).unwrap();
    let octets = lease.address.octets();
    assert_eq!(octets[..3], [192, 168, 91], "{lease:?}");
    assert!(
        (100..=150).contains(&octets[3]),
        "outside Kea's pool: {lease:?}"
    );
    assert_eq!(lease.prefix, 24);
    assert_eq!(lease.router, Some(SERVER.parse().unwrap()));
    assert_eq!(lease.server, SERVER.parse::<Ipv4Addr>().unwrap());
    assert_eq!(
        lease.routes,
        [Route {
            destination: Ipv4Addr::new(10, 5, 0, 0),
            prefix: 16,
            gateway: SERVER.parse().unwrap(),
        }]
    );
    assert_eq!(
        lease.t1.duration_since(lease.obtained).unwrap(),
        Duration::from_secs(2)
    );
    assert_eq!(lease.length(), Duration::from_secs(30));

    let address = lease.address.to_string();
    let held = kea.lease(&address).expect("Kea's lease file has the lease");
    assert_eq!(held.client_id, client.config().client_id.to_hex());
    // Option 81's name, as Kea keeps it (completed with its empty suffix).
    assert_eq!(held.hostname, "web1.");
    let mac: Vec<String> = link.mac.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(held.hwaddr, mac.join(":"));

    // The address on the link, as an attach applies it: Kea answers a renewal unicast to it.
    ns.ip(&["addr", "add", &format!("{address}/24"), "dev", "cl0"]);
    let rows = kea.rows().len();
    let before = Instant::now();
    // The unicast socket is from the leased address: opened once the lease is held.
    let socket = ns
        .inside(|| oci_macvlan_dhcp::open(&client, &link))
        .unwrap();
    let event = oci_macvlan_dhcp::next_event(&mut client, &socket, Duration::from_secs(6)).unwrap();
    let Event::Extended(renewed) = event else {
        panic!("not renewed: {event:?}");
    };
    assert_eq!(renewed.address, lease.address);
    assert!(renewed.obtained > lease.obtained);
    // Not before T1 (2 s after the ACK), and answered at once.
    assert!(
        before.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        before.elapsed()
    );
    assert!(
        kea.rows().len() > rows,
        "Kea recorded no renewal: {:?}",
        kea.rows()
    );

    oci_macvlan_dhcp::release(&mut client, &socket).unwrap();
    wait_for("Kea still holds the released lease", || {
        kea.lease(&address).is_none()
    });
}

#[privileged]
fn the_same_container_gets_the_same_address_and_another_one_another() {
    let (lan, ns) = lan();
    let _kea = kea(&lan);
    let link = on_link(&ns);
    let take = |container: &str| {
        let mut client = Client::new(config(&link, container), rand_seed());
        let socket = ns
            .inside(|| oci_macvlan_dhcp::open(&client, &link))
            .unwrap();
        oci_macvlan_dhcp::acquire(&mut client, &socket, oci_macvlan_dhcp::DEFAULT_TIMEOUT)
            .unwrap()
            .address
    };
    let first = take("c1");
    assert_eq!(take("c1"), first, "the same client id got another address");
    assert_ne!(take("c2"), first, "another container got the same address");
}

fn rand_seed() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

#[privileged]
fn no_server_ends_in_the_deadline_error_within_the_timeout() {
    let (_lan, ns) = lan();
    let link = on_link(&ns);
    let mut client = Client::new(config(&link, "c1"), 1);
    let timeout = Duration::from_secs(2);
    let socket = ns
        .inside(|| oci_macvlan_dhcp::open(&client, &link))
        .unwrap();
    let start = Instant::now();
    let result = oci_macvlan_dhcp::acquire(&mut client, &socket, timeout);
    let took = start.elapsed();
    match result {
        Err(Error::Timeout {
            link,
            timeout: t,
            refused,
            last,
            on_host,
        }) => {
            assert_eq!(on_host, "", "no server listens in the test's namespace");
            assert_eq!(link, "cl0");
            assert_eq!(t, timeout);
            assert_eq!((refused, last), (0, None));
        }
        other => panic!("not the deadline's error: {other:?}"),
    }
    assert!(
        took >= timeout && took < timeout + Duration::from_millis(500),
        "{took:?}"
    );
    let text = Error::Timeout {
        link: "cl0".into(),
        timeout,
        refused: 0,
        last: None,
        on_host: "",
    }
    .to_string();
    assert_eq!(text, "no DHCP answer on cl0 within 2s");
}

/// An ipvlan link shares its parent's MAC, so the client asks for broadcast answers: Kea sends
/// them to ff:ff:ff:ff:ff:ff and the client still takes only its own (xid, chaddr, client id).
#[privileged]
fn the_broadcast_flag_gets_broadcast_answers() {
    let (lan, ns) = lan();
    let kea = kea(&lan);
    let link = on_link(&ns);
    let mut c = config(&link, "ipvlan-c");
    c.broadcast = true;
    let mut client = Client::new(c, 7);
    let socket = ns
        .inside(|| oci_macvlan_dhcp::open(&client, &link))
        .unwrap();
    let lease =
        oci_macvlan_dhcp::acquire(&mut client, &socket, oci_macvlan_dhcp::DEFAULT_TIMEOUT).unwrap();
    assert!(kea.lease(&lease.address.to_string()).is_some());
    let log = kea.log();
    let broadcast_ack = log.lines().any(|line| {
        line.contains("DHCP4_PACKET_SEND")
            && line.contains("DHCPACK")
            && line.contains("to 255.255.255.255:68")
    });
    assert!(broadcast_ack, "Kea did not broadcast its ACK: {log}");
}

/// A namespace beside the LAN's server holding `hst`, a macvlan of the LAN's link (as a
/// container's), with `HOSTILE`: Kea keeps port 67 of the LAN namespace to itself.
fn hostile_ns(lan: &TestNetns) -> TestNetns {
    let ns = TestNetns::new("omt-dhs-");
    lan.ip(&[
        "link", "add", "hst", "link", "srv", "type", "macvlan", "mode", "bridge",
    ]);
    lan.ip(&["link", "set", "hst", "netns", &ns.name]);
    ns.ip(&["addr", "add", &format!("{HOSTILE}/24"), "dev", "hst"]);
    ns.ip(&["link", "set", "hst", "up"]);
    ns
}

/// A hostile server in `ns` (see [`hostile_ns`]): for every request it reads on port 67 it broadcasts answers
/// that a client must refuse (another transaction, an address outside `--subnet`, a router
/// outside the leased subnet, another client's hardware address, bytes that are not DHCP) and a
/// flood of 200 offers for another transaction, until `stop`. Returns how many requests it saw.
fn hostile(ns: &TestNetns, stop: &AtomicBool) -> usize {
    let file = std::fs::File::open(ns.path()).unwrap();
    setns(file.as_fd(), CloneFlags::CLONE_NEWNET).unwrap();
    let fd = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    setsockopt(&fd, sockopt::BindToDevice, &OsString::from("hst")).unwrap();
    bind(
        fd.as_raw_fd(),
        &SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 67)),
    )
    .unwrap();
    let socket = UdpSocket::from(fd);
    socket.set_broadcast(true).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let to = SocketAddrV4::new(Ipv4Addr::BROADCAST, 68);
    let mut buf = [0u8; 1500];
    let mut seen = 0;
    while !stop.load(Ordering::Relaxed) {
        let Ok((len, _)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let Ok(request) = Message::from_bytes(&buf[..len]) else {
            continue;
        };
        seen += 1;
        let offer = |xid: u32, yiaddr: Ipv4Addr, router: Ipv4Addr, chaddr: &[u8]| {
            let mut msg = Message::new_with_id(
                xid,
                Ipv4Addr::UNSPECIFIED,
                yiaddr,
                Ipv4Addr::UNSPECIFIED,
                Ipv4Addr::UNSPECIFIED,
                chaddr,
            );
            msg.set_opcode(Opcode::BootReply);
            let opts = msg.opts_mut();
            opts.insert(DhcpOption::MessageType(MessageType::Offer));
            opts.insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(
                192, 168, 91, 66,
            )));
            opts.insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)));
            opts.insert(DhcpOption::Router(vec![router]));
            opts.insert(DhcpOption::AddressLeaseTime(60));
            msg.to_vec().unwrap()
        };
        let xid = request.xid();
        let mac = request.chaddr()[..6].to_vec();
        let good = Ipv4Addr::new(192, 168, 91, 77);
        let gw = HOSTILE;
        let answers = [
            offer(xid ^ 1, good, gw, &mac),
            offer(
                xid,
                Ipv4Addr::new(10, 9, 9, 9),
                Ipv4Addr::new(10, 9, 9, 1),
                &mac,
            ),
            offer(xid, good, Ipv4Addr::new(10, 9, 9, 1), &mac),
            offer(xid, good, gw, &[2, 9, 9, 9, 9, 9]),
            vec![0xa5; 1400],
        ];
        for answer in &answers {
            let _ = socket.send_to(answer, to);
        }
        let flood = offer(xid.wrapping_add(7), good, gw, &mac);
        for _ in 0..200 {
            let _ = socket.send_to(&flood, to);
        }
    }
    seen
}

#[privileged]
fn a_hostile_server_is_refused_and_named_in_the_deadline_error() {
    let (lan, ns) = lan();
    let bad = hostile_ns(&lan);
    let link = on_link(&ns);
    let mut client = Client::new(config(&link, "c1"), 11);
    let socket = ns
        .inside(|| oci_macvlan_dhcp::open(&client, &link))
        .unwrap();
    let timeout = Duration::from_secs(3);
    // The hostile server's socket is bound before the first DISCOVER goes.
    let (result, took, seen) = beside_hostile(
        Duration::from_millis(200),
        |stop| hostile(&bad, stop),
        || oci_macvlan_dhcp::acquire(&mut client, &socket, timeout),
    );
    assert!(seen >= 1, "the hostile server saw no request");
    match result {
        Err(Error::Timeout { refused, last, .. }) => {
            // Per request: 4 checked and refused (the non-DHCP bytes too), the flood's 200.
            assert!(refused >= 204, "{refused} refused");
            assert!(last.is_some());
        }
        other => panic!("a hostile answer was taken: {other:?}"),
    }
    assert!(took < timeout + Duration::from_millis(500), "{took:?}");
    // Nothing was taken: the client still waits for an offer.
    assert!(
        matches!(client.state(), oci_macvlan_dhcp::State::Selecting { .. }),
        "{:?}",
        client.state()
    );
}

/// With Kea on the same LAN, the hostile server's answers are skipped and Kea's lease taken.
#[privileged]
fn kea_is_taken_through_a_hostile_flood() {
    let (lan, ns) = lan();
    let _kea = kea(&lan);
    let bad = hostile_ns(&lan);
    let link = on_link(&ns);
    let mut client = Client::new(config(&link, "c1"), 12);
    let socket = ns
        .inside(|| oci_macvlan_dhcp::open(&client, &link))
        .unwrap();
    let (lease, _, _) = beside_hostile(
        Duration::from_millis(200),
        |stop| hostile(&bad, stop),
        || oci_macvlan_dhcp::acquire(&mut client, &socket, oci_macvlan_dhcp::DEFAULT_TIMEOUT),
    );
    let lease = lease.unwrap();
    assert_eq!(lease.server, SERVER.parse::<Ipv4Addr>().unwrap());
    assert!(
        (100..=150).contains(&lease.address.octets()[3]),
        "{lease:?}"
    );
}

/// The renewer killed after the DORA loses nothing: a client resumed from the stored lease (JSON)
/// renews at T1; with the server down the renewal goes unanswered, and at T2 the client
/// rebinds by broadcast, which the server, back up on its lease file, acknowledges.
#[privileged]
fn a_resumed_client_renews_and_rebinds_at_t2_when_the_server_was_down() {
    let (lan, ns) = lan();
    let mut conf = kea_config();
    conf.renew_timer = 1;
    conf.rebind_timer = 3;
    let kea = Kea::start(&lan, &conf);
    let link = on_link(&ns);
    let mut c = config(&link, "c1");
    // No retransmission of the renewal before T2: the rebind is what is seen.
    c.retry_floor = Duration::from_secs(30);
    let mut client = Client::new(c.clone(), 21);
    let socket = ns
        .inside(|| oci_macvlan_dhcp::open(&client, &link))
        .unwrap();
    let lease =
        oci_macvlan_dhcp::acquire(&mut client, &socket, oci_macvlan_dhcp::DEFAULT_TIMEOUT).unwrap();
    let stored = serde_json::to_string(&lease).unwrap();
    drop(client);
    let address = lease.address.to_string();
    ns.ip(&["addr", "add", &format!("{address}/24"), "dev", "cl0"]);
    let lease_dir = kea.stop();

    let mut client = Client::resume(c, serde_json::from_str(&stored).unwrap(), 22);
    let socket = ns
        .inside(|| oci_macvlan_dhcp::open(&client, &link))
        .unwrap();
    let event = std::thread::scope(|scope| {
        let back = scope.spawn(|| {
            // Down past T1 (1 s after the ACK), back before T2 (3 s).
            std::thread::sleep(Duration::from_millis(1800));
            Kea::start_again(lease_dir, &lan, &conf)
        });
        let event = oci_macvlan_dhcp::next_event(&mut client, &socket, Duration::from_secs(8));
        (event, back.join().unwrap())
    });
    let (event, kea) = event;
    let event = event.unwrap_or_else(|e| panic!("{e}; Kea's log: {}", kea.log()));
    let Event::Extended(rebound) = event else {
        panic!("not rebound: {event:?}");
    };
    assert_eq!(rebound.address, lease.address);
    let took = rebound.obtained.duration_since(lease.obtained).unwrap();
    assert!(
        took >= Duration::from_secs(3),
        "extended before T2: {took:?}"
    );
    let log = kea.log();
    let rebind = format!("from {address}:68 to 255.255.255.255:67");
    assert!(
        log.lines()
            .any(|l| l.contains("DHCP4_BUFFER_RECEIVED") && l.contains(&rebind)),
        "Kea saw no broadcast REQUEST from the lease: {log}"
    );
}
