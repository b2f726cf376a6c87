//! A duty's slot: the directory where its two keepers meet. Two `flock`s say who is who
//! (`active.lock`, `standby.lock`; a lock dies with its holder, however it dies) and
//! `active.pid` says which process the standby is to watch.

use std::{
    fs::{File, OpenOptions},
    io::{Read, Write},
    os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt},
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

/// `O_NOFOLLOW`: a slot's files are never reached through a symbolic link.
fn libc_o_nofollow() -> i32 {
    nix::fcntl::OFlag::O_NOFOLLOW.bits()
}

impl Slot {
    /// The slot in `dir` (made when first claimed).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Opens `name` in the slot: never through a symbolic link, owner-only, made if missing.
    fn open(&self, name: &str, create: bool) -> std::io::Result<File> {
        OpenOptions::new()
            .create(create)
            .truncate(false)
            .write(create)
            .read(!create)
            .mode(0o600)
            .custom_flags(libc_o_nofollow())
            .open(self.dir.join(name))
    }

    fn try_lock(&self, name: &str) -> Result<Option<Flock<File>>> {
        self.make_dir()?;
        let path = self.dir.join(name);
        let file = self.open(name, true).map_err(|e| Error::file(&path, e))?;
        let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((_, Errno::EWOULDBLOCK)) => return Ok(None),
            Err((_, errno)) => return Err(Error::file(&path, errno.into())),
        };
        // A lock on a file the slot no longer names (removed or replaced after the open) is
        // no one's role: try again on the file there now.
        if self.holds(&lock) {
            Ok(Some(lock))
        } else {
            drop(lock);
            self.try_lock(name)
        }
    }

    /// Makes the slot's dir and the dir of slots it is in, where missing (owner-only), but
    /// never the dir above them (a state dir): one removed with all it held (a test's
    /// temporary dir, an operator's cleanup) is not made again by a keeper that outlived it,
    /// which ends on the error instead.
    fn make_dir(&self) -> Result<()> {
        let parent = self.dir.parent().filter(|p| !p.as_os_str().is_empty());
        for dir in parent.into_iter().chain([self.dir.as_path()]) {
            if let Err(e) = std::fs::DirBuilder::new().mode(0o700).create(dir)
                && e.kind() != std::io::ErrorKind::AlreadyExists
            {
                return Err(Error::file(dir, e));
            }
        }
        Ok(())
    }

    /// Whether `lock` is on the file its name in the slot has now (a slot removed while a
    /// pair lives must not let a second pair take the same roles on new files).
    pub fn holds(&self, lock: &Flock<File>) -> bool {
        let named = [ACTIVE, STANDBY].into_iter().find_map(|name| {
            std::fs::symlink_metadata(self.dir.join(name))
                .ok()
                .filter(|m| {
                    lock.metadata()
                        .is_ok_and(|l| l.dev() == m.dev() && l.ino() == m.ino())
                })
        });
        named.is_some()
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
            // A file of a dead keeper that had this pid.
            let _ = std::fs::remove_file(&tmp);
            let mut f = OpenOptions::new()
                .create_new(true)
                .write(true)
                .mode(0o600)
                .open(&tmp)?;
            writeln!(f, "{}", std::process::id())?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|e| Error::file(&path, e))
    }

    /// Removes the slot if no keeper holds either role (both were killed together, say, and
    /// neither removed it): both locks are taken, then the directory goes. Whether it was
    /// removed; a slot either keeper holds is left.
    pub fn remove_if_free(&self) -> Result<bool> {
        let Some(active) = self.try_lock(ACTIVE)? else {
            return Ok(false);
        };
        let Some(standby) = self.try_lock(STANDBY)? else {
            return Ok(false);
        };
        std::fs::remove_dir_all(&self.dir).map_err(|e| Error::file(&self.dir, e))?;
        drop((active, standby));
        Ok(true)
    }

    /// Whether no keeper holds either role (both locks are tried and let go at once).
    pub fn unheld(&self) -> Result<bool> {
        let Some(active) = self.try_lock(ACTIVE)? else {
            return Ok(false);
        };
        let free = self.try_lock(STANDBY)?.is_some();
        drop(active);
        Ok(free)
    }

    /// The pid the active keeper recorded, if any.
    pub fn active_pid(&self) -> Option<i32> {
        let mut text = String::new();
        // A pid is a few digits: more than that is not one.
        self.open(ACTIVE_PID, false)
            .ok()?
            .take(16)
            .read_to_string(&mut text)
            .ok()?;
        text.trim().parse().ok()
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

    /// The slot's dir and the dir of slots are made; the dir above them, gone, is not made
    /// again (a keeper that outlived its state dir leaves nothing behind).
    #[test]
    fn a_slot_is_made_in_its_state_dir_but_never_makes_a_gone_one_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        std::fs::create_dir(&state).expect("state dir");
        let slot = Slot::new(state.join("keepers").join("c1.lan"));
        let active = slot.claim().expect("claims");
        assert!(matches!(active, Role::Active(_)));
        drop(active);
        std::fs::remove_dir_all(&state).expect("state dir removed");
        let err = slot.claim().expect_err("no state dir to claim in");
        assert!(err.to_string().contains("keepers"), "{err}");
        assert!(slot.take_over().is_err() && slot.standby_missing().is_err());
        assert!(!state.exists(), "the state dir was made again");
    }

    #[test]
    fn only_a_slot_whose_roles_are_both_free_is_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let slot = Slot::new(dir.path().join("slot"));
        let active = slot.claim().expect("claims");
        assert!(!slot.remove_if_free().expect("tries"));
        assert!(!slot.unheld().expect("tries"));
        let standby = slot.claim().expect("claims");
        drop(active);
        assert!(!slot.remove_if_free().expect("tries"));
        assert!(slot.dir().exists());
        assert!(!slot.unheld().expect("tries"));
        drop(standby);
        assert!(slot.unheld().expect("tries"));
        assert!(slot.remove_if_free().expect("tries"));
        assert!(!slot.dir().exists());
    }

    #[test]
    fn a_lock_on_a_file_the_slot_no_longer_names_is_known_as_such() {
        let dir = tempfile::tempdir().expect("tempdir");
        let slot = Slot::new(dir.path().join("slot"));
        let Role::Active(old) = slot.claim().expect("claims") else {
            panic!("not active");
        };
        assert!(slot.holds(&old));
        std::fs::remove_dir_all(slot.dir()).expect("slot removed");
        assert!(!slot.holds(&old));
        let Role::Active(new) = slot.claim().expect("claims") else {
            panic!("not active");
        };
        assert!(slot.holds(&new) && !slot.holds(&old));
    }

    #[test]
    fn slot_files_are_private_and_never_followed_through_a_link() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let slot = Slot::new(dir.path().join("slot"));
        drop(slot.claim().expect("claims"));
        let mode = std::fs::metadata(slot.dir().join(ACTIVE))
            .expect("lock file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let elsewhere = dir.path().join("elsewhere");
        std::fs::write(&elsewhere, "1\n").expect("write");
        std::os::unix::fs::symlink(&elsewhere, slot.dir().join(ACTIVE_PID)).expect("link");
        assert_eq!(slot.active_pid(), None);
        std::fs::remove_file(slot.dir().join(ACTIVE_PID)).expect("unlink");
        std::fs::write(slot.dir().join(ACTIVE_PID), "7".repeat(4096)).expect("write");
        assert_eq!(slot.active_pid(), None);
    }
}
