//! A packet socket closed without waiting for it. The kernel's release of an `AF_PACKET` socket
//! waits for an RCU grace period (`packet_release` calls `synchronize_net`, whatever the
//! socket did): 4 to 16 ms on a 250 Hz kernel, measured at 8–15 ms in a hook's DHCP attach,
//! more than the whole rest of the hook. A process about to end (a hook, a CLI command) hands
//! the socket to a child that closes it there and exits; the process itself lets go of its
//! copy at once. The child may start a program once it has closed the socket (a DHCP lease's
//! renewer): one child for both, none of them made on the way out.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::{
    fcntl::OFlag,
    libc,
    unistd::{ForkResult, fork, pipe2},
};

use crate::{
    Start,
    clone::{self, Syscall},
    start::{Exec, starter},
};

/// Closes `socket` in a child process made for it, and returns at once (see the module). The
/// child keeps nothing else of this process: every other descriptor, the standard streams
/// first (a runtime waits for every writer of a hook's stdout and stderr), is closed before it
/// waits; it closes the socket once this process has let go of its own copy (a pipe's end
/// tells it), so that the last close, the one that waits, is the child's. It is reaped by
/// whoever inherits it when this process ends: for short-lived processes only. When no child
/// can be made, the socket is closed here, as a drop would.
pub fn close_later(socket: OwnedFd) {
    match Closer::ready(socket.as_fd(), None) {
        Some(closer) => closer.close(socket),
        None => drop(socket),
    }
}

/// The child of [`close_later`], made ahead of the close: while the socket is still in use
/// (a DHCP client waiting for its server's answer), so that making it costs no time of its
/// own. It waits until [`Closer::close`] (or a drop) lets it go.
#[derive(Debug)]
pub struct Closer {
    /// The pipe's write end: its close lets the child go on.
    tell: OwnedFd,
    /// The descriptor the child closes.
    keep: RawFd,
    /// Whether the child starts a program once the socket is closed.
    starts: bool,
}

/// What the child is given: descriptors, and the program it starts after, if any. Leaked, never
/// written once made: the child may read it after this process has ended.
#[derive(Debug)]
struct Job {
    keep: RawFd,
    wait: RawFd,
    tell: RawFd,
    then: Option<&'static Exec>,
}

impl Closer {
    /// Makes the child that will close `socket` (see [`close_later`]) and then, with `then`,
    /// start that program as [`Start::start`] would (its standard streams on `/dev/null`),
    /// whether this process let go of the socket by [`Self::close`], a drop or its end. A
    /// program that cannot be started then is said nowhere (the child has no standard error
    /// left: a runtime would wait for it). `None` when no child can be made.
    pub fn ready(socket: BorrowedFd<'_>, then: Option<Start>) -> Option<Self> {
        let (told, tell) = pipe2(OFlag::O_CLOEXEC).ok()?;
        let job: &'static Job = Box::leak(Box::new(Job {
            keep: socket.as_raw_fd(),
            wait: told.as_raw_fd(),
            tell: tell.as_raw_fd(),
            then: then.map(Start::exec),
        }));
        if clone::spawn(entry, std::ptr::from_ref(job) as usize).is_none() {
            #[allow(unsafe_code)]
            // SAFETY: the child runs `closer` alone, which makes only async-signal-safe system
            // calls (`close_range`, `read`, `close`, then those of `starter`, `_exit`) on its
            // own stack and touches no memory another thread of this process may hold a lock
            // on; it never returns into Rust code.
            match unsafe { fork() } {
                Ok(ForkResult::Child) => closer(job, clone::sys),
                Ok(ForkResult::Parent { .. }) => {}
                Err(_) => return None,
            }
        }
        // The child has its own copy of the read end.
        drop(told);
        Some(Self {
            tell,
            keep: job.keep,
            starts: job.then.is_some(),
        })
    }

    /// Whether the child starts a program once it has closed the socket (it was made with one).
    pub fn starts(&self) -> bool {
        self.starts
    }

    /// Closes `socket`, the one this closer was made for, here without waiting, then lets the
    /// child close its copy, the last one.
    pub fn close(self, socket: OwnedFd) {
        debug_assert_eq!(
            socket.as_raw_fd(),
            self.keep,
            "the closer of another socket"
        );
        drop(socket);
        drop(self.tell);
    }
}

