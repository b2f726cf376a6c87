//! Files in the config and state dirs. Those dirs are root's alone: every file and dir is made
//! with a fixed mode whatever the umask, nothing in them is followed through a symlink (the last
//! component of every path is opened `O_NOFOLLOW`, and every dir we write in is checked to be a
//! real dir, once per process: only root could change it after), and reads are bounded. Writes are atomic: a reader sees the old file or the new one,
//! never a torn one.

use std::{
    fs::{self, DirBuilder, File, OpenOptions},
    io::{self, Read, Write},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use nix::libc;

use crate::{Error, Result, StateError};

/// Temporary files are `.NAME.tmp-PID`: the pid tells whether their writer may still run.
const TEMP_MARK: &str = ".tmp-";
/// Mode of every dir oci-macvlan makes.
pub const DIR_MODE: u32 = 0o755;
/// Mode of every file oci-macvlan writes.
pub const FILE_MODE: u32 = 0o644;
/// The largest definition or record oci-macvlan reads (they are a few hundred bytes).
const MAX_FILE: u64 = 1 << 20;

/// Whether a write must survive a power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Flushed to disk before it is put in place: network definitions, the hooks.d file.
    Durable,
    /// What only means something while containers run (the state dir): no container outlives
    /// a reboot, so no `fsync` is paid. A process killed at any instant still leaves the old
    /// file or the new one.
    UntilReboot,
}

/// Whether a write may replace an existing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// An existing file is replaced, at once (a rename over it).
    Replace,
    /// An existing file is an `io::ErrorKind::AlreadyExists` error and is left untouched
    /// (`link(2)` never replaces).
    CreateNew,
}

/// Writes `contents` to `path` through a temporary file in the same directory (made with
/// [`FILE_MODE`], never through a symlink), then renames or links it into place.
pub fn write_atomic(path: &Path, contents: &[u8], put: Put, durability: Durability) -> Result<()> {
    let wrap = |source: io::Error| {
        Error::from(StateError::WriteFile {
            path: path.to_path_buf(),
            source,
        })
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    ensure_dir_once(dir).map_err(wrap)?;
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{file_name}{TEMP_MARK}{}", std::process::id()));
    let result = (|| {
        let mut file = create_tmp(dir, &tmp)?;
        file.write_all(contents)?;
        fix_mode(&file, FILE_MODE)?;
        if durability == Durability::Durable {
            file.sync_all()?;
        }
        match put {
            Put::Replace => replace(&tmp, path),
            Put::CreateNew => fs::hard_link(&tmp, path),
        }
    })();
    // After a rename the temporary name is gone already; after link, or an error, remove it.
    let _ = fs::remove_file(&tmp);
    result.map_err(wrap)
}

/// Makes the temporary file `tmp` in `dir`, never through a symlink. A file already there is
/// one of an earlier process that had this pid: ours to replace. A dir [`ensure_dir_once`]
/// took as made and that is gone since is made again.
fn create_tmp(dir: &Path, tmp: &Path) -> io::Result<File> {
    let open = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(tmp)
    };
    match open() {
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
            // Gone meanwhile is as good as removed.
            if let Err(err) = fs::remove_file(tmp)
                && err.kind() != io::ErrorKind::NotFound
            {
                return Err(err);
            }
            open()
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            forget_ensured(dir);
            ensure_dir_once(dir)?;
            open()
        }
        opened => opened,
    }
}

/// The dirs [`ensure_dir_once`] made or checked in this process.
static ENSURED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// [`ensure_dir`], once per process and dir: a hook writes a container's record up to three
/// times in a few milliseconds, and each check is two syscalls. The dirs are root's (see
/// [`check_private_dir`]): what was a real dir a moment ago is one still, unless root changed it.
fn ensure_dir_once(dir: &Path) -> io::Result<()> {
    let known = |ensured: &Vec<PathBuf>| ensured.iter().any(|d| d == dir);
    if ENSURED.lock().map(|e| known(&e)).unwrap_or(false) {
        return Ok(());
    }
    ensure_dir(dir)?;
    if let Ok(mut ensured) = ENSURED.lock()
        && !known(&ensured)
    {
        ensured.push(dir.to_path_buf());
    }
    Ok(())
}

fn forget_ensured(dir: &Path) {
    if let Ok(mut ensured) = ENSURED.lock() {
        ensured.retain(|d| d != dir);
    }
}

