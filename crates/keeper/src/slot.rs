//! A duty's slot: the directory where its two keepers meet. Two `flock`s say who is who
//! (`active.lock`, `standby.lock`; a lock dies with its holder, however it dies) and
//! `active.pid` says which process the standby is to watch.

use std::{
    fs::{File, OpenOptions},
    io::Write,
    path::{Path, PathBuf},
};

use nix::{
    errno::Errno,
    fcntl::{Flock, FlockArg},
};

use crate::{Error, Result};

/// The role a keeper took in its slot.
#[derive(Debug)]
pub enum Role {
    /// It keeps the duty (holds `active.lock`).
    Active(Flock<File>),
    /// It waits to take over (holds `standby.lock`).
    Standby(Flock<File>),
    /// Both roles are held: another pair keeps the duty.
    Taken,
}

/// A duty's slot directory.
#[derive(Debug, Clone)]
pub struct Slot {
    dir: PathBuf,
}

const ACTIVE: &str = "active.lock";
const STANDBY: &str = "standby.lock";
const ACTIVE_PID: &str = "active.pid";

impl Slot {
    /// The slot in `dir` (made when first claimed).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn try_lock(&self, name: &str) -> Result<Option<Flock<File>>> {
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::file(&self.dir, e))?;
        let path = self.dir.join(name);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::file(&path, e))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(Some(lock)),
            Err((_, Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, errno)) => Err(Error::file(&path, errno.into())),
        }
    }

    /// Takes the first free role.
    pub fn claim(&self) -> Result<Role> {
        if let Some(lock) = self.try_lock(ACTIVE)? {
            return Ok(Role::Active(lock));
        }
        Ok(match self.try_lock(STANDBY)? {
            Some(lock) => Role::Standby(lock),
            None => Role::Taken,
        })
    }

    /// The active role, if its holder is gone.
    pub fn take_over(&self) -> Result<Option<Flock<File>>> {
        self.try_lock(ACTIVE)
    }

    /// Whether no standby holds its lock (the lock is tried and let go at once).
    pub fn standby_missing(&self) -> Result<bool> {
        Ok(self.try_lock(STANDBY)?.is_some())
    }

    /// Says that this process is the active keeper (written whole, then renamed).
    pub fn record_active(&self) -> Result<()> {
        let path = self.dir.join(ACTIVE_PID);
        let tmp = self
            .dir
            .join(format!(".{ACTIVE_PID}.{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            writeln!(f, "{}", std::process::id())?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|e| Error::file(&path, e))
    }

    /// The pid the active keeper recorded, if any.
    pub fn active_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.join(ACTIVE_PID))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_taken_in_order_and_freed_with_their_holder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let slot = Slot::new(dir.path().join("slot"));
        let active = slot.claim().expect("claims");
        assert!(matches!(active, Role::Active(_)));
        assert!(slot.standby_missing().expect("tries"));
        let standby = slot.claim().expect("claims");
        assert!(matches!(standby, Role::Standby(_)));
        assert!(!slot.standby_missing().expect("tries"));
        assert!(matches!(slot.claim().expect("claims"), Role::Taken));
        assert!(slot.take_over().expect("tries").is_none());
        drop(active);
        assert!(slot.take_over().expect("tries").is_some());
        drop(standby);
        assert!(slot.standby_missing().expect("tries"));
        slot.record_active().expect("records");
        assert_eq!(slot.active_pid(), Some(std::process::id() as i32));
    }
}