/// The descriptors below which the child closes one by one when `close_range` fails (a
/// kernel before 5.9, a seccomp filter): the standard streams and what a hook opens.
const CLOSE_ONE_BY_ONE: RawFd = 1024;

/// The child: lets go first of its copy of `tell`, the pipe's write end (the read below ends
/// only once every write end is closed), leaves the session when it starts a program after,
/// then lets go of every descriptor but `keep` and `wait`,
/// the standard streams among them (one by one below [`CLOSE_ONE_BY_ONE`] when
/// `close_range` fails); waits until `wait`, the read end, is at its end; closes `keep`; then
/// starts the job's program (`wait`, close-on-exec, goes with the `execve`) or exits. No
/// array, no iterator and no arithmetic that can overflow: what a debug build makes of it has
/// no panic to take (the child may share the parent's memory, see `crate::clone`).
fn closer(job: &Job, sys: Syscall) -> ! {
    let (keep, wait) = (job.keep, job.wait);
    sys(libc::SYS_close, job.tell as usize, 0, 0, 0);
    // A child that starts a program leaves this process's session and group at once: a
    // signal a runtime sends the hook's group once the hook has ended would otherwise wait,
    // blocked, and end the program as it starts.
    if job.then.is_some() {
        sys(libc::SYS_setsid, 0, 0, 0, 0);
    }
    let (low, high) = if keep < wait {
        (keep, wait)
    } else {
        (wait, keep)
    };
    let close_range =
        |first: RawFd, last: usize| sys(libc::SYS_close_range, first as usize, last, 0, 0) >= 0;
    let mut closed = true;
    if low > 0 {
        closed &= close_range(0, low.wrapping_sub(1) as usize);
    }
    if high.wrapping_sub(low) > 1 {
        closed &= close_range(low.wrapping_add(1), high.wrapping_sub(1) as usize);
    }
    closed &= close_range(high.wrapping_add(1), libc::c_uint::MAX as usize);
    if !closed {
        let mut fd: RawFd = 0;
        while fd < CLOSE_ONE_BY_ONE {
            if fd != keep && fd != wait {
                sys(libc::SYS_close, fd as usize, 0, 0, 0);
            }
            fd = fd.wrapping_add(1);
        }
    }
    let mut byte = 0u8;
    // A pipe's read end returns 0 once every write end is closed; a few interrupted or
    // failed reads are not waited on for ever.
    let mut tries = 0u8;
    while tries < 64 {
        if sys(
            libc::SYS_read,
            wait as usize,
            (&raw mut byte) as usize,
            1,
            0,
        ) >= 0
        {
            break;
        }
        tries = tries.wrapping_add(1);
    }
    sys(libc::SYS_close, keep as usize, 0, 0, 0);
    match job.then {
        Some(exec) => starter(exec, sys),
        None => clone::exit(sys, 0),
    }
}

extern "C" fn entry(job: *mut libc::c_void) -> libc::c_int {
    let job: *const Job = job.cast_const().cast();
    #[allow(unsafe_code)]
    // SAFETY: the pointer `Closer::ready` passed: to a `Job` that is leaked and never written.
    closer(unsafe { &*job }, clone::raw)
}

#[cfg(test)]
mod tests {
    use std::{
        os::unix::fs::MetadataExt,
        time::{Duration, Instant},
    };

    use super::*;

    /// Whether `/proc/net/packet` (this namespace's packet sockets) lists the socket `inode`.
    fn listed(inode: u64) -> bool {
        let table = std::fs::read_to_string("/proc/net/packet").expect("/proc/net/packet");
        table
            .lines()
            .skip(1)
            .any(|line| line.split_whitespace().last() == Some(&inode.to_string()))
    }

    /// A kernel or a seccomp filter without `close_range` (ENOSYS or EPERM).
    fn without_close_range(number: libc::c_long, a: usize, b: usize, c: usize, d: usize) -> isize {
        if number == libc::SYS_close_range {
            return -(libc::ENOSYS as isize);
        }
        clone::sys(number, a, b, c, d)
    }

