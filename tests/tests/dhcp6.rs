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

use std::time::{Duration, Instant};

use oci_macvlan_dhcp::v6::{self, Client, Error, Event};
use oci_macvlan_tests::{kea6::Kea6, privileged};

#[path = "dhcp6/common.rs"]
mod common;

use common::*;

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
            on_host,
        }) => {
            assert_eq!((link.as_str(), t, refused, last), ("cl0", timeout, 0, None));
            assert_eq!(on_host, "", "no server listens in the test's namespace");
        }
        other => panic!("not the deadline's error: {other:?}"),
    }
    assert!(
        took >= timeout && took < timeout + Duration::from_millis(500),
        "{took:?}"
    );
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
