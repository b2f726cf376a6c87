//! Members that misbehave over plain HTTP, scripted on loopback: one that answers a header line
//! at a time, floods headers, sends a line without end, dribbles a chunked body, never takes a
//! connection, or refuses it. Each call ends by its deadline (the bounds below are correctness
//! bounds with a generous slack, not timings), names the endpoint and what it did, and leaves
//! the next member its turn; each operation of a store has a deadline of its own.

#![allow(clippy::unwrap_used)]

use std::{
    io::{BufReader, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    sync::atomic::{AtomicUsize, Ordering},
    thread,
    time::{Duration, Instant},
};

use oci_macvlan_ipam::LeaseSet;

use crate::EtcdConfig;
use socket2::{Domain, Socket, Type};

use crate::{
    EtcdStore,
    client::{Client, absent, put},
    client_tests::read_request,
};

/// What a call may take past its deadline.
const SLACK: Duration = Duration::from_secs(2);
/// How long a misbehaving member keeps it up: far past every deadline here, so that a client
/// that waits for the member to stop fails its bound.
const STALL: Duration = Duration::from_secs(8);

const ANSWER: &str = r#"{"header":{"revision":"7"},"succeeded":true,"kvs":[]}"#;

/// A member on loopback that reads each request and then does `script` on the connection;
/// its URL.
fn member(script: fn(&mut TcpStream)) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                while read_request(&mut reader).is_some() {
                    script(&mut stream);
                }
            });
        }
    });
    url
}

fn healthy(stream: &mut TcpStream) {
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{ANSWER}",
        ANSWER.len()
    );
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

/// A listening socket that never takes a connection: its backlog of 0 is full (the
/// connections returned fill it), so the kernel drops every further SYN, as a member that is
/// powered off or behind a dropping firewall does. Its URL; keep the rest alive.
fn blackhole() -> (String, Socket, Vec<TcpStream>) {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket.bind(&any.into()).unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let mut held = Vec::new();
    while let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
        held.push(stream);
        assert!(held.len() < 16, "the backlog never fills");
    }
    (format!("http://{addr}"), socket, held)
}

/// A URL on loopback where nothing listens.
fn refusing() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

fn config(urls: &[&str], timeout_ms: u64) -> EtcdConfig {
    EtcdConfig {
        endpoints: urls.iter().map(|u| (*u).to_owned()).collect(),
        prefix: "/t".into(),
        cacert: None,
        cert: None,
        key: None,
        timeout_ms,
    }
}

fn client(urls: &[&str], timeout_ms: u64) -> Client {
    Client::new(&config(urls, timeout_ms)).unwrap()
}

/// `f`'s result, asserting that it came within `timeout_ms` and [`SLACK`].
fn within<T>(timeout_ms: u64, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(timeout_ms) + SLACK,
        "took {took:?}, etcd_timeout {timeout_ms} ms"
    );
    out
}

/// The error of a read of `url` alone, within the deadline.
fn read_error(url: &str) -> String {
    let mut client = client(&[url], 1000);
    within(1000, || client.range(b"/t/", b"/t0"))
        .unwrap_err()
        .to_string()
}

#[test]
fn a_member_answering_a_header_line_at_a_time_is_cut_at_the_deadline() {
    let url = member(slow_lines);
    let err = read_error(&url);
    assert!(
        err.contains(&format!("{url}: no answer: timed out")),
        "{err}"
    );
    // A write too; it may have been applied.
    let mut client = client(&[&url], 1000);
    let err = within(1000, || {
        client.txn(vec![absent(b"/t/k")], vec![put(b"/t/k", b"v")])
    })
    .unwrap_err();
    assert!(err.maybe_written(), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("{url}: no answer: timed out")),
        "{err}"
    );
}

/// A member that answers one header line every 200 ms, for [`STALL`].
fn slow_lines(stream: &mut TcpStream) {
    let every = Duration::from_millis(200);
    keep_sending(stream, "HTTP/1.1 200 OK\r\n", every, b"X-Slow: 1\r\n");
}

#[test]
fn a_read_that_a_slow_member_does_not_answer_in_its_turn_is_asked_of_the_next() {
    let slow = member(slow_lines);
    let good = member(healthy);
    let mut client = client(&[&slow, &good], 2000);
    let kvs = within(2000, || client.range(b"/t/", b"/t0")).unwrap();
    assert!(kvs.is_empty());
    // A write sent to it waits for its answer until the deadline, and is never sent again
    // elsewhere: it may have been applied.
    let mut client = self::client(&[&slow, &good], 1000);
    let err = within(1000, || {
        client.txn(vec![absent(b"/t/k")], vec![put(b"/t/k", b"v")])
    })
    .unwrap_err();
    assert!(err.maybe_written(), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("{slow}: no answer: timed out")),
        "{text}"
    );
    assert!(!text.contains(&format!("{good}: ")), "{text}");
}

