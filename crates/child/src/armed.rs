//! A program's start made ahead of its time: [`Start::arm`] makes the child now, which waits,
//! and [`Armed::fire`] lets it start the program. What is left for the moment of the start is
//! one `write` to a pipe (the child's `clone`, ~0.05 ms on a 2-CPU VM, is made before, where it
//! costs the caller less: the hook arms its renewer on a helper thread while the server
//! answers, and fires it once the exchange is over).
//!
//! The waiting child holds this process's standard streams and its end of the pipe, nothing
//! else: it closes its copies of every other descriptor first (`close_range`, Linux 5.9; on an
//! older kernel it holds them until its `execve` or its end, as [`Start::start`]'s child does).
//! It waits with every signal blocked, in a `read` of the pipe: a byte starts the program as
//! [`Start::start`] does; the end of the file (the [`Armed`] dropped unfired, or this process
//! gone) ends it at once, with status 0, without starting anything.

use std::{
    io,
    os::fd::{AsRawFd, OwnedFd, RawFd},
};

use nix::{fcntl::OFlag, libc};

use crate::{
    clone::{self, Syscall},
    start::{Exec, Start, starter},
};

/// A child made and waiting to start its program (see the module).
#[derive(Debug)]
pub struct Armed {
    to: To,
}

#[derive(Debug)]
enum To {
    /// The waiting child: its pid, and this process's end of its pipe.
    Child { go: OwnedFd, pid: u32 },
    /// No child could be made so (an architecture without one): started at the fire.
    Later(Start),
}

/// What the waiting child is handed: leaked, since it reads it after [`Start::arm`] has
/// returned.
struct Handed {
    exec: &'static Exec,
    /// Its end of the pipe.
    wait: RawFd,
    /// This process's end, which the child's copy of the descriptors holds too.
    go: RawFd,
}

impl Start {
    /// Makes the child of [`Self::start`] now, waiting (see the module); [`Armed::fire`] starts
    /// the program. Where no such child can be made, the fire starts it as [`Self::start`]
    /// does.
    pub fn arm(self) -> io::Result<Armed> {
        let (wait, go) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(io::Error::from)?;
        let handed: &'static Handed = Box::leak(Box::new(Handed {
            exec: self.exec,
            wait: wait.as_raw_fd(),
            go: go.as_raw_fd(),
        }));
        let handed: *const Handed = handed;
        let to = match clone::spawn(entry, handed as usize) {
            Some(pid) => To::Child {
                go,
                pid: pid.unsigned_abs(),
            },
            None => To::Later(self),
        };
        // The child has its own copy of `wait`; this process's is closed here.
        drop(wait);
        Ok(Armed { to })
    }
}

impl Armed {
    /// The waiting child's pid, if one was made.
    pub fn pid(&self) -> Option<u32> {
        match &self.to {
            To::Child { pid, .. } => Some(*pid),
            To::Later(_) => None,
        }
    }

    /// Starts the program and returns its pid at once (see [`Start::start`]). A child that
    /// is gone (killed) is an error: the write to its pipe fails (`EPIPE`; a process that does
    /// not ignore SIGPIPE, as Rust's runtime does, is sent one).
    pub fn fire(self) -> io::Result<u32> {
        match self.to {
            To::Child { go, pid } => {
                nix::unistd::write(&go, &[1]).map_err(io::Error::from)?;
                Ok(pid)
            }
            To::Later(start) => start.start(),
        }
    }
}

extern "C" fn entry(handed: *mut libc::c_void) -> libc::c_int {
    let handed: *const Handed = handed.cast_const().cast();
    #[allow(unsafe_code)]
    // SAFETY: the pointer `Start::arm` passed: to a `Handed` that is leaked and never written.
    waiter(unsafe { &*handed }, clone::raw)
}

