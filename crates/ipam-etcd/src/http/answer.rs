//! An etcd member's answer, read with every part capped: an answer over a cap is an error
//! (`InvalidData`), never read on. The caps: the status line and each header, chunk-size or
//! trailer line [`MAX_LINE`], the header lines (trailers included) [`MAX_HEADER_LINES`] and
//! [`MAX_HEADER_BYTES`] in all, the body [`MAX_BODY`], read as it comes, never allocated ahead
//! from a length the member gave.

use std::io::{BufRead, ErrorKind, Read};

/// The longest status line, header line, chunk-size line or trailer line.
const MAX_LINE: usize = 8 << 10;
/// The most an answer's header (and trailer) lines may hold in all, and how many they may be.
const MAX_HEADER_BYTES: usize = 64 << 10;
const MAX_HEADER_LINES: usize = 100;
/// The most an answer's body may hold: a range of every lease of a prefix holding some 30,000
/// (a lease is about 500 bytes of JSON as the gateway encodes it). Decoding an answer takes
/// several times its size in memory, and every hook of the prefix reads it: the cap keeps a
/// hostile or overgrown answer to a few hundred MB in the worst case.
const MAX_BODY: usize = 16 << 20;

/// An answer: its status, its body, and whether the member closes the connection after it.
/// Every part is capped (see the constants above); a part over its cap is `InvalidData`.
pub(super) fn read_response(reader: &mut impl BufRead) -> std::io::Result<(u16, Vec<u8>, bool)> {
    let status_line = read_line(reader)?;
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid(format!("not HTTP: {status_line:.80}")))?;
    let (mut length, mut chunked, mut close) = (None, false, false);
    let mut headers = Headers::default();
    loop {
        let line = headers.next(reader)?;
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| invalid(format!("content-length {value:.20}")))?,
                );
            }
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "connection" => close = value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    let body = match (chunked, length) {
        (true, _) => read_chunked(reader, &mut headers)?,
        (false, Some(n)) => read_body(reader, n, true)?,
        (false, None) => {
            close = true;
            read_body(reader, MAX_BODY, false)?
        }
    };
    Ok((status, body, close))
}

/// The header lines of one answer (its trailers included), counted against their caps.
#[derive(Default)]
struct Headers {
    lines: usize,
    bytes: usize,
}

impl Headers {
    fn next(&mut self, reader: &mut impl BufRead) -> std::io::Result<String> {
        let line = read_line(reader)?;
        self.lines += 1;
        self.bytes += line.len() + 2;
        if self.lines > MAX_HEADER_LINES {
            return Err(invalid(format!(
                "more than {MAX_HEADER_LINES} header lines"
            )));
        }
        if self.bytes > MAX_HEADER_BYTES {
            return Err(invalid(format!(
                "headers over {} KiB",
                MAX_HEADER_BYTES >> 10
            )));
        }
        Ok(line)
    }
}

fn invalid(what: String) -> std::io::Error {
    std::io::Error::new(ErrorKind::InvalidData, what)
}

/// One line, without its CRLF; a line longer than [`MAX_LINE`] is an error.
pub(super) fn read_line(reader: &mut impl BufRead) -> std::io::Result<String> {
    let mut line = Vec::new();
    let n = reader
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(std::io::Error::new(
            ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    if line.last() != Some(&b'\n') {
        return Err(if n > MAX_LINE {
            invalid(format!("a line over {} KiB", MAX_LINE >> 10))
        } else {
            std::io::Error::new(ErrorKind::UnexpectedEof, "connection closed mid-line")
        });
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// A body of `n` bytes (`exact`: all of them, or an error), or of what comes until the
/// member closes, at most `n`: over [`MAX_BODY`] either way is an error. Read as it comes,
/// never allocated ahead from a length the member gave.
fn read_body(reader: &mut impl Read, n: usize, exact: bool) -> std::io::Result<Vec<u8>> {
    if n > MAX_BODY {
        return Err(too_large());
    }
    let mut out = Vec::new();
    let limit = if exact { n } else { n + 1 };
    reader.take(limit as u64).read_to_end(&mut out)?;
    if out.len() > MAX_BODY {
        return Err(too_large());
    }
    if exact && out.len() < n {
        return Err(std::io::Error::new(
            ErrorKind::UnexpectedEof,
            "connection closed mid-answer",
        ));
    }
    Ok(out)
}

fn too_large() -> std::io::Error {
    invalid(format!("an answer over {} MiB", MAX_BODY >> 20))
}

fn read_chunked(reader: &mut impl BufRead, trailers: &mut Headers) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line = read_line(reader)?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| invalid(format!("chunk size {size:.20}")))?;
        if size == 0 {
            // Trailers, then the empty line.
            while !trailers.next(reader)?.is_empty() {}
            return Ok(out);
        }
        if size > MAX_BODY - out.len() {
            return Err(too_large());
        }
        out.extend(read_body(reader, size, true)?);
        if !read_line(reader)?.is_empty() {
            return Err(invalid("a chunk longer than its size".into()));
        }
    }
}
