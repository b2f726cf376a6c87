//! Privileged tier: 20 containers starting at once on one DHCP network (issue 27's test list),
//! 20 hook processes let go together against Kea: 20 distinct leases at the server, each
//! container's address the lease its record holds and the lease Kea holds for its client
//! identifier and MAC, no transaction crossed (every transaction Kea saw is one client's, every
//! address Kea allocated went to one client), all within the default `dhcp_timeout`; then 20
//! poststops at once, and every lease released.

#![allow(clippy::unwrap_used)]

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use oci_macvlan_tests::{
    Lan, TestNetns,
    dhcp_lan::{NET, create_dhcp_network, kea_config, live_leases, record, state_with_hostname},
    kea::Kea,
    privileged,
};

const CONTAINERS: usize = 20;
/// The network's default `dhcp_timeout` (none is given at `network create`).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The text between `start` and the next `end` after it in `line`.
fn between<'l>(line: &'l str, start: &str, end: &str) -> Option<&'l str> {
    let from = line.find(start)? + start.len();
    let len = line[from..].find(end)?;
    Some(&line[from..from + len])
}

#[privileged]
fn twenty_containers_at_once_get_twenty_leases_and_give_them_back() {
    let lan = Lan::new();
    let kea = Kea::start(&lan.router, &kea_config());
    create_dhcp_network(&lan, &[]);
    let containers: Vec<TestNetns> = (0..CONTAINERS)
        .map(|_| TestNetns::new("omt-many-"))
        .collect();
    let id = |i: usize| format!("many{i}");
    let starting: Vec<String> = containers
        .iter()
        .enumerate()
        .map(|(i, ns)| state_with_hostname(&lan, &id(i), ns, "creating", &id(i)))
        .collect();

    let start = Instant::now();
    let outcomes = lan.cli_together(&["hook"], &starting);
    let took = start.elapsed();
    eprintln!("{CONTAINERS} DHCP attaches at once took {took:?}");
    for (i, out) in outcomes.iter().enumerate() {
        assert_eq!(out.code, 0, "{}: {}", id(i), out.stderr);
    }
    assert!(
        took < DEFAULT_TIMEOUT,
        "{CONTAINERS} attaches took {took:?}, past the default dhcp_timeout"
    );

    // Each container: one address, its record's lease, Kea's lease for its MAC and client id.
    let mut addresses = HashSet::new();
    let mut client_of: HashMap<String, String> = HashMap::new();
    for (i, ns) in containers.iter().enumerate() {
        let on_link = ns.addresses("eth0");
        assert_eq!(on_link.len(), 1, "{}: {on_link:?}", id(i));
        let address = on_link[0].split_once('/').unwrap().0.to_owned();
        assert!(
            addresses.insert(address.clone()),
            "{address} is on two containers"
        );
        let dhcp = &record(&lan, &id(i))["endpoints"][0]["dhcp"];
        assert_eq!(dhcp["lease"]["address"], address.as_str(), "{}", id(i));
        let lease = kea
            .lease(&address)
            .unwrap_or_else(|| panic!("Kea holds no lease of {address} ({})", id(i)));
        let mac = ns.link("eth0").unwrap()["address"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(lease.hwaddr, mac, "{}", id(i));
        assert_eq!(lease.client_id, dhcp["client_id"].as_str().unwrap());
        assert_eq!(lease.hostname, id(i));
        client_of.insert(lease.client_id.clone(), address);
    }
    assert_eq!(
        client_of.len(),
        CONTAINERS,
        "client ids shared: {client_of:?}"
    );
    let mut live = live_leases(&kea);
    live.sort();
    let mut ours: Vec<String> = addresses.iter().cloned().collect();
    ours.sort();
    assert_eq!(live, ours, "Kea's leases are not the containers'");

    // No crossed transaction: each transaction id Kea saw came from one client, and each
    // address Kea allocated went to the one client whose container holds it.
    let mut tids: HashMap<String, String> = HashMap::new();
    for line in kea.packets_received() {
        let (Some(cid), Some(tid)) = (between(&line, "cid=[", "]"), between(&line, "tid=", ":"))
        else {
            panic!("a packet line without client id or tid: {line}");
        };
        let first = tids.entry(tid.to_owned()).or_insert_with(|| cid.to_owned());
        assert_eq!(first, cid, "transaction {tid} came from two clients");
    }
    let allocated: Vec<String> = kea
        .log()
        .lines()
        .filter(|l| l.contains("DHCP4_LEASE_ALLOC "))
        .map(str::to_owned)
        .collect();
    assert_eq!(allocated.len(), CONTAINERS, "{allocated:#?}");
    for line in &allocated {
        let cid = between(line, "cid=[", "]").unwrap();
        let address = between(line, ": lease ", " has been allocated").unwrap();
        assert_eq!(
            client_of.get(cid).map(String::as_str),
            Some(address),
            "Kea allocated {address} to {cid}, whose container does not hold it"
        );
    }
    let verify = lan.cli(&["verify"], "");
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);

    // 20 poststops at once: every lease released, nothing of ours left.
    let stopping: Vec<String> = containers
        .iter()
        .enumerate()
        .map(|(i, ns)| state_with_hostname(&lan, &id(i), ns, "stopped", &id(i)))
        .collect();
    let start = Instant::now();
    let outcomes = lan.cli_together(&["hook"], &stopping);
    eprintln!("{CONTAINERS} poststops at once took {:?}", start.elapsed());
    for (i, out) in outcomes.iter().enumerate() {
        assert_eq!(out.code, 0, "{}: {}", id(i), out.stderr);
    }
    let until = Instant::now() + Duration::from_secs(5);
    while !live_leases(&kea).is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(live_leases(&kea), Vec::<String>::new(), "not released");
    assert_eq!(kea.received("DHCPRELEASE"), CONTAINERS);
    lan.assert_no_residue(&[NET], "after the poststops");
}
