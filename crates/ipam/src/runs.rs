//! Runs of leased addresses: the `runs` table maps the first key of every maximal interval
//! `[first, last]` of consecutive leased keys to its last key, kept in step with the leases inside
//! the same transaction. The lowest free address at or above a key is then one B-tree probe away
//! (the end of the run that covers the key, plus one) instead of a walk over every lease below
//! it, so allocation and release cost O(log n) in the number of leases.
//!
//! Keys are global, like the leases' keys: overlapping networks share one address space, and a
//! run may cross a subnet's edge, which is harmless because callers bound the answer.

use std::ops::Bound;

use heed::{Database, RoTxn, RwTxn, types::Bytes};

use crate::{Error, Result};

/// First key (16 bytes, big-endian) to last key of one run.
pub(crate) type Runs = Database<Bytes, Bytes>;

fn blob(key: u128) -> [u8; 16] {
    key.to_be_bytes()
}

pub(crate) fn key_of(blob: &[u8]) -> Result<u128> {
    let bytes: [u8; 16] = blob
        .try_into()
        .map_err(|_| Error::Corrupt(format!("address key of {} bytes", blob.len())))?;
    Ok(u128::from_be_bytes(bytes))
}

#[cfg(test)]
thread_local! {
    /// B-tree probes made by [`covering`], for tests that count what an allocation costs.
    pub(crate) static PROBES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The run that covers `key`, if any.
pub(crate) fn covering(runs: Runs, txn: &RoTxn, key: u128) -> Result<Option<(u128, u128)>> {
    #[cfg(test)]
    PROBES.with(|p| p.set(p.get() + 1));
    let Some((first, last)) = runs.get_lower_than_or_equal_to(txn, &blob(key))? else {
        return Ok(None);
    };
    let (first, last) = (key_of(first)?, key_of(last)?);
    Ok((last >= key).then_some((first, last)))
}

/// The lowest key in `lo..=hi` that is neither leased nor in `reserved` (sorted). Each step
/// jumps over a whole run or one reserved key, so the cost depends on the number of reserved
/// keys, not on the number of leases.
pub(crate) fn lowest_free(
    runs: Runs,
    txn: &RoTxn,
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
        } else if let Some((_, last)) = covering(runs, txn, candidate)? {
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

/// How many keys in `lo..=hi` are leased: the overlap of the runs with the interval.
pub(crate) fn count(runs: Runs, txn: &RoTxn, lo: u128, hi: u128) -> Result<u128> {
    let overlap = |first: u128, last: u128| last.min(hi).saturating_sub(first.max(lo)) + 1;
    let mut total = 0;
    // A run that starts below `lo` and reaches into the interval.
    if let Some((first, last)) = covering(runs, txn, lo)?
        && first < lo
    {
        total += overlap(first, last);
    }
    let (lo_key, hi_key) = (blob(lo), blob(hi));
    let range = (Bound::Included(&lo_key[..]), Bound::Included(&hi_key[..]));
    for run in runs.range(txn, &range)? {
        let (first, last) = run?;
        total += overlap(key_of(first)?, key_of(last)?);
    }
    Ok(total)
}

/// Records that `key` became leased: joins the runs ending just below and starting just above.
pub(crate) fn add(runs: Runs, txn: &mut RwTxn, key: u128) -> Result<()> {
    if covering(runs, txn, key)?.is_some() {
        return Err(Error::Corrupt(format!(
            "newly leased key {key:#x} is already in a run of leased addresses"
        )));
    }
    // Runs are disjoint, so a run that covers `key - 1` ends there.
    let below = match key.checked_sub(1) {
        Some(prev) => covering(runs, txn, prev)?.map(|(first, _)| first),
        None => None,
    };
    let above = match key.checked_add(1) {
        Some(next) => match runs.get(txn, &blob(next))? {
            Some(last) => {
                let last = key_of(last)?;
                runs.delete(txn, &blob(next))?;
                Some(last)
            }
            None => None,
        },
        None => None,
    };
    runs.put(
        txn,
        &blob(below.unwrap_or(key)),
        &blob(above.unwrap_or(key)),
    )?;
    Ok(())
}

/// Records that `key` is no longer leased: splits the run that covered it.
pub(crate) fn remove(runs: Runs, txn: &mut RwTxn, key: u128) -> Result<()> {
    let Some((first, last)) = covering(runs, txn, key)? else {
        return Err(Error::Corrupt(format!(
            "released key {key:#x} is in no run of leased addresses"
        )));
    };
    runs.delete(txn, &blob(first))?;
    if first < key {
        runs.put(txn, &blob(first), &blob(key - 1))?;
    }
    if key < last {
        runs.put(txn, &blob(key + 1), &blob(last))?;
    }
    Ok(())
}

/// The runs that `keys` (sorted) make: what `runs` must hold.
pub(crate) fn expected(keys: impl IntoIterator<Item = u128>) -> Vec<(u128, u128)> {
    let mut out: Vec<(u128, u128)> = Vec::new();
    for key in keys {
        match out.last_mut() {
            Some((_, last)) if last.checked_add(1) == Some(key) => *last = key,
            _ => out.push((key, key)),
        }
    }
    out
}

/// What `runs` holds, in order.
pub(crate) fn stored(runs: Runs, txn: &RoTxn) -> Result<Vec<(u128, u128)>> {
    runs.iter(txn)?
        .map(|run| {
            let (first, last) = run?;
            Ok((key_of(first)?, key_of(last)?))
        })
        .collect()
}

/// Replaces `runs` with `wanted`.
pub(crate) fn rebuild(runs: Runs, txn: &mut RwTxn, wanted: &[(u128, u128)]) -> Result<()> {
    runs.clear(txn)?;
    for (first, last) in wanted {
        runs.put(txn, &blob(*first), &blob(*last))?;
    }
    Ok(())
}
