//! Privileged tier: the renewer (the keeper the hook starts) keeps a DHCPv6 lease too (IA_NA,
//! RFC 8415), against Kea's `kea-dhcp6` with timers of seconds, for a container whose process
//! (`unshare --net sleep`) the hook is given as a runtime gives it: a RENEW at T1 seen at the
//! server, the record's timers and the address's kernel lifetime extended; a REBIND at T2 when
//! the server that gave the lease is gone (restarted: a new server identifier); a server with
//! a new range takes the address back and the container moves to a new one (link, record,
//! store), after a REBIND (another server) or at T1 (the same server, its binding lost), and
//! leaves no address when the new one is refused; a server gone past the valid lifetime, and the address gone from the link, the
//! record and the store, then a SOLICIT when it is back. (v4's renewer: `dhcp_renew.rs`.)

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use oci_macvlan_tests::{
    ContainerProcess, Lan,
    dhcp_lan::{NET, create_dhcp_network, kea_config, record},
    kea::Kea,
    kea6::{Kea6, Kea6Config},
    privileged,
    renewal::{addr_info, addresses, attach, now, secs, wait_until},
};
use serde_json::Value;

/// The router's link ready for Kea 6: its link-local address usable at once (no DAD), and an
/// address of the LAN's v6 subnet.
fn router_v6(lan: &Lan) {
    lan.router.sysctl("net/ipv6/conf/rtr/accept_dad", "0");
    // Made again on link-up, now without DAD.
    lan.router.ip(&["link", "set", "rtr", "down"]);
    lan.router.ip(&["link", "set", "rtr", "up"]);
    lan.router
        .ip(&["addr", "add", "2001:db8:77::1/64", "dev", "rtr", "nodad"]);
}

/// Kea 6 on the router's link with lifetimes and timers of seconds.
fn quick6(preferred: u32, valid: u32, t1: u32, t2: u32) -> Kea6Config {
    Kea6Config {
        interface: "rtr".into(),
        subnet: "2001:db8:77::/64".into(),
        pool: "2001:db8:77::100-2001:db8:77::1ff".into(),
        preferred_lifetime: preferred,
        valid_lifetime: valid,
        renew_timer: t1,
        rebind_timer: t2,
        unicast: None,
    }
}

/// A LAN with Kea 4 (its lease long: only the v6 one is renewed here) and Kea 6 (`config`),
/// a `--ipv6` DHCP network, and container `c1` attached through the hook.
fn attached(config: &Kea6Config) -> (Lan, Kea, Kea6, ContainerProcess) {
    let lan = Lan::new();
    router_v6(&lan);
    let kea = Kea::start(&lan.router, &kea_config());
    let kea6 = Kea6::start(&lan.router, config);
    create_dhcp_network(&lan, &["--ipv6"]);
    let process = ContainerProcess::start();
    attach(&lan, &process);
    assert_eq!(addresses(process.pid(), "-6").len(), 1, "{}", kea6.log());
    (lan, kea, kea6, process)
}

/// The server identifier Kea 6 keeps across a restart in [`attached_as`]'s tests.
const SERVER_ID: &str = "0102030405";

/// [`attached`], Kea 6 started under `identifier` (a restart under it is the same server).
fn attached_as(config: &Kea6Config, identifier: &str) -> (Lan, Kea, Kea6, ContainerProcess) {
    let lan = Lan::new();
    router_v6(&lan);
    let kea = Kea::start(&lan.router, &kea_config());
    let kea6 = Kea6::start_as(&lan.router, config, identifier);
    create_dhcp_network(&lan, &["--ipv6"]);
    let process = ContainerProcess::start();
    attach(&lan, &process);
    (lan, kea, kea6, process)
}

/// The record's DHCPv6 part.
fn v6(lan: &Lan) -> Value {
    record(lan, "c1")["endpoints"][0]["dhcp"]["v6"].clone()
}

fn address(lan: &Lan) -> String {
    v6(lan)["lease"]["address"].as_str().unwrap().to_owned()
}

/// The valid lifetime the kernel has left for `address` on the container's eth0, seconds.
fn valid_left(pid: u32, address: &str) -> Option<u64> {
    addr_info(pid, "-6")
        .iter()
        .find(|a| a["local"] == address)
        .and_then(|a| a["valid_life_time"].as_u64())
}

