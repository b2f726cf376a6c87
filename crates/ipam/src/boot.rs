//! The boot a lease store belongs to, and how a store comes to be.
//!
//! A lease means something only while its container lives, and no container outlives a reboot.
//! The store is written without `fsync` (`lmdb.rs`), so after a power loss its files may be torn;
//! it must then be neither trusted nor in the way. So a store knows its boot: `leases/boot_id`
//! holds `/proc/sys/kernel/random/boot_id` as it was when the store was made, written (and made
//! durable) before the store took its name, and read without trusting LMDB's files. A store of
//! another boot is renamed `leases.boot-<its boot id's first 8 characters>-<unix seconds>` (never
//! deleted: an operator may read or delete it) and a new, empty store takes its place.
//!
//! A store is made whole in a temporary sibling, `leases.tmp-<pid>`, and renamed to `leases`
//! only then, without replacing anything: when many hooks start at once, one rename wins and
//! the others open its store. So an existing `leases` that lacks a file or holds a damaged one
//! is damage (`damage.rs`), never a store to make again.
//!
//! A store without `boot_id` was made by oci-macvlan before it knew boots. It cannot say which
//! boot it belongs to; if it is sound it is taken as this boot's (containers started before the
//! upgrade hold addresses in it) and marked so, and `oci-macvlan gc` releases the leases of
//! containers that are gone.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Read, Write},
    os::unix::fs::OpenOptionsExt,
    path::Path,
    time::{SystemTime, UNIX_EPOCH},
};

use nix::{
    errno::Errno,
    fcntl::{AT_FDCWD, Flock, FlockArg, RenameFlags, renameat2},
};

use crate::{
    Error, Result,
    damage::{Damage, damaged, kind, lstat, open_regular},
};

pub(crate) const BOOT_ID_FILE: &str = "boot_id";
const BOOT_ID_SOURCE: &str = "/proc/sys/kernel/random/boot_id";
/// `<state-dir>/leases.tmp-<pid>`: a store being made.
const TEMP_MARK: &str = ".tmp-";
/// `<state-dir>/leases.lock`: held while a store of another boot is set aside.
const SET_ASIDE_LOCK: &str = "leases.lock";
/// A boot id is 36 characters; more is not one.
const BOOT_ID_MAX: u64 = 64;
/// Rounds of "create, or set aside and create" before giving up: each round ends with a store
/// of this boot unless another process changed `leases` in between.
const ROUNDS: usize = 8;

/// Whether this process may make a store that is missing (see [`make_no_stores`]).
static MAKES_STORES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// From now on this process makes no store, nor the state dir that holds one: opening a store
/// that is gone is [`Error::StoreGone`]. For a process that outlives the command that made the
/// store (a lease's renewer): a state dir removed with all it held stays removed.
pub fn make_no_stores() {
    MAKES_STORES.store(false, std::sync::atomic::Ordering::Relaxed);
}

/// Whether this process makes a missing store (see [`make_no_stores`]).
pub(crate) fn makes_stores() -> bool {
    MAKES_STORES.load(std::sync::atomic::Ordering::Relaxed)
}

/// This boot's id.
pub(crate) fn current() -> Result<String> {
    fs::read_to_string(BOOT_ID_SOURCE)
        .map(|id| id.trim().to_owned())
        .map_err(|source| Error::BootId {
            path: BOOT_ID_SOURCE.into(),
            source,
        })
}

/// What [`prepare`] found at `<state-dir>/leases`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// A store of this boot.
    ThisBoot,
    /// A store that names no boot (see the module's comment): to check, then [`adopt`].
    Unmarked,
}

/// Makes `store` (`<state_dir>/leases`) a directory holding a store of `boot`, or one that
/// names no boot: creates it where there is none, with `init` making the LMDB files in the
/// temporary directory it is given, and sets aside a store of another boot.
pub(crate) fn prepare(
    state_dir: &Path,
    store: &Path,
    boot: &str,
    init: &dyn Fn(&Path) -> Result<()>,
) -> Result<Found> {
    for _ in 0..ROUNDS {
        let Some(meta) = lstat(store)? else {
            if !makes_stores() {
                return Err(Error::StoreGone {
                    path: store.to_path_buf(),
                });
            }
            create(state_dir, store, boot, init)?;
            continue;
        };
        if !meta.is_dir() {
            return Err(damaged(
                store,
                store,
                Damage::Kind {
                    found: kind(&meta),
                    expected: "a directory",
                },
            ));
        }
        match read_mark(store)? {
            None => return Ok(Found::Unmarked),
            Some(id) if id == boot => return Ok(Found::ThisBoot),
            Some(_) => set_aside(state_dir, store, boot)?,
        }
    }
    Err(Error::StoreChanging {
        path: store.to_path_buf(),
    })
}

/// The boot id `store` names, `None` if it names none.
fn read_mark(store: &Path) -> Result<Option<String>> {
    let path = store.join(BOOT_ID_FILE);
    let Some(file) = open_regular(&path, store)? else {
        return Ok(None);
    };
    let mut id = Vec::new();
    file.take(BOOT_ID_MAX)
        .read_to_end(&mut id)
        .map_err(|source| Error::ReadStore { path, source })?;
    Ok(Some(String::from_utf8_lossy(&id).trim().to_owned()))
}

