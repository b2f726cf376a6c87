//! `oci-macvlan-tls`: one TLS connection to one etcd member, for the etcd client of
//! `oci-macvlan` (crates/ipam-etcd/src/http.rs), which speaks plain HTTP/1.1 to this program over
//! its stdin and stdout (one socket) and never links a TLS stack itself: every hook is a static
//! PIE that relocates its whole image at each start, and rustls with ring would cost every hook
//! (local networks included) ~1,850 relocations more.
//!
//! ```text
//! oci-macvlan-tls --host HOST --port PORT --server-name NAME --timeout-ms MS \
//!     --cacert PATH [--cert PATH --key PATH]
//! ```
//!
//! The protocol on stdout: first one status line, `OK` once the TLS handshake is done (the
//! client sends its request only then, so a request that never left is known as such), or
//! `ERR <why>` and the program exits 1: connecting and the handshake end within `MS` of the
//! start, every read and write of them included (a member that sends its handshake a byte at a
//! time cannot stretch it). After `OK`, bytes are pumped both ways, plaintext on stdin/stdout,
//! TLS on the member's socket, until either side closes: the client bounds each of its
//! exchanges by a deadline of its own (one kept-alive connection serves several), and closes its
//! end or kills this program when it is done. Keys are read from the paths given, never taken
//! on the command line. Nothing is written to stderr (a hook's stderr is its user's error line).

#![warn(missing_docs)]

use std::{
    fs::File,
    io::{BufReader, ErrorKind, Read, Write},
    net::{TcpStream, ToSocketAddrs},
    os::fd::AsFd,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
    time::{Duration, Instant},
};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use rustls::{ClientConfig, ClientConnection, pki_types::ServerName};

/// What the client asked for.
#[derive(Debug, Default, PartialEq)]
struct Args {
    host: String,
    port: u16,
    server_name: String,
    timeout: Duration,
    cacert: PathBuf,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args::default();
    let (mut host, mut port, mut timeout, mut cacert) = (false, false, false, false);
    while let Some(flag) = argv.next() {
        let value = argv.next().ok_or_else(|| format!("{flag}: no value"))?;
        match flag.as_str() {
            "--host" => (args.host, host) = (value, true),
            "--port" => {
                args.port = value.parse().map_err(|_| format!("--port {value:.20}"))?;
                port = true;
            }
            "--server-name" => args.server_name = value,
            "--timeout-ms" => {
                let ms = value
                    .parse()
                    .map_err(|_| format!("--timeout-ms {value:.20}"))?;
                (args.timeout, timeout) = (Duration::from_millis(ms), true);
            }
            "--cacert" => (args.cacert, cacert) = (value.into(), true),
            "--cert" => args.cert = Some(value.into()),
            "--key" => args.key = Some(value.into()),
            other => return Err(format!("unknown argument {other:.40}")),
        }
    }
    if !(host && port && timeout && cacert) {
        return Err("--host, --port, --timeout-ms and --cacert are required".into());
    }
    if args.server_name.is_empty() {
        args.server_name = args.host.clone();
    }
    if args.cert.is_some() != args.key.is_some() {
        return Err("--cert and --key go together".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let started = Instant::now();
    // The client's end of the socket is both stdin and stdout; dup them into unbuffered files
    // (std's stdin buffers, and a poll on a buffered descriptor would miss what it holds).
    let duped = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .and_then(|input| Ok((input, std::io::stdout().as_fd().try_clone_to_owned()?)));
    let Ok((input, output)) = duped else {
        return ExitCode::FAILURE;
    };
    let (input, mut output) = (File::from(input), File::from(output));
    let session = parse_args(std::env::args().skip(1)).and_then(|args| handshake(&args, started));
    let (conn, tcp) = match session {
        Ok(session) => session,
        Err(why) => {
            let why = why.replace(['\n', '\r'], " ");
            let _ = writeln!(output, "ERR {why}");
            return ExitCode::FAILURE;
        }
    };
    if writeln!(output, "OK").is_err() {
        return ExitCode::FAILURE;
    }
    match pump(conn, tcp, input, output) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

/// The certificates and key of `args`, each error naming the option and the path as
/// `--ipam-opt` does.
fn config(args: &Args) -> Result<ClientConfig, String> {
    let bad = |key: &str, path: &Path, why: &dyn std::fmt::Display| {
        format!("invalid --ipam-opt {key}: {}: {why}", path.display())
    };
    let read_certs = |key: &str, path: &Path| {
        let file = File::open(path).map_err(|err| bad(key, path, &err))?;
        rustls_pemfile::certs(&mut BufReader::new(file))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| bad(key, path, &err))
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certs("etcd_cacert", &args.cacert)? {
        roots
            .add(cert)
            .map_err(|err| bad("etcd_cacert", &args.cacert, &err))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| bad("etcd_cacert", &args.cacert, &err))?
        .with_root_certificates(roots);
    match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => {
            let chain = read_certs("etcd_cert", cert)?;
            let file = File::open(key).map_err(|err| bad("etcd_key", key, &err))?;
            let private = rustls_pemfile::private_key(&mut BufReader::new(file))
                .map_err(|err| bad("etcd_key", key, &err))?
                .ok_or_else(|| bad("etcd_key", key, &"no private key in it"))?;
            builder
                .with_client_auth_cert(chain, private)
                .map_err(|err| bad("etcd_key", key, &err))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// Connects to the member and completes the handshake, within the deadline: each read and
/// write waits at most the time left, and none starts once it has passed.
fn handshake(args: &Args, started: Instant) -> Result<(ClientConnection, TcpStream), String> {
    let config = Arc::new(config(args)?);
    let left = || {
        (started + args.timeout)
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    let addrs: Vec<_> = (args.host.as_str(), args.port)
        .to_socket_addrs()
        .map_err(|err| format!("cannot resolve: {err}"))?
        .collect();
    let mut last = None;
    let mut tcp = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, left()) {
            Ok(stream) => {
                tcp = Some(stream);
                break;
            }
            Err(err) => last = Some(err),
        }
    }
    let mut tcp = match (tcp, last) {
        (Some(tcp), _) => tcp,
        (None, Some(err)) => return Err(format!("cannot connect: {err}")),
        (None, None) => return Err("no address".into()),
    };
    let _ = tcp.set_nodelay(true);
    let name = ServerName::try_from(args.server_name.clone())
        .map_err(|err| format!("TLS server name: {err}"))?;
    let mut conn = ClientConnection::new(config, name).map_err(|err| format!("TLS: {err}"))?;
    let deadline = started + args.timeout;
    let timed_out = || {
        format!(
            "TLS handshake: timed out after {} ms",
            args.timeout.as_millis()
        )
    };
    while conn.is_handshaking() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out());
        }
        let step = tcp
            .set_read_timeout(Some(left))
            .and_then(|()| tcp.set_write_timeout(Some(left)))
            .and_then(|()| {
                // One read or one write at a time: each under the time left.
                if conn.wants_write() {
                    conn.write_tls(&mut tcp).map(drop)
                } else {
                    match conn.read_tls(&mut tcp)? {
                        0 => Err(ErrorKind::UnexpectedEof.into()),
                        _ => conn
                            .process_new_packets()
                            .map(drop)
                            .map_err(|err| std::io::Error::new(ErrorKind::InvalidData, err)),
                    }
                }
            });
        match step {
            Ok(()) => {}
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(timed_out());
            }
            Err(err) => return Err(format!("TLS handshake: {err}")),
        }
    }
    // What the handshake's last flight left to send (a client's Finished).
    while conn.wants_write() {
        conn.write_tls(&mut tcp)
            .map_err(|err| format!("TLS handshake: {err}"))?;
    }
    tcp.set_read_timeout(None)
        .and_then(|()| tcp.set_write_timeout(None))
        .map_err(|err| format!("cannot set timeouts: {err}"))?;
    Ok((conn, tcp))
}

