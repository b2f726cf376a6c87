//! One JSON line per hook invocation in `<state-dir>/hooks.jsonl`: runtimes throw a hook's
//! output away when it succeeds (and often when it fails), so this is where an operator finds
//! what each hook did, how long it took and why it failed.
//!
//! Each line is written whole or not at all: appends are single `write(2)`s to an `O_APPEND`
//! file under an exclusive `flock`, and a write that fails part-way (a full state dir) is cut
//! back to where it started, so the next record never lands glued to a torn one. A tail without
//! its newline (a hook killed inside its write) is cut off by the next hook to append. Past
//! [`ROTATE_AT`] bytes the file becomes `hooks.jsonl.1` (replacing the older one): the state dir
//! is a tmpfs and must not grow without bound. Rotation happens under the lock, and only if the
//! path still names the file this hook opened, so two hooks never both rotate.
//!
//! The state dir may hold what someone planted there: the journal is opened with `O_NOFOLLOW`
//! (a symlink is refused, its target untouched) and `O_NONBLOCK` (a FIFO never blocks), must be
//! a regular file with no other hard link, and has mode [`MODE`] (0640: root writes, the admin
//! group reads) whatever the umask; a state dir the journal creates gets [`DIR_MODE`]. Failing
//! to write the journal never fails the hook: it says so on stderr.

use std::{
    fs::{self, DirBuilder, File, OpenOptions, Permissions},
    io::{self, Write},
    os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    time::{Instant, SystemTime},
};

use nix::{
    fcntl::{Flock, FlockArg},
    libc,
};
use serde::Serialize;

use crate::error::{self, Error};

pub const FILE: &str = "hooks.jsonl";
/// Size past which the journal is rotated.
pub const ROTATE_AT: u64 = 4 << 20;
/// Mode of the journal and its rotation.
pub const MODE: u32 = 0o640;
/// Mode of a state dir (and of its missing parents) that the journal creates.
pub const DIR_MODE: u32 = 0o755;
/// Longest container id kept in a record: the id comes from stdin, which may hold anything.
const MAX_ID: usize = 256;

/// What one hook invocation learnt about itself, filled in as it goes.
#[derive(Debug)]
pub struct Invocation {
    started: Instant,
    pub container: Option<String>,
    /// The stage argument the runtime passed (`createRuntime`, `prestart`, `poststop`), if any.
    pub stage: Option<String>,
    /// `attach` or `detach`, once known.
    pub action: Option<&'static str>,
    /// The container is not on any oci-macvlan network: nothing was done.
    pub skipped: bool,
    pub networks: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Record<'a> {
    time: String,
    container: Option<&'a str>,
    stage: Option<&'a str>,
    action: Option<&'a str>,
    outcome: &'static str,
    exit: u8,
    duration_ms: f64,
    /// The part of `duration_ms` spent waiting for DHCP servers' answers, when an exchange ran
    /// (`source::dhcp::server_wait`, of each exchange's `PacketLink::waited`).
    #[serde(skip_serializing_if = "Option::is_none")]
    dhcp_wait_ms: Option<f64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    networks: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    hook_pid: u32,
}

/// A duration in milliseconds to the microsecond (`2.561`, not `2.5609610000000003`).
fn millis(duration: std::time::Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}

impl Invocation {
    pub fn start(stage: Option<&str>) -> Self {
        Self {
            started: Instant::now(),
            container: None,
            stage: stage.map(|stage| error::echo(stage).into_owned()),
            action: None,
            skipped: false,
            networks: Vec::new(),
        }
    }

    pub fn set_container(&mut self, id: &str) {
        let mut end = id.len().min(MAX_ID);
        while !id.is_char_boundary(end) {
            end -= 1;
        }
        self.container = Some(id[..end].to_owned());
    }

