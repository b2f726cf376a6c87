//! Privileged tier: a renewer's discovery notes its offer on the record before its REQUEST goes
//! out, as an attach does. Against Kea with timers of seconds: a lease run out while the server
//! was down (the record `unbound`), the server back, and each keeper killed (a failpoint every
//! keeper inherits) once the server has ACKed the lease it found again, before it records it
//! in full. The record names that lease (`pending`, a renewer's), keepers go on keeping it, and
//! poststop gives it back to the server. The same for a DHCPv6 lease against Kea 6: its
//! discovery's ADVERTISE noted before its REQUEST, each keeper killed once the REPLY is read.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use oci_macvlan_tests::{
    ContainerProcess, Lan,
    dhcp_lan::{NET, create_dhcp_network, kea_config, live_leases, record},
    failpoints_binary,
    kea::{Kea, KeaConfig},
    kea6::{Kea6, Kea6Config},
    privileged,
    renewal::{addresses, attach_with, keepers, wait_until},
};
use serde_json::Value;

#[path = "dhcp6/attach.rs"]
mod attach6;

const ANN: &str = "oci-macvlan.networks";

fn dhcp(lan: &Lan) -> Value {
    record(lan, "c1")["endpoints"][0]["dhcp"].clone()
}

/// Kea with leases of 8 s; container `c1` attached by the failpoints build with `failpoint` set
/// (every keeper inherits it); then Kea stopped past expiry, until the record says the lease
/// ended. Kea's config and data dir (to start it again), and the container's process.
fn lease_ended(lan: &Lan, failpoint: &str) -> (KeaConfig, tempfile::TempDir, ContainerProcess) {
    let config = KeaConfig {
        valid_lifetime: 8,
        renew_timer: 2,
        rebind_timer: 5,
        ..kea_config()
    };
    let kea = Kea::start(&lan.router, &config);
    create_dhcp_network(lan, &[]);
    let process = ContainerProcess::start();
    attach_with(
        lan,
        &process,
        &failpoints_binary(),
        &[("OCI_MACVLAN_FAILPOINTS", failpoint)],
    );
    assert_eq!(addresses(process.pid(), "-4").len(), 1);
    let dir = kea.stop();
    assert!(
        wait_until(Duration::from_secs(15), || dhcp(lan)["renewal"]["unbound"]
            == true),
        "the lease did not end: {}",
        dhcp(lan)
    );
    (config, dir, process)
}

/// Waits until a keeper's discovery has noted its offer on the record (pending) and Kea has
/// ACKed a lease.
fn discovery_acked(lan: &Lan, kea: &Kea) {
    assert!(
        wait_until(Duration::from_secs(30), || dhcp(lan)["renewal"]["pending"]
            == true
            && kea.log().contains("DHCP4_LEASE_ALLOC ")),
        "no discovery's offer on the record, or no lease ACKed: {}\n{}",
        dhcp(lan),
        kea.log()
    );
}

#[privileged]
fn a_renewer_killed_once_its_discovery_is_acked_leaves_the_lease_for_poststop_to_release() {
    let lan = Lan::new();
    // Every keeper (each inherits the hook's environment) dies once a discovery is ACKed.
    let (config, dir, process) = lease_ended(&lan, "renew:acked=kill");

    // The server back, with leases long enough to outlast the rest of the test: a keeper
    // discovers, notes the offer, is ACKed and killed; its standby takes over (it keeps a
    // renewer's pending offer) and does the same.
    let longer = KeaConfig {
        valid_lifetime: 120,
        renew_timer: 60,
        rebind_timer: 100,
        ..config
    };
    let kea = Kea::start_again(dir, &lan.router, &longer);
    discovery_acked(&lan, &kea);
    let noted = dhcp(&lan);
    let address = noted["lease"]["address"].as_str().unwrap().to_owned();
    assert_eq!(noted["renewal"]["unbound"], false, "{noted}");
    assert_eq!(noted["renewal"]["rediscovery"], true, "{noted}");
    // The restarted server's lease (the one it had before ran 8 s).
    assert_eq!(
        kea.lease(&address).map(|row| row.valid_lifetime),
        Some(120),
        "{}",
        kea.log()
    );
    assert!(
        addresses(process.pid(), "-4").is_empty(),
        "an address the record does not name in full is on the link"
    );
    // Keepers keep a renewer's pending offer: the pair goes on, each new one dying the same way
    // (a keeper that took the offer for a dead attach's would end at once, and the pair with it).
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        wait_until(Duration::from_secs(5), || !keepers(&lan).is_empty()),
        "no keeper left for a lease being discovered again: {}",
        dhcp(&lan)
    );

    // The container gone: poststop gives the server's lease back.
    let pid = process.pid();
    process.kill();
    let state = lan.pid_bundle("c1", &[(ANN, NET)], pid, "stopped");
    lan.cli_ok(&["hook", "poststop"], &state);
    assert!(
        wait_until(Duration::from_secs(3), || kea.lease(&address).is_none()),
        "Kea still holds {address} after poststop: {}",
        kea.log()
    );
    lan.assert_no_residue(&[NET], "after poststop");
}

