use std::{
    net::IpAddr,
    path::Path,
    time::{Duration, Instant},
};

use rusqlite::{Connection, OpenFlags, Row, Transaction, TransactionBehavior, params};

use crate::{
    Error, Lease, LeaseStore, Owner, Result, Txn,
    addr::{from_blob, to_blob, to_key},
    runs,
};

/// 1: leases. 2: runs of leased addresses (see `runs`).
const SCHEMA_VERSION: i64 = 2;
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS leases (
    ip           BLOB    NOT NULL PRIMARY KEY,  -- 16 bytes, IPv4 as ::ffff:a.b.c.d
    network      TEXT    NOT NULL,
    subnet       TEXT    NOT NULL,
    container_id TEXT    NOT NULL,
    ifname       TEXT    NOT NULL,
    created_unix INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS leases_by_owner ON leases (container_id, ifname, network);
CREATE INDEX IF NOT EXISTS leases_by_network ON leases (network, ip);
";
const COLUMNS: &str = "ip, subnet, network, container_id, ifname";

/// The lease store: one SQLite database in the state directory, in WAL mode. SQLite's own file
/// locking serialises writers across processes; every write is one transaction, so a process
/// killed at any instant leaves the store as it was before or after that transaction.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
}

impl SqliteStore {
    pub const FILE_NAME: &'static str = "leases.db";

    /// Opens (or, on first use, creates) `state_dir/leases.db`. A file that exists but cannot be
    /// read as a lease store is an error, never silently replaced.
    pub fn open(state_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(state_dir).map_err(|source| Error::CreateStateDir {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let path = state_dir.join(Self::FILE_NAME);
        let conn = Self::connect(&path).map_err(|source| Error::OpenStore { path, source })?;
        Ok(Self { conn })
    }

    #[cfg(test)]
    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Runs a query that returns lease rows.
    fn leases(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<Lease>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params, lease_from_row)?;
        collect(rows)
    }

    /// Deletes the lease rows `filter` selects (a `WHERE` clause) and their keys from the runs,
    /// in one transaction; returns what was deleted.
    fn delete(&mut self, filter: &str, params: impl rusqlite::Params) -> Result<Vec<Lease>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let deleted = {
            let mut stmt = tx.prepare_cached(&format!(
                "DELETE FROM leases WHERE {filter} RETURNING {COLUMNS}"
            ))?;
            let rows = stmt.query_map(params, lease_from_row)?;
            collect(rows)?
        };
        for lease in &deleted {
            runs::remove(&tx, to_key(lease.ip))?;
        }
        tx.commit()?;
        Ok(deleted)
    }

    /// Opens the database, retrying while other processes hold it: the busy timeout covers
    /// transactions, but SQLite may answer `SQLITE_BUSY` at once when many processes switch a new
    /// file to WAL or create its schema together.
    fn connect(path: &Path) -> rusqlite::Result<Connection> {
        let deadline = Instant::now() + BUSY_TIMEOUT;
        let mut pause = Duration::from_millis(1);
        loop {
            match Self::try_connect(path) {
                Err(err) if is_busy(&err) && Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }

    fn try_connect(path: &Path) -> rusqlite::Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags)?;
        // Many hooks start at once: wait for the lock rather than fail.
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            conn.pragma_update(None, "journal_mode", "WAL")?;
        }
        // In WAL mode, NORMAL loses no committed transaction when a process dies; only a power
        // loss may roll back the last ones, and the state dir is a tmpfs that a reboot empties.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version != SCHEMA_VERSION {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
            match version {
                0 | 1 => {
                    tx.execute_batch(SCHEMA)?;
                    tx.execute_batch(runs::SCHEMA)?;
                    if version == 1 {
                        runs::rebuild(&tx).map_err(|err| {
                            rusqlite::Error::SqliteFailure(
                                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                                Some(err.to_string()),
                            )
                        })?;
                    }
                    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
                }
                SCHEMA_VERSION => {}
                other => {
                    return Err(rusqlite::Error::InvalidParameterName(format!(
                        "schema version {other} is newer than this oci-macvlan understands ({SCHEMA_VERSION})"
                    )));
                }
            }
            tx.commit()?;
        }
        Ok(conn)
    }
}

