//! Privileged tier: the DHCPv4 client of `crates/dhcp` against a real server, Kea, started by
//! the test in a "LAN" namespace it made, on a veth whose other end is the client's link in a
//! second namespace. The client's sockets are opened inside the client's namespace (on a thread
//! that entered it, as the core would with `Netns::run_inside`) and the exchange is driven from
//! the test's thread, over the client's packet socket and state machine: DORA, a RENEW at T1, a RELEASE that Kea's lease file shows, and a
//! LAN without a server, which must end in the deadline's error within the timeout.
//! (Not yet wired into an attach: this checks the client alone.)

#![allow(clippy::unwrap_used)]

use std::{
    net::Ipv4Addr,
    os::fd::AsFd,
    time::{Duration, Instant},
};

use nix::sched::{CloneFlags, setns};
use oci_macvlan_dhcp::{Client, ClientId, Config, Error, Event, OnLink, Route};
use oci_macvlan_tests::{
    TestNetns,
    kea::{Kea, KeaConfig},
    privileged,
};

const SERVER: &str = "192.168.91.1";

/// A LAN namespace holding `srv` (the server's link, `SERVER`/24) and a client namespace
/// holding `cl0`, its peer.
fn lan() -> (TestNetns, TestNetns) {
    let lan = TestNetns::new("omt-dlan-");
    let client = TestNetns::new("omt-dcl-");
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
    lan.ip(&["link", "set", "srv", "up"]);
    lan.ip(&["addr", "add", &format!("{SERVER}/24"), "dev", "srv"]);
    client.ip(&["link", "set", "cl0", "up"]);
    (lan, client)
}

fn kea(lan: &TestNetns) -> Kea {
    Kea::start(
        lan,
        &KeaConfig {
            interface: "srv".into(),
            subnet: "192.168.91.0/24".into(),
            pool: "192.168.91.100 - 192.168.91.150".into(),
            router: SERVER.into(),
            // 10.5.0.0/16 via 192.168.91.1.
            routes_hex: Some("100A05C0A85B01".into()),
            valid_lifetime: 30,
            renew_timer: 2,
            rebind_timer: 20,
        },
    )
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

/// Runs `f` on a thread inside `ns`.
fn inside<T: Send>(ns: &TestNetns, f: impl FnOnce() -> T + Send) -> T {
    let file = std::fs::File::open(ns.path()).unwrap();
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                setns(file.as_fd(), CloneFlags::CLONE_NEWNET).unwrap();
                f()
            })
            .join()
            .unwrap()
    })
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
    let socket = inside(&ns, || oci_macvlan_dhcp::open(&client, &link)).unwrap();
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
    assert_eq!(held.hostname, "web1");
    let mac: Vec<String> = link.mac.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(held.hwaddr, mac.join(":"));

    // The address on the link, as an attach applies it: Kea answers a renewal unicast to it.
    ns.ip(&["addr", "add", &format!("{address}/24"), "dev", "cl0"]);
    let rows = kea.rows().len();
    let before = Instant::now();
    // The unicast socket is from the leased address: opened once the lease is held.
    let socket = inside(&ns, || oci_macvlan_dhcp::open(&client, &link)).unwrap();
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
        let socket = inside(&ns, || oci_macvlan_dhcp::open(&client, &link)).unwrap();
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
    let socket = inside(&ns, || oci_macvlan_dhcp::open(&client, &link)).unwrap();
    let start = Instant::now();
    let result = oci_macvlan_dhcp::acquire(&mut client, &socket, timeout);
    let took = start.elapsed();
    match result {
        Err(Error::Timeout { link, timeout: t }) => {
            assert_eq!(link, "cl0");
            assert_eq!(t, timeout);
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
    let socket = inside(&ns, || oci_macvlan_dhcp::open(&client, &link)).unwrap();
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
