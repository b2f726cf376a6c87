//! The lock files of containers that have no record: what an attach killed after it took the
//! container's lock and before it wrote the record leaves, and the upkeep that removes them.

use crate::{
    Error, Result, StateError,
    files::{json_stems, stems},
    id::IdRef,
    lock::FileLock,
};

use super::Records;

impl Records {
    /// The file stems of the lock files whose container has no record, sorted: what a hook
    /// killed after taking a lock and before writing the record leaves.
    pub(crate) fn unrecorded_locks(&self) -> Result<Vec<String>> {
        let records = json_stems(&self.dir, |path, source| {
            Error::from(StateError::ReadRecord { path, source })
        })?;
        let mut locks = stems(&self.locks, ".lock", |path, source| {
            Error::from(StateError::Lock { path, source })
        })?;
        locks.retain(|stem| records.binary_search(stem).is_err());
        Ok(locks)
    }

    /// The lock of the lock file `stem` (from [`Self::unrecorded_locks`]) if nobody holds it,
    /// with whether the container still has no record.
    pub(crate) fn try_lock_stem(&self, stem: &str) -> Result<Option<(FileLock, bool)>> {
        let Some(lock) = FileLock::try_acquire(&self.locks.join(format!("{stem}.lock")))? else {
            return Ok(None);
        };
        let path = self.dir.join(format!("{stem}.json"));
        let unrecorded = !path
            .try_exists()
            .map_err(|source| Error::from(StateError::ReadRecord { path, source }))?;
        Ok(Some((lock, unrecorded)))
    }

    /// Removes every lock file whose container has no record and whose lock nobody holds
    /// (see [`Self::unrecorded_locks`]); returns how many. A front door's upkeep (`gc`, CNI's
    /// GC) runs it.
    pub fn remove_unrecorded_locks(&self) -> Result<usize> {
        let mut removed = 0;
        for stem in self.unrecorded_locks()? {
            if let Some((lock, true)) = self.try_lock_stem(&stem)? {
                lock.remove_file()?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Removes the lock file of `container_id` if it has no record and nobody holds its lock:
    /// what an attach killed before it wrote the record leaves. A take-back of an id with no
    /// record (CNI's DEL) runs it; `true` if a file was removed.
    pub fn remove_unrecorded_lock(&self, container_id: &(impl IdRef + ?Sized)) -> Result<bool> {
        let path = self.lock_path(container_id)?;
        if !path.try_exists().map_err(|source| {
            Error::from(StateError::Lock {
                path: path.clone(),
                source,
            })
        })? {
            return Ok(false);
        }
        let Some(lock) = self.try_lock(container_id)? else {
            return Ok(false);
        };
        if self.read(container_id)?.is_some() {
            return Ok(false);
        }
        lock.remove_file()?;
        Ok(true)
    }
}
