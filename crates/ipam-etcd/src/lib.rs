//! The lease store of a network that several hosts share: an etcd cluster.
//!
//! Key layout, under the network's `etcd_prefix` (default `/oci-macvlan`):
//!
//! ```text
//! PREFIX/hosts/<host id>          the claim of a host id: {"host","proof","seen_unix"}, where
//!                                 proof is the hash of a secret only that machine holds
//! PREFIX/leases/<32 hex digits>   the lease of one address (IPv4 mapped into ::ffff:0:0/96, so
//!                                 the keys' order is the addresses' order), its value JSON:
//!                                 {"network","subnet","host","container_id","ifname","created_unix"}
//! ```
//!
//! What decides that no address is ever handed out twice is one etcd transaction per change:
//! a lease is written only `if create_revision(PREFIX/leases/<ip>) == 0` (the key does not
//! exist), and released only `if mod_revision(key) == the revision read`. The closure that
//! chose the address ran on a snapshot of every lease; when another host wrote first, the
//! compare fails, nothing is written, and the closure runs again on a new snapshot, until the
//! network's `etcd_timeout` is spent.
//!
//! What makes a host id one machine's: every write of a host carries its claim in the same
//! transaction, `if create_revision(PREFIX/hosts/<id>) == 0` (then the claim is written) or
//! `if mod_revision(PREFIX/hosts/<id>) == the revision read` of a claim whose proof is this
//! machine's. A claim with another proof refuses every write of the host ([`Error::HostClaimed`]).
//! The snapshot is one range from `PREFIX/hosts/` to the end of `PREFIX/leases/`: claims and
//! leases in the one read a change always made.
//!
//! A key in that range that is not ours (a key under `leases/` that is not an address, a value
//! that is not a lease, a key of another prefix nested in this one) is skipped, never fatal;
//! an address whose key holds something else is taken, never handed out; `verify` names each
//! (`integrity_problems`).

mod client;
#[cfg(test)]
mod client_tests;
mod http;
#[cfg(test)]
mod http_tests;

use std::{
    collections::BTreeMap,
    net::IpAddr,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use oci_macvlan_ipam::{
    Error, EtcdConfig, Lease, LeaseStore, Owner, Result, StoredLease, Txn, View, ip_of_key, to_key,
};
use serde_json::{Value, json};

pub use client::WRITE_UNANSWERED;
use client::{Client, absent, delete, put, unchanged};

/// A host refreshes its claim's `seen_unix` with a write when it is older than this (and at
/// each `gc`, through [`LeaseStore::maintain`]): at most one claim write per host this often.
pub const REFRESH_SECS: u64 = 5 * 60;
/// A host whose claim was refreshed less than this long ago is alive: `gc --forget-host`
/// refuses it. Four runs of the packaged gc timer (every 15 minutes).
pub const ALIVE_SECS: u64 = 60 * 60;

/// Who this host is in a shared store: its id and the proof of its claim (a hash of the secret
/// only this machine holds; the secret itself never leaves the machine).
#[derive(Debug, Clone)]
pub struct HostIdentity {
    pub id: String,
    /// `None` when this host has no identity file yet and the command only reads (it makes
    /// none): a write is refused then.
    pub proof: Option<String>,
    /// Where the secret is kept (named in the error that refuses another machine).
    pub kept_in: String,
}

/// Leases of one etcd cluster (one prefix), seen from one host.
#[derive(Debug)]
pub struct EtcdStore {
    client: Client,
    describe: String,
    /// `PREFIX/hosts/`
    hosts: Vec<u8>,
    /// `PREFIX/leases/`
    leases: Vec<u8>,
    host: HostIdentity,
}

/// A host's claim, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub proof: String,
    pub seen_unix: u64,
}

/// Everything under the prefix this store reads, at one revision.
#[derive(Debug, Default)]
struct Snapshot {
    /// Every lease, by address key, with the revision that last wrote it.
    leases: BTreeMap<u128, (Lease, i64)>,
    /// Addresses whose key holds something that is not a lease (a value that does not decode):
    /// taken, never handed out, never ours; what is wrong with it.
    occupied: BTreeMap<u128, String>,
    /// Claims by host id, with their revision; `None`: a value that is not a claim.
    claims: BTreeMap<String, (Option<Claim>, i64)>,
    /// Keys that are not ours, one line each (what `verify` names).
    foreign: Vec<String>,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `prefix` + 1 in its last byte: the end of a range of every key that starts with `prefix`.
fn range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1; // '/' + 1
    }
    end
}