/// Puts `tmp` in the place of `path`, atomically. Where `path` exists, the two are exchanged
/// (`renameat2(RENAME_EXCHANGE)`) and the old file, now under the temporary name, is removed by
/// the caller: ext4 flushes a file renamed over another at once (its `auto_da_alloc` guard for
/// programs that skip `fsync`), and the next unlink of that file (a detach removing the record
/// it rewrote) then waits for the write-back, ~0.3 ms a detach on this VM's disk. An exchange
/// is not a rename over a file, and a process killed at any instant leaves the old file or the
/// new one at `path` (and at worst a temporary file that `gc` removes). Where the kernel or the
/// filesystem cannot exchange, a plain rename (which replaces a symlink at `path` itself, never
/// its target).
fn replace(tmp: &Path, path: &Path) -> io::Result<()> {
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    match renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RenameFlags::RENAME_EXCHANGE) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::ENOENT | nix::errno::Errno::EINVAL) => fs::rename(tmp, path),
        Err(errno) => Err(errno.into()),
    }
}

/// Opens a file of ours to read: never through a symlink (the file itself), without blocking
/// (a FIFO is not waited on), a regular file. `Ok(None)` when it does not exist.
pub fn open_own(path: &Path) -> io::Result<Option<File>> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) if err.raw_os_error() == Some(libc::ELOOP) => {
            return Err(io::Error::other(
                "it is a symlink, which oci-macvlan never follows in its own dirs",
            ));
        }
        Err(err) => return Err(err),
    };
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("it is not a regular file"));
    }
    Ok(Some(file))
}

/// Reads a file of ours: not through a symlink, a regular file, at most 1 MiB. `Ok(None)` when
/// it does not exist.
pub(crate) fn read_own(path: &Path) -> io::Result<Option<Vec<u8>>> {
    if let Some(dir) = path.parent() {
        match fs::symlink_metadata(dir) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(io::Error::other(format!(
                    "{} is a symlink, which oci-macvlan never follows in its own dirs",
                    dir.display()
                )));
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            _ => {}
        }
    }
    let Some(file) = open_own(path)? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    file.take(MAX_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(io::Error::other("it is larger than 1 MiB"));
    }
    Ok(Some(bytes))
}

/// Whether this process makes the dirs it writes in when they are missing (see
/// [`make_no_dirs`]).
static MAKES_DIRS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// From now on this process makes no dir: a write or a lock in a dir that is gone fails
/// (`NotFound`) instead of making the dir again. For a process that outlives the command that
/// made the state dir (a lease's keeper): a state dir removed with all it held (an operator's
/// cleanup, a test's temporary dir) stays removed, whatever the process was doing then.
pub fn make_no_dirs() {
    MAKES_DIRS.store(false, std::sync::atomic::Ordering::Relaxed);
    oci_macvlan_ipam::make_no_stores();
}

/// Makes `dir` (and missing parents) with [`DIR_MODE`] and checks that it is a real dir, not a
/// symlink to somewhere else. Cheap enough for every hook: one `mkdir` and one `lstat`. In a
/// process that makes no dirs ([`make_no_dirs`]) only the check.
pub(crate) fn ensure_dir(dir: &Path) -> io::Result<()> {
    if MAKES_DIRS.load(std::sync::atomic::Ordering::Relaxed) {
        make_dir(dir)?;
    }
    let meta = fs::symlink_metadata(dir)?;
    if meta.file_type().is_symlink() {
        return Err(io::Error::other(
            "it is a symlink, which oci-macvlan never follows in its own dirs",
        ));
    }
    if !meta.is_dir() {
        return Err(io::Error::other("it is not a directory"));
    }
    Ok(())
}

fn make_dir(dir: &Path) -> io::Result<()> {
    match DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            DirBuilder::new().mode(DIR_MODE).recursive(true).create(dir)
        }
        Err(err) => Err(err),
    }
}

