//! etcd's v3 API through its JSON gateway (`POST /v3/kv/range`, `/v3/kv/txn`): the same
//! requests and the same guarantees as gRPC, over plain HTTP/1.1 with keep-alive, synchronous.
//!
//! **TLS, through the helper.** `client.rs` finds the helper when it opens an `https://` cluster:
//! `oci-macvlan-tls` in the directory of `/proc/self/exe`, else in `../libexec/oci-macvlan/`
//! relative to it (the package's `/usr/libexec/oci-macvlan/`); never from the environment or the
//! definition, since the hook runs as root on input from less trusted bundles. Not found: an
//! `Unavailable` error naming both places (exit 1), before anything is sent. It also opens the CA,
//! certificate and key files then, so that one that cannot be read is named at once, as before.
//! `http.rs` starts the helper once per endpoint a command uses (kept alive across the command's
//! requests, like a TCP connection), with an empty environment, stderr discarded, stdin and stdout
//! one end of a socketpair, and arguments `--host --port --server-name --timeout-ms --cacert
//! [--cert --key]` (paths: the helper reads the files; no key material on a command line). The
//! helper writes one status line: `OK` once the handshake is done, or `ERR why` (the rustls error,
//! e.g. `TLS handshake: invalid peer certificate: UnknownIssuer`, or `invalid --ipam-opt etcd_key:
//! PATH: why`) and exits. Only after `OK` does the client write its request, so the failures keep
//! their meaning exactly: no `OK` (handshake failed, helper missing or dead, timeout) is *unsent*
//! and the next member is tried; a request written to the helper may have reached the member, so a
//! write with no answer (helper killed, member gone) is *unanswered* and never resent. Then the
//! helper pumps bytes (one `poll` loop over the socket and the member's TCP connection) until
//! either side closes. `--timeout-ms` bounds its connection and handshake (every read and write of
//! them: a member that sends its handshake a byte at a time is cut off), the client's share of the
//! operation's time for that endpoint; after `OK` the client bounds each exchange by its own
//! deadline (one session serves the several operations of a command). It never outlives the
//! command: it exits when the client's end closes (the hook exited, even by SIGKILL), and the
//! client kills and reaps it when it drops the connection.
//!
//! **Round trips.** An attach is one range and one transaction per attempt, a detach whose
//! namespace is gone one range and one transaction (counted by the member in
//! `tests/tests/etcd_round_trips.rs`). The range is sent as soon as the container's lock is held
//! (`LeaseStore::read_ahead`, a hint the local store ignores): the member answers while the hook
//! opens the namespace, reads the record and checks the parents, and the first read of the store
//! takes that answer (`Client::send_ahead`; any other request first drops that connection and its
//! answer). Sent under the container's lock, it sees every earlier change of that container; the
//! compare decides as ever. Neither can be one round trip: deciding on state kept from an earlier
//! command would send the write first, and a write that gets no answer (a member that lost its
//! quorum) may still be applied, so a cluster without quorum would leave a record behind where a
//! read first fails cleanly. Blocks per host would not remove the write either: each lease names
//! its host and container in etcd, which the refusal of a static address another host holds, and
//! `gc --forget-host`, need.
//!
//! **What happens on each failure.** Every operation of the store (`Client::begin` at each
//! `LeaseStore` call: a read, a transaction or a release with its retries; a read sent ahead
//! begins the operation that takes its answer) ends by its own deadline, `etcd_timeout` after its
//! start: one cluster's silence never spends another's time (`gc`, `verify`, a detach over several
//! stores), nor one operation's the next one's. Within it, each endpoint's turn is an equal share
//! of the time left among the endpoints still to try (at least 100 ms): a connection must be made
//! within it, and a read answered; a write, once sent, waits until the deadline. A round in which a
//! try was cut off by the end of its turn is followed by another while time is left (a member whose
//! cluster is electing a leader answers a later try), each endpoint named once in the error, with
//! what it said last; a round of prompt failures (all refused) ends the call at once. Every read and
//! write of an exchange obeys its deadline (`http.rs`), and each part of an answer is capped, so a
//! member that answers a header line at a time, dribbles its body or floods headers is cut off.
//! An endpoint that refuses the connection, has no route, does not connect within its turn, cannot
//! be resolved, or does not answer a read within its turn: the next one is tried, and the error
//! names each with its own cause. No member answers a read in time (all down, no quorum: a member without quorum does not
//! answer a linearizable read), or answers with an error: `Error::Unavailable` naming the endpoints
//! and what each said: the attach fails (exit 1) before anything is written; its undo removes the
//! record it wrote; nothing is created or recorded. A write (`kv/txn`) that reached a member and
//! got no answer (timeout, reset, an etcd error such as "request timed out" when quorum goes
//! mid-request) may still be applied later: it is not sent to another member (a retry would find
//! its own lease and take it for one held before), the error says "it may still be applied", and
//! the attach pushes an undo step that releases the owner's leases on that network (the owner held
//! none before this run: the record of an earlier run says so); if that release cannot reach etcd
//! either, the undo keeps the endpoint record, so that poststop or `gc` (which opens every
//! cluster the defined networks and the endpoint records use) releases it. A release (poststop,
//! `gc`) whose answer is lost fails the same way; the record stays, and the next poststop or `gc`
//! finds the lease gone or releases it. The failpoint `etcd:write-unanswered` (in `client.rs`)
//! loses the answer of a write etcd applied, to test exactly that (`tests/tests/etcd_unanswered.rs`).
//! A network's definition removed or edited by hand while a container holds leases: its detach
//! opens the stores its record names, so the etcd lease is released all the same (and a local
//! detach never waits on a cluster the edited definition names). There is never a fallback to the
//! local store.