/// A host id as `--host-id` takes it: 1 to 64 letters, digits, '.', '-' or '_'.
pub fn valid_host_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

impl EtcdStore {
    /// A store for `host` in the cluster `config` names. Nothing is sent before the first
    /// request; every request of this store ends within the config's timeout of now.
    pub fn open(config: &EtcdConfig, host: &HostIdentity) -> Result<Self> {
        Ok(Self {
            client: Client::new(config)?,
            describe: config.describe(),
            hosts: format!("{}/hosts/", config.prefix).into_bytes(),
            leases: format!("{}/leases/", config.prefix).into_bytes(),
            host: host.clone(),
        })
    }

    /// The one range every read asks: `PREFIX/hosts/` to the end of `PREFIX/leases/`.
    fn range(&self) -> (Vec<u8>, Vec<u8>) {
        (self.hosts.clone(), range_end(&self.leases))
    }

    fn key(&self, ip: IpAddr) -> Vec<u8> {
        let mut key = self.leases.clone();
        key.extend_from_slice(format!("{:032x}", to_key(ip)).as_bytes());
        key
    }

    fn claim_key(&self, host: &str) -> Vec<u8> {
        let mut key = self.hosts.clone();
        key.extend_from_slice(host.as_bytes());
        key
    }

    fn snapshot(&mut self) -> Result<Snapshot> {
        let (start, end) = self.range();
        let kvs = self.client.range(&start, &end)?;
        Ok(self.classify(kvs))
    }

    /// The keys of one range, sorted into leases, claims and what is not ours.
    fn classify(&self, kvs: Vec<client::Kv>) -> Snapshot {
        let mut out = Snapshot::default();
        for kv in kvs {
            let name = String::from_utf8_lossy(&kv.key).into_owned();
            if let Some(host) = kv.key.strip_prefix(self.hosts.as_slice()) {
                match std::str::from_utf8(host).ok().filter(|h| valid_host_id(h)) {
                    Some(host) => {
                        let claim = decode_claim(host, &kv.value);
                        if claim.is_none() {
                            out.foreign
                                .push(format!("etcd key {name}: not a host claim (skipped)"));
                        }
                        out.claims.insert(host.to_owned(), (claim, kv.mod_revision));
                    }
                    None => out.foreign.push(format!(
                        "etcd key {name}: not a host claim of this prefix (skipped)"
                    )),
                }
                continue;
            }
            let Some(key) = kv
                .key
                .strip_prefix(self.leases.as_slice())
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .filter(|hex| hex.len() == 32)
                .and_then(|hex| u128::from_str_radix(hex, 16).ok())
            else {
                out.foreign.push(format!(
                    "etcd key {name}: not a lease of this prefix (skipped)"
                ));
                continue;
            };
            match self.decode(key, &kv.value) {
                Ok(lease) => {
                    out.leases.insert(key, (lease, kv.mod_revision));
                }
                Err(why) => {
                    out.foreign.push(format!(
                        "etcd key {name}: {why} (its address is taken, never handed out)"
                    ));
                    out.occupied.insert(key, why);
                }
            }
        }
        out
    }

    fn decode(&self, key: u128, value: &[u8]) -> std::result::Result<Lease, String> {
        let lease =
            StoredLease::decode(ip_of_key(key), value, "not a lease").map_err(|err| match err {
                Error::Corrupt(why) => why,
                other => other.to_string(),
            })?;
        if lease.host.is_none() {
            return Err("a lease without a host".to_owned());
        }
        Ok(lease)
    }

    fn encode(&self, lease: &Lease) -> Result<Vec<u8>> {
        StoredLease::of(lease, Some(&self.host.id)).encode()
    }

