//! Privileged tier: the DHCP lease's renewer (the keeper the hook starts), against Kea with
//! timers of seconds, for a container whose process (`unshare --net sleep`) the hook is given
//! as a runtime gives it: the hook returns at once; renewal at T1 seen at the server with the
//! record's timers advanced; the active keeper SIGKILLed and the next renewal still on time;
//! the container SIGKILLed and both keepers gone, poststop releasing; rebind at T2 when the
//! renewals go unanswered; a NAK from a server restarted with a new range and router, and the
//! new address and gateway on the link and in the record; a server gone past expiry, and the
//! address and its routes gone from the link, then discovery again; a renewal of the same
//! address with another router or other option-121 routes, and the link's routes following;
//! a lease renewed every second, journaled once a minute.

#![allow(clippy::unwrap_used)]

use std::{process::Command, time::Duration};

use oci_macvlan_tests::{
    ContainerProcess, Lan,
    dhcp_lan::{NET, create_dhcp_network, kea_config, record},
    dnsmasq::Dnsmasq,
    kea::{Kea, KeaConfig},
    privileged,
    renewal::{addresses, attach, gateway_routes, ip_in, keepers, now, secs, wait_until},
};
use serde_json::Value;

const ANN: &str = "oci-macvlan.networks";

fn quick(lifetime: u32, t1: u32, t2: u32) -> KeaConfig {
    KeaConfig {
        valid_lifetime: lifetime,
        renew_timer: t1,
        rebind_timer: t2,
        ..kea_config()
    }
}

/// The IPv4 addresses on the container's eth0.
fn v4(pid: u32) -> Vec<String> {
    addresses(pid, "-4")
}

/// The IPv4 default route's gateway in the container.
fn default_via(pid: u32) -> Option<String> {
    let routes = ip_in(pid, &["-4", "route", "show", "default"]);
    routes.as_array()?.first()?["gateway"]
        .as_str()
        .map(str::to_owned)
}

fn dhcp(lan: &Lan) -> Value {
    record(lan, "c1")["endpoints"][0]["dhcp"].clone()
}

/// How many DHCP messages Kea's log shows received from `from` to `to` (a renewal goes to
/// the server from the leased address, a rebinding to everyone).
fn received(kea: &Kea, from: &str, to: &str) -> usize {
    let seen = format!("from {from}:68 to {to}:67");
    kea.log()
        .lines()
        .filter(|l| l.contains("DHCP4_BUFFER_RECEIVED") && l.contains(&seen))
        .count()
}

