//! Privileged tier: 20 containers starting at once on one DHCP network (issue 27's test list):
//! 20 container processes, 20 hook processes let go together against Kea: 20 distinct leases
//! at the server, each container's address the lease its record holds and the lease Kea holds
//! for its client identifier and MAC, no transaction crossed (every transaction Kea saw is one
//! client's, every address Kea allocated went to one client), all within the default
//! `dhcp_timeout`, and a keeper pair per container; then the containers killed, 20 poststops
//! at once, every lease released and every keeper gone.

#![allow(clippy::unwrap_used)]

use std::{
    collections::{HashMap, HashSet},
    process::Command,
    time::{Duration, Instant},
};

use oci_macvlan_tests::{
    ContainerProcess, Lan,
    dhcp_lan::{NET, create_dhcp_network, kea_config, keepers, live_leases, record, set_hostname},
    kea::Kea,
    privileged,
};
use serde_json::Value;

const CONTAINERS: usize = 20;
const ANN: &str = "oci-macvlan.networks";
/// The network's default `dhcp_timeout` (none is given at `network create`).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The text between `start` and the next `end` after it in `line`.
fn between<'l>(line: &'l str, start: &str, end: &str) -> Option<&'l str> {
    let from = line.find(start)? + start.len();
    let len = line[from..].find(end)?;
    Some(&line[from..from + len])
}

/// The MAC and the IPv4 addresses of eth0 in the namespace of process `pid`.
fn eth0(pid: u32) -> (String, Vec<String>) {
    let out = Command::new("nsenter")
        .args([
            "-t",
            &pid.to_string(),
            "-n",
            "ip",
            "-j",
            "addr",
            "show",
            "dev",
            "eth0",
        ])
        .output()
        .unwrap();
    let links: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let link = &links[0];
    let addresses = link["addr_info"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["family"] == "inet")
        .filter_map(|a| a["local"].as_str().map(str::to_owned))
        .collect();
    (
        link["address"].as_str().unwrap_or_default().to_owned(),
        addresses,
    )
}

fn wait_until(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    done()
}

#[privileged]
fn twenty_containers_at_once_get_twenty_leases_and_give_them_back() {
    let lan = Lan::new();
    let kea = Kea::start(&lan.router, &kea_config());
    create_dhcp_network(&lan, &[]);
    let containers: Vec<ContainerProcess> =
        (0..CONTAINERS).map(|_| ContainerProcess::start()).collect();
    let id = |i: usize| format!("many{i}");
    let starting: Vec<String> = containers
        .iter()
        .enumerate()
        .map(|(i, process)| {
            let state = lan.pid_bundle(&id(i), &[(ANN, NET)], process.pid(), "creating");
            set_hostname(&lan, &id(i), &id(i));
            state
        })
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
    for (i, process) in containers.iter().enumerate() {
        let (mac, on_link) = eth0(process.pid());
        assert_eq!(on_link.len(), 1, "{}: {on_link:?}", id(i));
        let address = on_link[0].clone();
        assert!(
            addresses.insert(address.clone()),
            "{address} is on two containers"
        );
        let dhcp = &record(&lan, &id(i))["endpoints"][0]["dhcp"];
        assert_eq!(dhcp["lease"]["address"], address.as_str(), "{}", id(i));
        let lease = kea
            .lease(&address)
            .unwrap_or_else(|| panic!("Kea holds no lease of {address} ({})", id(i)));
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
    assert!(
        wait_until(Duration::from_secs(10), || keepers(&lan, None).len()
            == 2 * CONTAINERS),
        "not a keeper pair per container: {} keepers",
        keepers(&lan, None).len()
    );

    // The containers end; 20 poststops at once: every lease released, every keeper gone,
    // nothing of ours left.
    for process in containers {
        process.kill();
    }
    let stopping: Vec<String> = (0..CONTAINERS)
        .map(|i| {
            format!(
                r#"{{"ociVersion":"1.0.2","id":"{}","status":"stopped"}}"#,
                id(i)
            )
        })
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
    assert!(
        wait_until(Duration::from_secs(5), || keepers(&lan, None).is_empty()),
        "keepers outlived their containers: {:?}",
        keepers(&lan, None)
    );
    lan.assert_no_residue(&[NET], "after the poststops");
}