    /// What a write of this host adds to its transaction so that it is made only while the
    /// host id is this machine's: the compare, and the claim written (absent, or due for a
    /// refresh, or `refresh`). An error when another machine holds the claim.
    fn claim_ops(&self, snapshot: &Snapshot, refresh: bool) -> Result<(Vec<Value>, Vec<Value>)> {
        let key = self.claim_key(&self.host.id);
        let Some(proof) = &self.host.proof else {
            return Err(Error::Unavailable {
                store: self.describe.clone(),
                what: format!(
                    "this host has no identity yet to write with: {} is made by its first \
                     hook, or by any command given --host-id",
                    self.host.kept_in
                ),
                maybe_written: false,
                source: None,
            });
        };
        let write = || {
            let value = json!({ "host": self.host.id, "proof": proof, "seen_unix": now_unix() });
            put(&key, value.to_string().as_bytes())
        };
        match snapshot.claims.get(&self.host.id) {
            None => Ok((vec![absent(&key)], vec![write()])),
            Some((Some(claim), revision)) if claim.proof == *proof => {
                let due = now_unix().saturating_sub(claim.seen_unix) >= REFRESH_SECS;
                let ops = if refresh || due {
                    vec![write()]
                } else {
                    Vec::new()
                };
                Ok((vec![unchanged(&key, *revision)], ops))
            }
            Some(_) => Err(Error::HostClaimed {
                host: self.host.id.clone(),
                store: self.describe.clone(),
                key: String::from_utf8_lossy(&key).into_owned(),
                kept_in: self.host.kept_in.clone(),
            }),
        }
    }

    /// Releases the leases `pick` selects, each only if nobody wrote it since it was read;
    /// `forget`: also the claim of that host, if it is not alive.
    fn release_where(
        &mut self,
        pick: impl Fn(&Lease) -> bool,
        forget: Option<&str>,
    ) -> Result<Vec<Lease>> {
        let mut attempts = 0;
        loop {
            let snapshot = self.snapshot()?;
            let (mut compare, mut success) = self.claim_ops(&snapshot, false)?;
            let victims: Vec<(Lease, i64)> = snapshot
                .leases
                .values()
                .filter(|(lease, _)| pick(lease))
                .cloned()
                .collect();
            let mut forgotten = false;
            if let Some(host) = forget {
                if let Some((claim, revision)) = snapshot.claims.get(host) {
                    self.refuse_if_alive(host, claim.as_ref())?;
                    let key = self.claim_key(host);
                    compare.push(unchanged(&key, *revision));
                    success.push(delete(&key));
                    forgotten = true;
                }
            }
            if victims.is_empty() && !forgotten {
                return Ok(Vec::new());
            }
            for (lease, revision) in &victims {
                let key = self.key(lease.ip);
                compare.push(unchanged(&key, *revision));
                success.push(delete(&key));
            }
            if self.client.txn(compare, success)? {
                return Ok(victims.into_iter().map(|(lease, _)| lease).collect());
            }
            attempts += 1;
            self.backoff(attempts)?;
        }
    }

    fn refuse_if_alive(&self, host: &str, claim: Option<&Claim>) -> Result<()> {
        let Some(claim) = claim else {
            return Ok(()); // not a claim: nothing says the host lives
        };
        let ago = now_unix().saturating_sub(claim.seen_unix);
        if ago < ALIVE_SECS {
            return Err(Error::HostAlive {
                host: host.to_owned(),
                store: self.describe.clone(),
                key: String::from_utf8_lossy(&self.claim_key(host)).into_owned(),
                ago_secs: ago,
                alive_secs: ALIVE_SECS,
            });
        }
        Ok(())
    }

    /// The claim of `host`, if there is one that reads as a claim (`gc --forget-host` asks
    /// before it asks the operator).
    pub fn claim_of(&mut self, host: &str) -> Result<Option<Claim>> {
        Ok(self
            .snapshot()?
            .claims
            .remove(host)
            .and_then(|(claim, _)| claim))
    }

    /// An error when `host` is alive in this store (see [`ALIVE_SECS`]).
    pub fn check_forgettable(&mut self, host: &str) -> Result<()> {
        let claim = self.claim_of(host)?;
        self.refuse_if_alive(host, claim.as_ref())
    }

    /// After a conflict: a pause of a few hundred microseconds, different in each process, so
    /// that hosts racing for one address do not meet again at once; an error once the
    /// command's time is spent.
    fn backoff(&self, attempts: u32) -> Result<()> {
        if self.client.expired() {
            return Err(self.client.conflicts_error(attempts));
        }
        let jitter = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
            ^ std::process::id().wrapping_mul(2_654_435_761);
        std::thread::sleep(Duration::from_micros(u64::from(jitter % 500)));
        Ok(())
    }

