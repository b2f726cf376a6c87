//! etcd's v3 API through its JSON gateway (`POST /v3/kv/range`, `/v3/kv/txn`): the same
//! requests and the same guarantees as gRPC, over plain HTTP/1.1 with keep-alive, synchronous.

use std::{
    fs::File,
    io::BufReader,
    sync::Arc,
    time::{Duration, Instant},
};

use crate::http::{Endpoint, Failure};

use base64::{Engine, engine::general_purpose::STANDARD};
use oci_macvlan_ipam::{Error, EtcdConfig, Result};
use serde_json::{Value, json};

/// The failpoint (feature `failpoints`) at which a write etcd applied gets no answer: the
/// command then fails as if the member had gone silent after the write reached it.
pub const WRITE_UNANSWERED: &str = "etcd:write-unanswered";

/// A connection to one cluster, with the deadline of the command that uses it: every request,
/// retries included, ends by then.
#[derive(Debug)]
pub(crate) struct Client {
    endpoints: Vec<Endpoint>,
    /// The endpoint that answered last: tried first next time.
    current: usize,
    deadline: Instant,
    timeout: Duration,
    describe: String,
    /// A read sent ahead (see [`Client::send_ahead`]): its endpoint, path and body.
    ahead: Option<(usize, String, String)>,
}

/// A key and what etcd keeps about it.
#[derive(Debug, Clone)]
pub(crate) struct Kv {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub mod_revision: i64,
}

impl Client {
    pub(crate) fn new(config: &EtcdConfig) -> Result<Self> {
        let timeout = config.timeout();
        let tls = match &config.cacert {
            Some(ca) => Some(Arc::new(tls_config(config, ca)?)),
            None => None,
        };
        Ok(Self {
            endpoints: config
                .endpoints
                .iter()
                .map(|url| Endpoint::new(url, tls.clone()))
                .collect(),
            current: 0,
            deadline: Instant::now() + timeout,
            timeout,
            describe: config.describe(),
            ahead: None,
        })
    }

    fn unavailable(
        &self,
        what: String,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Error {
        Error::Unavailable {
            store: self.describe.clone(),
            what,
            maybe_written: false,
            source,
        }
    }

    /// Whether the command's time is up (a loop of retries stops then).
    pub(crate) fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }

    pub(crate) fn conflicts_error(&self, attempts: u32) -> Error {
        self.unavailable(
            format!(
                "{attempts} attempts conflicted with other hosts' writes within etcd_timeout {} ms",
                self.timeout.as_millis()
            ),
            None,
        )
    }

    /// POSTs `body` to `path`, trying each endpoint in turn (the one that answered last
    /// first) until one answers or the deadline passes. A write (`writes`) that reached a
    /// member and got no answer may still be applied: it is not sent again elsewhere (a retry
    /// would find its own lease and take it for an earlier one), and the error says so.
    fn call(&mut self, path: &str, body: &Value, writes: bool) -> Result<Value> {
        let body = body.to_string();
        // The read sent ahead, if this is it: its answer is read first, as the first try.
        let ahead = match self.ahead.take() {
            Some((at, ahead_path, ahead_body))
                if !writes && ahead_path == path && ahead_body == body =>
            {
                Some(at)
            }
            Some((at, _, _)) => {
                // Its answer would come first on that connection: a new one instead.
                self.endpoints[at].disconnect();
                None
            }
            None => None,
        };
        let start = ahead.unwrap_or(self.current);
        let mut tried = Vec::new();
        let n = self.endpoints.len();
        for i in 0..n {
            let at = (start + i) % n;
            let left = self.deadline.saturating_duration_since(Instant::now());
            let url = self.endpoints[at].url.clone();
            if left.is_zero() {
                tried.push(format!("{url}: not tried, time was up"));
                continue;
            }
            let mut answer = if i == 0 && ahead.is_some() {
                self.endpoints[at].receive(left)
            } else {
                self.endpoints[at].post(&format!("/v3/{path}"), &body, left)
            };
            // The fault-injection suite's lost answer: etcd applied the write, no answer came.
            if writes && answer.is_ok() && oci_macvlan_ipam::failpoint::fails(WRITE_UNANSWERED) {
                answer = Err(Failure::Unanswered(format!(
                    "answer lost (failpoint {WRITE_UNANSWERED})"
                )));
            }
            match answer {
                Ok(text) => {
                    self.current = at;
                    return serde_json::from_str(&text).map_err(|err| {
                        self.unavailable(format!("{url} answered {text:.200}"), Some(Box::new(err)))
                    });
                }
                // etcd answered with an error of its own (no leader, request timed out, …).
                Err(Failure::Status(code, text)) => {
                    let message = serde_json::from_str::<Value>(&text)
                        .ok()
                        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
                        .unwrap_or(text);
                    tried.push(format!("{url}: HTTP {code} {message}"));
                    if writes {
                        return Err(self.unknown_outcome(path, &tried));
                    }
                }
                Err(Failure::Unsent(why)) => tried.push(format!("{url}: {why}")),
                Err(Failure::Unanswered(why)) => {
                    tried.push(format!("{url}: {why}"));
                    if writes {
                        return Err(self.unknown_outcome(path, &tried));
                    }
                }
            }
        }
        Err(self.unavailable(
            format!(
                "no member answered {path} within etcd_timeout {} ms ({})",
                self.timeout.as_millis(),
                tried.join("; ")
            ),
            None,
        ))
    }

