//! The little of HTTP/1.1 etcd's JSON gateway needs: `POST` with a body, an answer with a
//! `Content-Length` or chunked body, one kept-alive connection per endpoint. Written here rather
//! than taken from an HTTP client crate: those bring URL parsing with IDNA tables and a bundle
//! of web root certificates, whose relocations every hook (a static PIE) would pay at each
//! start, local networks included. For the same reason TLS is not linked in: an `https://`
//! endpoint is reached through the `oci-macvlan-tls` helper (crates/etcd-tls), a program of its
//! own that does the handshake and then carries this module's plain HTTP both ways.
//!
//! A member cannot stall or flood a caller. Every read and write of an exchange ends by the
//! exchange's deadline: each waits at most the time left, and none starts after it, so a member
//! that answers a byte or a header line at a time, or dribbles its body, is cut off at the
//! deadline, not at a timeout that each byte renews. A connection is made by a deadline of its
//! own (the caller's share for this endpoint), and its failure named by its cause (refused, no
//! route, timed out). What an answer may hold is capped, and an answer over a cap is an error
//! (`answer.rs`): the status line and each header, chunk-size or trailer line 8 KiB, the header
//! lines (trailers included) 100 and 64 KiB in all, the body 16 MiB (the leases of a prefix
//! holding some 30,000; read as it comes, never allocated from a length the member gave).

mod answer;