/// The container's v6 address as `inspect` shows the store's lease (empty: none).
fn stored6(lan: &Lan) -> Vec<String> {
    lan.inspected(NET, "IPv6Address")
        .into_iter()
        .map(|(_, v6)| v6)
        .collect()
}

#[privileged]
fn renews_at_t1_and_extends_the_address_lifetime_on_the_link() {
    let (lan, _kea, kea6, process) = attached(&quick6(20, 30, 4, 15));
    let first = v6(&lan);
    let address = address(&lan);
    let (t1, expiry) = (secs(&first["lease"]["t1"]), secs(&first["lease"]["expiry"]));
    // Kea logs a lease it extends (a RENEW's, before T2) as DHCP6_LEASE_RENEW.
    let renewals = || kea6.logged("DHCP6_LEASE_RENEW");
    assert_eq!(renewals(), 0, "{}", kea6.log());

    assert!(
        wait_until(Duration::from_secs(10), || renewals() >= 1),
        "no RENEW by T1 + 6 s: {}",
        kea6.log()
    );
    assert!(now() >= t1 - 0.5, "renewed before T1");
    assert!(
        wait_until(Duration::from_secs(3), || secs(&v6(&lan)["lease"]["t1"])
            > t1),
        "the record's T1 did not move: {}",
        v6(&lan)
    );
    let renewed = v6(&lan);
    assert_eq!(renewed["lease"]["address"], address.as_str());
    let new_expiry = secs(&renewed["lease"]["expiry"]);
    assert!(new_expiry > expiry + 2.0, "{first}\n{renewed}");
    // The kernel keeps the address until the new expiry, past the first one.
    let left = valid_left(process.pid(), &address).expect("the address left the link") as f64;
    assert!(
        left > expiry - now() + 1.0 && (left - (new_expiry - now())).abs() < 2.0,
        "valid_lft {left} s, first lease {:.1} s, renewed {:.1} s",
        expiry - now(),
        new_expiry - now()
    );
    assert!(kea6.lease(&address).is_some());
    assert!(
        lan.journal().iter().any(|l| l["action"] == "renewed"),
        "{:?}",
        lan.journal()
    );
    // Past the first lease's expiry the address is still there, renewed again meanwhile.
    assert!(wait_until(Duration::from_secs(40), || now() > expiry + 1.0));
    assert_eq!(
        addresses(process.pid(), "-6"),
        std::slice::from_ref(&address)
    );
    assert!(secs(&v6(&lan)["lease"]["expiry"]) > now());
    let verify = lan.cli(&["verify"], "");
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
}

#[privileged]
fn rebinds_at_t2_when_the_server_that_gave_the_lease_is_gone() {
    let config = quick6(20, 30, 2, 7);
    let (lan, _kea, kea6, process) = attached(&config);
    let first = v6(&lan);
    let address = address(&lan);
    let t2 = secs(&first["lease"]["t2"]);
    // Restarted on its lease file: it knows the lease, under a new server identifier, so the
    // RENEWs (naming the old one) go unanswered.
    let kea6 = Kea6::start_again(kea6.stop(), &lan.router, &config);

    assert!(
        wait_until(Duration::from_secs(15), || secs(
            &v6(&lan)["lease"]["obtained"]
        ) > t2 - 0.5),
        "not extended by T2 + 8 s: {}\n{}",
        v6(&lan),
        kea6.log()
    );
    let rebound = v6(&lan);
    assert_eq!(rebound["lease"]["address"], address.as_str());
    assert_ne!(
        rebound["lease"]["server_id"], first["lease"]["server_id"],
        "the record still names the old server"
    );
    // Extended past T2 by a server that never gave it: a REBIND (a RENEW names the old server
    // and is dropped), which Kea logs as DHCP6_LEASE_RENEW.
    assert!(kea6.logged("DHCP6_LEASE_RENEW") >= 1, "{}", kea6.log());
    assert!(secs(&rebound["lease"]["expiry"]) > secs(&first["lease"]["expiry"]));
    let left = valid_left(process.pid(), &address).expect("the address left the link") as f64;
    assert!(
        (left - (secs(&rebound["lease"]["expiry"]) - now())).abs() < 2.0,
        "valid_lft {left} s: {rebound}"
    );
    // The failed renewals are in the journal.
    assert!(
        lan.journal()
            .iter()
            .any(|l| l["action"] == "renew" && l["outcome"] == "error"),
        "{:?}",
        lan.journal()
    );
}