    fn unknown_outcome(&self, path: &str, tried: &[String]) -> Error {
        Error::Unavailable {
            store: self.describe.clone(),
            what: format!(
                "{path} sent, no answer within etcd_timeout {} ms: it may still be applied ({})",
                self.timeout.as_millis(),
                tried.join("; ")
            ),
            maybe_written: true,
            source: None,
        }
    }

    /// Every key in `[start, end)`, in key order, at one revision (linearizable).
    pub(crate) fn range(&mut self, start: &[u8], end: &[u8]) -> Result<Vec<Kv>> {
        let answer = self.call("kv/range", &range_body(start, end), false)?;
        kvs(answer.get("kvs"))
    }

    /// Sends the [`range`](Self::range) of `[start, end)` now, to the endpoint tried first,
    /// without waiting: the member answers while the command does its local work, and the
    /// first `range` of the same keys takes that answer. A read only: if it is lost, the
    /// `range` asks again. Nothing is sent if the endpoint cannot be reached at once.
    pub(crate) fn send_ahead(&mut self, start: &[u8], end: &[u8]) {
        let (path, body) = ("kv/range", range_body(start, end).to_string());
        let at = self.current;
        let left = self.deadline.saturating_duration_since(Instant::now());
        if self.endpoints[at]
            .send(&format!("/v3/{path}"), &body, left)
            .is_ok()
        {
            self.ahead = Some((at, path.to_owned(), body));
        }
    }

    /// One transaction: `compare` all true → `success`, else `failure` (nothing). Returns
    /// whether it succeeded.
    pub(crate) fn txn(&mut self, compare: Vec<Value>, success: Vec<Value>) -> Result<bool> {
        let answer = self.call(
            "kv/txn",
            &json!({ "compare": compare, "success": success, "failure": [] }),
            true,
        )?;
        Ok(answer.get("succeeded").and_then(Value::as_bool) == Some(true))
    }
}

fn range_body(start: &[u8], end: &[u8]) -> Value {
    json!({ "key": STANDARD.encode(start), "range_end": STANDARD.encode(end) })
}

/// `create_revision(key) == 0`: the key does not exist.
pub(crate) fn absent(key: &[u8]) -> Value {
    json!({ "target": "CREATE", "result": "EQUAL", "key": STANDARD.encode(key), "create_revision": "0" })
}

/// `mod_revision(key) == revision`: nobody wrote the key since it was read.
pub(crate) fn unchanged(key: &[u8], revision: i64) -> Value {
    json!({ "target": "MOD", "result": "EQUAL", "key": STANDARD.encode(key), "mod_revision": revision.to_string() })
}

pub(crate) fn put(key: &[u8], value: &[u8]) -> Value {
    json!({ "request_put": { "key": STANDARD.encode(key), "value": STANDARD.encode(value) } })
}

pub(crate) fn delete(key: &[u8]) -> Value {
    json!({ "request_delete_range": { "key": STANDARD.encode(key) } })
}

fn kvs(list: Option<&Value>) -> Result<Vec<Kv>> {
    let Some(list) = list.and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    let corrupt = |what: &str| Error::Corrupt(format!("etcd answered a key without {what}"));
    list.iter()
        .map(|kv| {
            let decode = |field: &str| -> Result<Vec<u8>> {
                match kv.get(field).and_then(Value::as_str) {
                    None => Ok(Vec::new()),
                    Some(text) => STANDARD.decode(text).map_err(|_| corrupt(field)),
                }
            };
            let mod_revision = kv
                .get("mod_revision")
                .and_then(Value::as_str)
                .and_then(|r| r.parse().ok())
                .ok_or_else(|| corrupt("mod_revision"))?;
            Ok(Kv {
                key: decode("key")?,
                value: decode("value")?,
                mod_revision,
            })
        })
        .collect()
}

fn tls_config(config: &EtcdConfig, ca: &std::path::Path) -> Result<rustls::ClientConfig> {
    let bad = |key: &str, path: &std::path::Path, why: String| Error::IpamOption {
        key: key.to_owned(),
        reason: format!("{}: {why}", path.display()),
    };
    let read_certs = |key: &str, path: &std::path::Path| {
        let file = File::open(path).map_err(|err| bad(key, path, err.to_string()))?;
        rustls_pemfile::certs(&mut BufReader::new(file))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|err| bad(key, path, err.to_string()))
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certs("etcd_cacert", ca)? {
        roots
            .add(cert)
            .map_err(|err| bad("etcd_cacert", ca, err.to_string()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| bad("etcd_cacert", ca, err.to_string()))?
        .with_root_certificates(roots);
    match (&config.cert, &config.key) {
        (Some(cert), Some(key)) => {
            let chain = read_certs("etcd_cert", cert)?;
            let file = File::open(key).map_err(|err| bad("etcd_key", key, err.to_string()))?;
            let private = rustls_pemfile::private_key(&mut BufReader::new(file))
                .map_err(|err| bad("etcd_key", key, err.to_string()))?
                .ok_or_else(|| bad("etcd_key", key, "no private key in it".into()))?;
            builder
                .with_client_auth_cert(chain, private)
                .map_err(|err| bad("etcd_key", key, err.to_string()))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}
