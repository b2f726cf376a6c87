//! A packet socket closed without waiting for it. The kernel's release of an `AF_PACKET` socket
//! waits for an RCU grace period (`packet_release` calls `synchronize_net`, whatever the
//! socket did): 4 to 16 ms on a 250 Hz kernel, measured at 8–15 ms in a hook's DHCP attach,
//! more than the whole rest of the hook. A process about to end (a hook, a CLI command) hands
//! the socket to a child that closes it there and exits; the process itself lets go of its
//! copy at once.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::{
    fcntl::OFlag,
    libc,
    unistd::{ForkResult, fork, pipe2},
};

use crate::clone::{self, Syscall};

/// Closes `socket` in a child process made for it, and returns at once (see the module). The
/// child keeps nothing else of this process: every other descriptor, the standard streams
/// first (a runtime waits for every writer of a hook's stdout and stderr), is closed before it
/// waits; it closes the socket once this process has let go of its own copy (a pipe's end
/// tells it), so that the last close, the one that waits, is the child's. It is reaped by
/// whoever inherits it when this process ends: for short-lived processes only. When no child
/// can be made, the socket is closed here, as a drop would.
pub fn close_later(socket: OwnedFd) {
    match Closer::ready(socket.as_fd()) {
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
}

impl Closer {
    /// Makes the child that will close `socket` (see [`close_later`]); `None` when no child
    /// can be made.
    pub fn ready(socket: BorrowedFd<'_>) -> Option<Self> {
        let (told, tell) = pipe2(OFlag::O_CLOEXEC).ok()?;
        let (keep, wait) = (socket.as_raw_fd(), told.as_raw_fd());
        if !spawn(keep, wait, tell.as_raw_fd()) {
            #[allow(unsafe_code)]
            // SAFETY: the child runs `closer` alone, which makes only async-signal-safe system
            // calls (`close_range`, `read`, `close`, `_exit`) on its own stack and touches no
            // memory another thread of this process may hold a lock on; it never returns into
            // Rust code.
            match unsafe { fork() } {
                Ok(ForkResult::Child) => closer(keep, wait, tell.as_raw_fd(), clone::sys),
                Ok(ForkResult::Parent { .. }) => {}
                Err(_) => return None,
            }
        }
        // The child has its own copy of the read end.
        drop(told);
        Some(Self { tell, keep })
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
/// only once every write end is closed), then of every descriptor but `keep` and `wait`,
/// the standard streams among them (one by one below [`CLOSE_ONE_BY_ONE`] when
/// `close_range` fails); waits until `wait`, the read end, is at its end; closes `keep` and
/// exits. No array, no iterator and no arithmetic that can overflow: what a debug build makes
/// of it has no panic to take (the child may share the parent's memory, see `crate::clone`).
fn closer(keep: RawFd, wait: RawFd, tell: RawFd, sys: Syscall) -> ! {
    sys(libc::SYS_close, tell as usize, 0, 0, 0);
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
    clone::exit(sys, 0)
}

/// Makes the child of `keep` (see [`closer`]) that shares this process's memory (see
/// `crate::clone`); false when none was made.
fn spawn(keep: RawFd, wait: RawFd, tell: RawFd) -> bool {
    // The three descriptors go in the one argument, 21 bits each (the kernel's default
    // `nr_open`, 2^20, is below): a larger one is forked for.
    pack([keep, wait, tell]).is_some_and(|packed| clone::spawn(entry, packed as usize).is_some())
}

/// The bits of each descriptor in the argument.
const BITS: u32 = 21;
const MASK: u64 = (1 << BITS) - 1;

/// `fds` in one word (the child reads no memory of this process), if each fits.
fn pack(fds: [RawFd; 3]) -> Option<u64> {
    let mut packed = 0u64;
    for fd in fds {
        let fd = u64::try_from(fd).ok().filter(|fd| *fd <= MASK)?;
        packed = (packed << BITS) | fd;
    }
    Some(packed)
}

extern "C" fn entry(packed: *mut libc::c_void) -> libc::c_int {
    let packed = packed as usize as u64;
    // What `pack` made; each part is below 2^21.
    let part = |shift: u32| ((packed >> shift) & MASK) as RawFd;
    closer(part(2 * BITS), part(BITS), part(0), clone::raw)
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
        let (keep, wait, tell_fd) = (socket.as_raw_fd(), told.as_raw_fd(), tell.as_raw_fd());
        #[allow(unsafe_code)]
        // SAFETY: the child runs `closer` alone (system calls only) and never returns.
        let child = match unsafe { fork() }.expect("fork") {
            ForkResult::Child => closer(keep, wait, tell_fd, without_close_range),
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
}
