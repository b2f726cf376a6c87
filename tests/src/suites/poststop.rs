//! Poststop is idempotent and needs no live state. Whatever state it finds — run twice, eight
//! at once, without an attach, after a half-done attach, with the namespace, the process, the
//! parent, the bundle or the network definition gone, with no pid, with a state that has nothing
//! but an id — it exits 0 and leaves nothing. Every invocation runs with an empty environment
//! (as podman runs hooks): the directories come from the hook's args. Each case takes the
//! network's driver: `tests/tests/poststop.rs` runs them for macvlan, the VM tier for ipvlan.

use crate::{ContainerProcess, Driver, Lan, TestNetns, failpoints_binary};

const NET: &str = "lan77";
const ANN: &str = "oci-macvlan.networks";

fn poststop(lan: &Lan, state: &str, context: &str) {
    let out = lan.cli(&["hook", "poststop"], state);
    assert_eq!(out.code, 0, "{context}: {}", out.stderr);
    assert!(out.stderr.is_empty(), "{context}: said {}", out.stderr);
    let last = lan.journal().pop().unwrap();
    assert_eq!(
        (&last["action"], &last["outcome"]),
        (&"detach".into(), &"ok".into()),
        "{context}: {last}"
    );
}

fn attached(lan: &Lan, id: &str, ns: &TestNetns) -> (String, String) {
    let creating = lan.fake_bundle(id, &[(ANN, NET)], &ns.path(), "creating");
    lan.cli_ok(&["hook"], &creating);
    assert_eq!(ns.addresses("eth0").len(), 1, "{id}: attached");
    let stopped = lan.fake_bundle(id, &[(ANN, NET)], &ns.path(), "stopped");
    (creating, stopped)
}

fn only_lo(ns: &TestNetns) -> bool {
    ns.links().len() == 1
}

