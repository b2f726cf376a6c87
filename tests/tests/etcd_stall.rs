//! Privileged tier: the hook, `verify` and `gc` against etcd endpoints that stall, flood or
//! cannot be reached. Fake members listen on the simulated host's own loopback (a thread of the
//! test opens their sockets inside its namespace), a real member is on the LAN. A member listed
//! first that answers a header line at a time, dribbles its body, floods headers or is powered
//! off leaves the real one its turn: the attach succeeds within `etcd_timeout` (and a generous
//! slack: a correctness bound, not a timing). Each endpoint that fails is named with its own
//! cause, and in `gc` and `verify` a silent cluster is named while the healthy one is checked.

#![allow(clippy::unwrap_used)]

use std::{
    io::{BufRead, BufReader, Write},
    net::{TcpListener, TcpStream},
    thread,
    time::{Duration, Instant},
};

use oci_macvlan_tests::etcd_network::{NET, attach, detach, etcd_leases, on};
use oci_macvlan_tests::{Etcd, Lan, TestNetns, privileged};

/// The networks' `etcd_timeout` (the default).
const TIMEOUT: Duration = Duration::from_secs(2);
/// What a command may take past it.
const SLACK: Duration = Duration::from_secs(2);
/// How long a fake member keeps misbehaving: past every bound here.
const STALL: Duration = Duration::from_secs(15);

/// A fake member on `lan`'s host loopback: it reads each request and does `script`; its URL.
fn fake_member(lan: &Lan, script: fn(&mut TcpStream)) -> String {
    let path = lan.host.path();
    // The socket is the namespace's its thread was in when it was made.
    let listener = thread::spawn(move || {
        let ns = std::fs::File::open(path).unwrap();
        nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        TcpListener::bind("127.0.0.1:0").unwrap()
    })
    .join()
    .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                while read_request(&mut reader) {
                    script(&mut stream);
                }
            });
        }
    });
    url
}

/// Reads one request (head and body); false once the client hung up.
fn read_request(reader: &mut impl BufRead) -> bool {
    let mut length = 0;
    let mut first = true;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return false;
        }
        if line.trim().is_empty() && !first {
            break;
        }
        first = false;
        if let Some(n) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = n.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).is_ok()
}

/// Writes `head`, then `piece` every `every` until [`STALL`] has passed or the client hung up.
fn keep_sending(stream: &mut TcpStream, head: &str, every: Duration, piece: &[u8]) {
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    let end = Instant::now() + STALL;
    while Instant::now() < end {
        if stream.write_all(piece).is_err() {
            return;
        }
        thread::sleep(every);
    }
}

fn slow_lines(stream: &mut TcpStream) {
    let every = Duration::from_millis(500);
    keep_sending(stream, "HTTP/1.1 200 OK\r\n", every, b"X-Slow: 1\r\n");
}

fn dribbled_body(stream: &mut TcpStream) {
    let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    keep_sending(stream, head, Duration::from_millis(100), b"1\r\n \r\n");
}

fn header_flood(stream: &mut TcpStream) {
    keep_sending(
        stream,
        "HTTP/1.1 200 OK\r\n",
        Duration::ZERO,
        b"X-Flood: 1\r\n",
    );
}

fn silent(_: &mut TcpStream) {
    thread::sleep(STALL);
}

/// `network create` of the shared /26 (`name`, `subnet`) on the cluster at `endpoints`.
fn create(lan: &Lan, name: &str, subnet: &str, endpoints: &str) {
    let endpoints = format!("etcd_endpoints={endpoints}");
    let args = [
        "network",
        "create",
        "--subnet",
        subnet,
        "-o",
        "parent=lan0",
        "--ipam-opt",
        &endpoints,
        name,
    ];
    lan.cli_ok(&args, "");
}

/// A LAN with a one-member etcd its host reaches.
fn lan_with_etcd() -> (Lan, Etcd) {
    let lan = Lan::new();
    let etcd = Etcd::start(&lan, 1);
    etcd.reach_from(&lan, "192.168.77.250");
    (lan, etcd)
}