use std::{
    io::{BufReader, ErrorKind, Read, Write},
    net::{TcpStream, ToSocketAddrs},
    os::{fd::OwnedFd, unix::net::UnixStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use answer::{read_line, read_response};

/// Why a request got no answer.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Nothing reached the member (no connection, no TLS session, the request not written
    /// whole): it cannot take effect.
    Unsent(String),
    /// The request was sent and no answer came: it may still take effect.
    Unanswered(String),
    /// The member answered with an HTTP error (etcd's own error in the body).
    Status(u16, String),
}

/// How an `https://` endpoint is reached: the helper program and the files it reads.
#[derive(Debug)]
pub(crate) struct Tls {
    pub helper: PathBuf,
    pub cacert: PathBuf,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// The byte stream under HTTP: the member's socket, or the socket to a TLS helper that
/// carries it to the member (killed and reaped when the connection is dropped).
enum Transport {
    Tcp(TcpStream),
    Helper(UnixStream, Child),
}

impl Drop for Transport {
    fn drop(&mut self) {
        if let Self::Helper(_, child) = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A [`Transport`] whose every read and write ends by `deadline`: each one waits at most the
/// time left (the socket's timeout is set to it before each call), and none starts once the
/// deadline has passed. So a member that answers a byte at a time, or reads the request a
/// byte at a time, cannot stretch an exchange past its deadline.
struct Conn {
    transport: Transport,
    deadline: Instant,
}

impl Conn {
    /// The time left, or a `TimedOut` error once there is none.
    fn left(&self) -> std::io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(timed_out())
        } else {
            Ok(left)
        }
    }
}

fn timed_out() -> std::io::Error {
    std::io::Error::new(ErrorKind::TimedOut, "timed out")
}

/// A socket timeout (`EAGAIN`) is the deadline passing.
fn deadline_error(err: std::io::Error) -> std::io::Error {
    match err.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => timed_out(),
        _ => err,
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.left()?;
        match &mut self.transport {
            Transport::Tcp(socket) => {
                socket.set_read_timeout(Some(left))?;
                socket.read(buf)
            }
            Transport::Helper(socket, _) => {
                socket.set_read_timeout(Some(left))?;
                socket.read(buf)
            }
        }
        .map_err(deadline_error)
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let left = self.left()?;
        match &mut self.transport {
            Transport::Tcp(socket) => {
                socket.set_write_timeout(Some(left))?;
                socket.write(buf)
            }
            Transport::Helper(socket, _) => {
                socket.set_write_timeout(Some(left))?;
                socket.write(buf)
            }
        }
        .map_err(deadline_error)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One endpoint, `http://HOST:PORT` or `https://HOST:PORT`, and its open connection.
pub(crate) struct Endpoint {
    pub url: String,
    host: String,
    port: u16,
    tls: Option<Arc<Tls>>,
    conn: Option<BufReader<Conn>>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

impl Endpoint {
    /// `url` as `options.rs` checked it (scheme, host, port).
    pub(crate) fn new(url: &str, tls: Option<Arc<Tls>>) -> Self {
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .unwrap_or(url);
        let (host, port) = rest.rsplit_once(':').unwrap_or((rest, "2379"));
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Self {
            url: url.to_owned(),
            host: host.to_owned(),
            port: port.parse().unwrap_or(2379),
            tls: if url.starts_with("https://") {
                tls
            } else {
                None
            },
            conn: None,
        }
    }

    /// POSTs `body` (JSON) to `path` and returns the answer's body: a connection (if none is
    /// open) made by `connect_by`, and everything by `deadline`.
    pub(crate) fn post(
        &mut self,
        path: &str,
        body: &str,
        connect_by: Instant,
        deadline: Instant,
    ) -> Result<String, Failure> {
        self.send(path, body, connect_by, deadline)?;
        self.receive(deadline)
    }

    /// Sends the request of [`post`](Self::post) without waiting for its answer, which
    /// [`receive`](Self::receive) reads (HTTP/1.1 answers come in the order of the requests).
    pub(crate) fn send(
        &mut self,
        path: &str,
        body: &str,
        connect_by: Instant,
        deadline: Instant,
    ) -> Result<(), Failure> {
        if self.conn.is_none() {
            self.conn = Some(self.connect(connect_by.min(deadline))?);
        }
        let result = self.write_request(path, body, deadline);
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    /// The answer to the request [`send`](Self::send) sent, by `deadline`.
    pub(crate) fn receive(&mut self, deadline: Instant) -> Result<String, Failure> {
        let result = self.read_answer(deadline);
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    /// Forgets the connection (and any answer still to come on it).
    pub(crate) fn disconnect(&mut self) {
        self.conn = None;
    }

    fn connect(&self, by: Instant) -> Result<BufReader<Conn>, Failure> {
        match &self.tls {
            None => self.connect_tcp(by),
            Some(tls) => self.connect_helper(tls, by),
        }
    }

    /// A TCP connection to the first of the host's addresses that takes one by `by`. Each
    /// failure is named by its cause: refused, no route, timed out (with the time it had).
    fn connect_tcp(&self, by: Instant) -> Result<BufReader<Conn>, Failure> {
        let unsent =
            |what: &str, err: &dyn std::fmt::Display| Failure::Unsent(format!("{what}: {err}"));
        let share = by.saturating_duration_since(Instant::now());
        let addrs: Vec<_> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|err| unsent("cannot resolve", &err))?
            .collect();
        let mut last = None;
        let mut tcp = None;
        for addr in addrs {
            let left = by.saturating_duration_since(Instant::now());
            if left.is_zero() {
                last = Some(timed_out());
                break;
            }
            match TcpStream::connect_timeout(&addr, left) {
                Ok(stream) => {
                    tcp = Some(stream);
                    break;
                }
                Err(err) => last = Some(err),
            }
        }
        let tcp = match (tcp, last) {
            (Some(tcp), _) => tcp,
            (None, Some(err)) => {
                return Err(Failure::Unsent(format!(
                    "cannot connect: {}",
                    connect_error(&err, share)
                )));
            }
            (None, None) => return Err(Failure::Unsent("no address".into())),
        };
        let _ = tcp.set_nodelay(true);
        Ok(BufReader::new(Conn {
            transport: Transport::Tcp(tcp),
            deadline: by,
        }))
    }

    /// Starts the TLS helper for this endpoint and waits for its status line: the request is
    /// written only once the handshake is done, so a failure until then is [`Failure::Unsent`].
    /// The helper has until `by` for its connection and handshake (it ends by then on its own,
    /// and is killed if its `OK` is late); it is killed when the connection is dropped.
    fn connect_helper(&self, tls: &Tls, by: Instant) -> Result<BufReader<Conn>, Failure> {
        let helper = tls.helper.display();
        let unsent = |what: &str, err: &dyn std::fmt::Display| {
            Failure::Unsent(format!("{what} {helper}: {err}"))
        };
        let share = by.saturating_duration_since(Instant::now());
        let (ours, theirs) = UnixStream::pair().map_err(|err| unsent("cannot start", &err))?;
        let theirs_out = theirs
            .try_clone()
            .map_err(|err| unsent("cannot start", &err))?;
        let mut command = Command::new(&tls.helper);
        command
            .arg("--host")
            .arg(&self.host)
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--server-name")
            .arg(&self.host)
            .arg("--timeout-ms")
            .arg(share.as_millis().max(1).to_string())
            .arg("--cacert")
            .arg(&tls.cacert);
        if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
            command.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        let child = command
            .env_clear()
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::from(OwnedFd::from(theirs_out)))
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| unsent("cannot start", &err))?;
        let mut reader = BufReader::new(Conn {
            transport: Transport::Helper(ours, child),
            deadline: by,
        });
        let status = read_line(&mut reader).map_err(|err| match err.kind() {
            ErrorKind::UnexpectedEof => {
                Failure::Unsent(format!("{helper} exited before the TLS handshake"))
            }
            ErrorKind::TimedOut => Failure::Unsent(format!(
                "TLS handshake: timed out after {} ms",
                share.as_millis()
            )),
            _ => Failure::Unsent(format!("TLS handshake: {err}")),
        })?;
        match status.strip_prefix("ERR ") {
            None if status == "OK" => Ok(reader),
            None => Err(Failure::Unsent(format!("{helper} said {status:.80}"))),
            Some(why) => Err(Failure::Unsent(why.to_owned())),
        }
    }

    fn write_request(&mut self, path: &str, body: &str, deadline: Instant) -> Result<(), Failure> {
        let Some(reader) = self.conn.as_mut() else {
            return Err(Failure::Unsent("no connection".into()));
        };
        reader.get_mut().deadline = deadline;
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            self.host,
            self.port,
            body.len()
        );
        let stream = reader.get_mut();
        stream
            .write_all(request.as_bytes())
            .and_then(|()| stream.flush())
            .map_err(|err| Failure::Unsent(format!("cannot send: {err}")))
    }

    fn read_answer(&mut self, deadline: Instant) -> Result<String, Failure> {
        let Some(reader) = self.conn.as_mut() else {
            return Err(Failure::Unanswered("no connection".into()));
        };
        reader.get_mut().deadline = deadline;
        let (status, body, close) = read_response(reader).map_err(|err| {
            Failure::Unanswered(match err.kind() {
                ErrorKind::InvalidData => format!("bad answer: {err}"),
                _ => format!("no answer: {err}"),
            })
        })?;
        if close {
            self.conn = None;
        }
        let text = String::from_utf8_lossy(&body).into_owned();
        if status == 200 {
            Ok(text)
        } else {
            Err(Failure::Status(status, text))
        }
    }
}

/// What a failed connect says: its cause in a word or two.
fn connect_error(err: &std::io::Error, share: Duration) -> String {
    match err.kind() {
        ErrorKind::ConnectionRefused => "refused".into(),
        ErrorKind::HostUnreachable => "no route to host".into(),
        ErrorKind::NetworkUnreachable => "no route to network".into(),
        ErrorKind::TimedOut | ErrorKind::WouldBlock => {
            format!("timed out after {} ms", share.as_millis())
        }
        _ => err.to_string(),
    }
}