    /// The error line of a failed invocation, as stderr and the journal give it: a hook's says
    /// what it was doing and to which container (a runtime shows it inside its own error, as
    /// one escaped string after clauses of its own: the line must stand alone there).
    pub fn error_line(&self, err: &Error) -> String {
        match (self.action, &self.container) {
            (Some(action @ ("attach" | "detach")), Some(id)) => {
                let line = format!("{action} of container {id}: {}", error::line(err));
                error::cut(&line, error::MAX_LINE).into_owned()
            }
            _ => error::line(err),
        }
    }

    /// The line this invocation appends, for `result`.
    fn line(&self, result: &Result<(), Error>) -> String {
        let (outcome, exit, error) = match result {
            Ok(()) if self.skipped => ("skipped", 0, None),
            Ok(()) => ("ok", 0, None),
            Err(err) => ("error", err.exit_code(), Some(self.error_line(err))),
        };
        let record = Record {
            time: humantime::format_rfc3339_micros(SystemTime::now()).to_string(),
            container: self.container.as_deref(),
            stage: self.stage.as_deref(),
            action: self.action,
            outcome,
            exit,
            duration_ms: millis(self.started.elapsed()),
            dhcp_wait_ms: Some(oci_macvlan_macvlan::source::dhcp::server_wait())
                .filter(|waited| !waited.is_zero())
                .map(millis),
            networks: &self.networks,
            error,
            hook_pid: std::process::id(),
        };
        let mut line = serde_json::to_string(&record).unwrap_or_default();
        line.push('\n');
        line
    }

    /// Appends this invocation's record (the state dir made if missing); a failure to do so is
    /// reported on stderr only.
    pub fn record(&self, state_dir: &Path, result: &Result<(), Error>) {
        if let Err(err) = append(state_dir, &self.line(result), true) {
            eprintln!(
                "oci-macvlan: warning: cannot write the hook journal {}: {err}",
                state_dir.join(FILE).display()
            );
        }
    }

    /// [`Self::record`] for a process that outlives the command that made the state dir (a
    /// lease's keeper, whose standard streams are `/dev/null`): a state dir that is gone
    /// (removed with all it held) is not made again, and the line is dropped.
    pub fn record_kept(&self, state_dir: &Path, result: &Result<(), Error>) {
        let _ = append(state_dir, &self.line(result), false);
    }
}

/// Appends `line` to the journal in `state_dir`; `make`: the state dir is made if missing.
fn append(state_dir: &Path, line: &str, make: bool) -> io::Result<()> {
    let path = state_dir.join(FILE);
    let file = match open(&path) {
        Err(err) if make && err.kind() == io::ErrorKind::NotFound => {
            create_dirs(state_dir)?;
            open(&path)?
        }
        other => other?,
    };
    let file = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| errno)?;
    let meta = file.metadata()?;
    if meta.len() >= ROTATE_AT && same_file(&path, &meta) {
        fs::rename(&path, rotated(&path))?;
        // The lock on the old file is held until the new one has its first line.
        let new = Flock::lock(open(&path)?, FlockArg::LockExclusive).map_err(|(_, errno)| errno)?;
        return write_whole(&new, line);
    }
    write_whole(&file, line)
}

/// Appends `line` to `file`, whose lock the caller holds: whole, or not at all.
fn write_whole(mut file: &File, line: &str) -> io::Result<()> {
    let len = file.metadata()?.len();
    let start = whole_lines_len(file, len)?;
    if start < len {
        file.set_len(start)?;
    }
    file.write_all(line.as_bytes()).inspect_err(|_| {
        // Nothing better to do if this fails too: the next append cuts the torn tail.
        let _ = file.set_len(start);
    })
}