    fn ours(&self, lease: &Lease) -> bool {
        lease.host.as_deref() == Some(self.host.id.as_str())
    }
}

/// The claim `value` of `host`, if it is one (its own `host` field agrees).
fn decode_claim(host: &str, value: &[u8]) -> Option<Claim> {
    let value: Value = serde_json::from_slice(value).ok()?;
    if value.get("host").and_then(Value::as_str) != Some(host) {
        return None;
    }
    Some(Claim {
        proof: value.get("proof")?.as_str()?.to_owned(),
        seen_unix: value.get("seen_unix")?.as_u64()?,
    })
}

/// One attempt of a transaction: reads answer from the snapshot and what this attempt
/// inserted; inserts wait for the commit.
struct Attempt<'a> {
    snapshot: &'a Snapshot,
    pending: BTreeMap<u128, Lease>,
    host: &'a str,
}

impl Attempt<'_> {
    fn leased(&self, key: u128) -> bool {
        self.snapshot.leases.contains_key(&key)
            || self.snapshot.occupied.contains_key(&key)
            || self.pending.contains_key(&key)
    }
}

impl Attempt<'_> {
    fn leased_before(&self, key: u128) -> bool {
        self.snapshot.leases.contains_key(&key) || self.snapshot.occupied.contains_key(&key)
    }
}

impl View for Attempt<'_> {
    fn owner_leases(&mut self, network: &str, owner: &Owner) -> Result<Vec<Lease>> {
        let snapshot = self.snapshot.leases.values().map(|(lease, _)| lease);
        Ok(snapshot
            .chain(self.pending.values())
            .filter(|l| {
                l.host.as_deref() == Some(self.host) && l.network == network && l.owner == *owner
            })
            .cloned()
            .collect())
    }

    fn lease_of(&mut self, ip: IpAddr) -> Result<Option<Lease>> {
        let key = to_key(ip);
        if let Some(why) = self.snapshot.occupied.get(&key) {
            // Not a lease, but the key is there: the address is taken all the same.
            return Ok(Some(Lease {
                ip,
                subnet: ipnetwork::IpNetwork::from(ip),
                network: String::new(),
                owner: Owner {
                    container_id: "(none: its etcd key holds no lease)".to_owned(),
                    ifname: why.clone(),
                },
                host: None,
            }));
        }
        Ok(self
            .pending
            .get(&key)
            .or_else(|| self.snapshot.leases.get(&key).map(|(lease, _)| lease))
            .cloned())
    }

    fn lowest_free(&mut self, lo: u128, hi: u128, reserved: &[u128]) -> Result<Option<u128>> {
        // Each step passes a leased or reserved address: at most leases + reserved + 1 steps.
        let mut key = lo;
        loop {
            if key > hi {
                return Ok(None);
            }
            if !self.leased(key) && reserved.binary_search(&key).is_err() {
                return Ok(Some(key));
            }
            match key.checked_add(1) {
                Some(next) => key = next,
                None => return Ok(None),
            }
        }
    }

    fn count_leased(&mut self, lo: u128, hi: u128) -> Result<u128> {
        let stored = self.snapshot.leases.range(lo..=hi).count()
            + self.snapshot.occupied.range(lo..=hi).count();
        let added = self
            .pending
            .range(lo..=hi)
            .filter(|(key, _)| !self.leased_before(**key))
            .count();
        Ok((stored + added) as u128)
    }
}

impl Txn for Attempt<'_> {
    fn insert(&mut self, lease: &Lease) -> Result<()> {
        let mut lease = lease.clone();
        lease.host = Some(self.host.to_owned());
        self.pending.insert(to_key(lease.ip), lease);
        Ok(())
    }
}

impl LeaseStore for EtcdStore {
    fn run(&mut self, f: &mut dyn FnMut(&mut dyn Txn) -> Result<()>) -> Result<()> {
        let mut attempts = 0;
        loop {
            let snapshot = self.snapshot()?;
            // Refused before the closure runs: a host whose id is another machine's decides
            // nothing on that host's leases.
            let (mut compare, mut success) = self.claim_ops(&snapshot, false)?;
            let mut attempt = Attempt {
                snapshot: &snapshot,
                pending: BTreeMap::new(),
                host: &self.host.id,
            };
            f(&mut attempt)?;
            if attempt.pending.is_empty() {
                return Ok(());
            }
            for lease in attempt.pending.values() {
                let key = self.key(lease.ip);
                compare.push(absent(&key));
                success.push(put(&key, &self.encode(lease)?));
            }
            if self.client.txn(compare, success)? {
                return Ok(());
            }
            attempts += 1;
            self.backoff(attempts)?;
        }
    }