/// Sets `file`'s mode to `mode` exactly (the umask may have taken bits away, or a caller's
/// umask of 0 would have added none: either way the result is fixed).
pub(crate) fn fix_mode(file: &File, mode: u32) -> io::Result<()> {
    if file.metadata()?.permissions().mode() & 0o7777 != mode {
        file.set_permissions(fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// Refuses a config or state dir that someone other than root could change: not owned by the
/// user oci-macvlan runs as (root), or writable by its group or by others. Makes it (mode
/// [`DIR_MODE`]) when it is missing, unless this process makes no dirs ([`make_no_dirs`]). `what` names it in the error ("state dir").
pub fn check_private_dir(dir: &Path, what: &'static str) -> Result<()> {
    let wrap = |source: io::Error| {
        Error::from(StateError::UnsafeDir {
            what,
            path: dir.to_path_buf(),
            source,
        })
    };
    if let Err(err) = fs::metadata(dir) {
        if err.kind() != io::ErrorKind::NotFound
            || !MAKES_DIRS.load(std::sync::atomic::Ordering::Relaxed)
        {
            return Err(wrap(err));
        }
        DirBuilder::new()
            .mode(DIR_MODE)
            .recursive(true)
            .create(dir)
            .map_err(wrap)?;
    }
    // The dir itself may be reached through a symlink (`/var/run` is one); what is in it never is.
    let meta = fs::metadata(dir).map_err(wrap)?;
    let euid = nix::unistd::geteuid().as_raw();
    let problem = if !meta.is_dir() {
        Some("it is not a directory".to_owned())
    } else if std::os::unix::fs::MetadataExt::uid(&meta) != euid {
        let owner = std::os::unix::fs::MetadataExt::uid(&meta);
        // The usual case: a user runs a command that only root may (it changes links and
        // leases root's hooks rely on).
        Some(if owner == 0 {
            format!("it is root's and oci-macvlan runs as uid {euid}: run oci-macvlan as root")
        } else {
            format!("it is owned by uid {owner}, not by uid {euid} that oci-macvlan runs as")
        })
    } else if meta.permissions().mode() & 0o022 != 0 {
        Some(format!(
            "its mode {:o} lets others than its owner write in it (chmod go-w)",
            meta.permissions().mode() & 0o7777
        ))
    } else {
        None
    };
    match problem {
        Some(problem) => Err(wrap(io::Error::other(problem))),
        None => Ok(()),
    }
}

/// The stems of the `*.json` files in `dir` (temporary `.name…` files excluded), sorted. A
/// missing directory holds none. Errors come back as `wrap(dir, error)`.
pub(crate) fn json_stems(
    dir: &Path,
    wrap: impl Fn(PathBuf, io::Error) -> Error,
) -> Result<Vec<String>> {
    stems(dir, ".json", wrap)
}

/// The stems of the files in `dir` named `*SUFFIX` (hidden files excluded), sorted.
pub(crate) fn stems(
    dir: &Path,
    suffix: &str,
    wrap: impl Fn(PathBuf, io::Error) -> Error,
) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(wrap(dir.to_path_buf(), err)),
    };
    let mut stems = Vec::new();
    for entry in entries {
        let name = entry
            .map_err(|err| wrap(dir.to_path_buf(), err))?
            .file_name();
        if let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(suffix))
            && !stem.starts_with('.')
        {
            stems.push(stem.to_owned());
        }
    }
    stems.sort();
    Ok(stems)
}

