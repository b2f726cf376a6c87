//! Starting a keeper from a hook that must return at once, and the keeper's first step.

use std::{
    os::fd::RawFd,
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