/// Poststop in every state it may find (see the module's doc).
pub fn exits_0_and_leaves_nothing_whatever_it_finds(driver: Driver) {
    let lan = Lan::new();
    lan.create_network(NET, driver.create);

    // Twice.
    let ns = TestNetns::new("omt-ctr-");
    let (_, stopped) = attached(&lan, "twice", &ns);
    poststop(&lan, &stopped, "first poststop");
    assert!(
        only_lo(&ns),
        "poststop left the link in a persistent namespace"
    );
    poststop(&lan, &stopped, "second poststop");
    lan.assert_no_residue(&[NET], "twice");

    // Eight at once.
    let (_, stopped) = attached(&lan, "eight", &ns);
    for out in lan.cli_together(&["hook", "poststop"], &vec![stopped; 8]) {
        assert_eq!(out.code, 0, "concurrent poststop: {}", out.stderr);
    }
    assert!(only_lo(&ns));
    lan.assert_no_residue(&[NET], "eight at once");

    // Without any attach, by id only, with and without the stage argument.
    poststop(
        &lan,
        r#"{"ociVersion":"1.0.2","id":"never","status":"stopped"}"#,
        "never attached",
    );
    let out = lan.cli(&["hook"], r#"{"id":"never2","status":"stopped"}"#);
    assert_eq!(out.code, 0, "by status: {}", out.stderr);
    lan.assert_no_residue(&[NET], "never attached");

    // After a half-done attach: the hook died holding a lease, its link created.
    let half = TestNetns::new("omt-ctr-");
    let creating = lan.fake_bundle("half", &[(ANN, NET)], &half.path(), "creating");
    let out = lan.cli_with(
        &failpoints_binary(),
        &[("OCI_MACVLAN_FAILPOINTS", "attach:net:created=kill")],
        &["hook"],
        creating.as_bytes(),
    );
    assert_eq!(out.code, -1, "the failpoint did not kill: {}", out.stderr);
    assert_eq!(lan.leased(NET), 1);
    let stopped = lan.fake_bundle("half", &[(ANN, NET)], &half.path(), "stopped");
    poststop(&lan, &stopped, "half attached");
    assert!(only_lo(&half));
    lan.assert_no_residue(&[NET], "half attached");

    // The namespace gone.
    let gone = TestNetns::new("omt-ctr-");
    let (_, stopped) = attached(&lan, "nsgone", &gone);
    drop(gone);
    poststop(&lan, &stopped, "namespace gone");
    lan.assert_no_residue(&[NET], "namespace gone");

    // The process gone (namespace found through the pid), state with pid 0, as podman passes it.
    let process = ContainerProcess::start();
    let creating = lan.pid_bundle("pidgone", &[(ANN, NET)], process.pid(), "creating");
    lan.cli_ok(&["hook"], &creating);
    drop(process);
    let stopped = lan.pid_bundle("pidgone", &[(ANN, NET)], 0, "stopped");
    poststop(&lan, &stopped, "process gone, pid 0");
    lan.assert_no_residue(&[NET], "process gone");

    // The bundle gone, and the network definition gone (removed by hand).
    let (_, stopped) = attached(&lan, "nobundle", &ns);
    std::fs::remove_dir_all(lan.tmp().join("bundle-nobundle")).unwrap();
    let definition = lan.config_dir().join(format!("networks/{NET}.json"));
    let saved = std::fs::read(&definition).unwrap();
    std::fs::remove_file(&definition).unwrap();
    poststop(&lan, &stopped, "bundle and definition gone");
    assert!(only_lo(&ns));
    std::fs::write(&definition, saved).unwrap();
    lan.assert_no_residue(&[NET], "bundle and definition gone");

    // An empty state dir (after a reboot, /run is empty): nothing to do, nothing created.
    let fresh = Lan::new();
    poststop(
        &fresh,
        r#"{"id":"boot","status":"stopped"}"#,
        "empty state dir",
    );
    assert!(fresh.records().is_empty() && fresh.locks().is_empty());
}

/// Poststop, twice, once the parent is gone (and the kernel took the container's link with it).
pub fn after_the_parent_is_gone(driver: Driver) {
    let lan = Lan::new();
    lan.create_network(NET, driver.create);
    let ns = TestNetns::new("omt-ctr-");
    let (_, stopped) = attached(&lan, "noparent", &ns);
    // The kernel deletes a parent's macvlans and ipvlans with it.
    lan.host.ip(&["link", "del", Lan::PARENT]);
    poststop(&lan, &stopped, "parent gone");
    poststop(&lan, &stopped, "parent gone, again");
    assert!(only_lo(&ns));
    assert_eq!(lan.leased(NET), 0);
    assert!(lan.records().is_empty() && lan.locks().is_empty());
    assert_eq!(lan.host_link_names(), ["lo"]);
    let verify = lan.cli(&["verify"], "");
    assert_eq!(verify.code, 0, "verify: {}{}", verify.stdout, verify.stderr);
}

/// A container restarted at once (poststop, then createRuntime with the same id) gets the same
/// MAC while the kernel may still be tearing down the old namespace's macvlan holding it: the
/// attach waits for the MAC instead of failing.
pub fn a_container_restarted_at_once_gets_its_mac_back(driver: Driver) {
    assert!(
        driver.own_mac,
        "{}: its links have their parent's MAC",
        driver.name
    );
    let lan = Lan::new();
    lan.create_network(NET, driver.create);
    let mut macs = Vec::new();
    for round in 0..10 {
        let ns = TestNetns::new("omt-ctr-");
        let (_, stopped) = attached(&lan, "restarted", &ns);
        macs.push(ns.link("eth0").unwrap()["address"].clone());
        drop(ns); // the container exits; the kernel frees its macvlan in the background
        poststop(&lan, &stopped, &format!("round {round}"));
    }
    assert!(
        macs.windows(2).all(|w| w[0] == w[1]),
        "MAC changed: {macs:?}"
    );
    lan.assert_no_residue(&[NET], "restarts");
}
