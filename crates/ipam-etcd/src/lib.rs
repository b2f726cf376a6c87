//! The lease store of a network that several hosts share: an etcd cluster.
//!
//! Key layout, under the network's `etcd_prefix` (default `/oci-macvlan`):
//!
//! ```text
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

mod client;
#[cfg(test)]
mod client_tests;
mod http;
#[cfg(test)]
mod http_tests;
#[cfg(test)]
mod stall_tests;

use std::{
    collections::BTreeMap,
    net::IpAddr,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use oci_macvlan_ipam::{
    Error, EtcdConfig, Lease, LeaseStore, Owner, Result, StoredLease, Txn, View, ip_of_key, to_key,
};

pub use client::WRITE_UNANSWERED;
use client::{Client, absent, delete, put, unchanged};

/// Leases of one etcd cluster (one prefix), seen from one host.
#[derive(Debug)]
pub struct EtcdStore {
    client: Client,
    /// `PREFIX/leases/`
    leases: Vec<u8>,
    host: String,
}

/// Every lease at one revision, by address key, with the revision that last wrote it.
type Snapshot = BTreeMap<u128, (Lease, i64)>;

impl EtcdStore {
    /// A store for `host` in the cluster `config` names. Nothing is sent before the first
    /// request; each operation of the store (a read; a transaction or a release, with its
    /// retries) ends within the config's timeout of its own start.
    pub fn open(config: &EtcdConfig, host: &str) -> Result<Self> {
        Ok(Self {
            client: Client::new(config)?,
            leases: format!("{}/leases/", config.prefix).into_bytes(),
            host: host.to_owned(),
        })
    }

    fn leases_end(&self) -> Vec<u8> {
        let mut end = self.leases.clone();
        if let Some(last) = end.last_mut() {
            *last += 1; // '/' + 1: every key under the prefix
        }
        end
    }

    fn key(&self, ip: IpAddr) -> Vec<u8> {
        let mut key = self.leases.clone();
        key.extend_from_slice(format!("{:032x}", to_key(ip)).as_bytes());
        key
    }

    fn snapshot(&mut self) -> Result<Snapshot> {
        let end = self.leases_end();
        let mut out = Snapshot::new();
        for kv in self.client.range(&self.leases, &end)? {
            let lease = self.decode(&kv.key, &kv.value)?;
            out.insert(to_key(lease.ip), (lease, kv.mod_revision));
        }
        Ok(out)
    }

    fn decode(&self, key: &[u8], value: &[u8]) -> Result<Lease> {
        let name = String::from_utf8_lossy(key);
        let ip = key
            .strip_prefix(self.leases.as_slice())
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u128::from_str_radix(hex, 16).ok())
            .map(ip_of_key)
            .ok_or_else(|| Error::Corrupt(format!("etcd key {name} is not an address")))?;
        let lease = StoredLease::decode(ip, value, &format!("etcd key {name}"))?;
        if lease.host.is_none() {
            return Err(Error::Corrupt(format!("etcd key {name}: no host")));
        }
        Ok(lease)
    }

    fn encode(&self, lease: &Lease) -> Result<Vec<u8>> {
        StoredLease::of(lease, Some(&self.host)).encode()
    }

    /// Releases the leases `pick` selects, each only if nobody wrote it since it was read.
    fn release_where(&mut self, pick: impl Fn(&Lease) -> bool) -> Result<Vec<Lease>> {
        self.client.begin();
        let mut attempts = 0;
        loop {
            let victims: Vec<(Lease, i64)> = self
                .snapshot()?
                .into_values()
                .filter(|(lease, _)| pick(lease))
                .collect();
            if victims.is_empty() {
                return Ok(Vec::new());
            }
            let (mut compare, mut success) = (Vec::new(), Vec::new());
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
        lease.host.as_deref() == Some(self.host.as_str())
    }
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
        self.snapshot.contains_key(&key) || self.pending.contains_key(&key)
    }
}