/// The length of the first `len` bytes of `file` up to and with its last newline: a tail
/// after it is a line torn by a hook that was killed while writing it.
fn whole_lines_len(file: &File, len: u64) -> io::Result<u64> {
    let mut buf = [0; 4096];
    let mut end = len;
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..usize::try_from(end - start).unwrap_or(0)];
        file.read_exact_at(chunk, start)?;
        if let Some(newline) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(start + newline as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Opens (creating it if need be) the journal at `path` for appending, never through a
/// symlink, never blocking, and only a regular file with one link; with mode [`MODE`].
fn open(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(MODE)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|err| match err.raw_os_error() {
            Some(libc::ELOOP) => io::Error::new(
                io::ErrorKind::InvalidInput,
                "it is a symbolic link, which is never followed",
            ),
            _ => err,
        })?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it is not a regular file",
        ));
    }
    if meta.nlink() != 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it has other hard links",
        ));
    }
    // The umask may have taken bits off a new file; a planted file may have more.
    if meta.mode() & 0o7777 != MODE {
        file.set_permissions(Permissions::from_mode(MODE))?;
    }
    Ok(file)
}

/// Creates `dir` and its missing parents, each with mode [`DIR_MODE`] whatever the umask.
fn create_dirs(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() {
        return Ok(());
    }
    match fs::symlink_metadata(dir) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        other => return other.map(drop),
    }
    if let Some(parent) = dir.parent() {
        create_dirs(parent)?;
    }
    match DirBuilder::new().mode(DIR_MODE).create(dir) {
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err),
        Ok(()) => OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(dir)?
            .set_permissions(Permissions::from_mode(DIR_MODE)),
    }
}

fn same_file(path: &Path, meta: &fs::Metadata) -> bool {
    fs::metadata(path).is_ok_and(|now| now.dev() == meta.dev() && now.ino() == meta.ino())
}

