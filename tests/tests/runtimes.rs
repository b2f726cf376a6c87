//! Real-runtime tier: for runc and crun, two containers whose config.json lists the hook (one at
//! createRuntime, one at the deprecated prestart) get their macvlan legs, reach each other and the
//! router; after they stop nothing is leased, the parent is as it was, and the host namespace
//! never saw a link of ours. And two hosts on one LAN, each with its own runc and state, reach
//! each other's containers.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use oci_macvlan_tests::{Bundle, Container, Lan, Monitor, Runtime, privileged};

const NET: &str = "lan77";
const ANN: &str = "oci-macvlan.networks";

fn address_of(container: &Container) -> String {
    let (ok, out) = container.exec(&["ip", "-o", "-4", "addr", "show", "dev", "eth0"]);
    assert!(ok, "ip addr in {}: {out}", container.id);
    let field = out
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .unwrap();
    field.to_owned()
}

fn ping(from: &Container, to: &str) {
    let (ok, out) = from.exec(&["ping", "-c", "1", "-W", "2", to]);
    assert!(ok, "{} cannot ping {to}: {out}", from.id);
}

fn two_containers_share_the_lan(runtime: Runtime) {
    let name = runtime.name();
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    let parent_before = lan.parent_view();
    let monitor = Monitor::start(&lan, &["link"]);

    let id_a = oci_macvlan_tests::unique("omt-a-");
    let id_b = oci_macvlan_tests::unique("omt-b-");
    let bundle_a = Bundle::new(&lan, &id_a, &[(ANN, NET)]);
    let bundle_b = Bundle::with_stage(
        &lan,
        &id_b,
        &[(ANN, NET), ("oci-macvlan.ip", "192.168.77.50")],
        "prestart",
    );
    let a = Container::start(&lan, runtime, &id_a, &bundle_a)
        .unwrap_or_else(|e| panic!("{name} run {id_a}: {e}"));
    let b = Container::start(&lan, runtime, &id_b, &bundle_b)
        .unwrap_or_else(|e| panic!("{name} run {id_b}: {e}"));

    assert_eq!(address_of(&a), "192.168.77.2/24");
    assert_eq!(address_of(&b), "192.168.77.50/24");
    let (ok, routes) = a.exec(&["ip", "route"]);
    assert!(
        ok && routes.contains("default via 192.168.77.1 dev eth0"),
        "{routes}"
    );
    ping(&a, "192.168.77.50");
    ping(&b, "192.168.77.2");
    ping(&a, Lan::GATEWAY);
    ping(&b, Lan::GATEWAY);
    assert_eq!(lan.leased(NET), 2);

    a.stop().unwrap();
    b.stop().unwrap();
    assert_eq!(lan.leased(NET), 0, "poststop left leases");
    assert!(
        lan.records().is_empty(),
        "poststop left records: {:?}",
        lan.records()
    );
    // The kernel destroys a dead container's namespace, and the macvlans in it, from a work
    // queue: the parent's promiscuity count drops back shortly after the runtime returns.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while lan.parent_view() != parent_before && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(lan.parent_view(), parent_before, "the parent was modified");

    let events = monitor.events();
    let ours: Vec<&String> = events.iter().filter(|e| !e.contains(Lan::PARENT)).collect();
    assert!(
        ours.is_empty(),
        "links appeared in the host namespace: {ours:#?}"
    );
    let host_links = lan.host_link_names();
    assert_eq!(host_links, ["lo", Lan::PARENT]);
}

#[privileged]
fn two_runc_containers_share_the_lan() {
    two_containers_share_the_lan(Runtime::Runc);
}

#[privileged]
fn two_crun_containers_share_the_lan() {
    two_containers_share_the_lan(Runtime::Crun);
}

#[privileged]
fn two_hosts_on_one_lan_each_with_runc_and_its_own_state() {
    // One segment: host A, host B and the router, each on a port of the segment's bridge. The
    // same network is defined on both hosts, with disjoint ip-ranges, as two Docker hosts would.
    let host_a = Lan::new();
    let host_b = host_a.add_host();
    for (host, range) in [
        (&host_a, "192.168.77.64/26"),
        (&host_b, "192.168.77.128/26"),
    ] {
        host.create_network(NET, &["--ip-range", range]);
    }
    let id_a = oci_macvlan_tests::unique("omt-a-");
    let id_b = oci_macvlan_tests::unique("omt-b-");
    let a = Container::start(
        &host_a,
        Runtime::Runc,
        &id_a,
        &Bundle::new(&host_a, &id_a, &[(ANN, NET)]),
    )
    .unwrap_or_else(|e| panic!("runc run on host A: {e}"));
    let b = Container::start(
        &host_b,
        Runtime::Runc,
        &id_b,
        &Bundle::new(&host_b, &id_b, &[(ANN, NET)]),
    )
    .unwrap_or_else(|e| panic!("runc run on host B: {e}"));

    assert_eq!(address_of(&a), "192.168.77.64/24");
    assert_eq!(address_of(&b), "192.168.77.128/24");
    ping(&a, "192.168.77.128");
    ping(&b, "192.168.77.64");
    ping(&a, Lan::GATEWAY);
    ping(&b, Lan::GATEWAY);

    a.stop().unwrap();
    b.stop().unwrap();
    assert_eq!(host_a.leased(NET), 0);
    assert_eq!(host_b.leased(NET), 0);
}
