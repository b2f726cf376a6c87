//! Privileged tier: 20 containers starting at once on one DHCP network (issue 27's test list):
//! 20 container processes, 20 hook processes let go together: 20 distinct leases at the
//! server, each container's address the lease its record holds and the lease the server holds
//! for its client identifier and MAC, all within the default `dhcp_timeout`, and a keeper pair
//! per container; then the containers killed, 20 poststops at once, every lease released and
//! every keeper gone. Against Kea, no transaction crossed (every transaction Kea saw is one
//! client's, every address it allocated went to the client holding it); against dnsmasq
//! answering every client by broadcast, each container's socket sees the others' OFFERs and
//! ACKs and still takes only its own.

#![allow(clippy::unwrap_used)]

use std::{
    collections::{HashMap, HashSet},
    process::Command,
    time::{Duration, Instant},
};

use oci_macvlan_tests::{
    ContainerProcess, Lan,
    dhcp_lan::{NET, create_dhcp_network, kea_config, keepers, live_leases, record, set_hostname},
    dnsmasq::Dnsmasq,
    kea::Kea,
    privileged,
    renewal::wait_until,
};
use serde_json::Value;

const CONTAINERS: usize = 20;
const ANN: &str = "oci-macvlan.networks";
/// The network's default `dhcp_timeout` (none is given at `network create`).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// One container as the server should hold it: address, MAC, client id, hostname.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Held {
    address: String,
    mac: String,
    client_id: String,
    hostname: String,
}

/// The text between `start` and the next `end` after it in `line`.
fn between<'l>(line: &'l str, start: &str, end: &str) -> Option<&'l str> {
    let from = line.find(start)? + start.len();
    let len = line[from..].find(end)?;
    Some(&line[from..from + len])
}

/// The MAC and the IPv4 addresses of eth0 in the namespace of process `pid`.
fn eth0(pid: u32) -> (String, Vec<String>) {
    let out = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n"])
        .args(["ip", "-j", "addr", "show", "dev", "eth0"])
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
    let mac = link["address"].as_str().unwrap_or_default().to_owned();
    (mac, addresses)
}

fn id(i: usize) -> String {
    format!("many{i}")
}

/// Starts 20 containers and lets their 20 hooks go together; checks each attach succeeded
/// within the default timeout, each container's one address is its record's lease and no
/// other container's, and each has its keeper pair. What each container holds, in order.
fn attach_twenty(lan: &Lan, server: &str) -> (Vec<ContainerProcess>, Vec<Held>) {
    create_dhcp_network(lan, &[]);
    let containers: Vec<ContainerProcess> =
        (0..CONTAINERS).map(|_| ContainerProcess::start()).collect();
    let starting: Vec<String> = containers
        .iter()
        .enumerate()
        .map(|(i, process)| {
            let state = lan.pid_bundle(&id(i), &[(ANN, NET)], process.pid(), "creating");
            set_hostname(lan, &id(i), &id(i));
            state
        })
        .collect();
    let start = Instant::now();
    let outcomes = lan.cli_together(&["hook"], &starting);
    let took = start.elapsed();
    eprintln!("{CONTAINERS} DHCP attaches at once ({server}) took {took:?}");
    for (i, out) in outcomes.iter().enumerate() {
        assert_eq!(out.code, 0, "{}: {}", id(i), out.stderr);
    }
    assert!(
        took < DEFAULT_TIMEOUT,
        "{CONTAINERS} attaches took {took:?}, past the default dhcp_timeout"
    );
    let mut seen = HashSet::new();
    let mut held = Vec::new();
    for (i, process) in containers.iter().enumerate() {
        let (mac, on_link) = eth0(process.pid());
        assert_eq!(on_link.len(), 1, "{}: {on_link:?}", id(i));
        let address = on_link[0].clone();
        assert!(
            seen.insert(address.clone()),
            "{address} is on two containers"
        );
        let dhcp = &record(lan, &id(i))["endpoints"][0]["dhcp"];
        assert_eq!(dhcp["lease"]["address"], address.as_str(), "{}", id(i));
        held.push(Held {
            address,
            mac,
            client_id: dhcp["client_id"].as_str().unwrap().to_owned(),
            hostname: id(i),
        });
    }
    let clients: HashSet<&String> = held.iter().map(|h| &h.client_id).collect();
    assert_eq!(clients.len(), CONTAINERS, "client ids shared: {held:#?}");
    let verify = lan.cli(&["verify"], "");
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
    assert!(
        wait_until(Duration::from_secs(10), || keepers(lan, None).len()
            == 2 * CONTAINERS),
        "not a keeper pair per container: {} keepers",
        keepers(lan, None).len()
    );
    (containers, held)
}