use std::{
    fs::File,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use crate::{
    EtcdConfig,
    http::{Endpoint, Failure, Tls},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use oci_macvlan_ipam::{Error, Result};
use serde_json::{Value, json};

/// The failpoint (feature `failpoints`) at which a write etcd applied gets no answer: the
/// command then fails as if the member had gone silent after the write reached it.
pub const WRITE_UNANSWERED: &str = "etcd:write-unanswered";

/// The least time an endpoint's turn is given, however many endpoints are left to try (less
/// only when less is left).
const MIN_SHARE: Duration = Duration::from_millis(100);

/// A connection to one cluster, with the deadline of the operation under way: every request
/// of it, retries included, ends by then. Each operation of the store ([`Client::begin`]) has
/// a deadline of its own, so one cluster's silence never spends another's time, nor one
/// operation's an operation after it.
#[derive(Debug)]
pub(crate) struct Client {
    endpoints: Vec<Endpoint>,
    /// The endpoint that answered last: tried first next time.
    current: usize,
    /// When the operation under way must end: `etcd_timeout` after its start.
    deadline: Instant,
    timeout: Duration,
    describe: String,
    /// A read sent ahead (see [`Client::send_ahead`]): its endpoint, path and body.
    ahead: Option<(usize, String, String)>,
    /// A read was sent ahead (or tried) since the last [`Client::begin`]: the operation that
    /// takes its answer began then, and keeps that deadline.
    began_ahead: bool,
}

/// What each endpoint a call tried said last, in the order they were first tried.
#[derive(Debug, Default)]
struct Tried(Vec<(usize, String)>);

impl Tried {
    fn note(&mut self, at: usize, what: String) {
        match self.0.iter_mut().find(|(i, _)| *i == at) {
            Some(said) => said.1 = what,
            None => self.0.push((at, what)),
        }
    }

    /// Notes `what` unless the endpoint said something already.
    fn note_first(&mut self, at: usize, what: String) {
        if !self.0.iter().any(|(i, _)| *i == at) {
            self.0.push((at, what));
        }
    }
}

impl std::fmt::Display for Tried {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (n, (_, what)) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str("; ")?;
            }
            f.write_str(what)?;
        }
        Ok(())
    }
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
        Self::with_helper(config, tls_helper)
    }

    /// [`Client::new`] with the TLS helper `find_helper` finds (a test's stand-in).
    pub(crate) fn with_helper(
        config: &EtcdConfig,
        find_helper: impl FnOnce() -> std::result::Result<PathBuf, String>,
    ) -> Result<Self> {
        let timeout = config.timeout();
        let tls = match &config.cacert {
            Some(ca) => Some(Arc::new(tls(config, ca, find_helper)?)),
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
            began_ahead: false,
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

    /// Starts an operation (a read, a transaction with its retries): its deadline is
    /// `etcd_timeout` from now.
    /// An operation that follows a read sent ahead began with it ([`Client::send_ahead`]).
    pub(crate) fn begin(&mut self) {
        if std::mem::take(&mut self.began_ahead) {
            return;
        }
        self.deadline = Instant::now() + self.timeout;
    }

    /// Whether the operation's time is up (a loop of retries stops then).
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
    /// first) until one answers or the deadline passes. Each endpoint's turn has a share of
    /// the time left ([`share`]), so that a member that is down, unreachable, or answers too
    /// slowly leaves the others their turn: a read's whole exchange, a write's connection (a
    /// write that was sent waits for its answer until the deadline). When a try was cut off
    /// by the end of its turn, another round begins while time is left: a member electing a
    /// leader answers the next. A write (`writes`) that reached a
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
        let mut tried = Tried::default();
        let n = self.endpoints.len();
        for round in 0.. {
            // Whether a try of this round was cut off by the end of its turn: the member may
            // answer another, while time is left (a leader being elected, a slow link).
            let mut cut_off = false;
            for i in 0..n {
                let at = (start + i) % n;
                let now = Instant::now();
                let left = self.deadline.saturating_duration_since(now);
                let url = self.endpoints[at].url.clone();
                if left.is_zero() {
                    tried.note_first(at, format!("{url}: not tried, time was up"));
                    continue;
                }
                let turn = now + share(left, n - i);
                let deadline = if writes { self.deadline } else { turn };
                let mut answer = if round == 0 && i == 0 && ahead.is_some() {
                    self.endpoints[at].receive(deadline)
                } else {
                    self.endpoints[at].post(&format!("/v3/{path}"), &body, turn, deadline)
                };
                // The fault-injection suite's lost answer: etcd applied the write, no answer.
                if writes && answer.is_ok() && oci_macvlan_ipam::failpoint::fails(WRITE_UNANSWERED)
                {
                    answer = Err(Failure::Unanswered(format!(
                        "answer lost (failpoint {WRITE_UNANSWERED})"
                    )));
                }
                let turn_used = turn < self.deadline && Instant::now() >= turn;
                match answer {
                    Ok(text) => {
                        self.current = at;
                        return serde_json::from_str(&text).map_err(|err| {
                            let what = format!("{url} answered {text:.200}");
                            self.unavailable(what, Some(Box::new(err)))
                        });
                    }
                    // etcd answered with an error of its own (no leader, request timed out, …).
                    Err(Failure::Status(code, text)) => {
                        let message = serde_json::from_str::<Value>(&text)
                            .ok()
                            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
                            .unwrap_or(text);
                        tried.note(at, format!("{url}: HTTP {code} {message}"));
                        if writes {
                            return Err(self.unknown_outcome(path, &tried));
                        }
                    }
                    Err(Failure::Unsent(why)) => {
                        tried.note(at, format!("{url}: {why}"));
                        cut_off |= turn_used;
                    }
                    Err(Failure::Unanswered(why)) => {
                        tried.note(at, format!("{url}: {why}"));
                        if writes {
                            return Err(self.unknown_outcome(path, &tried));
                        }
                        cut_off |= turn_used;
                    }
                }
            }
            if !cut_off || self.expired() {
                break;
            }
        }
        Err(self.unavailable(
            format!(
                "no member answered {path} within etcd_timeout {} ms ({tried})",
                self.timeout.as_millis(),
            ),
            None,
        ))
    }

    fn unknown_outcome(&self, path: &str, tried: &Tried) -> Error {
        Error::Unavailable {
            store: self.describe.clone(),
            what: format!(
                "{path} sent, no answer within etcd_timeout {} ms: it may still be applied \
                 ({tried})",
                self.timeout.as_millis(),
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
    /// `range` asks again. Nothing is sent if the endpoint cannot be reached within its share
    /// of the time ([`share`]); it is then tried last.
    pub(crate) fn send_ahead(&mut self, start: &[u8], end: &[u8]) {
        let (path, body) = ("kv/range", range_body(start, end).to_string());
        let at = self.current;
        // The operation that takes the answer begins now.
        let now = Instant::now();
        self.deadline = now + self.timeout;
        self.began_ahead = true;
        let connect_by = now + share(self.timeout, self.endpoints.len());
        match self.endpoints[at].send(&format!("/v3/{path}"), &body, connect_by, self.deadline) {
            Ok(()) => self.ahead = Some((at, path.to_owned(), body)),
            Err(Failure::Unsent(_)) => self.current = (at + 1) % self.endpoints.len(),
            Err(_) => {}
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

/// An endpoint's turn when `left` remains and `untried` endpoints (this one included) are
/// still to be tried: an equal share, at least [`MIN_SHARE`], at most `left`.
pub(crate) fn share(left: Duration, untried: usize) -> Duration {
    let untried = u32::try_from(untried.max(1)).unwrap_or(u32::MAX);
    (left / untried).max(MIN_SHARE).min(left)
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

/// The helper's file name, and where it is looked for beside the running executable: the same
/// directory (a build's `target/debug/`, `/usr/local/bin`), then `../libexec/oci-macvlan/`
/// (Debian's `/usr/libexec/oci-macvlan/` for `/usr/bin/oci-macvlan`). Never from the
/// environment or the definition: the hook runs as root on input from less trusted bundles.
pub(crate) const TLS_HELPER: &str = "oci-macvlan-tls";

pub(crate) fn helper_candidates(exe: &Path) -> Vec<PathBuf> {
    let dir = exe.parent().unwrap_or(Path::new("/"));
    let mut list = vec![dir.join(TLS_HELPER)];
    if let Some(prefix) = dir.parent() {
        list.push(prefix.join("libexec/oci-macvlan").join(TLS_HELPER));
    }
    list
}

/// The TLS helper of the running executable, or an error naming where it was looked for.
fn tls_helper() -> std::result::Result<PathBuf, String> {
    let exe = std::fs::read_link("/proc/self/exe")
        .map_err(|err| format!("cannot find the {TLS_HELPER} helper: /proc/self/exe: {err}"))?;
    let candidates = helper_candidates(&exe);
    if let Some(found) = candidates.iter().find(|path| path.is_file()) {
        return Ok(found.clone());
    }
    let looked: Vec<_> = candidates.iter().map(|p| p.display().to_string()).collect();
    Err(format!(
        "https endpoints need the {TLS_HELPER} helper, not found (looked for {})",
        looked.join(" and ")
    ))
}

/// What the TLS helper needs, checked here so that an unreadable file is named at once (the
/// helper parses them, and names the option and path of what it cannot use).
fn tls(
    config: &EtcdConfig,
    ca: &Path,
    find_helper: impl FnOnce() -> std::result::Result<PathBuf, String>,
) -> Result<Tls> {
    let readable = |key: &str, path: &Path| {
        File::open(path).map(drop).map_err(|err| Error::IpamOption {
            key: key.to_owned(),
            reason: format!("{}: {err}", path.display()),
        })
    };
    readable("etcd_cacert", ca)?;
    let (cert, key) = match (&config.cert, &config.key) {
        (Some(cert), Some(key)) => {
            readable("etcd_cert", cert)?;
            readable("etcd_key", key)?;
            (Some(cert.clone()), Some(key.clone()))
        }
        _ => (None, None),
    };
    let helper = find_helper().map_err(|what| Error::Unavailable {
        store: config.describe(),
        what,
        maybe_written: false,
        source: None,
    })?;
    Ok(Tls {
        helper,
        cacert: ca.to_owned(),
        cert,
        key,
    })
}
