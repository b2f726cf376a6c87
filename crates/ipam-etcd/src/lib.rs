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

#![warn(missing_docs)]

mod attempt;
mod claim;
mod client;
#[cfg(test)]
mod client_tests;
mod config;
mod http;
#[cfg(test)]
mod http_tests;
#[cfg(test)]
mod stall_tests;
#[cfg(test)]
mod store_tests;

use std::{
    collections::BTreeMap,
    net::IpAddr,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

pub use oci_macvlan_ipam::HostIdentity;
use oci_macvlan_ipam::{
    Error, Lease, LeaseSet, LeaseStore, Owner, Result, StoredLease, Txn, View, ip_of_key, to_key,
};

use attempt::Attempt;
use claim::decode_claim;
pub use claim::{ALIVE_SECS, Claim, REFRESH_SECS, valid_host_id};
pub use client::WRITE_UNANSWERED;
use client::{Client, absent, delete, put, unchanged};
pub use config::{
    BACKEND, DEFAULT_ETCD_PREFIX, DEFAULT_ETCD_TIMEOUT, EtcdBackend, EtcdConfig, IPAM_OPTION_KEYS,
};

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

impl EtcdStore {
    /// A store for `host` in the cluster `config` names. Nothing is sent before the first
    /// request; each operation of the store (a read; a transaction or a release, with its
    /// retries) ends within the config's timeout of its own start.
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

    /// Releases the leases `pick` selects, each only if nobody wrote it since it was read;
    /// `forget`: also the claim of that host, if it is not alive.
    fn release_where(
        &mut self,
        pick: impl Fn(&Lease) -> bool,
        forget: Option<&str>,
    ) -> Result<Vec<Lease>> {
        self.client.begin();
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
            if let Some(host) = forget
                && let Some((claim, revision)) = snapshot.claims.get(host)
            {
                self.refuse_if_alive(host, claim.as_ref())?;
                let key = self.claim_key(host);
                compare.push(unchanged(&key, *revision));
                success.push(delete(&key));
                forgotten = true;
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

impl LeaseStore for EtcdStore {
    fn as_set(&mut self) -> &mut dyn LeaseSet {
        self
    }

    fn run(&mut self, f: &mut dyn FnMut(&mut dyn Txn) -> Result<()>) -> Result<()> {
        self.client.begin();
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
        self.client.begin();
        let snapshot = self.snapshot()?;
        f(&mut Attempt {
            snapshot: &snapshot,
            pending: BTreeMap::new(),
            host: &self.host.id,
        })
    }
}

impl LeaseSet for EtcdStore {
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
        self.client.begin();
        let snapshot = self.snapshot()?;
        Ok(snapshot
            .leases
            .into_values()
            .map(|(lease, _)| lease)
            .filter(|l| self.ours(l) && l.owner.container_id == container_id)
            .collect())
    }

    fn network_leases(&mut self, network: &str) -> Result<Vec<Lease>> {
        self.client.begin();
        let snapshot = self.snapshot()?;
        Ok(snapshot
            .leases
            .into_values()
            .map(|(lease, _)| lease)
            .filter(|l| l.network == network)
            .collect())
    }

    fn all_leases(&mut self) -> Result<Vec<Lease>> {
        self.client.begin();
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
        self.client.begin();
        let snapshot = self.snapshot()?;
        let mut problems = snapshot.foreign.clone();
        if self.host.proof.is_some()
            && let Err(err @ Error::HostClaimed { .. }) = self.claim_ops(&snapshot, false)
        {
            problems.push(err.to_string());
        }
        Ok(problems)
    }

    /// Refreshes this host's claim (`gc`, from the packaged timer): a host that runs its gc
    /// is alive to every other host's `gc --forget-host`.
    fn maintain(&mut self) -> Result<Vec<String>> {
        if self.host.proof.is_none() {
            return Ok(Vec::new()); // no identity yet: nothing of this host's to keep alive
        }
        self.client.begin();
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

    /// An error when `host`'s claim says it is alive ([`ALIVE_SECS`]).
    fn check_forgettable(&mut self, host: &str) -> Result<()> {
        self.forgettable(host)
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