    fn view(&mut self, f: &mut dyn FnMut(&mut dyn View) -> Result<()>) -> Result<()> {
        let snapshot = self.snapshot()?;
        f(&mut Attempt {
            snapshot: &snapshot,
            pending: BTreeMap::new(),
            host: &self.host.id,
        })
    }

    fn release_container(&mut self, container_id: &str) -> Result<Vec<Lease>> {
        let host = self.host.id.clone();
        self.release_where(
            |l| l.host.as_deref() == Some(&host) && l.owner.container_id == container_id,
            None,
        )
    }

    fn release(&mut self, network: &str, owner: &Owner) -> Result<Vec<Lease>> {
        let host = self.host.id.clone();
        self.release_where(
            |l| l.host.as_deref() == Some(&host) && l.network == network && l.owner == *owner,
            None,
        )
    }

    fn release_ips(&mut self, owner: &Owner, ips: &[IpAddr]) -> Result<Vec<Lease>> {
        let host = self.host.id.clone();
        self.release_where(
            |l| l.host.as_deref() == Some(&host) && l.owner == *owner && ips.contains(&l.ip),
            None,
        )
    }

    fn container_leases(&mut self, container_id: &str) -> Result<Vec<Lease>> {
        let snapshot = self.snapshot()?;
        Ok(snapshot
            .leases
            .into_values()
            .map(|(lease, _)| lease)
            .filter(|l| self.ours(l) && l.owner.container_id == container_id)
            .collect())
    }

    fn network_leases(&mut self, network: &str) -> Result<Vec<Lease>> {
        let snapshot = self.snapshot()?;
        Ok(snapshot
            .leases
            .into_values()
            .map(|(lease, _)| lease)
            .filter(|l| l.network == network)
            .collect())
    }

    fn all_leases(&mut self) -> Result<Vec<Lease>> {
        Ok(self
            .snapshot()?
            .leases
            .into_values()
            .map(|(lease, _)| lease)
            .collect())
    }

    fn is_ours(&self, lease: &Lease) -> bool {
        self.ours(lease)
    }

    /// Each key under the prefix that is not ours (skipped by every other read), and this
    /// host's claim when another machine holds it. There is no derived data to disagree.
    fn integrity_problems(&mut self) -> Result<Vec<String>> {
        let snapshot = self.snapshot()?;
        let mut problems = snapshot.foreign.clone();
        if self.host.proof.is_some() {
            if let Err(err @ Error::HostClaimed { .. }) = self.claim_ops(&snapshot, false) {
                problems.push(err.to_string());
            }
        }
        Ok(problems)
    }

    /// Refreshes this host's claim (`gc`, from the packaged timer): a host that runs its gc
    /// is alive to every other host's `gc --forget-host`.
    fn maintain(&mut self) -> Result<Vec<String>> {
        if self.host.proof.is_none() {
            return Ok(Vec::new()); // no identity yet: nothing of this host's to keep alive
        }
        let mut attempts = 0;
        loop {
            let snapshot = self.snapshot()?;
            let claimed = snapshot.claims.contains_key(&self.host.id);
            let (compare, success) = self.claim_ops(&snapshot, true)?;
            if self.client.txn(compare, success)? {
                return Ok(if claimed {
                    Vec::new()
                } else {
                    vec![format!(
                        "claimed host id {} in {}",
                        self.host.id, self.describe
                    )]
                });
            }
            attempts += 1;
            self.backoff(attempts)?;
        }
    }

    /// Every lease of `host`, and its claim, unless the claim says it is alive
    /// ([`ALIVE_SECS`]): decided on the snapshot whose revisions the transaction compares.
    fn forget_host(&mut self, host: &str) -> Result<Vec<Lease>> {
        self.release_where(|l| l.host.as_deref() == Some(host), Some(host))
    }

