//! The read sent ahead (`Client::send_ahead`) against a scripted HTTP server on loopback: which
//! requests reach which connection, and what the client makes of each answer.

#![allow(clippy::unwrap_used)]

use std::{
    io::{BufRead, BufReader, Write},
    net::TcpListener,
    sync::{Arc, Mutex},
    thread,
};

use crate::EtcdConfig;

use crate::client::Client;

/// The requests a server received, as (connection, path).
type Log = Arc<Mutex<Vec<(usize, String)>>>;

/// What the server does with each request, by connection and request number on it.
#[derive(Clone, Copy)]
enum Reply {
    Answer,
    /// Closes the connection without an answer.
    Hangup,
}

/// A server that answers `script(connection, request)`; returns its URL and the log of
/// (connection, path) it received.
fn serve(script: fn(usize, usize) -> Reply) -> (String, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    thread::spawn(move || {
        for (conn, stream) in listener.incoming().enumerate() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            for request in 0.. {
                let Some(path) = read_request(&mut reader) else {
                    break;
                };
                seen.lock().unwrap().push((conn, path));
                match script(conn, request) {
                    Reply::Answer => {
                        let answer = r#"{"header":{"revision":"7"},"succeeded":true,"kvs":[]}"#;
                        let head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                            answer.len()
                        );
                        // The client may have hung up on an answer it no longer wants.
                        let sent = stream
                            .write_all(head.as_bytes())
                            .and_then(|()| stream.write_all(answer.as_bytes()));
                        if sent.is_err() {
                            break;
                        }
                    }
                    Reply::Hangup => break,
                }
            }
        }
    });
    (url, log)
}

/// One request's path, its headers and body read; `None` once the client hung up.
pub(crate) fn read_request(reader: &mut impl BufRead) -> Option<String> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let path = line.split(' ').nth(1)?.to_owned();
    let mut length = 0;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
        if header.trim().is_empty() {
            break;
        }
        if let Some(n) = header.to_ascii_lowercase().strip_prefix("content-length:") {
            length = n.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(path)
}

fn client(urls: &[&str]) -> Client {
    Client::new(&EtcdConfig {
        endpoints: urls.iter().map(|u| (*u).to_owned()).collect(),
        prefix: "/t".into(),
        cacert: None,
        cert: None,
        key: None,
        timeout_ms: 2000,
    })
    .unwrap()
}

fn log_of(log: &Log) -> Vec<(usize, String)> {
    log.lock().unwrap().clone()
}

/// Sends the read of the leases ahead, then reads them: the answer is the empty list.
fn read_leases_ahead(client: &mut Client) {
    client.send_ahead(b"/t/leases/", b"/t/leases0");
    let leases = client.range(b"/t/leases/", b"/t/leases0").unwrap();
    assert!(leases.is_empty());
}

#[test]
fn the_read_sent_ahead_is_the_read() {
    let (url, log) = serve(|_, _| Reply::Answer);
    let mut client = client(&[&url]);
    read_leases_ahead(&mut client);
    // The next request goes on the same connection, after the answer was read.
    assert!(client.txn(Vec::new(), Vec::new()).unwrap());
    assert_eq!(
        log_of(&log),
        [(0, "/v3/kv/range".into()), (0, "/v3/kv/txn".into())]
    );
}

#[test]
fn another_request_first_leaves_the_answer_ahead_on_its_connection() {
    let (url, log) = serve(|_, _| Reply::Answer);
    let mut client = client(&[&url]);
    client.send_ahead(b"/t/leases/", b"/t/leases0");
    // A read of other keys, then a write: neither takes the range's answer for its own.
    assert!(client.range(b"/t/other/", b"/t/other0").unwrap().is_empty());
    assert!(client.txn(Vec::new(), Vec::new()).unwrap());
    assert_eq!(
        log_of(&log),
        [
            (0, "/v3/kv/range".into()),
            (1, "/v3/kv/range".into()),
            (1, "/v3/kv/txn".into())
        ]
    );
}

#[test]
fn a_read_ahead_without_an_answer_is_asked_of_the_next_member() {
    let (first, first_log) = serve(|_, _| Reply::Hangup);
    let (second, second_log) = serve(|_, _| Reply::Answer);
    let mut client = client(&[&first, &second]);
    read_leases_ahead(&mut client);
    assert_eq!(log_of(&first_log), [(0, "/v3/kv/range".into())]);
    assert_eq!(log_of(&second_log), [(0, "/v3/kv/range".into())]);
    // The member that answered is the one asked first from now on.
    assert!(client.txn(Vec::new(), Vec::new()).unwrap());
    assert_eq!(log_of(&second_log).len(), 2);
    assert_eq!(log_of(&first_log).len(), 1);
}

#[test]
fn no_member_answering_the_read_ahead_names_each() {
    let (first, _) = serve(|_, _| Reply::Hangup);
    let mut client = client(&[&first]);
    client.send_ahead(b"/t/leases/", b"/t/leases0");
    let err = client.range(b"/t/leases/", b"/t/leases0").unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("no member answered kv/range") && text.contains(&format!("{first}: ")),
        "{text}"
    );
}