/// Marks `store`, which names no boot and was found sound, as `boot`'s.
pub(crate) fn adopt(store: &Path, boot: &str) -> Result<()> {
    let path = store.join(BOOT_ID_FILE);
    let tmp = store.join(format!(".{BOOT_ID_FILE}{TEMP_MARK}{}", std::process::id()));
    let result = (|| {
        write_durably(&tmp, boot)?;
        match fs::hard_link(&tmp, &path) {
            // Another process marked it first, with the same boot.
            Err(err) if err.kind() != io::ErrorKind::AlreadyExists => return Err(err),
            _ => {}
        }
        File::open(store)?.sync_all()
    })();
    let _ = fs::remove_file(&tmp);
    result.map_err(|source| Error::CreateStore { path, source })
}

/// A new file at `path` holding `boot`, on disk before this returns.
fn write_durably(path: &Path, boot: &str) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .mode(0o644)
        .open(path)?;
    file.write_all(format!("{boot}\n").as_bytes())?;
    file.sync_all()
}

/// Makes a store of `boot` in `<state_dir>/leases.tmp-<pid>` and renames it to `store` unless
/// another process made one first (then this one is removed and theirs is used).
fn create(
    state_dir: &Path,
    store: &Path,
    boot: &str,
    init: &dyn Fn(&Path) -> Result<()>,
) -> Result<()> {
    remove_stale_temps(state_dir);
    let name = store
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = state_dir.join(format!("{name}{TEMP_MARK}{}", std::process::id()));
    let fail = |source| Error::CreateStore {
        path: store.to_path_buf(),
        source,
    };
    // Left by an earlier attempt of this process, or of a dead one whose pid this is now.
    if lstat(&tmp)?.is_some() {
        fs::remove_dir_all(&tmp).map_err(fail)?;
    }
    fs::create_dir(&tmp).map_err(fail)?;
    let made = (|| {
        // The mark must be on disk before the name: after a power loss, a store whose mark was
        // lost would be taken for one that names no boot.
        write_durably(&tmp.join(BOOT_ID_FILE), boot).map_err(fail)?;
        init(&tmp)?;
        File::open(&tmp)
            .and_then(|dir| dir.sync_all())
            .map_err(fail)?;
        match rename_noreplace(&tmp, store) {
            Ok(()) => Ok(true),
            Err(err)
                if err.kind() == io::ErrorKind::AlreadyExists
                    || err.raw_os_error() == Some(nix::libc::ENOTEMPTY) =>
            {
                Ok(false)
            }
            Err(err) => Err(fail(err)),
        }
    })();
    if !matches!(made, Ok(true)) {
        let _ = fs::remove_dir_all(&tmp);
    }
    made.map(drop)
}

/// Removes the temporary stores whose maker is gone (killed while making one).
fn remove_stale_temps(state_dir: &Path) {
    let Ok(entries) = fs::read_dir(state_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(crate::LmdbStore::DIR_NAME))
            .and_then(|n| n.strip_prefix(TEMP_MARK))
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Renames `store`, a store of another boot than `boot`, out of the way. Under a lock, and
/// after reading its mark again: another process may have set it aside, and made the store of
/// this boot, since it was read.
fn set_aside(state_dir: &Path, store: &Path, boot: &str) -> Result<()> {
    let lock_path = state_dir.join(SET_ASIDE_LOCK);
    let fail = |path: &Path, source| Error::SetAside {
        path: path.to_path_buf(),
        source,
    };
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .mode(0o600)
        .open(&lock_path)
        .map_err(|err| fail(&lock_path, err))?;
    let _lock = Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| fail(&lock_path, io::Error::from(errno)))?;
    if !lstat(store)?.is_some_and(|meta| meta.is_dir()) {
        return Ok(());
    }
    let old = match read_mark(store)? {
        Some(id) if id != boot => id,
        _ => return Ok(()),
    };
    let mut short: String = old
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(8)
        .collect();
    if short.is_empty() {
        short.push_str("unknown");
    }
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let name = store
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let base = format!("{name}.boot-{short}-{secs}");
    let mut n = 0;
    loop {
        let aside = state_dir.join(if n == 0 {
            base.clone()
        } else {
            format!("{base}.{n}")
        });
        match rename_noreplace(store, &aside) {
            Ok(()) => return Ok(()),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists && n < 100 => n += 1,
            Err(err) => return Err(fail(store, err)),
        }
    }
}

/// `rename(2)` that never replaces `to`: `AlreadyExists` if it is there.
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    match renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE) {
        Ok(()) => Ok(()),
        // A filesystem without RENAME_NOREPLACE: a directory is never renamed over a non-empty
        // one, and an empty one holds no store.
        Err(Errno::EINVAL) => {
            if lstat(to).ok().flatten().is_some() {
                return Err(io::ErrorKind::AlreadyExists.into());
            }
            fs::rename(from, to)
        }
        Err(errno) => Err(errno.into()),
    }
}
