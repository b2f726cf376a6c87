//! One JSON line per hook invocation in `<state-dir>/hooks.jsonl`: runtimes throw a hook's
//! output away when it succeeds (and often when it fails), so this is where an operator finds
//! what each hook did, how long it took and why it failed.
//!
//! Appends are single `write(2)`s to an `O_APPEND` file, so concurrent hooks never interleave
//! inside a line. Past [`ROTATE_AT`] bytes the file becomes `hooks.jsonl.1` (replacing the older
//! one): the state dir is a tmpfs and must not grow without bound. Rotation happens under an
//! exclusive `flock` on the file, and only if the path still names the file this hook opened, so
//! two hooks never both rotate. Failing to write the journal never fails the hook: it says so on
//! stderr.

use std::{
    fs::{self, File, OpenOptions},
    io::Write,
    os::unix::fs::{MetadataExt, OpenOptionsExt},
    path::{Path, PathBuf},
    time::{Instant, SystemTime},
};

use nix::fcntl::{Flock, FlockArg};
use serde::Serialize;

use crate::error::{self, Error};

pub const FILE: &str = "hooks.jsonl";
/// Size past which the journal is rotated.
pub const ROTATE_AT: u64 = 4 << 20;
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
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    networks: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    hook_pid: u32,
}

impl Invocation {
    pub fn start(stage: Option<&str>) -> Self {
        Self {
            started: Instant::now(),
            container: None,
            stage: stage.map(str::to_owned),
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

    /// The line this invocation appends, for `result`.
    fn line(&self, result: &Result<(), Error>) -> String {
        let (outcome, exit, error) = match result {
            Ok(()) if self.skipped => ("skipped", 0, None),
            Ok(()) => ("ok", 0, None),
            Err(err) => ("error", err.exit_code(), Some(error::one_line(err))),
        };
        let record = Record {
            time: humantime::format_rfc3339_micros(SystemTime::now()).to_string(),
            container: self.container.as_deref(),
            stage: self.stage.as_deref(),
            action: self.action,
            outcome,
            exit,
            duration_ms: self.started.elapsed().as_secs_f64() * 1e3,
            networks: &self.networks,
            error,
            hook_pid: std::process::id(),
        };
        let mut line = serde_json::to_string(&record).unwrap_or_default();
        line.push('\n');
        line
    }

    /// Appends this invocation's record; a failure to do so is reported on stderr only.
    pub fn record(&self, state_dir: &Path, result: &Result<(), Error>) {
        if let Err(err) = append(state_dir, &self.line(result)) {
            eprintln!(
                "oci-macvlan: warning: cannot write the hook journal {}: {err}",
                state_dir.join(FILE).display()
            );
        }
    }
}

fn append(state_dir: &Path, line: &str) -> std::io::Result<()> {
    let path = state_dir.join(FILE);
    let file = match open(&path) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(state_dir)?;
            open(&path)?
        }
        other => other?,
    };
    let mut file = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| errno)?;
    let meta = file.metadata()?;
    if meta.len() >= ROTATE_AT && same_file(&path, &meta) {
        fs::rename(&path, rotated(&path))?;
        // The lock on the old file is held until the new one has its first line.
        return open(&path)?.write_all(line.as_bytes());
    }
    file.write_all(line.as_bytes())
}

fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags(nix::libc::O_CLOEXEC)
        .open(path)
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
}