pub fn rotated(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_kept_to_the_microsecond() {
        let d = std::time::Duration::from_nanos(2_560_961);
        assert_eq!(serde_json::json!(millis(d)).to_string(), "2.561");
        assert_eq!(millis(std::time::Duration::from_micros(1500)), 1.5);
    }

    #[test]
    fn a_keepers_record_never_makes_a_gone_state_dir_again() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("run");
        let mut inv = Invocation::start(Some("dhcp-keeper"));
        inv.set_container("c1");
        inv.record_kept(&state, &Ok(()));
        assert!(!state.exists(), "the state dir was made again");
        fs::create_dir(&state).unwrap();
        inv.record_kept(&state, &Ok(()));
        let text = fs::read_to_string(state.join(FILE)).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("\"stage\":\"dhcp-keeper\""), "{text}");
    }

    #[test]
    fn records_are_lines_and_the_file_rotates_once_past_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("run");
        let mut inv = Invocation::start(Some("poststop"));
        inv.set_container(&"é".repeat(200));
        inv.action = Some("detach");
        inv.record(&state, &Ok(()));
        let err = Error::EmptyState;
        Invocation::start(None).record(&state, &Err(err));

        let text = fs::read_to_string(state.join(FILE)).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["outcome"], "ok");
        assert_eq!(lines[0]["stage"], "poststop");
        assert_eq!(lines[0]["container"].as_str().unwrap().len(), 256);
        assert_eq!(lines[1]["outcome"], "error");
        assert_eq!(lines[1]["exit"], 3);
        assert!(lines[1]["container"].is_null());
        assert!(
            lines[1]["error"]
                .as_str()
                .unwrap()
                .starts_with("no OCI state on stdin")
        );

        // Grow the file past the limit: the next record rotates it and starts a new file.
        let file = OpenOptions::new()
            .append(true)
            .open(state.join(FILE))
            .unwrap();
        file.set_len(ROTATE_AT).unwrap();
        inv.record(&state, &Ok(()));
        let old = fs::read(rotated(&state.join(FILE))).unwrap();
        assert_eq!(old.len() as u64, ROTATE_AT);
        assert!(old.starts_with(text.as_bytes()));
        inv.record(&state, &Ok(()));
        assert_eq!(
            fs::read_to_string(state.join(FILE))
                .unwrap()
                .lines()
                .count(),
            2
        );
    }

    /// A symlink planted as the journal (or as its rotation) is never followed: the hook's
    /// record is refused, and the target keeps its bytes and its mode.
    #[test]
    fn a_planted_symlink_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("run");
        fs::create_dir(&state).unwrap();
        let target = dir.path().join("target");
        fs::write(&target, b"precious\n").unwrap();
        fs::set_permissions(&target, Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink(&target, state.join(FILE)).unwrap();

        let err = append(&state, "{}\n", true).unwrap_err();
        assert_eq!(
            err.to_string(),
            "it is a symbolic link, which is never followed"
        );
        Invocation::start(None).record(&state, &Err(Error::EmptyState));
        assert_eq!(fs::read(&target).unwrap(), b"precious\n");
        assert_eq!(fs::metadata(&target).unwrap().mode() & 0o7777, 0o600);

        // The rotation's name is replaced by the rename, never written through.
        fs::remove_file(state.join(FILE)).unwrap();
        std::os::unix::fs::symlink(&target, rotated(&state.join(FILE))).unwrap();
        append(&state, "{}\n", true).unwrap();
        let file = OpenOptions::new()
            .append(true)
            .open(state.join(FILE))
            .unwrap();
        file.set_len(ROTATE_AT).unwrap();
        append(&state, "{}\n", true).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"precious\n");
        assert!(
            fs::symlink_metadata(rotated(&state.join(FILE)))
                .unwrap()
                .is_file()
        );
        assert_eq!(fs::read(state.join(FILE)).unwrap(), b"{}\n");

        // Nor is a FIFO written to (opened read-write, it never blocks), or a hard link.
        fs::remove_file(state.join(FILE)).unwrap();
        nix::unistd::mkfifo(&state.join(FILE), nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert_eq!(
            append(&state, "{}\n", true).unwrap_err().to_string(),
            "it is not a regular file"
        );
        fs::remove_file(state.join(FILE)).unwrap();
        fs::hard_link(&target, state.join(FILE)).unwrap();
        assert_eq!(
            append(&state, "{}\n", true).unwrap_err().to_string(),
            "it has other hard links"
        );
        assert_eq!(fs::read(&target).unwrap(), b"precious\n");
    }

    /// The journal and a state dir it creates have fixed modes whatever the umask.
    #[test]
    fn modes_are_fixed_whatever_the_umask() {
        use nix::sys::stat::{Mode, umask};
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("a/b/run");
        let old = umask(Mode::from_bits_truncate(0o077));
        let appended = append(&state, "{}\n", true);
        umask(old);
        appended.unwrap();
        for dir in [dir.path().join("a"), dir.path().join("a/b"), state.clone()] {
            let mode = fs::metadata(&dir).unwrap().mode() & 0o7777;
            assert_eq!(mode, DIR_MODE, "{}", dir.display());
        }
        assert_eq!(
            fs::metadata(state.join(FILE)).unwrap().mode() & 0o7777,
            MODE
        );

        // A journal left with other bits gets the journal's mode back.
        fs::set_permissions(state.join(FILE), Permissions::from_mode(0o666)).unwrap();
        append(&state, "{}\n", true).unwrap();
        assert_eq!(
            fs::metadata(state.join(FILE)).unwrap().mode() & 0o7777,
            MODE
        );
    }

    /// A line torn by a hook killed inside its write is cut off by the next append, which then
    /// starts on a line of its own.
    #[test]
    fn a_torn_tail_is_cut_before_the_next_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let torn = format!("{{\"a\":1}}\n{{\"pad\":\"{}", "x".repeat(10_000));
        fs::write(&path, &torn).unwrap();
        append(dir.path(), "{\"b\":2}\n", true).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "{\"a\":1}\n{\"b\":2}\n");
        // A file that is one torn line and nothing else.
        fs::write(&path, "{\"a\"").unwrap();
        append(dir.path(), "{\"b\":2}\n", true).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "{\"b\":2}\n");
    }
}
