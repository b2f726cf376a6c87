//! The container a keeper serves: its process, held by a pidfd checked against the process's
//! start time (a pid the kernel gave to another process since is never taken for it); or, for
//! a container with no process to watch (a CNI attachment), its namespace's path
//! ([`Container::by_netns`], see `netns_watch`).

use std::{
    fs::File,
    os::fd::{AsFd, BorrowedFd, OwnedFd},
    path::{Path, PathBuf},
    time::Duration,
};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use rustix::process::{Pid, PidfdFlags, pidfd_open};

use crate::{Error, Result, netns_watch::NetnsWatch};

/// The container, as long as it lives: its process, or its namespace's path.
#[derive(Debug)]
pub struct Container {
    watch: Watch,
}

#[derive(Debug)]
enum Watch {
    Process {
        pid: i32,
        start: u64,
        pidfd: OwnedFd,
    },
    Netns(NetnsWatch),
}

/// The start time of `pid` (field 22 of `/proc/PID/stat`, in clock ticks since boot): with the
/// pid, it names one process for good.
pub fn start_time(pid: i32) -> Result<u64> {
    let path = PathBuf::from(format!("/proc/{pid}/stat"));
    let stat = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::Gone { pid },
        _ => Error::file(&path, e),
    })?;
    // The command name (field 2) is in parentheses and may hold anything: count from the last
    // `)`. The start time is field 22, the 20th after it.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(19))
        .and_then(|field| field.parse().ok())
        .ok_or_else(|| {
            Error::file(
                &path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, "no start time"),
            )
        })
}

impl Container {
    /// The process `pid`, if it is the one that started at `start` (see [`start_time`]).
    pub fn open(pid: i32, start: u64) -> Result<Self> {
        let raw = Pid::from_raw(pid).ok_or(Error::Gone { pid })?;
        let pidfd = pidfd_open(raw, PidfdFlags::empty()).map_err(|_| Error::Gone { pid })?;
        // Checked after the pidfd is open: had the pid been reused before, the start time says
        // so; once the pidfd is open, the pid cannot be reused while it is held.
        if start_time(pid)? != start {
            return Err(Error::Gone { pid });
        }
        Ok(Self {
            watch: Watch::Process { pid, start, pidfd },
        })
    }

    /// The container whose namespace is the one at `path` (a `stat` of it gave device `dev`
    /// and inode `ino` at attach): it lives while the path names that namespace. Nothing of
    /// the namespace is held (see `netns_watch`).
    pub fn by_netns(path: &Path, dev: u64, ino: u64) -> Result<Self> {
        let watch = NetnsWatch::new(path, dev, ino);
        if !watch.alive() {
            return Err(Error::NetnsGone {
                path: path.to_path_buf(),
            });
        }
        Ok(Self {
            watch: Watch::Netns(watch),
        })
    }

    /// The container's pid; 0 for one watched by its namespace ([`Container::by_netns`]).
    pub fn pid(&self) -> i32 {
        match &self.watch {
            Watch::Process { pid, .. } => *pid,
            Watch::Netns(_) => 0,
        }
    }

    /// Its start time; 0 for one watched by its namespace.
    pub fn start(&self) -> u64 {
        match &self.watch {
            Watch::Process { start, .. } => *start,
            Watch::Netns(_) => 0,
        }
    }

    /// The pidfd: readable once the process has ended (for a caller's own `poll`). `None` for
    /// a container watched by its namespace, whose end no fd signals: the caller polls
    /// [`Container::alive`] instead.
    pub fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        match &self.watch {
            Watch::Process { pidfd, .. } => Some(pidfd.as_fd()),
            Watch::Netns(_) => None,
        }
    }

    /// The path its namespace is opened by, for messages (`/proc/PID/ns/net`, or the
    /// namespace's own path).
    pub fn netns_name(&self) -> String {
        match &self.watch {
            Watch::Process { pid, .. } => format!("/proc/{pid}/ns/net"),
            Watch::Netns(watch) => watch.path().display().to_string(),
        }
    }

    /// Waits up to `timeout` (`None`: for ever) for the container to end; whether it has.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        let (pid, pidfd) = match &self.watch {
            Watch::Process { pid, pidfd, .. } => (*pid, pidfd),
            Watch::Netns(watch) => return Ok(watch.wait(timeout)),
        };
        let timeout = match timeout {
            None => PollTimeout::NONE,
            // Longer waits are cut to what poll takes; callers loop.
            Some(t) => PollTimeout::try_from(t).unwrap_or(PollTimeout::MAX),
        };
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(n) => Ok(n > 0),
            Err(nix::errno::Errno::EINTR) => Ok(false),
            Err(e) => Err(Error::Wait {
                pid,
                source: e.into(),
            }),
        }
    }

    /// Whether the container still lives (its process runs, or its path names its namespace).
    pub fn alive(&self) -> bool {
        match &self.watch {
            Watch::Process { .. } => matches!(self.wait(Some(Duration::ZERO)), Ok(false)),
            Watch::Netns(watch) => watch.alive(),
        }
    }

    /// The container's network namespace, opened for one act and to be dropped after it (a
    /// keeper holds no namespace between acts: a dead container's must go).
    pub fn netns(&self) -> Result<File> {
        let pid = match &self.watch {
            Watch::Process { pid, .. } => *pid,
            Watch::Netns(watch) => return watch.open(),
        };
        let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
        let file = File::open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::Gone { pid },
            _ => Error::file(&path, e),
        })?;
        // Alive after the open: the file is this process's namespace, not a successor's.
        if !self.alive() {
            return Err(Error::Gone { pid });
        }
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    #[test]
    fn a_process_is_watched_until_it_ends_and_its_pid_with_another_start_is_refused() {
        let mut child = Command::new("sleep").arg("30").spawn().expect("sleep");
        let pid = child.id() as i32;
        let start = start_time(pid).expect("start time");
        let container = Container::open(pid, start).expect("opens");
        assert!(container.alive());
        assert!(
            !container
                .wait(Some(Duration::from_millis(20)))
                .expect("waits")
        );
        assert!(matches!(
            Container::open(pid, start + 1),
            Err(Error::Gone { .. })
        ));
        container.netns().expect("its namespace");
        child.kill().expect("kill");
        assert!(container.wait(Some(Duration::from_secs(5))).expect("waits"));
        assert!(!container.alive());
        child.wait().expect("reaped");
        assert!(matches!(container.netns(), Err(Error::Gone { .. })));
        assert!(matches!(start_time(pid), Err(Error::Gone { .. })));
    }

    #[test]
    fn a_command_name_with_parentheses_and_spaces_does_not_shift_the_fields() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Fields counted from the first `)` would read the priority (about 20) here.
        let odd = dir.path().join("a) 1 2 3 4 (b");
        std::fs::copy("/bin/sleep", &odd).expect("copy sleep");
        let before = start_time(std::process::id() as i32).expect("own start");
        let mut child = Command::new(&odd).arg("30").spawn().expect("odd sleep");
        let start = start_time(child.id() as i32);
        child.kill().expect("kill");
        child.wait().expect("reaped");
        assert!(start.expect("start time") >= before);
    }
}
