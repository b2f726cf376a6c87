//! The little of HTTP/1.1 etcd's JSON gateway needs: `POST` with a body, an answer with a
//! `Content-Length` or chunked body, one kept-alive connection per endpoint, optionally over
//! TLS. Written here rather than taken from an HTTP client crate: those bring URL parsing with
//! IDNA tables and a bundle of web root certificates, whose relocations every hook (a static
//! PIE) would pay at each start, local networks included.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{TcpStream, ToSocketAddrs},
    sync::Arc,
    time::Duration,
};

use rustls::{ClientConfig, ClientConnection, StreamOwned, pki_types::ServerName};

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

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// One endpoint, `http://HOST:PORT` or `https://HOST:PORT`, and its open connection.
pub(crate) struct Endpoint {
    pub url: String,
    host: String,
    port: u16,
    tls: Option<Arc<ClientConfig>>,
    /// The connection, and the socket under it (for its timeouts).
    conn: Option<(BufReader<Box<dyn Stream>>, TcpStream)>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

impl Endpoint {
    /// `url` as `options.rs` checked it (scheme, host, port).
    pub(crate) fn new(url: &str, tls: Option<Arc<ClientConfig>>) -> Self {
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

    fn connect(&self, left: Duration) -> Result<(BufReader<Box<dyn Stream>>, TcpStream), Failure> {
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
        let timeouts = tcp
            .set_read_timeout(Some(left))
            .and_then(|()| tcp.set_write_timeout(Some(left)));
        timeouts.map_err(|err| unsent("cannot set timeouts", &err))?;
        let socket = tcp.try_clone().map_err(|err| unsent("socket", &err))?;
        let stream: Box<dyn Stream> = match &self.tls {
            None => Box::new(tcp),
            Some(config) => {
                let name = ServerName::try_from(self.host.clone())
                    .map_err(|err| unsent("TLS server name", &err))?;
                let mut session = ClientConnection::new(config.clone(), name)
                    .map_err(|err| unsent("TLS", &err))?;
                let mut tcp = tcp;
                while session.is_handshaking() {
                    session
                        .complete_io(&mut tcp)
                        .map_err(|err| unsent("TLS handshake", &err))?;
                }
                Box::new(StreamOwned::new(session, tcp))
            }
        };
        Ok((BufReader::new(stream), socket))
    }

    fn write_request(&mut self, path: &str, body: &str, left: Duration) -> Result<(), Failure> {
        let Some((reader, socket)) = self.conn.as_mut() else {
            return Err(Failure::Unsent("no connection".into()));
        };
        let _ = socket.set_write_timeout(Some(left));
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
        let Some((reader, socket)) = self.conn.as_mut() else {
            return Err(Failure::Unanswered("no connection".into()));
        };
        let _ = socket.set_read_timeout(Some(left));
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
