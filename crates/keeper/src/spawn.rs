//! Starting a keeper from a hook that must return at once, and the keeper's first step.

use std::{
    ffi::{OsStr, OsString},
    os::fd::RawFd,
    path::Path,
    process::{Child, Command, Stdio},
};

use crate::{Error, Result};

/// Starts `command` (a keeper) with every standard stream on `/dev/null`: a runtime waits for
/// every writer of a hook's output, and the hook's own output is the hook's. The caller may
/// drop the child: the keeper leaves the hook's session itself ([`detach`]) and is reaped by
/// whoever inherits it.
pub fn spawn(mut command: Command) -> Result<Child> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| Error::Spawn {
            program: command.get_program().to_string_lossy().into_owned(),
            source,
        })
}

/// A keeper's start made ready ahead, for a hook that starts it without waiting even for its
/// `execve` (`oci_macvlan_child::Start`: the wait is a wake of an idle CPU, and of the hook's,
/// 0.3 to 1.1 ms on a VM): the start itself is a `clone`. Its standard streams are
/// `/dev/null`, every signal's disposition the default and none blocked.
#[derive(Debug, Clone)]
pub struct Ready {
    start: oci_macvlan_child::Start,
    program: String,
}

impl Ready {
    /// `program` with `args` and exactly the environment `env`; refused when `program` is not
    /// there to run, or an argument has a NUL byte. `failed` is the line said on this
    /// process's standard error if the keeper cannot start after all (its `execve` failed),
    /// when this process starts it ([`Self::start`]; a packet socket's closer that starts it
    /// has no standard error left to say it on).
    pub fn new<I, K, V>(program: &Path, args: &[OsString], env: I, failed: &str) -> Result<Self>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let named = program.display().to_string();
        oci_macvlan_child::Start::new(program, args, env, failed)
            .map(|start| Self {
                start,
                program: named.clone(),
            })
            .map_err(|source| Error::Spawn {
                program: named,
                source,
            })
    }

    /// The start itself, for another child to make (a packet socket's closer, which starts it
    /// once it has closed the socket: see `oci_macvlan_child::Closer::ready`).
    pub fn start_of(&self) -> oci_macvlan_child::Start {
        self.start
    }

    /// Starts the keeper and returns at once (see [`Self::new`]). The caller does not reap it.
    pub fn start(self) -> Result<()> {
        self.start.start().map(drop).map_err(|source| Error::Spawn {
            program: self.program,
            source,
        })
    }
}

/// A keeper's first step, before it opens anything: leaves its starter's session and process
/// group (a runtime that kills the hook's group does not kill it), closes every descriptor it
/// inherited beyond the standard three (a pipe a runtime handed the hook stays the hook's:
/// Rust opens its own descriptors close-on-exec, a runtime may not), and leaves the starter's
/// working directory.
pub fn detach() -> Result<()> {
    // Fails only if this process leads its group already (then it is detached enough).
    let _ = nix::unistd::setsid();
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .map_err(|e| Error::file("/proc/self/fd", e))?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        // The listing's own descriptor is among them, closed already: EBADF is fine.
        let _ = nix::unistd::close(fd);
    }
    std::env::set_current_dir("/").map_err(|e| Error::file("/", e))
}