#[privileged]
fn a_first_member_that_stalls_or_is_off_leaves_the_real_one_its_turn() {
    let (lan, etcd) = lan_with_etcd();
    let firsts = [
        ("header lines every 0.5 s", fake_member(&lan, slow_lines)),
        ("a dribbled chunked body", fake_member(&lan, dribbled_body)),
        ("a header flood", fake_member(&lan, header_flood)),
        // A machine of the LAN that is powered off: nothing answers its ARP.
        ("powered off", "http://192.168.77.240:2379".to_owned()),
    ];
    for (i, (what, first)) in firsts.iter().enumerate() {
        create(
            &lan,
            NET,
            "192.168.77.0/26",
            &format!("{first},{}", etcd.endpoints()),
        );
        let ns = TestNetns::new("omt-stall-");
        let id = format!("c{i}");
        let start = Instant::now();
        let out = attach(&lan, "hostA", &id, &ns, &[]);
        let took = start.elapsed();
        assert_eq!(out.code, 0, "{what}: {}", out.stderr);
        assert!(took < TIMEOUT + SLACK, "{what}: the attach took {took:?}");
        let holders: Vec<String> = etcd_leases(&etcd).into_iter().map(|l| l.2).collect();
        assert_eq!(holders, [id.as_str()], "{what}");
        let start = Instant::now();
        let out = detach(&lan, "hostA", &id, &ns);
        let took = start.elapsed();
        assert_eq!(out.code, 0, "{what}: {}", out.stderr);
        assert!(took < TIMEOUT + SLACK, "{what}: the detach took {took:?}");
        assert_eq!(etcd_leases(&etcd), [], "{what}");
        lan.cli_ok(&["network", "rm", NET], "");
    }
}

#[privileged]
fn each_endpoint_is_named_with_its_own_failure() {
    let lan = Lan::new();
    lan.host
        .ip(&["addr", "add", "192.168.77.250/24", "dev", Lan::PARENT]);
    // Nobody on the LAN holds .241; the host has no route to 10.0.0.0/8; the router refuses.
    let (off, unrouted, refusing) = (
        "http://192.168.77.241:2379",
        "http://10.255.255.1:2379",
        "http://192.168.77.1:2999",
    );
    create(
        &lan,
        NET,
        "192.168.77.0/26",
        &format!("{off},{unrouted},{refusing}"),
    );
    let ns = TestNetns::new("omt-stall-");
    let start = Instant::now();
    let out = attach(&lan, "hostA", "c1", &ns, &[]);
    let took = start.elapsed();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(took < TIMEOUT + SLACK, "the attach took {took:?}");
    // The address nobody holds: a connect that times out while the host asks ARP, or, once the
    // kernel has given up asking (about 3 s, reached when the rounds go on), no route to host.
    // Either is that endpoint's own failure, never "not tried".
    assert!(
        out.stderr
            .contains(&format!("{off}: cannot connect: timed out after "))
            || out
                .stderr
                .contains(&format!("{off}: cannot connect: no route to host")),
        "{off}: {}",
        out.stderr
    );
    for named in [
        format!("{unrouted}: cannot connect: no route to network"),
        format!("{refusing}: cannot connect: refused"),
    ] {
        assert!(out.stderr.contains(&named), "{named}: {}", out.stderr);
    }
    assert!(!out.stderr.contains("not tried"), "{}", out.stderr);
    assert!(lan.records().is_empty(), "{:?}", lan.records());
}

#[privileged]
fn verify_and_gc_name_a_silent_cluster_and_check_the_healthy_one() {
    let (lan, etcd) = lan_with_etcd();
    // "shared" on the real cluster, asked first; "silent" on a member that never answers.
    create(&lan, NET, "192.168.77.0/26", &etcd.endpoints());
    let quiet = fake_member(&lan, silent);
    create(&lan, "silent", "192.168.77.64/26", &quiet);
    let (ns1, ns2) = (TestNetns::new("omt-stall-"), TestNetns::new("omt-stall-"));
    for (id, ns) in [("c1", &ns1), ("c2", &ns2)] {
        let out = attach(&lan, "hostA", id, ns, &[]);
        assert_eq!(out.code, 0, "{id}: {}", out.stderr);
    }
    // A problem in the healthy cluster that only a check of it finds.
    std::fs::remove_file(lan.state_dir().join("endpoints/c2.json")).unwrap();
    let silent_named = |stdout: &str| {
        stdout.lines().any(|l| {
            l.starts_with("not reached: ") && l.contains(&format!("{quiet}: no answer: timed out"))
        })
    };

    let out = on(&lan, "hostA", &["verify"], "");
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("container c2 holds leases but has no endpoint record"),
        "the healthy cluster is checked: {}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        !(out.stdout.clone() + &out.stderr).contains(&format!("{}: ", etcd.endpoints())),
        "the healthy cluster is not blamed: {}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(silent_named(&out.stdout), "{}", out.stdout);

    // c1 is gone: gc takes it back through the healthy cluster, and names the silent one.
    drop(ns1);
    let out = on(&lan, "hostA", &["gc"], "");
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(silent_named(&out.stdout), "{}", out.stdout);
    assert!(
        out.stdout.contains("(container c1: "),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stdout.contains("kept the leases of container c2"),
        "{}",
        out.stdout
    );
    let holders: Vec<String> = etcd_leases(&etcd).into_iter().map(|l| l.2).collect();
    assert_eq!(holders, ["c2"]);
}
