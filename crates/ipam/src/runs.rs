//! Runs of leased addresses: the `runs` table holds every maximal interval `[first, last]` of
//! consecutive leased keys, kept in step with `leases` inside the same transaction. The lowest free
//! address at or above a key is then one index probe away (the end of the run that covers the key,
//! plus one) instead of a walk over every lease below it, so allocation and release cost
//! O(log n) in the number of leases.
//!
//! Keys are global, like the leases' primary key: overlapping networks share one address space,
//! and a run may cross a subnet's edge, which is harmless because callers bound the answer.

use rusqlite::{Connection, OptionalExtension, params};

use crate::{Error, Result};

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    first BLOB NOT NULL PRIMARY KEY,  -- 16-byte keys, as leases.ip
    last  BLOB NOT NULL
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS runs_by_last ON runs (last);
";

/// The statements of the hot path, which must each be an index search (see the tests).
pub(crate) const COVERING: &str =
    "SELECT first, last FROM runs WHERE first <= ?1 ORDER BY first DESC LIMIT 1";
const ENDING_AT: &str = "SELECT first FROM runs WHERE last = ?1";
const TAKE_STARTING_AT: &str = "DELETE FROM runs WHERE first = ?1 RETURNING last";
const SET_LAST: &str = "UPDATE runs SET last = ?2 WHERE first = ?1";
const DELETE_RUN: &str = "DELETE FROM runs WHERE first = ?1";
const INSERT_RUN: &str = "INSERT INTO runs (first, last) VALUES (?1, ?2)";
#[cfg(test)]
pub(crate) const HOT: &[&str] = &[COVERING, ENDING_AT, TAKE_STARTING_AT, SET_LAST, DELETE_RUN];

fn blob(key: u128) -> [u8; 16] {
    key.to_be_bytes()
}

pub(crate) fn key_of(blob: &[u8]) -> Result<u128> {
    let bytes: [u8; 16] = blob
        .try_into()
        .map_err(|_| Error::Corrupt(format!("address blob of {} bytes", blob.len())))?;
    Ok(u128::from_be_bytes(bytes))
}

/// The run that covers `key`, if any.
pub(crate) fn covering(conn: &Connection, key: u128) -> Result<Option<(u128, u128)>> {
    let mut stmt = conn.prepare_cached(COVERING)?;
    let row = stmt
        .query_row(params![blob(key)], |row| {
            Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, Vec<u8>>(1)?))
        })
        .optional()?;
    let Some((first, last)) = row else {
        return Ok(None);
    };
    let (first, last) = (key_of(&first)?, key_of(&last)?);
    Ok((last >= key).then_some((first, last)))
}

/// The lowest key in `lo..=hi` that is neither leased nor in `reserved` (sorted). Each step
/// jumps over a whole run or one reserved key, so the cost depends on the number of reserved
/// keys, not on the number of leases.
pub(crate) fn lowest_free(
    conn: &Connection,
    lo: u128,
    hi: u128,
    reserved: &[u128],
) -> Result<Option<u128>> {
    let mut candidate = lo;
    loop {
        if candidate > hi {
            return Ok(None);
        }
        let next = if reserved.binary_search(&candidate).is_ok() {
            candidate
        } else if let Some((_, last)) = covering(conn, candidate)? {
            last
        } else {
            return Ok(Some(candidate));
        };
        match next.checked_add(1) {
            Some(next) => candidate = next,
            None => return Ok(None),
        }
    }
}

/// Records that `key` became leased: joins the runs ending just below and starting just above.
pub(crate) fn add(conn: &Connection, key: u128) -> Result<()> {
    let below = match key.checked_sub(1) {
        Some(prev) => conn
            .prepare_cached(ENDING_AT)?
            .query_row(params![blob(prev)], |row| row.get::<_, Vec<u8>>(0))
            .optional()?
            .map(|first| key_of(&first))
            .transpose()?,
        None => None,
    };
    let above = match key.checked_add(1) {
        Some(next) => conn
            .prepare_cached(TAKE_STARTING_AT)?
            .query_row(params![blob(next)], |row| row.get::<_, Vec<u8>>(0))
            .optional()?
            .map(|last| key_of(&last))
            .transpose()?,
        None => None,
    };
    let last = above.unwrap_or(key);
    match below {
        Some(first) => conn
            .prepare_cached(SET_LAST)?
            .execute(params![blob(first), blob(last)])?,
        None => insert(conn, key, last)?,
    };
    Ok(())
}

/// Records that `key` is no longer leased: splits the run that covered it.
pub(crate) fn remove(conn: &Connection, key: u128) -> Result<()> {
    let Some((first, last)) = covering(conn, key)? else {
        return Err(Error::Corrupt(format!(
            "released key {key:#x} is in no run of leased addresses"
        )));
    };
    conn.prepare_cached(DELETE_RUN)?
        .execute(params![blob(first)])?;
    if first < key {
        insert(conn, first, key - 1)?;
    }
    if key < last {
        insert(conn, key + 1, last)?;
    }
    Ok(())
}

fn insert(conn: &Connection, first: u128, last: u128) -> rusqlite::Result<usize> {
    conn.prepare_cached(INSERT_RUN)?
        .execute(params![blob(first), blob(last)])
}

/// The runs that the leases imply, in order: what `runs` must hold.
fn expected(conn: &Connection) -> Result<Vec<(u128, u128)>> {
    let mut stmt = conn.prepare("SELECT ip FROM leases ORDER BY ip")?;
    let mut rows = stmt.query([])?;
    let mut runs: Vec<(u128, u128)> = Vec::new();
    while let Some(row) = rows.next()? {
        let key = key_of(&row.get::<_, Vec<u8>>(0)?)?;
        match runs.last_mut() {
            Some((_, last)) if last.checked_add(1) == Some(key) => *last = key,
            _ => runs.push((key, key)),
        }
    }
    Ok(runs)
}

/// Rebuilds `runs` from `leases` (a schema upgrade).
pub(crate) fn rebuild(conn: &Connection) -> Result<()> {
    conn.execute("DELETE FROM runs", [])?;
    for (first, last) in expected(conn)? {
        insert(conn, first, last)?;
    }
    Ok(())
}

/// Whether `runs` matches `leases`; a description of the first difference if not.
pub(crate) fn mismatch(conn: &Connection) -> Result<Option<String>> {
    let mut stmt = conn.prepare("SELECT first, last FROM runs ORDER BY first")?;
    let mut rows = stmt.query([])?;
    let mut stored = Vec::new();
    while let Some(row) = rows.next()? {
        stored.push((
            key_of(&row.get::<_, Vec<u8>>(0)?)?,
            key_of(&row.get::<_, Vec<u8>>(1)?)?,
        ));
    }
    let expected = expected(conn)?;
    if stored == expected {
        return Ok(None);
    }
    Ok(Some(format!(
        "the index of free addresses disagrees with the leases ({} runs stored, {} expected); \
         `oci-macvlan gc` rebuilds it",
        stored.len(),
        expected.len()
    )))
}