/// The child: closes its copies of this process's descriptors but the standard streams and
/// its end of the pipe, waits for a byte on it (every signal blocked, as the child starts),
/// then starts the program ([`starter`]); at the end of the file it exits with status 0. No
/// arithmetic that can overflow (see [`starter`]).
fn waiter(handed: &Handed, sys: Syscall) -> ! {
    // Descriptor numbers are never negative.
    let (wait, go) = (handed.wait as usize, handed.go as usize);
    sys(libc::SYS_close, go, 0, 0, 0);
    if wait > 3 {
        sys(libc::SYS_close_range, 3, wait.wrapping_sub(1), 0, 0);
    }
    sys(
        libc::SYS_close_range,
        wait.wrapping_add(1),
        libc::c_uint::MAX as usize,
        0,
        0,
    );
    let mut byte = 0u8;
    loop {
        let got = sys(libc::SYS_read, wait, (&raw mut byte) as usize, 1, 0);
        if got == -(libc::EINTR as isize) {
            continue;
        }
        if got == 1 {
            sys(libc::SYS_close, wait, 0, 0, 0);
            starter(handed.exec, sys);
        }
        clone::exit(sys, 0);
    }
}

#[cfg(all(test, any(target_arch = "x86_64", target_arch = "aarch64")))]
mod tests {
    use std::{path::Path, time::Duration};

    use nix::sys::wait::WaitStatus;

    use super::*;

    /// How `pid` (a child of this process) ended.
    fn reaped(pid: u32) -> WaitStatus {
        let pid = nix::unistd::Pid::from_raw(pid.try_into().expect("a pid"));
        nix::sys::wait::waitpid(pid, None).expect("reaped")
    }

    /// A child this test made, killed and reaped however the test ends.
    struct Killed(u32);

    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.0.try_into().expect("a pid")),
                nix::sys::signal::Signal::SIGKILL,
            );
            reaped(self.0);
        }
    }

    /// Waits until `pid`'s `/proc` status says `what`.
    fn until(pid: u32, what: impl Fn(&str) -> bool) -> String {
        let path = format!("/proc/{pid}/status");
        for _ in 0..1000 {
            if let Ok(status) = std::fs::read_to_string(&path)
                && what(&status)
            {
                return status;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("{pid} never got there");
    }

    fn sleep_start() -> Start {
        Start::new(
            Path::new("/bin/sleep"),
            &["30".into()],
            [("A", "b")],
            "no sleep",
        )
        .expect("ready")
    }

    /// Armed, the child waits without starting the program, holding the standard streams and
    /// its end of the pipe only (not a file this process has open); fired, it starts it.
    #[test]
    fn an_armed_child_waits_holding_only_its_streams_and_starts_the_program_when_fired() {
        let open = tempfile::tempfile().expect("a file this process holds");
        let armed = sleep_start().arm().expect("armed");
        let child = Killed(armed.pid().expect("a child"));
        let fds = || {
            let mut fds: Vec<u32> = std::fs::read_dir(format!("/proc/{}/fd", child.0))
                .expect("its descriptors")
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect();
            fds.sort_unstable();
            fds
        };
        // Waiting in its read, its descriptors closed (they are closed before it).
        until(child.0, |s| s.contains("State:\tS"));
        let mut waited = 0;
        while fds().len() > 4 {
            waited += 1;
            assert!(waited < 1000, "still holds {:?}", fds());
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(&fds()[..3], [0, 1, 2]);
        assert!(!fds().contains(&open.as_raw_fd().unsigned_abs()));
        std::thread::sleep(Duration::from_millis(50));
        let exe = std::fs::read_link(format!("/proc/{}/exe", child.0)).expect("its program");
        let me = std::env::current_exe().expect("this test binary");
        assert_eq!(exe, me, "started before it was fired");
        assert_eq!(armed.fire().expect("fired"), child.0);
        until(child.0, |s| s.contains("Name:\tsleep\n"));
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", child.0)).expect("cmdline");
        assert_eq!(cmdline, b"/bin/sleep\x0030\x00");
    }

    /// Dropped unfired, the armed child ends at once with status 0: `/bin/false` (status 1)
    /// never runs.
    #[test]
    fn an_armed_child_dropped_unfired_ends_without_starting_the_program() {
        let armed = Start::new(Path::new("/bin/false"), &[], [("A", "b")], "")
            .expect("ready")
            .arm()
            .expect("armed");
        let pid = armed.pid().expect("a child");
        drop(armed);
        assert!(
            matches!(reaped(pid), WaitStatus::Exited(_, 0)),
            "it ran the program"
        );
    }

    /// Fired once its child is gone (killed), the start is an error, not a silent nothing.
    #[test]
    fn firing_a_child_that_is_gone_is_an_error() {
        let armed = sleep_start().arm().expect("armed");
        drop(Killed(armed.pid().expect("a child")));
        let err = armed.fire().expect_err("no child to start");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");
    }
}