#[privileged]
fn renews_at_t1_survives_its_keeper_killed_and_ends_with_the_container() {
    let lan = Lan::new();
    let kea = Kea::start(&lan.router, &quick(30, 4, 20));
    create_dhcp_network(&lan, &[]);
    let process = ContainerProcess::start();
    attach(&lan, &process);
    let first = dhcp(&lan);
    let address = first["lease"]["address"].as_str().unwrap().to_owned();
    let t1 = secs(&first["lease"]["t1"]);
    let requests = || received(&kea, &address, Lan::GATEWAY);
    assert_eq!(requests(), 0, "{}", kea.log());
    // A hook run again starts a keeper that finds the pair in place and leaves.
    let pair = {
        let mut pids = keepers(&lan);
        pids.sort_unstable();
        pids
    };
    let state = lan.pid_bundle("c1", &[(ANN, NET)], process.pid(), "creating");
    lan.cli_ok(&["hook"], &state);
    std::thread::sleep(Duration::from_millis(500));
    let mut again = keepers(&lan);
    again.sort_unstable();
    assert_eq!(again, pair, "a hook re-run changed the pair");

    // The renewal: a REQUEST at T1, not before; the record's timers move on.
    assert!(
        wait_until(Duration::from_secs(10), || requests() >= 1),
        "no renewal by T1 + 4 s: {}",
        kea.log()
    );
    assert!(now() >= t1 - 0.5, "renewed before T1");
    assert!(
        wait_until(Duration::from_secs(3), || secs(&dhcp(&lan)["lease"]["t1"])
            > t1),
        "the record's T1 did not move: {}",
        dhcp(&lan)
    );
    let renewed = dhcp(&lan);
    assert_eq!(renewed["lease"]["address"], address.as_str());
    assert!(secs(&renewed["lease"]["expiry"]) > secs(&first["lease"]["expiry"]));
    assert_eq!(v4(process.pid()), std::slice::from_ref(&address));
    assert!(
        lan.journal().iter().any(|l| l["action"] == "renewed"),
        "{:?}",
        lan.journal()
    );

    // The active keeper SIGKILLed mid-lease: its standby renews at the next T1, on time, and
    // starts a standby of its own.
    let slot = lan.state_dir().join(format!("keepers/c1.{NET}"));
    let active: i32 = std::fs::read_to_string(slot.join("active.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(active),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let t1 = secs(&renewed["lease"]["t1"]);
    let before = requests();
    assert!(
        wait_until(Duration::from_secs(10), || requests() > before),
        "no renewal after the active keeper was killed: {}",
        kea.log()
    );
    assert!(
        now() < t1 + 3.0,
        "the renewal after the kill came late ({:.1} s past T1)",
        now() - t1
    );
    assert!(
        wait_until(Duration::from_secs(5), || keepers(&lan).len() == 2
            && !keepers(&lan).contains(&(active as u32))),
        "the pair was not made whole again: {:?}",
        keepers(&lan)
    );

    // The container SIGKILLed: both keepers end; poststop releases the lease.
    let pid = process.pid();
    process.kill();
    assert!(
        wait_until(Duration::from_secs(3), || keepers(&lan).is_empty()),
        "keepers outlived their container: {:?}",
        keepers(&lan)
    );
    let state = lan.pid_bundle("c1", &[(ANN, NET)], pid, "stopped");
    lan.cli_ok(&["hook", "poststop"], &state);
    assert!(
        wait_until(Duration::from_secs(3), || kea.lease(&address).is_none()),
        "Kea still holds {address} after poststop"
    );
    lan.assert_no_residue(&[NET], "after poststop");
}

#[privileged]
fn rebinds_at_t2_when_renewals_go_unanswered() {
    let lan = Lan::new();
    let kea = Kea::start(&lan.router, &quick(40, 3, 10));
    create_dhcp_network(&lan, &[]);
    let process = ContainerProcess::start();
    attach(&lan, &process);
    let first = dhcp(&lan);
    let address = first["lease"]["address"].as_str().unwrap().to_owned();
    let t2 = secs(&first["lease"]["t2"]);
    // Unicast to the server is dropped in the container; broadcasts leave as whole frames.
    let out = Command::new("nsenter")
        .args(["-t", &process.pid().to_string(), "-n", "iptables"])
        .args([
            "-A",
            "OUTPUT",
            "-p",
            "udp",
            "--dport",
            "67",
            "-d",
            Lan::GATEWAY,
        ])
        .args(["-j", "DROP"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    assert!(
        wait_until(Duration::from_secs(20), || secs(&dhcp(&lan)["lease"]["t2"])
            > t2),
        "the lease was not extended by T2 + 10 s: {}\n{}",
        dhcp(&lan),
        kea.log()
    );
    let extended = dhcp(&lan);
    assert!(
        secs(&extended["lease"]["obtained"]) >= t2 - 0.5,
        "extended before T2 although renewals were dropped: {extended}"
    );
    assert_eq!(extended["lease"]["address"], address.as_str());
    // Kea saw it broadcast from the leased address (rebinding); the renewals never came.
    assert!(
        received(&kea, &address, "255.255.255.255") >= 1,
        "no rebinding REQUEST in Kea's log: {}",
        kea.log()
    );
    assert_eq!(received(&kea, &address, Lan::GATEWAY), 0);
    // The unanswered renewals are in the journal.
    assert!(
        lan.journal()
            .iter()
            .any(|l| l["action"] == "renew" && l["outcome"] == "error"),
        "{:?}",
        lan.journal()
    );
    assert_eq!(v4(process.pid()), [address]);
}

#[privileged]
fn a_nak_moves_the_container_to_its_new_address_and_gateway() {
    let lan = Lan::new();
    let kea = Kea::start(&lan.router, &quick(60, 5, 50));
    create_dhcp_network(&lan, &[]);
    let process = ContainerProcess::start();
    attach(&lan, &process);
    let old = dhcp(&lan)["lease"]["address"].as_str().unwrap().to_owned();
    assert_eq!(default_via(process.pid()).as_deref(), Some(Lan::GATEWAY));

    // The LAN's server replaced by one with another range and router, which NAKs the renewal
    // of an address outside its range (dnsmasq, authoritative: Kea stays silent there).
    drop(kea);
    let server = Dnsmasq::start(
        &lan.router,
        "rtr",
        "192.168.77.160",
        "192.168.77.170",
        "192.168.77.2",
        "2m",
    );
    // (The new offer is on the record before its REQUEST; the lease in full once applied.)
    assert!(
        wait_until(Duration::from_secs(15), || dhcp(&lan)["lease"]["address"]
            != old.as_str()
            && dhcp(&lan)["renewal"].is_null()),
        "the address did not move: {}\n{}",
        dhcp(&lan),
        server.log()
    );
    let new = dhcp(&lan)["lease"]["address"].as_str().unwrap().to_owned();
    assert!(
        new.starts_with("192.168.77.16") || new == "192.168.77.170",
        "{new}"
    );
    assert!(server.log().contains("DHCPNAK"), "{}", server.log());
    assert_eq!(v4(process.pid()), std::slice::from_ref(&new));
    assert_eq!(default_via(process.pid()).as_deref(), Some("192.168.77.2"));
    assert_eq!(dhcp(&lan)["lease"]["router"], "192.168.77.2");
    assert!(server.leases().iter().any(|l| l.address == new));
    let actions: Vec<Value> = lan.journal().iter().map(|l| l["action"].clone()).collect();
    assert!(
        actions.contains(&"refused".into()) && actions.contains(&"leased".into()),
        "{actions:?}"
    );
    // The store follows: one lease, the new address; verify is content.
    assert_eq!(lan.leased(NET), 1);
    let verify = lan.cli(&["verify"], "");
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
}

#[privileged]
fn expiry_unanswered_takes_the_address_and_its_routes_off_then_discovery_again() {
    let lan = Lan::new();
    let config = quick(8, 2, 5);
    let kea = Kea::start(&lan.router, &config);
    create_dhcp_network(&lan, &[]);
    let process = ContainerProcess::start();
    attach(&lan, &process);
    let first = dhcp(&lan);
    let expiry = secs(&first["lease"]["expiry"]);
    assert_eq!(v4(process.pid()).len(), 1);
    let dir = kea.stop();

    assert!(
        wait_until(Duration::from_secs(15), || v4(process.pid()).is_empty()
            && dhcp(&lan)["renewal"]["unbound"] == true),
        "the address outlived its lease: {:?}",
        v4(process.pid())
    );
    assert!(now() >= expiry - 0.5, "the address went before expiry");
    assert_eq!(
        default_via(process.pid()),
        None,
        "a route outlived its lease"
    );
    let routes = ip_in(process.pid(), &["-4", "route", "show"]);
    assert_eq!(routes, serde_json::json!([]), "routes left: {routes}");
    assert_eq!(dhcp(&lan)["renewal"]["unbound"], true, "{}", dhcp(&lan));
    assert_eq!(lan.leased(NET), 0, "the store kept the expired lease");
    // `inspect` still lists the container, no address, its lease unbound.
    let inspect = lan.inspect(NET);
    let listed: Vec<&Value> = inspect[0]["Containers"]
        .as_object()
        .map(|c| c.values().collect())
        .unwrap_or_default();
    assert_eq!(listed.len(), 1, "{inspect}");
    assert_eq!(listed[0]["IPv4Address"], "", "{inspect}");
    assert_eq!(listed[0]["DhcpLease"]["State"], "unbound", "{inspect}");

    // The server back: discovery gives the link an address again.
    let kea = Kea::start_again(dir, &lan.router, &config);
    // (The link gets the address just before the record says so.)
    assert!(
        wait_until(Duration::from_secs(20), || v4(process.pid()).len() == 1
            && dhcp(&lan)["renewal"].is_null()),
        "no address after the server came back: {}\n{}",
        dhcp(&lan),
        kea.log()
    );
    assert_eq!(default_via(process.pid()).as_deref(), Some(Lan::GATEWAY));
    assert_eq!(lan.leased(NET), 1);
}

/// A server that hands out leases of seconds (T1 1 s) is renewed as often as it asks, but the
/// journal gets one "renewed" line a minute: a line per renewal would push its history out.
#[privileged]
fn a_lease_renewed_every_second_gets_one_journal_line_a_minute() {
    let lan = Lan::new();
    let kea = Kea::start(&lan.router, &quick(6, 1, 4));
    create_dhcp_network(&lan, &[]);
    let process = ContainerProcess::start();
    attach(&lan, &process);
    let address = dhcp(&lan)["lease"]["address"].as_str().unwrap().to_owned();
    assert!(
        wait_until(Duration::from_secs(15), || received(
            &kea,
            &address,
            Lan::GATEWAY
        ) >= 3),
        "fewer than three renewals: {}",
        kea.log()
    );
    let renewed = |l: &&Value| l["action"] == "renewed";
    let journal = lan.journal();
    assert_eq!(journal.iter().filter(renewed).count(), 1, "{journal:?}");
    assert_eq!(v4(process.pid()), std::slice::from_ref(&address));
}

/// The v4 routes in the container through a gateway, as `(dst, gateway)`.
fn routes(pid: u32) -> Vec<(String, String)> {
    gateway_routes(pid)
        .into_iter()
        .map(|(dst, gateway, _)| (dst, gateway))
        .collect()
}

/// A server restarted mid-lease with another router, then with other option-121 routes, then
/// with the first routes again: each renewal (the same address) moves the link's default route
/// and routes to what the new ACK says, and the record with them.
#[privileged]
fn a_renewal_with_another_router_or_routes_moves_the_routes() {
    let lan = Lan::new();
    let plain = KeaConfig {
        routes_hex: None,
        ..quick(30, 2, 20)
    };
    let kea = Kea::start(&lan.router, &plain);
    create_dhcp_network(&lan, &[]);
    let process = ContainerProcess::start();
    attach(&lan, &process);
    let pid = process.pid();
    let address = dhcp(&lan)["lease"]["address"].as_str().unwrap().to_owned();
    assert_eq!(routes(pid), [("default".into(), Lan::GATEWAY.into())]);

    let phases = [
        // Option 3 only: another router.
        (
            KeaConfig {
                router: "192.168.77.2".into(),
                ..plain.clone()
            },
            vec![("default", "192.168.77.2")],
        ),
        // Option 121: 10.6.0.0/16 via .2, the default via .3 (the router option ignored).
        (
            KeaConfig {
                routes_hex: Some("100A06C0A84D0200C0A84D03".into()),
                ..plain.clone()
            },
            vec![("10.6.0.0/16", "192.168.77.2"), ("default", "192.168.77.3")],
        ),
        // The LAN's first routes: 10.5.0.0/16 and the default via .1; 10.6.0.0/16 goes.
        (
            quick(30, 2, 20),
            vec![("10.5.0.0/16", Lan::GATEWAY), ("default", Lan::GATEWAY)],
        ),
    ];
    let mut kea = kea;
    for (config, want) in phases {
        let want: Vec<(String, String)> = want
            .into_iter()
            .map(|(d, g)| (d.to_owned(), g.to_owned()))
            .collect();
        kea = Kea::start_again(kea.stop(), &lan.router, &config);
        assert!(
            wait_until(Duration::from_secs(8), || routes(pid) == want),
            "the routes did not follow the renewal: {:?}, not {want:?}\n{}\n{}",
            routes(pid),
            dhcp(&lan),
            kea.log()
        );
        assert_eq!(v4(pid), std::slice::from_ref(&address));
        assert_eq!(dhcp(&lan)["lease"]["address"], address.as_str());
    }
    assert_eq!(dhcp(&lan)["lease"]["router"], Lan::GATEWAY);
    let verify = lan.cli(&["verify"], "");
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
}