    /// Where `close_range` fails, the child still lets go of its copy of the pipe's write end
    /// (else its read never ends: it would keep the socket, and the hook's stdout and stderr,
    /// for ever) and closes the rest one by one.
    #[test]
    fn without_close_range_the_child_still_ends_and_closes_the_socket() {
        let socket = oci_macvlan_netlink_core::packet_socket(1, 0x0800)
            .expect("needs root: a packet socket on lo");
        let inode = std::fs::metadata(format!("/proc/self/fd/{}", socket.as_raw_fd()))
            .expect("the socket's inode")
            .ino();
        let (told, tell) = pipe2(OFlag::O_CLOEXEC).expect("a pipe");
        let job = Job {
            keep: socket.as_raw_fd(),
            wait: told.as_raw_fd(),
            tell: tell.as_raw_fd(),
            then: None,
        };
        #[allow(unsafe_code)]
        // SAFETY: the child runs `closer` alone (system calls only) and never returns.
        let child = match unsafe { fork() }.expect("fork") {
            ForkResult::Child => closer(&job, without_close_range),
            ForkResult::Parent { child } => child,
        };
        drop(socket);
        drop(tell);
        drop(told);
        let until = Instant::now() + Duration::from_secs(5);
        while listed(inode) {
            if Instant::now() > until {
                let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                let _ = nix::sys::wait::waitpid(child, None);
                panic!("the child never closed the socket: it waits for ever");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let ended = nix::sys::wait::waitpid(child, None).expect("reaped");
        assert!(
            matches!(ended, nix::sys::wait::WaitStatus::Exited(_, 0)),
            "{ended:?}"
        );
    }

    /// The socket is closed for good, by the child, which therefore ended its wait: a child that
    /// kept the pipe's write end (or never got past its wait) would keep the socket for ever.
    #[test]
    fn a_packet_socket_closed_later_is_closed_by_the_child() {
        let socket = oci_macvlan_netlink_core::packet_socket(1, 0x0800)
            .expect("needs root: a packet socket on lo");
        let inode = std::fs::metadata(format!("/proc/self/fd/{}", socket.as_raw_fd()))
            .expect("the socket's inode")
            .ino();
        assert!(
            listed(inode),
            "the socket is in /proc/net/packet while open"
        );
        close_later(socket);
        let until = Instant::now() + Duration::from_secs(5);
        while listed(inode) {
            assert!(Instant::now() < until, "the socket was never closed");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A closer made with a program starts it once the socket is closed, and only then: the
    /// program (a shell) finds the socket gone from `/proc/net/packet`, has `/dev/null` for its
    /// standard error, not this process's, and a session of its own.
    #[test]
    fn a_closer_with_a_program_starts_it_once_the_socket_is_closed() {
        let socket = oci_macvlan_netlink_core::packet_socket(1, 0x0800)
            .expect("needs root: a packet socket on lo");
        let inode = std::fs::metadata(format!("/proc/self/fd/{}", socket.as_raw_fd()))
            .expect("the socket's inode")
            .ino();
        let dir = tempfile::tempdir().expect("a temporary dir");
        let out = dir.path().join("seen");
        let script = format!(
            "cat /proc/net/packet > {0}.tmp; readlink /proc/self/fd/2 >> {0}.tmp; \
             cut -d' ' -f6 /proc/$$/stat >> {0}.tmp; mv {0}.tmp {0}",
            out.display()
        );
        let start = Start::new(
            std::path::Path::new("/bin/sh"),
            &["-c".into(), script.into()],
            [("PATH", "/usr/bin:/bin")],
            "cannot start sh",
        )
        .expect("sh");
        let closer = Closer::ready(socket.as_fd(), Some(start)).expect("a closer");
        assert!(closer.starts());
        // Held open a while: the program must not run before the socket's last close.
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !out.exists(),
            "the program ran before the socket was let go of"
        );
        closer.close(socket);
        let until = Instant::now() + Duration::from_secs(5);
        while !out.exists() {
            assert!(Instant::now() < until, "the program never ran");
            std::thread::sleep(Duration::from_millis(5));
        }
        let seen = std::fs::read_to_string(&out).expect("what the program saw");
        assert!(
            !seen
                .lines()
                .any(|line| line.split_whitespace().last() == Some(&inode.to_string())),
            "the socket was still open when the program ran: {seen}"
        );
        let mut last = seen.lines().rev();
        let session: i32 = last
            .next()
            .and_then(|s| s.parse().ok())
            .expect("a session id");
        assert_eq!(last.next(), Some("/dev/null"), "{seen}");
        // Out of this process's session (a signal to the hook's group does not reach it).
        let ours = nix::unistd::getsid(None).expect("our session").as_raw();
        assert_ne!(session, ours, "{seen}");
    }
}