fn is_busy(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn lease_from_row(row: &Row<'_>) -> rusqlite::Result<Result<Lease>> {
    let blob: Vec<u8> = row.get(0)?;
    let subnet: String = row.get(1)?;
    let network: String = row.get(2)?;
    let container_id: String = row.get(3)?;
    let ifname: String = row.get(4)?;
    let Some(ip) = from_blob(&blob) else {
        return Ok(Err(Error::Corrupt(format!(
            "address blob of {} bytes",
            blob.len()
        ))));
    };
    let Ok(subnet) = subnet.parse() else {
        return Ok(Err(Error::Corrupt(format!(
            "subnet {subnet:?} of lease {ip}"
        ))));
    };
    Ok(Ok(Lease {
        ip,
        subnet,
        network,
        owner: Owner {
            container_id,
            ifname,
        },
    }))
}

fn collect(rows: impl Iterator<Item = rusqlite::Result<Result<Lease>>>) -> Result<Vec<Lease>> {
    rows.map(|row| row?).collect()
}

struct SqliteTxn<'c>(Transaction<'c>);

impl Txn for SqliteTxn<'_> {
    fn owner_leases(&mut self, network: &str, owner: &Owner) -> Result<Vec<Lease>> {
        let mut stmt = self.0.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM leases WHERE container_id = ?1 AND ifname = ?2 AND network = ?3"
        ))?;
        let rows = stmt.query_map(
            params![owner.container_id, owner.ifname, network],
            lease_from_row,
        )?;
        collect(rows)
    }

    fn lease_of(&mut self, ip: IpAddr) -> Result<Option<Lease>> {
        let mut stmt = self
            .0
            .prepare_cached(&format!("SELECT {COLUMNS} FROM leases WHERE ip = ?1"))?;
        let mut rows = stmt.query_map(params![to_blob(ip)], lease_from_row)?;
        rows.next().transpose()?.transpose()
    }

    fn lowest_free(&mut self, lo: u128, hi: u128, reserved: &[u128]) -> Result<Option<u128>> {
        runs::lowest_free(&self.0, lo, hi, reserved)
    }

    fn insert(&mut self, lease: &Lease) -> Result<()> {
        let mut stmt = self.0.prepare_cached(
            "INSERT INTO leases (ip, network, subnet, container_id, ifname, created_unix)
             VALUES (?1, ?2, ?3, ?4, ?5, unixepoch())",
        )?;
        stmt.execute(params![
            to_blob(lease.ip),
            lease.network,
            lease.subnet.to_string(),
            lease.owner.container_id,
            lease.owner.ifname,
        ])?;
        runs::add(&self.0, to_key(lease.ip))
    }

    fn count_leased(&mut self, lo: u128, hi: u128) -> Result<u128> {
        let mut stmt = self
            .0
            .prepare_cached("SELECT count(*) FROM leases WHERE ip >= ?1 AND ip <= ?2")?;
        let count: i64 = stmt.query_row(params![lo.to_be_bytes(), hi.to_be_bytes()], |row| {
            row.get(0)
        })?;
        Ok(u128::try_from(count).unwrap_or(0))
    }
}

impl LeaseStore for SqliteStore {
    fn transaction<T>(&mut self, f: impl FnOnce(&mut dyn Txn) -> Result<T>) -> Result<T> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut txn = SqliteTxn(tx);
        let out = f(&mut txn)?;
        txn.0.commit()?;
        Ok(out)
    }

    fn release_container(&mut self, container_id: &str) -> Result<Vec<Lease>> {
        self.delete("container_id = ?1", params![container_id])
    }

    fn release(&mut self, network: &str, owner: &Owner) -> Result<Vec<Lease>> {
        self.delete(
            "container_id = ?1 AND ifname = ?2 AND network = ?3",
            params![owner.container_id, owner.ifname, network],
        )
    }

    fn network_leases(&mut self, network: &str) -> Result<Vec<Lease>> {
        self.leases(
            &format!("SELECT {COLUMNS} FROM leases WHERE network = ?1 ORDER BY ip"),
            params![network],
        )
    }

    fn all_leases(&mut self) -> Result<Vec<Lease>> {
        self.leases(&format!("SELECT {COLUMNS} FROM leases ORDER BY ip"), [])
    }

    fn integrity_problems(&mut self) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare("PRAGMA integrity_check")?;
        let lines = stmt
            .query_map([], |row| row.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut problems: Vec<String> = lines.into_iter().filter(|line| line != "ok").collect();
        if problems.is_empty() {
            problems.extend(runs::mismatch(&self.conn)?);
        }
        Ok(problems)
    }

    fn repair_index(&mut self) -> Result<bool> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if runs::mismatch(&tx)?.is_none() {
            return Ok(false);
        }
        runs::rebuild(&tx)?;
        tx.commit()?;
        Ok(true)
    }
}
