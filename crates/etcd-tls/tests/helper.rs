//! The helper as the etcd client runs it, against members on loopback: its `--timeout-ms`
//! bounds the connection and the handshake, however slowly the member sends it; once `OK` is
//! written, the session lasts as long as the client keeps it (a kept-alive connection serves
//! several exchanges, each bounded by the client's own deadline).

#![allow(clippy::unwrap_used)]

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpListener,
    path::Path,
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    sync::Arc,
    thread,
    time::{Duration, Instant},
};

/// Starts the helper for `port` on loopback with `--timeout-ms ms` and the CA `cacert`.
fn helper(port: u16, ms: u64, cacert: &Path) -> (Child, ChildStdin, BufReader<ChildStdout>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_oci-macvlan-tls"))
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--timeout-ms", &ms.to_string(), "--cacert"])
        .arg(cacert)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    (child, stdin, stdout)
}

fn line(reader: &mut impl BufRead) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    line.trim_end().to_owned()
}

#[test]
fn a_handshake_sent_a_byte_at_a_time_ends_by_the_deadline() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        // A handshake record of 80 bytes, its body a byte every 100 ms (8 s in all).
        let _ = stream.write_all(&[0x16, 0x03, 0x03, 0x00, 0x50]);
        for _ in 0..80 {
            thread::sleep(Duration::from_millis(100));
            if stream.write_all(b" ").is_err() {
                return;
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let cacert = dir.path().join("ca.pem");
    std::fs::write(&cacert, "").unwrap();
    let start = Instant::now();
    let (mut child, _stdin, mut stdout) = helper(port, 500, &cacert);
    let status = line(&mut stdout);
    let took = start.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        took < Duration::from_millis(2500),
        "took {took:?}: {status}"
    );
    assert_eq!(status, "ERR TLS handshake: timed out after 500 ms");
}

/// `openssl ARGS…` in `dir`, which must succeed.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl, to make the test's certificates");
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
}

/// A CA (`ca.pem`) and a certificate for 127.0.0.1 it signed (`member.pem`, `member.key`).
fn certificates(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=ca",
    ]);
    openssl(dir, &ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "member.key",
        "-out",
        "member.csr",
        "-subj",
        "/CN=member",
    ]);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("member.ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "member.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "member.pem",
            "-days",
            "1",
            "-extfile",
            "member.ext",
        ],
    );
}

/// A TLS member on loopback answering each line `ping` with `pong`; its port.
fn tls_member(dir: &Path) -> u16 {
    let read = |file: &str| std::fs::read(dir.join(file)).unwrap();
    let chain = rustls_pemfile::certs(&mut &read("member.pem")[..])
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls_pemfile::private_key(&mut &read("member.key")[..])
        .unwrap()
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let conn = rustls::ServerConnection::new(config).unwrap();
        let mut tls = BufReader::new(rustls::StreamOwned::new(conn, tcp));
        loop {
            let mut line = String::new();
            if tls.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let stream = tls.get_mut();
            if stream
                .write_all(b"pong\n")
                .and_then(|()| stream.flush())
                .is_err()
            {
                return;
            }
        }
    });
    port
}

#[test]
fn the_session_outlives_the_handshakes_deadline() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let port = tls_member(dir.path());
    let (mut child, mut stdin, mut stdout) = helper(port, 1000, &dir.path().join("ca.pem"));
    assert_eq!(line(&mut stdout), "OK");
    // An exchange, then another after the handshake's deadline, on the same session.
    for wait in [0, 1500] {
        thread::sleep(Duration::from_millis(wait));
        stdin.write_all(b"ping\n").unwrap();
        assert_eq!(line(&mut stdout), "pong", "after {wait} ms");
    }
    drop(stdin);
    // The client's end closed: the helper ends.
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success());
}