#[test]
fn a_member_cut_off_in_its_turn_is_asked_again_while_time_is_left() {
    // Its first connection answers late (a leader being elected), the next at once.
    static CONNECTIONS: AtomicUsize = AtomicUsize::new(0);
    let electing = member(|stream| {
        if CONNECTIONS.fetch_add(1, Ordering::SeqCst) == 0 {
            thread::sleep(Duration::from_millis(1500));
        }
        healthy(stream);
    });
    let refused = refusing();
    let mut client = client(&[&electing, &refused], 2000);
    let kvs = within(2000, || client.range(b"/t/", b"/t0")).unwrap();
    assert!(kvs.is_empty());
    assert_eq!(CONNECTIONS.load(Ordering::SeqCst), 2);
}

#[test]
fn a_member_flooding_headers_is_cut_at_their_cap() {
    let url = member(|stream| {
        keep_sending(
            stream,
            "HTTP/1.1 200 OK\r\n",
            Duration::ZERO,
            b"X-Flood: 1\r\n",
        );
    });
    let err = read_error(&url);
    assert!(
        err.contains(&format!("{url}: bad answer: more than 100 header lines")),
        "{err}"
    );
}

#[test]
fn a_header_line_without_end_is_cut_at_its_cap() {
    let url = member(|stream| {
        let head = "HTTP/1.1 200 OK\r\nX-Long: ";
        keep_sending(stream, head, Duration::ZERO, &[b'a'; 4096]);
    });
    let err = read_error(&url);
    assert!(
        err.contains(&format!("{url}: bad answer: a line over 8 KiB")),
        "{err}"
    );
}

#[test]
fn a_member_dribbling_a_chunked_body_is_cut_at_the_deadline() {
    let url = member(|stream| {
        let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        keep_sending(stream, head, Duration::from_millis(100), b"1\r\n \r\n");
    });
    let err = read_error(&url);
    assert!(
        err.contains(&format!("{url}: no answer: timed out")),
        "{err}"
    );
}

#[test]
fn an_answer_over_its_cap_is_refused_before_it_is_read() {
    let by_length = member(|stream| {
        let head = "HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n";
        keep_sending(stream, head, Duration::from_millis(100), b" ");
    });
    let by_chunk = member(|stream| {
        let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5000000\r\n";
        keep_sending(stream, head, Duration::from_millis(100), b" ");
    });
    for url in [by_length, by_chunk] {
        let err = read_error(&url);
        assert!(
            err.contains(&format!("{url}: bad answer: an answer over 16 MiB")),
            "{err}"
        );
    }
}

#[test]
fn a_member_that_never_takes_the_connection_leaves_the_next_its_turn() {
    let (hole, _socket, _held) = blackhole();
    let good = member(healthy);
    let mut client = client(&[&hole, &good], 2000);
    let kvs = within(2000, || client.range(b"/t/", b"/t0")).unwrap();
    assert!(kvs.is_empty());
}

#[test]
fn each_endpoint_is_named_with_its_own_failure() {
    let (hole, _socket, _held) = blackhole();
    let refused = refusing();
    let mut client = client(&[&hole, &refused], 1000);
    let err = within(1000, || client.range(b"/t/", b"/t0"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("{hole}: cannot connect: timed out after ")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{refused}: cannot connect: refused")),
        "{err}"
    );
    assert!(!err.contains("not tried"), "{err}");
}

#[test]
fn a_read_sent_ahead_to_a_member_that_never_connects_leaves_the_next_its_turn() {
    let (hole, _socket, _held) = blackhole();
    let good = member(healthy);
    let mut store = EtcdStore::open(&config(&[&hole, &good], 2000), &host()).unwrap();
    let leases = within(2000, || {
        store.read_ahead();
        store.all_leases()
    })
    .unwrap();
    assert!(leases.is_empty());
}

#[test]
fn each_operation_of_a_store_has_a_deadline_of_its_own() {
    let good = member(healthy);
    // Takes each request, never answers.
    let silent = member(|_| thread::sleep(STALL));
    let mut first = EtcdStore::open(&config(&[&good], 1000), &host()).unwrap();
    let mut second = EtcdStore::open(&config(&[&silent], 1000), &host()).unwrap();
    assert!(first.all_leases().unwrap().is_empty());
    // The silent cluster spends its own time...
    let err = within(1000, || second.all_leases())
        .unwrap_err()
        .to_string();
    // ...not the other cluster's: its next operation has a deadline of its own.
    assert!(first.all_leases().unwrap().is_empty());
    // The silent one is named, with what it did.
    assert!(
        err.contains(&format!("{silent}: no answer: timed out")),
        "{err}"
    );
}

/// A host with an identity, as every command has once its file is made.
fn host() -> crate::HostIdentity {
    crate::HostIdentity {
        id: "h".into(),
        proof: Some("p".into()),
        kept_in: "/nowhere/host-identity".into(),
    }
}