/// Kills the containers and runs their 20 poststops together; every keeper ends.
fn stop_twenty(lan: &Lan, containers: Vec<ContainerProcess>) {
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
    assert!(
        wait_until(Duration::from_secs(5), || keepers(lan, None).is_empty()),
        "keepers outlived their containers: {:?}",
        keepers(lan, None)
    );
}

#[privileged]
fn twenty_containers_at_once_get_twenty_leases_and_give_them_back() {
    let lan = Lan::new();
    let kea = Kea::start(&lan.router, &kea_config());
    let (containers, held) = attach_twenty(&lan, "Kea");

    // Kea's lease of each address: the container's MAC, client id and hostname.
    let mut client_of: HashMap<String, String> = HashMap::new();
    for h in &held {
        let lease = kea
            .lease(&h.address)
            .unwrap_or_else(|| panic!("Kea holds no lease of {}", h.address));
        let theirs = Held {
            address: lease.address,
            mac: lease.hwaddr,
            client_id: lease.client_id,
            // Kea keeps option 81's name, completed with its (empty) suffix.
            hostname: lease.hostname.trim_end_matches('.').to_owned(),
        };
        assert_eq!(&theirs, h);
        client_of.insert(h.client_id.clone(), h.address.clone());
    }
    let mut live = live_leases(&kea);
    live.sort();
    let mut ours: Vec<String> = held.iter().map(|h| h.address.clone()).collect();
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

    stop_twenty(&lan, containers);
    let until = Instant::now() + Duration::from_secs(5);
    while !live_leases(&kea).is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(live_leases(&kea), Vec::<String>::new(), "not released");
    assert_eq!(kea.received("DHCPRELEASE"), CONTAINERS);
    lan.assert_no_residue(&[NET], "after the poststops");
}

#[privileged]
fn twenty_containers_at_once_take_only_their_own_of_broadcast_answers() {
    let lan = Lan::new();
    let dnsmasq = Dnsmasq::start_with(
        &lan.router,
        "rtr",
        "192.168.77.100",
        "192.168.77.150",
        Lan::GATEWAY,
        "2m",
        // No ping before each OFFER: dnsmasq waits up to 3 s for an echo per new address,
        // one client at a time, and 20 new clients would outlast the 10 s timeout.
        &["--dhcp-broadcast", "--no-ping"],
    );
    let (containers, held) = attach_twenty(&lan, "dnsmasq, broadcast answers");
    let leases = dnsmasq.wait_for(|l| l.len() == CONTAINERS);
    for h in &held {
        let lease = leases
            .iter()
            .find(|l| l.address == h.address)
            .unwrap_or_else(|| panic!("dnsmasq holds no lease of {}: {leases:#?}", h.address));
        assert_eq!(lease.mac, h.mac, "{}", h.hostname);
        assert_eq!(lease.client_id, h.client_id, "{}", h.hostname);
        assert_eq!(lease.hostname, h.hostname);
    }
    assert_eq!(leases.len(), CONTAINERS, "{leases:#?}");
    let log = dnsmasq.log();
    // An address offered to two clients at once goes to the first to ask: the other's
    // REQUEST is NAKed, and it discovers again.
    let naks = log.lines().filter(|l| l.contains("DHCPNAK")).count();
    eprintln!("dnsmasq NAKed {naks} requests");
    let broadcast = log
        .lines()
        .filter(|l| l.contains("broadcast response"))
        .count();
    assert!(
        broadcast >= 2 * CONTAINERS,
        "dnsmasq broadcast {broadcast} answers, not every OFFER and ACK: {log}"
    );

    stop_twenty(&lan, containers);
    let left = dnsmasq.wait_for(<[_]>::is_empty);
    assert!(left.is_empty(), "not released: {left:#?}");
    lan.assert_no_residue(&[NET], "after the poststops");
}