#[privileged]
fn a_server_with_a_new_range_moves_the_container_to_a_new_address() {
    let config = quick6(20, 30, 2, 5);
    let (lan, _kea, kea6, process) = attached(&config);
    let old = address(&lan);
    // Another server (another identifier, no lease file) serving another range.
    drop(kea6);
    let moved = Kea6Config {
        pool: "2001:db8:77::300-2001:db8:77::3ff".into(),
        subnet: "2001:db8:77::/64".into(),
        ..config
    };
    let kea6 = Kea6::start(&lan.router, &moved);

    assert!(
        wait_until(Duration::from_secs(20), || address(&lan) != old
            && v6(&lan)["renewal"].is_null()),
        "the v6 address did not move: {}\n{}",
        v6(&lan),
        kea6.log()
    );
    let new = address(&lan);
    assert!(
        new.starts_with("2001:db8:77::3"),
        "not the new range: {new}"
    );
    assert_eq!(addresses(process.pid(), "-6"), std::slice::from_ref(&new));
    assert!(kea6.lease(&new).is_some(), "{:?}", kea6.rows());
    // The store follows: the new v6 lease; verify is content.
    assert_eq!(stored6(&lan), [format!("{new}/128")]);
    let verify = lan.cli(&["verify"], "");
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
    assert!(
        lan.journal().iter().any(|l| l["action"] == "leased"),
        "{:?}",
        lan.journal()
    );
}

/// The server the lease names, answering the RENEW at T1 but with no binding for it (it lost
/// its lease file, and serves another range now; Kea 2.2 answers with an address of the new
/// range, not NoBinding): the container moves to a new address before T2, no REBIND needed.
#[privileged]
fn a_server_without_the_binding_moves_the_container_at_t1() {
    let config = quick6(40, 60, 2, 30);
    let (lan, _kea, kea6, process) = attached_as(&config, SERVER_ID);
    let old = address(&lan);
    let first = v6(&lan);
    let t2 = secs(&first["lease"]["t2"]);
    drop(kea6);
    let moved = Kea6Config {
        pool: "2001:db8:77::300-2001:db8:77::3ff".into(),
        ..config
    };
    let kea6 = Kea6::start_as(&lan.router, &moved, SERVER_ID);

    assert!(
        wait_until(Duration::from_secs(15), || address(&lan) != old
            && v6(&lan)["renewal"].is_null()),
        "the v6 address did not move: {}\n{}",
        v6(&lan),
        kea6.log()
    );
    assert!(now() < t2, "moved only after T2");
    let new = address(&lan);
    assert!(
        new.starts_with("2001:db8:77::3"),
        "not the new range: {new}"
    );
    assert_eq!(v6(&lan)["lease"]["server_id"], first["lease"]["server_id"]);
    assert_eq!(addresses(process.pid(), "-6"), std::slice::from_ref(&new));
    assert!(kea6.lease(&new).is_some(), "{:?}", kea6.rows());
    assert_eq!(stored6(&lan), [format!("{new}/128")]);
    // Moved to the address the REPLY gave in its place: no time without one, no SOLICIT.
    let actions: Vec<Value> = lan.journal().iter().map(|l| l["action"].clone()).collect();
    assert!(
        actions.contains(&"leased".into()) && !actions.contains(&"refused".into()),
        "{actions:?}"
    );
    assert_eq!(kea6.logged("DHCP6_LEASE_ADVERT"), 0, "{}", kea6.log());
}

