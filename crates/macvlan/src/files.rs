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
mod tests;
