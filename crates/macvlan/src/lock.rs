//! File locks. One per container, held by attach, detach and `gc` for as long as they work on it: `gc`
//! can never judge a container from a record that an attach is rewriting. `flock(2)` locks die
//! with their process, so a SIGKILLed hook never leaves a container locked.

use std::{
    fs::{self, File, OpenOptions},
    io,
    os::unix::fs::{MetadataExt, OpenOptionsExt},
    path::{Path, PathBuf},
};

use nix::{
    errno::Errno,
    fcntl::{Flock, FlockArg},
    libc,
};

use crate::{
    Error, Result, StateError,
    files::{FILE_MODE, ensure_dir, fix_mode},
};

#[derive(Debug)]
pub(crate) struct FileLock {
    _lock: Flock<File>,
    path: PathBuf,
}

impl FileLock {
    /// Waits for the lock on `path`, creating the file if needed.
    pub(crate) fn acquire(path: &Path) -> Result<Self> {
        Self::take(path, FlockArg::LockExclusive)
            .map(|lock| lock.ok_or_else(|| would_block(path)))?
    }

    /// The lock on `path` if nobody holds it, `None` if somebody does.
    pub(crate) fn try_acquire(path: &Path) -> Result<Option<Self>> {
        Self::take(path, FlockArg::LockExclusiveNonblock)
    }

    /// Waits for a shared hold on `path`: many may share it, while an exclusive holder
    /// ([`Self::acquire`]) waits for all of them and they for it.
    pub(crate) fn acquire_shared(path: &Path) -> Result<Self> {
        Self::take(path, FlockArg::LockShared).map(|lock| lock.ok_or_else(|| would_block(path)))?
    }

    /// A shared hold on `path` if no exclusive holder has it, `None` if one does.
    pub(crate) fn try_acquire_shared(path: &Path) -> Result<Option<Self>> {
        Self::take(path, FlockArg::LockSharedNonblock)
    }

    fn take(path: &Path, how: FlockArg) -> Result<Option<Self>> {
        let wrap = |source: io::Error| {
            Error::from(StateError::Lock {
                path: path.to_path_buf(),
                source,
            })
        };
        if let Some(dir) = path.parent() {
            ensure_dir(dir).map_err(wrap)?;
        }
        loop {
            // Never through a symlink planted where a lock goes (ELOOP).
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(FILE_MODE)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open(path)
                .map_err(wrap)?;
            if !file.metadata().map_err(wrap)?.is_file() {
                return Err(wrap(io::Error::other("it is not a regular file")));
            }
            fix_mode(&file, FILE_MODE).map_err(wrap)?;
            let lock = match Flock::lock(file, how) {
                Ok(lock) => lock,
                Err((_, Errno::EWOULDBLOCK)) => return Ok(None),
                Err((_, errno)) => return Err(wrap(errno.into())),
            };
            // The holder before us may have removed the file: a lock on an unlinked inode
            // excludes nobody, so start again on whatever the path names now.
            let held = lock.metadata().map_err(wrap)?;
            match fs::metadata(path) {
                Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => {
                    return Ok(Some(Self {
                        _lock: lock,
                        path: path.to_path_buf(),
                    }));
                }
                Ok(_) => continue,
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(wrap(err)),
            }
        }
    }

    /// Waits until nobody holds the lock on `path` exclusively, and takes nothing: a missing
    /// file is free, and none is made (a waiter that outlives the file's owner, say a keeper
    /// started as its container is taken back, must not leave one behind).
    pub(crate) fn wait_free(path: &Path) -> Result<()> {
        let wrap = |source: io::Error| {
            Error::from(StateError::Lock {
                path: path.to_path_buf(),
                source,
            })
        };
        let file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
        {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(wrap(err)),
        };
        if !file.metadata().map_err(wrap)?.is_file() {
            return Err(wrap(io::Error::other("it is not a regular file")));
        }
        // A holder that removes the file lets go all the same: its old inode is free then.
        Flock::lock(file, FlockArg::LockShared)
            .map(drop)
            .map_err(|(_, errno)| wrap(errno.into()))
    }

    /// Removes the lock file, still holding the lock: a waiter that then gets the old inode sees
    /// it unlinked and starts again.
    pub(crate) fn remove_file(&self) -> Result<()> {
        match fs::remove_file(&self.path) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => {
                Err(Error::from(StateError::Lock {
                    path: self.path.clone(),
                    source: err,
                }))
            }
            _ => Ok(()),
        }
    }
}

fn would_block(path: &Path) -> Error {
    StateError::Lock {
        path: path.to_path_buf(),
        source: io::Error::from(io::ErrorKind::WouldBlock),
    }
    .into()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_held_lock_excludes_and_a_removed_file_is_recreated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c1.lock");
        let first = FileLock::acquire(&path).unwrap();
        assert!(FileLock::try_acquire(&path).unwrap().is_none());
        first.remove_file().unwrap();
        // The path is free now; a new lock is on a new file, while `first` still holds the old.
        let second = FileLock::try_acquire(&path).unwrap().unwrap();
        assert!(path.exists());
        assert!(FileLock::try_acquire(&path).unwrap().is_none());
        drop(first);
        assert!(FileLock::try_acquire(&path).unwrap().is_none());
        drop(second);
        assert!(FileLock::try_acquire(&path).unwrap().is_some());
    }

    #[test]
    fn waiting_for_a_free_lock_makes_no_file_and_waits_for_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c1.lock");
        FileLock::wait_free(&path).unwrap();
        assert!(!path.exists(), "a lock file was made");
        let held = FileLock::acquire(&path).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || {
                FileLock::wait_free(&path).unwrap();
                tx.send(()).unwrap();
            })
        };
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(200))
                .is_err(),
            "it did not wait for the holder"
        );
        held.remove_file().unwrap();
        drop(held);
        rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        waiter.join().unwrap();
        assert!(!path.exists(), "the lock file was made again");
    }

    #[test]
    fn shared_holders_exclude_an_exclusive_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lock");
        let a = FileLock::acquire_shared(&path).unwrap();
        let b = FileLock::acquire_shared(&path).unwrap();
        assert!(FileLock::try_acquire(&path).unwrap().is_none());
        drop(a);
        assert!(FileLock::try_acquire(&path).unwrap().is_none());
        drop(b);
        assert!(FileLock::try_acquire(&path).unwrap().is_some());
    }

    #[test]
    fn a_symlink_where_a_lock_goes_is_refused_and_its_target_never_made() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("evil-target");
        let path = dir.path().join("locks/evil.lock");
        fs::create_dir(dir.path().join("locks")).unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        assert!(FileLock::acquire(&path).is_err());
        assert!(!target.exists());
    }
}
