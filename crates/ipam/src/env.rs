//! The LMDB environments this process has open. LMDB forbids opening one environment twice in
//! a process (closing either would drop the other's locks), so the stores of one directory
//! share one, counted; with the last handle, `fault` stops guarding its map.

use std::{
    collections::{HashMap, hash_map::Entry},
    path::{Path, PathBuf},
    sync::{Mutex, PoisonError},
};

use heed::{Database, Env, EnvFlags, EnvOpenOptions, types::Bytes};

use crate::{
    Error, Result, fault,
    lmdb::{MAP_SIZE, SCHEMA_VERSION},
};

/// Environments this process has open, by directory: LMDB forbids opening one twice in a
/// process (closing either would drop the other's locks), so stores of one directory share it.
static OPEN: Mutex<Option<HashMap<PathBuf, (Env, usize)>>> = Mutex::new(None);

pub(crate) fn acquire(dir: &Path) -> Result<Env> {
    let mut open = OPEN.lock().unwrap_or_else(PoisonError::into_inner);
    let open = open.get_or_insert_with(HashMap::new);
    match open.entry(dir.to_path_buf()) {
        Entry::Occupied(mut entry) => {
            entry.get_mut().1 += 1;
            Ok(entry.get().0.clone())
        }
        Entry::Vacant(entry) => {
            let env = open_env(dir)?;
            entry.insert((env.clone(), 1));
            Ok(env)
        }
    }
}

/// Opens the environment in `dir`; callers go through `acquire` (or `init`, for a directory
/// no other process knows yet).
pub(crate) fn open_env(dir: &Path) -> Result<Env> {
    let mut options = EnvOpenOptions::new();
    options.map_size(MAP_SIZE).max_dbs(4);
    // SAFETY: heed asks the caller to keep the memory-mapped files from being changed behind
    // LMDB's back: `OPEN` keeps this process from opening the environment twice, and only LMDB
    // itself writes the store's files. A damaged file is a fault of another kind: `damage::check`
    // has made sure that the file holds the pages its meta pages and trees name (a page past its
    // end is SIGBUS), and `fault` answers a SIGBUS that a damaged page inside them leads to.
    #[allow(unsafe_code)]
    unsafe {
        options.flags(EnvFlags::NO_SYNC);
        options.open(dir)
    }
    .map_err(|source| Error::OpenStore {
        path: dir.to_path_buf(),
        source,
    })
}

/// Makes the databases of a new store in `dir`, the temporary directory `boot::prepare` renames
/// into place once this returns, and closes it.
pub(crate) fn init(dir: &Path) -> Result<()> {
    let env = open_env(dir)?;
    let mut wtxn = env.write_txn()?;
    for name in ["leases", "owners", "runs"] {
        env.create_database::<Bytes, Bytes>(&mut wtxn, Some(name))?;
    }
    let meta: Database<Bytes, Bytes> = env.create_database(&mut wtxn, Some("meta"))?;
    meta.put(&mut wtxn, b"version", &SCHEMA_VERSION.to_be_bytes())?;
    wtxn.commit()?;
    Ok(())
}

/// Drops a handle of the environment in `dir`; with the last one, `fault` stops guarding the
/// map of `data.mdb` (inode `guarded`), which closes with it.
pub(crate) fn release(dir: &Path, guarded: Option<u64>) {
    let mut open = OPEN.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(open) = open.as_mut()
        && let Entry::Occupied(mut entry) = open.entry(dir.to_path_buf())
    {
        entry.get_mut().1 -= 1;
        if entry.get().1 == 0 {
            entry.remove();
            if let Some(inode) = guarded {
                fault::forget(inode);
            }
        }
    }
}
