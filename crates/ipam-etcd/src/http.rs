//! The little of HTTP/1.1 etcd's JSON gateway needs: `POST` with a body, an answer with a
//! `Content-Length` or chunked body, one kept-alive connection per endpoint. Written here rather
//! than taken from an HTTP client crate: those bring URL parsing with IDNA tables and a bundle
//! of web root certificates, whose relocations every hook (a static PIE) would pay at each
//! start, local networks included. For the same reason TLS is not linked in: an `https://`
//! endpoint is reached through the `oci-macvlan-tls` helper (crates/etcd-tls), a program of its
//! own that does the handshake and then carries this module's plain HTTP both ways.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{TcpStream, ToSocketAddrs},
    os::{fd::OwnedFd, unix::net::UnixStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

/// The most a gateway answer may hold (a range of every lease of a large network fits).
const MAX_BODY: usize = 64 << 20;
const MAX_LINE: usize = 8 << 10;

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

impl Transport {
    fn set_read_timeout(&self, left: Duration) -> std::io::Result<()> {
        match self {
            Self::Tcp(socket) => socket.set_read_timeout(Some(left)),
            Self::Helper(socket, _) => socket.set_read_timeout(Some(left)),
        }
    }

    fn set_write_timeout(&self, left: Duration) -> std::io::Result<()> {
        match self {
            Self::Tcp(socket) => socket.set_write_timeout(Some(left)),
            Self::Helper(socket, _) => socket.set_write_timeout(Some(left)),
        }
    }

    fn set_timeouts(&self, left: Duration) -> std::io::Result<()> {
        self.set_read_timeout(left)
            .and_then(|()| self.set_write_timeout(left))
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Self::Tcp(socket) => socket.read(buf),
            Self::Helper(socket, _) => socket.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Tcp(socket) => socket.write(buf),
            Self::Helper(socket, _) => socket.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        if let Self::Helper(_, child) = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One endpoint, `http://HOST:PORT` or `https://HOST:PORT`, and its open connection.
pub(crate) struct Endpoint {
    pub url: String,
    host: String,
    port: u16,
    tls: Option<Arc<Tls>>,
    conn: Option<BufReader<Transport>>,
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

    /// POSTs `body` (JSON) to `path` and returns the answer's body; everything within `left`.
    pub(crate) fn post(
        &mut self,
        path: &str,
        body: &str,
        left: Duration,
    ) -> Result<String, Failure> {
        self.send(path, body, left)?;
        self.receive(left)
    }

    /// Sends the request of [`post`](Self::post) without waiting for its answer, which
    /// [`receive`](Self::receive) reads (HTTP/1.1 answers come in the order of the requests).
    pub(crate) fn send(&mut self, path: &str, body: &str, left: Duration) -> Result<(), Failure> {
        if self.conn.is_none() {
            self.conn = Some(self.connect(left)?);
        }
        let result = self.write_request(path, body, left);
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    /// The answer to the request [`send`](Self::send) sent.
    pub(crate) fn receive(&mut self, left: Duration) -> Result<String, Failure> {
        let result = self.read_answer(left);
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    /// Forgets the connection (and any answer still to come on it).
    pub(crate) fn disconnect(&mut self) {
        self.conn = None;
    }

    fn connect(&self, left: Duration) -> Result<BufReader<Transport>, Failure> {
        match &self.tls {
            None => self.connect_tcp(left),
            Some(tls) => self.connect_helper(tls, left),
        }
    }

    fn connect_tcp(&self, left: Duration) -> Result<BufReader<Transport>, Failure> {
        let unsent =
            |what: &str, err: &dyn std::fmt::Display| Failure::Unsent(format!("{what}: {err}"));
        let addrs: Vec<_> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|err| unsent("cannot resolve", &err))?
            .collect();
        let mut last = None;
        let mut tcp = None;
        for addr in addrs {
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
            (None, Some(err)) => return Err(unsent("cannot connect", &err)),
            (None, None) => return Err(Failure::Unsent("no address".into())),
        };
        let _ = tcp.set_nodelay(true);
        let transport = Transport::Tcp(tcp);
        transport
            .set_timeouts(left)
            .map_err(|err| unsent("cannot set timeouts", &err))?;
        Ok(BufReader::new(transport))
    }

    /// Starts the TLS helper for this endpoint and waits for its status line: the request is
    /// written only once the handshake is done, so a failure until then is [`Failure::Unsent`].
    /// The helper ends by the deadline of its own, and is killed when the connection is dropped.
    fn connect_helper(&self, tls: &Tls, left: Duration) -> Result<BufReader<Transport>, Failure> {
        let helper = tls.helper.display();
        let unsent = |what: &str, err: &dyn std::fmt::Display| {
            Failure::Unsent(format!("{what} {helper}: {err}"))
        };
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
            .arg(left.as_millis().max(1).to_string())
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
        let transport = Transport::Helper(ours, child);
        transport
            .set_timeouts(left)
            .map_err(|err| unsent("cannot set timeouts on", &err))?;
        let mut reader = BufReader::new(transport);
        let status = read_line(&mut reader).map_err(|err| match err.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                Failure::Unsent(format!("{helper} exited before the TLS handshake"))
            }
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                Failure::Unsent("TLS handshake: timed out".into())
            }
            _ => Failure::Unsent(format!("TLS handshake: {err}")),
        })?;
        match status.strip_prefix("ERR ") {
            None if status == "OK" => Ok(reader),
            None => Err(Failure::Unsent(format!("{helper} said {status:.80}"))),
            Some(why) => Err(Failure::Unsent(why.to_owned())),
        }
    }

    fn write_request(&mut self, path: &str, body: &str, left: Duration) -> Result<(), Failure> {
        let Some(reader) = self.conn.as_mut() else {
            return Err(Failure::Unsent("no connection".into()));
        };
        let _ = reader.get_ref().set_write_timeout(left);
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

    fn read_answer(&mut self, left: Duration) -> Result<String, Failure> {
        let Some(reader) = self.conn.as_mut() else {
            return Err(Failure::Unanswered("no connection".into()));
        };
        let _ = reader.get_ref().set_read_timeout(left);
        let unanswered = |err: std::io::Error| Failure::Unanswered(format!("no answer: {err}"));
        let status_line = read_line(reader).map_err(unanswered)?;
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| Failure::Unanswered(format!("not HTTP: {status_line:.80}")))?;
        let (mut length, mut chunked, mut close) = (None, false, false);
        loop {
            let line = read_line(reader).map_err(unanswered)?;
            if line.is_empty() {
                break;
            }
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse::<usize>().ok(),
                "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                "connection" => close = value.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
        let body = match (chunked, length) {
            (true, _) => read_chunked(reader),
            (false, Some(n)) if n <= MAX_BODY => read_exact(reader, n),
            (false, Some(n)) => Err(invalid(format!("an answer of {n} bytes"))),
            (false, None) => {
                close = true;
                let mut out = Vec::new();
                reader
                    .take(MAX_BODY as u64)
                    .read_to_end(&mut out)
                    .map(|_| out)
            }
        }
        .map_err(unanswered)?;
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

fn invalid(what: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what)
}

/// One line, without its CRLF.
fn read_line(reader: &mut impl BufRead) -> std::io::Result<String> {
    let mut line = Vec::new();
    let n = reader.take(MAX_LINE as u64).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

fn read_exact(reader: &mut impl Read, n: usize) -> std::io::Result<Vec<u8>> {
    let mut out = vec![0; n];
    reader.read_exact(&mut out)?;
    Ok(out)
}

fn read_chunked(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line = read_line(reader)?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| invalid(format!("chunk size {size:.20}")))?;
        if size == 0 {
            // Trailers, then the empty line.
            while !read_line(reader)?.is_empty() {}
            return Ok(out);
        }
        if out.len() + size > MAX_BODY {
            return Err(invalid("an answer too large".into()));
        }
        out.extend(read_exact(reader, size)?);
        read_line(reader)?;
    }
}