impl View for Attempt<'_> {
    fn owner_leases(&mut self, network: &str, owner: &Owner) -> Result<Vec<Lease>> {
        let snapshot = self.snapshot.values().map(|(lease, _)| lease);
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
        Ok(self
            .pending
            .get(&key)
            .or_else(|| self.snapshot.get(&key).map(|(lease, _)| lease))
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
        let stored = self.snapshot.range(lo..=hi).count();
        let added = self
            .pending
            .range(lo..=hi)
            .filter(|(key, _)| !self.snapshot.contains_key(key))
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
        self.client.begin();
        let mut attempts = 0;
        loop {
            let snapshot = self.snapshot()?;
            let mut attempt = Attempt {
                snapshot: &snapshot,
                pending: BTreeMap::new(),
                host: &self.host,
            };
            f(&mut attempt)?;
            if attempt.pending.is_empty() {
                return Ok(());
            }
            let (mut compare, mut success) = (Vec::new(), Vec::new());
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
            host: &self.host,
        })
    }

    fn release_container(&mut self, container_id: &str) -> Result<Vec<Lease>> {
        let host = self.host.clone();
        self.release_where(|l| {
            l.host.as_deref() == Some(&host) && l.owner.container_id == container_id
        })
    }

    fn release(&mut self, network: &str, owner: &Owner) -> Result<Vec<Lease>> {
        let host = self.host.clone();
        self.release_where(|l| {
            l.host.as_deref() == Some(&host) && l.network == network && l.owner == *owner
        })
    }

    fn release_ips(&mut self, owner: &Owner, ips: &[IpAddr]) -> Result<Vec<Lease>> {
        let host = self.host.clone();
        self.release_where(|l| {
            l.host.as_deref() == Some(&host) && l.owner == *owner && ips.contains(&l.ip)
        })
    }

    fn container_leases(&mut self, container_id: &str) -> Result<Vec<Lease>> {
        self.client.begin();
        let snapshot = self.snapshot()?;
        Ok(snapshot
            .into_values()
            .map(|(lease, _)| lease)
            .filter(|l| self.ours(l) && l.owner.container_id == container_id)
            .collect())
    }

    fn network_leases(&mut self, network: &str) -> Result<Vec<Lease>> {
        self.client.begin();
        let snapshot = self.snapshot()?;
        Ok(snapshot
            .into_values()
            .map(|(lease, _)| lease)
            .filter(|l| l.network == network)
            .collect())
    }

    fn all_leases(&mut self) -> Result<Vec<Lease>> {
        self.client.begin();
        Ok(self
            .snapshot()?
            .into_values()
            .map(|(lease, _)| lease)
            .collect())
    }

    fn is_ours(&self, lease: &Lease) -> bool {
        self.ours(lease)
    }

    /// A key that does not decode fails every read with [`Error::Corrupt`] naming it; there
    /// is no derived data to disagree.
    fn integrity_problems(&mut self) -> Result<Vec<String>> {
        self.client.begin();
        match self.snapshot() {
            Ok(_) => Ok(Vec::new()),
            Err(Error::Corrupt(problem)) => Ok(vec![problem]),
            Err(err) => Err(err),
        }
    }

    fn maintain(&mut self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    fn forget_host(&mut self, host: &str) -> Result<Vec<Lease>> {
        self.release_where(|l| l.host.as_deref() == Some(host))
    }

    /// Sends the read of every lease now: the member answers it while the caller does its
    /// local work (an attach: the namespace, the record, the parents), and the first read of
    /// the store takes that answer, a linearizable read made under the caller's lock. The
    /// compare that decides a write is the same.
    fn read_ahead(&mut self) {
        let end = self.leases_end();
        self.client.send_ahead(&self.leases, &end);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

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

    #[test]
    fn an_attempt_sees_the_snapshot_and_its_own_inserts() {
        let mut snapshot = Snapshot::new();
        for (ip, host, c) in [("10.0.0.2", "a", "c1"), ("10.0.0.3", "b", "c1")] {
            snapshot.insert(key(ip), (lease(ip, host, c), 7));
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