/// Plaintext from `input` to the member, the member's answers to `output`, until either side
/// closes.
fn pump(
    mut conn: ClientConnection,
    mut tcp: TcpStream,
    mut input: File,
    mut output: File,
) -> std::io::Result<()> {
    let mut buf = vec![0; 16 << 10];
    loop {
        while conn.wants_write() {
            conn.write_tls(&mut tcp)?;
        }
        let (member, client) = {
            let mut fds = [
                PollFd::new(tcp.as_fd(), PollFlags::POLLIN),
                PollFd::new(input.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(err) => return Err(err.into()),
            }
            let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
            (ready(&fds[0]), ready(&fds[1]))
        };
        if member {
            if conn.read_tls(&mut tcp)? == 0 {
                // The member closed: hand over what is left, then close too.
                let _ = conn.process_new_packets();
                drain(&mut conn, &mut output, &mut buf)?;
                return Ok(());
            }
            conn.process_new_packets()
                .map_err(|err| std::io::Error::new(ErrorKind::InvalidData, err))?;
            if drain(&mut conn, &mut output, &mut buf)? {
                return Ok(());
            }
        }
        if client {
            let n = input.read(&mut buf)?;
            if n == 0 {
                conn.send_close_notify();
                while conn.wants_write() {
                    conn.write_tls(&mut tcp)?;
                }
                return Ok(());
            }
            conn.writer().write_all(&buf[..n])?;
        }
    }
}

/// Writes the plaintext `conn` holds to `output`; whether the member ended the session.
fn drain(conn: &mut ClientConnection, output: &mut File, buf: &mut [u8]) -> std::io::Result<bool> {
    loop {
        match conn.reader().read(buf) {
            Ok(0) => return Ok(true),
            Ok(n) => output.write_all(&buf[..n])?,
            Err(err) if err.kind() == ErrorKind::WouldBlock => return Ok(false),
            Err(err) if err.kind() == ErrorKind::UnexpectedEof => return Ok(true),
            Err(err) => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Result<Args, String> {
        parse_args(line.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn arguments_name_paths_never_key_material() {
        let parsed = args(
            "--host 10.0.0.5 --port 2379 --timeout-ms 1500 --cacert /etc/etcd/ca.pem \
             --cert /etc/etcd/client.pem --key /etc/etcd/client-key.pem",
        )
        .unwrap();
        assert_eq!(parsed.server_name, "10.0.0.5");
        assert_eq!(parsed.timeout, Duration::from_millis(1500));
        assert_eq!(parsed.key, Some(PathBuf::from("/etc/etcd/client-key.pem")));
        for (bad, why) in [
            ("--host a", "required"),
            ("--port", "no value"),
            ("--secret x", "unknown argument"),
            (
                "--host a --port 1 --timeout-ms 1 --cacert /c --cert /x",
                "go together",
            ),
        ] {
            let err = args(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn unreadable_files_name_the_option_and_the_path() {
        let parsed = args("--host a --port 1 --timeout-ms 1 --cacert /nonexistent/ca.pem").unwrap();
        let err = config(&parsed).unwrap_err();
        assert!(
            err.starts_with("invalid --ipam-opt etcd_cacert: /nonexistent/ca.pem: "),
            "{err}"
        );
    }
}