#[privileged]
fn a_renewer_killed_once_its_v6_discovery_is_replied_leaves_the_lease_for_poststop_to_release() {
    let lan = Lan::new();
    attach6::router_v6(&lan);
    let kea = Kea::start(&lan.router, &kea_config());
    let config = Kea6Config {
        preferred_lifetime: 6,
        valid_lifetime: 8,
        renew_timer: 2,
        rebind_timer: 5,
        ..attach6::kea6_config()
    };
    let kea6 = Kea6::start(&lan.router, &config);
    create_dhcp_network(&lan, &["--ipv6"]);
    let process = ContainerProcess::start();
    attach_with(
        &lan,
        &process,
        &failpoints_binary(),
        &[("OCI_MACVLAN_FAILPOINTS", "renew:replied6=kill")],
    );
    assert_eq!(addresses(process.pid(), "-6").len(), 1, "{}", kea6.log());
    let v6 = || dhcp(&lan)["v6"].clone();

    // Kea 6 gone past the valid lifetime: the v6 lease ends.
    let dir = kea6.stop();
    assert!(
        wait_until(Duration::from_secs(15), || v6()["renewal"]["unbound"]
            == true),
        "the v6 lease did not end: {}",
        v6()
    );

    // Back, with leases that outlast the test: a keeper solicits, notes the ADVERTISE's lease,
    // is given it and killed; its standby keeps the renewer's pending lease and does the same.
    // (Another pool: Kea 6 2.2 gives the client's ended lease back with its old lifetimes.)
    let longer = Kea6Config {
        pool: "2001:db8:77::200-2001:db8:77::2ff".into(),
        preferred_lifetime: 100,
        valid_lifetime: 120,
        renew_timer: 60,
        rebind_timer: 100,
        ..config
    };
    let kea6 = Kea6::start_again(dir, &lan.router, &longer);
    assert!(
        wait_until(Duration::from_secs(30), || v6()["renewal"]["pending"]
            == true
            && v6()["lease"]["address"]
                .as_str()
                .is_some_and(|a| kea6.lease(a).is_some())),
        "no discovery's lease on the record, or none given: {}\n{}",
        v6(),
        kea6.log()
    );
    let noted = v6();
    let address = noted["lease"]["address"].as_str().unwrap().to_owned();
    assert!(
        address.starts_with("2001:db8:77::2"),
        "not the new pool's: {noted}"
    );
    assert_eq!(noted["renewal"]["unbound"], false, "{noted}");
    assert_eq!(noted["renewal"]["rediscovery"], true, "{noted}");
    assert_eq!(
        kea6.lease(&address).map(|row| row.valid_lifetime),
        Some(120),
        "{noted}: {:?}",
        kea6.rows()
    );
    assert!(
        addresses(process.pid(), "-6").is_empty(),
        "an address the record does not name in full is on the link"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        wait_until(Duration::from_secs(5), || !keepers(&lan).is_empty()),
        "no keeper left for a v6 lease being discovered again: {}",
        dhcp(&lan)
    );

    // The hook run again for the live container keeps no pending v6 lease as it is: it asks
    // again for both. A run that then fails gives back only what it took: the v4 lease the
    // container held, bound, stays at the server, in the store and on the link.
    let state = lan.pid_bundle("c1", &[(ANN, NET)], process.pid(), "creating");
    let v4 = dhcp(&lan)["lease"]["address"].as_str().unwrap().to_owned();
    let out = lan.cli_with(
        &failpoints_binary(),
        &[("OCI_MACVLAN_FAILPOINTS", "attach:net:addressed=error")],
        &["hook"],
        state.as_bytes(),
    );
    assert_ne!(
        out.code, 0,
        "the failpoint did not fail the run: {}",
        out.stderr
    );
    assert_eq!(
        live_leases(&kea),
        std::slice::from_ref(&v4),
        "Kea lost the held lease"
    );
    assert_eq!(addresses(process.pid(), "-4"), std::slice::from_ref(&v4));
    assert_eq!(lan.leased(NET), 1, "the store lost the held lease");
    // The run that succeeds: the pending v6 lease is bound and on the link.
    lan.cli_ok(&["hook"], &state);
    let again = v6();
    assert_eq!(again["renewal"]["pending"], Value::Null, "{again}");
    assert_eq!(again["lease"]["address"], address.as_str(), "{again}");
    assert_eq!(
        addresses(process.pid(), "-6"),
        std::slice::from_ref(&address),
        "{again}"
    );

    // The container gone: poststop gives Kea 6 its lease back.
    let pid = process.pid();
    process.kill();
    let state = lan.pid_bundle("c1", &[(ANN, NET)], pid, "stopped");
    lan.cli_ok(&["hook", "poststop"], &state);
    assert!(
        attach6::released6(&kea6, &address),
        "Kea 6 still holds {address} after poststop: {:?}",
        kea6.rows()
    );
    lan.assert_no_residue(&[NET], "after poststop");
}

/// A keeper in the middle of its act (a discovery ACKed, the lease not yet applied: paused
/// there a second by a failpoint) when its state dir is removed with all it held (an
/// operator's cleanup, a test's temporary dir): it opens no store, writes no record, lock or
/// journal line that makes it again. Before, its lease store's open made the state dir and a
/// new store again.
#[privileged]
fn a_renewer_mid_act_when_its_state_dir_is_removed_makes_it_not_again() {
    let lan = Lan::new();
    let (config, dir, process) = lease_ended(&lan, "renew:acked=pause");
    let kea = Kea::start_again(dir, &lan.router, &config);
    // The offer noted and ACKed: the keeper now waits a second before it applies the lease.
    discovery_acked(&lan, &kea);
    // The state dir alone: the network's definition is still there for the act to load.
    let state = lan.state_dir();
    std::fs::remove_dir_all(&state).unwrap();
    // Past the pause and the act's end (a failed act is journaled, then the keeper retries or
    // ends): nothing made again.
    std::thread::sleep(Duration::from_secs(3));
    assert!(!state.exists(), "{} was made again", state.display());
    process.kill();
}