    /// Sends the read of every lease (and claim) now: the member answers it while the caller
    /// does its local work (an attach: the namespace, the record, the parents), and the first
    /// read of the store takes that answer, a linearizable read made under the caller's lock.
    /// The compare that decides a write is the same.
    fn read_ahead(&mut self) {
        let (start, end) = self.range();
        self.client.send_ahead(&start, &end);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use base64::{Engine, engine::general_purpose::STANDARD};

    use super::*;

    fn lease(ip: &str, host: &str, container: &str) -> Lease {
        Lease {
            ip: ip.parse().unwrap(),
            subnet: "10.0.0.0/24".parse().unwrap(),
            network: "n".into(),
            owner: Owner {
                container_id: container.into(),
                ifname: "eth0".into(),
            },
            host: Some(host.into()),
        }
    }

    fn key(ip: &str) -> u128 {
        to_key(ip.parse().unwrap())
    }

    fn store(proof: Option<&str>) -> EtcdStore {
        let config = match oci_macvlan_ipam::parse_ipam_options(&[
            "etcd_endpoints=http://127.0.0.1:9".to_owned(),
            "etcd_prefix=/p".to_owned(),
        ])
        .unwrap()
        {
            oci_macvlan_ipam::StoreChoice::Etcd(config) => config,
            other => panic!("{other:?}"),
        };
        let host = HostIdentity {
            id: "hostA".into(),
            proof: proof.map(str::to_owned),
            kept_in: "/etc/oci-macvlan/host-identity".into(),
        };
        EtcdStore::open(&config, &host).unwrap()
    }

    fn kv(key: &str, value: &str) -> client::Kv {
        client::Kv {
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
            mod_revision: 3,
        }
    }

    fn claim(host: &str, proof: &str, seen_unix: u64) -> String {
        json!({ "host": host, "proof": proof, "seen_unix": seen_unix }).to_string()
    }

    #[test]
    fn what_is_not_ours_is_skipped_and_an_address_it_holds_is_taken() {
        let store = store(Some("p1"));
        let lease = r#"{"network":"n","subnet":"10.0.0.0/24","host":"hostA","container_id":"c","ifname":"eth0"}"#;
        let k = |ip: &str| format!("/p/leases/{:032x}", key(ip));
        let snapshot = store.classify(vec![
            kv("/p/hosts/a/b", "{}"),
            kv("/p/hosts/hostA", &claim("hostA", "p1", 1)),
            kv("/p/hosts/hostB", "junk"),
            kv(&k("10.0.0.2"), lease),
            kv(&k("10.0.0.3"), "not json"),
            kv(&k("10.0.0.4"), &lease.replace(r#""host":"hostA","#, "")),
            kv("/p/leases/zz", lease),
            kv(&format!("{}/leases/x", k("10.0.0.5")), lease),
        ]);
        assert_eq!(snapshot.leases.len(), 1);
        assert_eq!(
            snapshot.occupied.keys().copied().collect::<Vec<_>>(),
            [key("10.0.0.3"), key("10.0.0.4")]
        );
        assert_eq!(snapshot.foreign.len(), 6, "{:?}", snapshot.foreign);
        assert!(snapshot.foreign[0].starts_with("etcd key /p/hosts/a/b: "));
        assert_eq!(snapshot.claims["hostA"].0.as_ref().unwrap().proof, "p1");
        assert_eq!(snapshot.claims["hostB"].0, None);
        // The allocator passes what is taken; a static request meets a holder.
        let mut attempt = Attempt {
            snapshot: &snapshot,
            pending: BTreeMap::new(),
            host: "hostA",
        };
        assert_eq!(
            attempt
                .lowest_free(key("10.0.0.2"), key("10.0.0.9"), &[])
                .unwrap(),
            Some(key("10.0.0.5"))
        );
        assert!(
            attempt
                .lease_of("10.0.0.3".parse().unwrap())
                .unwrap()
                .is_some()
        );
        assert_eq!(
            attempt
                .count_leased(key("10.0.0.1"), key("10.0.0.9"))
                .unwrap(),
            3
        );
    }

    #[test]
    fn a_write_carries_the_claim_and_another_machines_claim_refuses_it() {
        let now = now_unix();
        let store = store(Some("p1"));
        let with = |claims: &[(&str, &str)]| {
            store.classify(
                claims
                    .iter()
                    .map(|(k, v)| kv(&format!("/p/hosts/{k}"), v))
                    .collect(),
            )
        };
        // Unclaimed: the claim is made, if nobody made it meanwhile.
        let (compare, success) = store.claim_ops(&with(&[]), false).unwrap();
        assert_eq!(compare[0]["target"], "CREATE");
        assert_eq!(success.len(), 1);
        let put = &success[0]["request_put"]["value"];
        let written = STANDARD.decode(put.as_str().unwrap()).unwrap();
        assert_eq!(
            decode_claim("hostA", &written).unwrap().proof,
            "p1",
            "the proof, never anything else"
        );
        // Ours and fresh: compared, not written; ours and old, or at gc: written again.
        let fresh = claim("hostA", "p1", now);
        let (compare, success) = store.claim_ops(&with(&[("hostA", &fresh)]), false).unwrap();
        assert_eq!(
            (compare[0]["target"].as_str(), success.len()),
            (Some("MOD"), 0)
        );
        let old = claim("hostA", "p1", now - REFRESH_SECS - 1);
        let (_, success) = store.claim_ops(&with(&[("hostA", &old)]), false).unwrap();
        assert_eq!(success.len(), 1);
        let (_, success) = store.claim_ops(&with(&[("hostA", &fresh)]), true).unwrap();
        assert_eq!(success.len(), 1);
        // Another machine's, or something that is no claim: refused.
        for other in [claim("hostA", "p2", now), "junk".to_owned()] {
            let err = store
                .claim_ops(&with(&[("hostA", &other)]), false)
                .unwrap_err();
            assert!(matches!(err, Error::HostClaimed { .. }), "{err}");
            assert!(err.to_string().contains("--host-id NEW-ID"), "{err}");
        }
        // A command that made no identity writes nothing.
        assert!(self::store(None).claim_ops(&with(&[]), false).is_err());
    }

    #[test]
    fn a_host_seen_within_the_hour_is_alive() {
        let store = store(Some("p1"));
        let now = now_unix();
        let seen = |ago: u64| Claim {
            proof: "p2".into(),
            seen_unix: now - ago,
        };
        let err = store.refuse_if_alive("hostB", Some(&seen(60))).unwrap_err();
        assert!(matches!(err, Error::HostAlive { .. }), "{err}");
        assert!(
            store
                .refuse_if_alive("hostB", Some(&seen(ALIVE_SECS + 1)))
                .is_ok()
        );
        assert!(store.refuse_if_alive("hostB", None).is_ok());
    }

    #[test]
    fn an_attempt_sees_the_snapshot_and_its_own_inserts() {
        let mut snapshot = Snapshot::default();
        for (ip, host, c) in [("10.0.0.2", "a", "c1"), ("10.0.0.3", "b", "c1")] {
            snapshot.leases.insert(key(ip), (lease(ip, host, c), 7));
        }
        let mut attempt = Attempt {
            snapshot: &snapshot,
            pending: BTreeMap::new(),
            host: "a",
        };
        let (lo, hi) = (key("10.0.0.1"), key("10.0.0.254"));
        // .1 reserved, .2 and .3 leased (by either host).
        assert_eq!(
            attempt.lowest_free(lo, hi, &[key("10.0.0.1")]).unwrap(),
            Some(key("10.0.0.4"))
        );
        attempt.insert(&lease("10.0.0.4", "ignored", "c2")).unwrap();
        assert_eq!(
            attempt.lowest_free(lo, hi, &[key("10.0.0.1")]).unwrap(),
            Some(key("10.0.0.5"))
        );
        assert_eq!(attempt.count_leased(lo, hi).unwrap(), 3);
        // The insert is this host's, whatever the caller said.
        let held = attempt
            .lease_of("10.0.0.4".parse().unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(held.host.as_deref(), Some("a"));
        // Host b's c1 is not this host's c1.
        let owner = Owner {
            container_id: "c1".into(),
            ifname: "eth0".into(),
        };
        let mine = attempt.owner_leases("n", &owner).unwrap();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].ip.to_string(), "10.0.0.2");
        // A full range has nothing free.
        assert_eq!(
            attempt
                .lowest_free(key("10.0.0.2"), key("10.0.0.4"), &[])
                .unwrap(),
            None
        );
    }
}
