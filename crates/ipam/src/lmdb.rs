use std::{
    net::IpAddr,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use heed::{
    Database, Env, RoTxn, RwTxn,
    types::{Bytes, Unit},
};

use crate::{
    Damage, Error, Lease, LeaseSet, LeaseStore, Owner, Result, StoredLease, Txn, View,
    addr::{from_blob, to_blob, to_key},
    boot::{self, Found},
    damage,
    env::{acquire, init, release},
    fault,
    runs::{self, Runs},
};

mod maintain;

/// 1: leases, owners, runs (LMDB).
pub(crate) const SCHEMA_VERSION: u32 = 1;
/// The most the store may grow to. It is address space, not memory or disk: the file grows with
/// its pages (a lease takes ~200 bytes; 10,000 leases ~4 MiB).
pub(crate) const MAP_SIZE: usize = 1 << 30;

/// The lease store: an LMDB environment in `state_dir/leases/`.
///
/// - LMDB serialises writers across processes with a robust mutex in its lock file (a writer
///   killed while holding it does not block the next one), and readers never wait.
/// - Every write is one copy-on-write transaction that a new meta page makes visible, so a
///   process killed at any instant leaves the store as it was before or after that transaction:
///   what it wrote is in the kernel's page cache, which outlives the process.
/// - Nothing is flushed to disk at a commit (`NO_SYNC`): on a state dir on disk a hook would
///   otherwise wait for the disk at every attach and detach. What a flush would protect against
///   is a power loss or a reboot, after which no container of the store is alive: a store knows
///   the boot it was made in, and a store of an earlier boot is set aside, whole or torn, and
///   never read (`boot.rs`).
/// - A store is created whole under a temporary name and renamed into place, so an existing
///   store is never re-created: its files are checked with plain reads before LMDB maps them,
///   and a damaged one (empty, truncated, not LMDB's, not a regular file) fails every command
///   with [`Error::Damaged`] (`damage.rs`).
/// - A hook opens the store, runs one transaction and exits: opening is a few system calls and
///   two `mmap`s, with nothing to parse or compile (README, Performance).
#[derive(Debug)]
pub struct LmdbStore {
    env: Env,
    dbs: Dbs,
    dir: PathBuf,
    /// The inode of `data.mdb`, whose map `fault` guards while the environment is open.
    guarded: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
struct Dbs {
    /// Address key (16 bytes) to the lease's JSON.
    leases: Database<Bytes, Bytes>,
    /// Container id's hash (8 bytes) and address key: the leases of a container.
    owners: Database<Bytes, Unit>,
    runs: Runs,
    meta: Database<Bytes, Bytes>,
}

impl LmdbStore {
    /// The store's directory under the state dir.
    pub const DIR_NAME: &'static str = "leases";

    /// Opens (or, on first use, creates) the store in `state_dir`. A store of an earlier boot
    /// is set aside and a new one created. A store that exists but is damaged or cannot be read
    /// is an error, never silently replaced.
    pub fn open(state_dir: &Path) -> Result<Self> {
        Self::open_checked(state_dir, false)
    }

    /// [`Self::open`] for a command that reads every lease (`verify`, `gc`, `network inspect`,
    /// `network rm`): every page the store's trees reach is checked first, so a page of garbage
    /// inside them is an error naming the file rather than a crash. A hook, which touches a few
    /// pages, checks only what LMDB trusts before it maps the file.
    pub fn open_thorough(state_dir: &Path) -> Result<Self> {
        Self::open_checked(state_dir, true)
    }

    fn open_checked(state_dir: &Path, thorough: bool) -> Result<Self> {
        let store = state_dir.join(Self::DIR_NAME);
        let create = |source| Error::CreateStateDir {
            path: store.clone(),
            source,
        };
        if boot::makes_stores() {
            std::fs::create_dir_all(state_dir).map_err(create)?;
        }
        let this_boot = boot::current()?;
        let found = boot::prepare(state_dir, &store, &this_boot, &init)?;
        damage::check(&store, thorough)?;
        if found == Found::Unmarked {
            boot::adopt(&store, &this_boot)?;
        }
        // One name per directory, however the caller spells it: see `OPEN`.
        let dir = std::fs::canonicalize(&store).map_err(create)?;
        let env = acquire(&dir)?;
        let guarded = std::fs::metadata(dir.join(damage::DATA_FILE))
            .ok()
            .map(|meta| meta.ino());
        if let Some(inode) = guarded {
            let damaged = Error::Damaged {
                path: store.join(damage::DATA_FILE),
                store: store.clone(),
                damage: Damage::Fault,
            };
            // In the binary's own format for an error (`oci-macvlan: error: …`): the only line
            // a process that faults there writes.
            fault::guard(inode, &format!("oci-macvlan: error: {damaged}"));
        }
        let opened = Self::open_dbs(&env);
        let dbs = match opened {
            Ok(dbs) => dbs,
            Err(err) => {
                release(&dir, guarded);
                return Err(err);
            }
        };
        Ok(Self {
            env,
            dbs,
            dir,
            guarded,
        })
    }

    fn open_dbs(env: &Env) -> Result<Dbs> {
        let mut wtxn = env.write_txn()?;
        let dbs = Dbs {
            leases: env.create_database(&mut wtxn, Some("leases"))?,
            owners: env.create_database(&mut wtxn, Some("owners"))?,
            runs: env.create_database(&mut wtxn, Some("runs"))?,
            meta: env.create_database(&mut wtxn, Some("meta"))?,
        };
        match dbs.meta.get(&wtxn, b"version")? {
            None => {
                dbs.meta
                    .put(&mut wtxn, b"version", &SCHEMA_VERSION.to_be_bytes())?;
            }
            Some(v) if v == SCHEMA_VERSION.to_be_bytes() => {}
            Some(other) => {
                return Err(Error::Corrupt(format!(
                    "lease store schema version {other:?} is not the one this oci-macvlan \
                     understands ({SCHEMA_VERSION})"
                )));
            }
        }
        wtxn.commit()?;
        Ok(dbs)
    }

    /// Drops what processes killed in a read transaction left in the lock file's reader table
    /// (they would keep the store from reusing pages); returns how many.
    pub fn clear_stale_readers(&self) -> Result<usize> {
        Ok(self.env.clear_stale_readers()?)
    }

    fn write<T>(&self, f: impl FnOnce(&mut RwTxn) -> Result<T>) -> Result<T> {
        let mut wtxn = self.env.write_txn()?;
        let out = f(&mut wtxn)?;
        wtxn.commit()?;
        Ok(out)
    }

    /// Deletes the leases of `container_id` that `keep` selects, with their index entries.
    fn delete(&mut self, container_id: &str, keep: impl Fn(&Lease) -> bool) -> Result<Vec<Lease>> {
        let dbs = self.dbs;
        self.write(|wtxn| {
            let deleted: Vec<Lease> = owned(dbs, wtxn, container_id)?
                .into_iter()
                .filter(|lease| keep(lease))
                .collect();
            for lease in &deleted {
                let key = to_key(lease.ip);
                dbs.leases.delete(wtxn, &key.to_be_bytes())?;
                dbs.owners
                    .delete(wtxn, &owner_key(&lease.owner.container_id, key))?;
                runs::remove(dbs.runs, wtxn, key)?;
            }
            Ok(deleted)
        })
    }

    /// Empties the index of runs, as a hand edit of the store might.
    #[cfg(test)]
    pub(crate) fn damage_runs(&mut self) {
        let dbs = self.dbs;
        self.write(|wtxn| Ok(dbs.runs.clear(wtxn)?))
            .unwrap_or_else(|err| panic!("{err}"));
    }

    /// Drops the index entry of `container_id`'s lease on `ip`.
    #[cfg(test)]
    pub(crate) fn damage_owners(&mut self, container_id: &str, ip: IpAddr) {
        let dbs = self.dbs;
        let key = owner_key(container_id, to_key(ip));
        self.write(|wtxn| Ok(dbs.owners.delete(wtxn, &key)?))
            .unwrap_or_else(|err| panic!("{err}"));
    }

    /// The newest snapshot as LMDB reports it: last page, transaction id, page size, and the
    /// pages of the main tree and of the four databases' trees.
    #[cfg(test)]
    pub(crate) fn layout(&self) -> (u64, u64, u32, u64) {
        let info = self.env.info();
        let stat = self.env.stat();
        let rtxn = self.env.read_txn().unwrap_or_else(|err| panic!("{err}"));
        let pages =
            |s: heed::DatabaseStat| (s.branch_pages + s.leaf_pages + s.overflow_pages) as u64;
        let stat_of = |r: heed::Result<heed::DatabaseStat>| r.unwrap_or_else(|err| panic!("{err}"));
        let trees = (stat.branch_pages + stat.leaf_pages + stat.overflow_pages) as u64
            + pages(stat_of(self.dbs.leases.stat(&rtxn)))
            + pages(stat_of(self.dbs.owners.stat(&rtxn)))
            + pages(stat_of(self.dbs.runs.stat(&rtxn)))
            + pages(stat_of(self.dbs.meta.stat(&rtxn)));
        (
            info.last_page_number as u64,
            info.last_txn_id as u64,
            stat.page_size,
            trees,
        )
    }

    fn leases(&self, keep: impl Fn(&Lease) -> bool) -> Result<Vec<Lease>> {
        let rtxn = self.env.read_txn()?;
        let mut out = Vec::new();
        for row in self.dbs.leases.iter(&rtxn)? {
            let (key, value) = row?;
            let lease = decode(key, value)?;
            if keep(&lease) {
                out.push(lease);
            }
        }
        Ok(out)
    }
}

impl Drop for LmdbStore {
    fn drop(&mut self) {
        release(&self.dir, self.guarded);
    }
}

/// FNV-1a: a container id may be 1,024 bytes, more than an LMDB key holds. A collision only
/// puts two containers' entries side by side; every reader checks the lease's owner.
fn id_hash(container_id: &str) -> [u8; 8] {
    crate::fnv1a64(container_id.bytes()).to_be_bytes()
}

fn owner_key(container_id: &str, key: u128) -> [u8; 24] {
    let mut out = [0; 24];
    out[..8].copy_from_slice(&id_hash(container_id));
    out[8..].copy_from_slice(&key.to_be_bytes());
    out
}

fn decode(key: &[u8], value: &[u8]) -> Result<Lease> {
    let ip = from_blob(key)
        .ok_or_else(|| Error::Corrupt(format!("address key of {} bytes", key.len())))?;
    StoredLease::decode(ip, value, &format!("lease of {ip}"))
}

fn insert(dbs: Dbs, wtxn: &mut RwTxn, lease: &Lease) -> Result<()> {
    let value = StoredLease::of(lease, None).encode()?;
    let key = to_key(lease.ip);
    dbs.leases.put(wtxn, &key.to_be_bytes(), &value)?;
    dbs.owners
        .put(wtxn, &owner_key(&lease.owner.container_id, key), &())?;
    runs::add(dbs.runs, wtxn, key)
}

/// Every lease `container_id` holds, in address order.
fn owned(dbs: Dbs, txn: &RoTxn, container_id: &str) -> Result<Vec<Lease>> {
    let mut keys = Vec::new();
    for entry in dbs.owners.prefix_iter(txn, &id_hash(container_id))? {
        let (owner_key, ()) = entry?;
        keys.push(owner_key[8..].to_vec());
    }
    let mut out = Vec::new();
    for key in keys {
        if let Some(value) = dbs.leases.get(txn, &key)? {
            let lease = decode(&key, value)?;
            if lease.owner.container_id == container_id {
                out.push(lease);
            }
        }
    }
    Ok(out)
}

struct LmdbTxn<'t, 'e> {
    wtxn: &'t mut RwTxn<'e>,
    dbs: Dbs,
}

/// A read-only snapshot: LMDB's readers never wait for the writer nor block it.
struct LmdbView<'t, 'e> {
    rtxn: &'t RoTxn<'e>,
    dbs: Dbs,
}

fn lease_at(dbs: Dbs, txn: &RoTxn, ip: IpAddr) -> Result<Option<Lease>> {
    let key = to_blob(ip);
    match dbs.leases.get(txn, &key)? {
        Some(value) => decode(&key, value).map(Some),
        None => Ok(None),
    }
}

/// Every lease on `network`, in address order (the key's order).
fn of_network(dbs: Dbs, txn: &RoTxn, network: &str) -> Result<Vec<Lease>> {
    let mut out = Vec::new();
    for row in dbs.leases.iter(txn)? {
        let (key, value) = row?;
        let lease = decode(key, value)?;
        if lease.network == network {
            out.push(lease);
        }
    }
    Ok(out)
}

fn held_by(dbs: Dbs, txn: &RoTxn, network: &str, owner: &Owner) -> Result<Vec<Lease>> {
    let mut leases = owned(dbs, txn, &owner.container_id)?;
    leases.retain(|l| l.network == network && l.owner.ifname == owner.ifname);
    Ok(leases)
}

impl View for LmdbView<'_, '_> {
    fn network_leases(&mut self, network: &str) -> Result<Vec<Lease>> {
        of_network(self.dbs, self.rtxn, network)
    }

    fn owner_leases(&mut self, network: &str, owner: &Owner) -> Result<Vec<Lease>> {
        held_by(self.dbs, self.rtxn, network, owner)
    }

    fn lease_of(&mut self, ip: IpAddr) -> Result<Option<Lease>> {
        lease_at(self.dbs, self.rtxn, ip)
    }

    fn lowest_free(&mut self, lo: u128, hi: u128, reserved: &[u128]) -> Result<Option<u128>> {
        runs::lowest_free(self.dbs.runs, self.rtxn, lo, hi, reserved)
    }

    fn count_leased(&mut self, lo: u128, hi: u128) -> Result<u128> {
        runs::count(self.dbs.runs, self.rtxn, lo, hi)
    }
}

impl View for LmdbTxn<'_, '_> {
    fn network_leases(&mut self, network: &str) -> Result<Vec<Lease>> {
        of_network(self.dbs, self.wtxn, network)
    }

    fn owner_leases(&mut self, network: &str, owner: &Owner) -> Result<Vec<Lease>> {
        held_by(self.dbs, self.wtxn, network, owner)
    }

    fn lease_of(&mut self, ip: IpAddr) -> Result<Option<Lease>> {
        lease_at(self.dbs, self.wtxn, ip)
    }

    fn lowest_free(&mut self, lo: u128, hi: u128, reserved: &[u128]) -> Result<Option<u128>> {
        runs::lowest_free(self.dbs.runs, self.wtxn, lo, hi, reserved)
    }

    fn count_leased(&mut self, lo: u128, hi: u128) -> Result<u128> {
        runs::count(self.dbs.runs, self.wtxn, lo, hi)
    }
}

impl Txn for LmdbTxn<'_, '_> {
    fn insert(&mut self, lease: &Lease) -> Result<()> {
        insert(self.dbs, self.wtxn, lease)
    }
}

impl LeaseStore for LmdbStore {
    fn as_set(&mut self) -> &mut dyn LeaseSet {
        self
    }

    /// One LMDB write transaction: writers are serialised, so `f` runs once.
    fn run(&mut self, f: &mut dyn FnMut(&mut dyn Txn) -> Result<()>) -> Result<()> {
        let dbs = self.dbs;
        self.write(|wtxn| f(&mut LmdbTxn { wtxn, dbs }))
    }

    fn view(&mut self, f: &mut dyn FnMut(&mut dyn View) -> Result<()>) -> Result<()> {
        let rtxn = self.env.read_txn()?;
        f(&mut LmdbView {
            rtxn: &rtxn,
            dbs: self.dbs,
        })
    }
}

impl LeaseSet for LmdbStore {
    /// Every lease of this store is this host's; one a shared store read has its host.
    fn is_ours(&self, lease: &Lease) -> bool {
        lease.host.is_none()
    }

    fn forget_host(&mut self, _host: &str) -> Result<Vec<Lease>> {
        Ok(Vec::new())
    }

    fn maintain(&mut self) -> Result<Vec<String>> {
        let mut done = Vec::new();
        if self.repair_index()? {
            done.push("rebuilt the lease store's indexes from the leases".to_owned());
        }
        let stale = self.clear_stale_readers()?;
        if stale > 0 {
            done.push(format!(
                "cleared {stale} read transactions of killed processes from the lease store"
            ));
        }
        Ok(done)
    }

    fn release_container(&mut self, container_id: &str) -> Result<Vec<Lease>> {
        self.delete(container_id, |_| true)
    }

    fn release(&mut self, network: &str, owner: &Owner) -> Result<Vec<Lease>> {
        self.delete(&owner.container_id, |l| {
            l.network == network && l.owner.ifname == owner.ifname
        })
    }

    fn release_ips(&mut self, owner: &Owner, ips: &[IpAddr]) -> Result<Vec<Lease>> {
        self.delete(&owner.container_id, |l| {
            l.owner == *owner && ips.contains(&l.ip)
        })
    }

    fn container_leases(&mut self, container_id: &str) -> Result<Vec<Lease>> {
        let rtxn = self.env.read_txn()?;
        owned(self.dbs, &rtxn, container_id)
    }

    fn network_leases(&mut self, network: &str) -> Result<Vec<Lease>> {
        self.leases(|l| l.network == network)
    }

    fn all_leases(&mut self) -> Result<Vec<Lease>> {
        self.leases(|_| true)
    }

    fn integrity_problems(&mut self) -> Result<Vec<String>> {
        self.problems()
    }
}

#[cfg(test)]
mod tests {
    use super::owner_key;

    /// Pinned: the owners index is on disk, so a change of hash would leave every lease of a
    /// running container unfindable by its owner after an upgrade. (Values from an independent
    /// FNV-1a 64.)
    #[test]
    fn owner_keys_are_stable() {
        let key = owner_key("c1", 7);
        assert_eq!(key[..8], 0x08a2_7f07_b54a_6859_u64.to_be_bytes());
        assert_eq!(key[8..], 7_u128.to_be_bytes());
        let long = "x".repeat(1024);
        assert_eq!(
            owner_key(&long, 0)[..8],
            0x51bf_c410_78b3_7325_u64.to_be_bytes()
        );
    }
}