#[privileged]
fn expiry_unanswered_takes_the_address_off_then_solicits_again() {
    let config = quick6(6, 8, 2, 5);
    let (lan, _kea, kea6, process) = attached(&config);
    let expiry = secs(&v6(&lan)["lease"]["expiry"]);
    let dir = kea6.stop();

    assert!(
        wait_until(Duration::from_secs(15), || v6(&lan)["renewal"]["unbound"]
            == true),
        "the record does not say the lease ended: {}",
        v6(&lan)
    );
    assert!(now() >= expiry - 0.5, "ended before expiry");
    assert!(addresses(process.pid(), "-6").is_empty());
    assert!(
        secs(&v6(&lan)["lease"]["expiry"]) <= now(),
        "the record's lease lives on: {}",
        v6(&lan)
    );
    assert_eq!(stored6(&lan), [""], "the store kept the ended v6 lease");
    // `inspect` says so: the v4 lease bound (its server runs), the v6 one unbound.
    let inspect = lan.inspect(NET);
    let shown = inspect[0]["Containers"]
        .as_object()
        .and_then(|c| c.values().next())
        .map(|c| c["DhcpLease"].clone())
        .unwrap_or_default();
    assert_eq!(
        (shown["State"].as_str(), shown["V6"]["State"].as_str()),
        (Some("bound"), Some("unbound")),
        "{shown}"
    );
    assert!(
        lan.journal().iter().any(|l| l["action"] == "expired"),
        "{:?}",
        lan.journal()
    );

    // The server back: a SOLICIT gives the link an address again.
    let kea6 = Kea6::start_again(dir, &lan.router, &config);
    assert!(
        wait_until(Duration::from_secs(20), || addresses(process.pid(), "-6")
            .len()
            == 1
            && v6(&lan)["renewal"].is_null()),
        "no v6 address after the server came back: {}\n{}",
        v6(&lan),
        kea6.log()
    );
    assert!(kea6.logged("DHCP6_LEASE_ALLOC") >= 1, "{}", kea6.log());
    assert_eq!(stored6(&lan), [format!("{}/128", address(&lan))]);
}

/// After the lease ran out, the SOLICIT asks for the address it had: a server that forgot the
/// lease (a new lease file) and would give the first free address of its pool gives that one
/// back.
#[privileged]
fn after_expiry_the_solicit_asks_for_the_old_address_and_gets_it() {
    let config = quick6(6, 8, 2, 5);
    let later = Kea6Config {
        pool: "2001:db8:77::150-2001:db8:77::1ff".into(),
        ..config.clone()
    };
    let (lan, _kea, kea6, process) = attached(&later);
    let old = address(&lan);
    assert_eq!(
        old,
        "2001:db8:77::150",
        "not the pool's first: {}",
        kea6.log()
    );
    drop(kea6);
    assert!(
        wait_until(Duration::from_secs(15), || v6(&lan)["renewal"]["unbound"]
            == true),
        "the lease did not end: {}",
        v6(&lan)
    );
    // A server with a wider pool, whose first free address is another.
    let kea6 = Kea6::start(&lan.router, &config);
    assert!(
        wait_until(Duration::from_secs(20), || v6(&lan)["renewal"].is_null()),
        "no v6 lease after the server came back: {}\n{}",
        v6(&lan),
        kea6.log()
    );
    assert_eq!(address(&lan), old, "{}", kea6.log());
    assert_eq!(addresses(process.pid(), "-6"), std::slice::from_ref(&old));
}

/// The server the lease names puts another address in its place at T1 (a new range; Kea 2.2
/// answers the RENEW with an address of it), and that address is refused (the host has it on
/// the parent): the old address is no longer the container's either. It leaves the link and the
/// store, the record says nothing is held and why, and discovery waits for the next try.
#[privileged]
fn a_move_to_a_refused_address_leaves_no_address_the_server_took_back() {
    let config = quick6(40, 60, 2, 30);
    let (lan, _kea, kea6, process) = attached_as(&config, SERVER_ID);
    let old = address(&lan);
    const HOSTS: &str = "2001:db8:77::300";
    lan.host.ip(&[
        "addr",
        "add",
        &format!("{HOSTS}/64"),
        "dev",
        Lan::PARENT,
        "nodad",
    ]);
    drop(kea6);
    let moved = Kea6Config {
        pool: format!("{HOSTS}-{HOSTS}"),
        ..config
    };
    let kea6 = Kea6::start_as(&lan.router, &moved, SERVER_ID);

    assert!(
        wait_until(Duration::from_secs(15), || v6(&lan)["renewal"]["unbound"]
            == true),
        "nothing held after the refused move: {}\n{}",
        v6(&lan),
        kea6.log()
    );
    assert_eq!(address(&lan), old, "the record names the lease it lost");
    let why = v6(&lan)["renewal"]["last_error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(why.contains(HOSTS), "{why}");
    assert!(
        addresses(process.pid(), "-6").is_empty(),
        "the link keeps an address: {:?}",
        addresses(process.pid(), "-6")
    );
    assert!(
        stored6(&lan).iter().all(String::is_empty),
        "the store keeps a v6 lease: {:?}",
        stored6(&lan)
    );
    assert!(
        lan.journal().iter().any(|l| l["action"] == "refused"),
        "{:?}",
        lan.journal()
    );
}