/// Removes the temporary files in `dir` whose writer is gone (a process killed between creating
/// and renaming one); returns how many. A file whose pid runs is left for a later run: its
/// writer may still be at work, or the pid was reused.
pub(crate) fn remove_stale_temps(dir: &Path) -> Result<usize> {
    let wrap = |source: io::Error| {
        Error::from(StateError::WriteFile {
            path: dir.to_path_buf(),
            source,
        })
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(wrap(err)),
    };
    let mut removed = 0;
    for entry in entries {
        let name = entry.map_err(wrap)?.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.starts_with('.'))
            .and_then(|n| n.rsplit_once(TEMP_MARK))
            .and_then(|(_, pid)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            match fs::remove_file(dir.join(&name)) {
                Ok(()) => removed += 1,
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(wrap(err)),
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn writes_have_fixed_modes_and_never_follow_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
        let sub = dir.path().join("a/b");
        let path = sub.join("x.json");
        let written = write_atomic(&path, b"{}", Put::Replace, Durability::UntilReboot);
        nix::sys::stat::umask(old);
        written.unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&path), FILE_MODE);
        assert_eq!(mode(&sub), DIR_MODE);
        assert_eq!(mode(&dir.path().join("a")), DIR_MODE);

        // A symlink planted where a file of ours goes is replaced, its target untouched.
        let target = dir.path().join("target");
        fs::write(&target, b"keep").unwrap();
        let planted = sub.join("y.json");
        symlink(&target, &planted).unwrap();
        let err = read_own(&planted).unwrap_err();
        assert!(err.to_string().contains("symlink"), "{err}");
        write_atomic(&planted, b"{}", Put::Replace, Durability::Durable).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"keep");
        assert!(
            !fs::symlink_metadata(&planted)
                .unwrap()
                .file_type()
                .is_symlink()
        );

        // A dir of ours that is a symlink is refused.
        let elsewhere = dir.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        symlink(&elsewhere, dir.path().join("c")).unwrap();
        let err = write_atomic(
            &dir.path().join("c/z.json"),
            b"{}",
            Put::Replace,
            Durability::UntilReboot,
        )
        .unwrap_err();
        assert!(crate::one_line(&err).contains("symlink"), "{err}");
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
    }

    #[test]
    fn reads_are_bounded_and_of_regular_files_only() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_own(&dir.path().join("missing")).unwrap().is_none());
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(read_own(&fifo).unwrap_err().to_string().contains("regular"));
        assert!(read_own(dir.path()).is_err());
        let big = dir.path().join("big");
        File::create(&big).unwrap().set_len(MAX_FILE + 1).unwrap();
        assert!(read_own(&big).unwrap_err().to_string().contains("1 MiB"));
    }

    #[test]
    fn a_dir_others_may_write_or_another_user_owns_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        check_private_dir(&state, "state dir").unwrap();
        assert!(state.is_dir());
        fs::set_permissions(&state, fs::Permissions::from_mode(0o777)).unwrap();
        let err = crate::one_line(&check_private_dir(&state, "state dir").unwrap_err());
        assert!(err.contains("777") && err.contains("state dir"), "{err}");
        fs::set_permissions(&state, fs::Permissions::from_mode(0o755)).unwrap();
        nix::unistd::chown(&state, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        let err = crate::one_line(&check_private_dir(&state, "state dir").unwrap_err());
        assert!(err.contains("owned by uid 65534"), "{err}");
    }

    #[test]
    fn stale_temporary_files_go_and_a_live_writer_keeps_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dir.path().join(".n.json.tmp-999999999");
        let live = dir
            .path()
            .join(format!(".n.json.tmp-{}", std::process::id()));
        fs::write(&dead, b"").unwrap();
        fs::write(&live, b"").unwrap();
        assert_eq!(remove_stale_temps(dir.path()).unwrap(), 1);
        assert!(!dead.exists() && live.exists());
    }

    #[test]
    fn a_dir_gone_since_it_was_made_is_made_again_and_a_temporary_file_left_of_this_pid_goes() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("records");
        let path = sub.join("n.json");
        write_atomic(&path, b"1", Put::Replace, Durability::UntilReboot).unwrap();
        fs::remove_dir_all(&sub).unwrap();
        write_atomic(&path, b"2", Put::Replace, Durability::UntilReboot).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"2");
        let left = sub.join(format!(".n.json.tmp-{}", std::process::id()));
        fs::write(&left, b"torn").unwrap();
        write_atomic(&path, b"3", Put::Replace, Durability::UntilReboot).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"3");
        assert!(!left.exists());
    }

    /// Run alone in a child process (the switch is for the whole process): with
    /// [`make_no_dirs`], a write or a lock in a dir that is gone fails and makes nothing,
    /// where the dir was made and checked earlier in the process too.
    #[test]
    fn a_process_that_makes_no_dirs_never_makes_a_gone_dir_again() {
        const CHILD: &str = "OCI_MACVLAN_TEST_MAKE_NO_DIRS";
        let Some(root) = std::env::var_os(CHILD) else {
            let dir = tempfile::tempdir().unwrap();
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "files::tests::a_process_that_makes_no_dirs_never_makes_a_gone_dir_again",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD, dir.path())
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(text.contains("1 passed"), "{text}");
            return;
        };
        let state = Path::new(&root).join("run");
        let path = state.join("endpoints/c1.json");
        write_atomic(&path, b"1", Put::Replace, Durability::UntilReboot).unwrap();
        crate::lock::FileLock::acquire(&state.join("locks/c1")).unwrap();
        drop(oci_macvlan_ipam::LmdbStore::open(&state).unwrap());
        make_no_dirs();
        write_atomic(&path, b"2", Put::Replace, Durability::UntilReboot).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"2");
        drop(oci_macvlan_ipam::LmdbStore::open(&state).unwrap());
        check_private_dir(&state, "state dir").unwrap();
        fs::remove_dir_all(&state).unwrap();
        let err = oci_macvlan_ipam::LmdbStore::open(&state).unwrap_err();
        assert!(
            matches!(err, oci_macvlan_ipam::Error::StoreGone { .. }),
            "{err}"
        );
        let err = crate::one_line(&check_private_dir(&state, "state dir").unwrap_err());
        assert!(err.contains("No such file"), "{err}");
        let err = write_atomic(&path, b"3", Put::Replace, Durability::UntilReboot).unwrap_err();
        assert!(crate::one_line(&err).contains("No such file"), "{err}");
        let err = crate::lock::FileLock::acquire(&state.join("locks/c1")).unwrap_err();
        assert!(crate::one_line(&err).contains("No such file"), "{err}");
        assert!(!state.exists(), "the state dir was made again");
    }
}
