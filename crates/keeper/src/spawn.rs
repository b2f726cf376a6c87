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
/// `/dev/null`; it starts with every signal blocked, which [`detach`] undoes.
#[derive(Debug, Clone, Copy)]
pub struct Ready(oci_macvlan_child::Start);

impl Ready {
    /// `program` with `args` and exactly the environment `env`; refused when `program` is not
    /// there to run, or an argument has a NUL byte.
    pub fn new<I, K, V>(program: &Path, args: &[OsString], env: I) -> Result<Self>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        oci_macvlan_child::Start::new(program, args, env)
            .map(Self)
            .map_err(|source| Error::Spawn {
                program: program.display().to_string(),
                source,
            })
    }

    /// Starts the keeper and returns at once (its `execve` is not waited for: one that fails
    /// ends the child with status 127). The caller does not reap it.
    pub fn start(self) -> Result<()> {
        self.0.start().map(drop).map_err(|source| Error::Spawn {
            program: "the keeper".into(),
            source,
        })
    }
}

/// A keeper's first step, before it opens anything: unblocks every signal (a keeper started
/// by [`Ready`] has them all blocked), leaves its starter's session and process group (a
/// runtime that kills the hook's group does not kill it), closes every descriptor it inherited
/// beyond the standard three (a pipe a runtime handed the hook stays the hook's: Rust opens
/// its own descriptors close-on-exec, a runtime may not), and leaves the starter's working
/// directory.
pub fn detach() -> Result<()> {
    // Fails only for a bad `how`, which this is not.
    let _ = nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
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
