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
        if !shared::spawn(keep, wait, tell.as_raw_fd()) {
            #[allow(unsafe_code)]
            // SAFETY: the child runs `closer` alone, which makes only async-signal-safe system
            // calls (`close_range`, `read`, `close`, `_exit`) on its own stack and touches no
            // memory another thread of this process may hold a lock on; it never returns into
            // Rust code.
            match unsafe { fork() } {
                Ok(ForkResult::Child) => closer(keep, wait, tell.as_raw_fd(), sys),
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

/// A system call of up to three arguments, as the closer makes it: its result, or `-errno`.
type Syscall = fn(libc::c_long, usize, usize, usize) -> isize;

/// [`Syscall`] through libc (a forked child has memory of its own).
fn sys(number: libc::c_long, a: usize, b: usize, c: usize) -> isize {
    #[allow(unsafe_code)]
    // SAFETY: the closer's calls take descriptor numbers, or a pointer to its own byte.
    let done = unsafe { libc::syscall(number, a, b, c) };
    // `c_long` is the width of a pointer on Linux.
    done as isize
}

/// The descriptors below which the child closes one by one when `close_range` fails (a
/// kernel before 5.9, a seccomp filter): the standard streams and what a hook opens.
const CLOSE_ONE_BY_ONE: RawFd = 1024;

/// The child: lets go first of its copy of `tell`, the pipe's write end (the read below ends
/// only once every write end is closed), then of every descriptor but `keep` and `wait`,
/// the standard streams among them (one by one below [`CLOSE_ONE_BY_ONE`] when
/// `close_range` fails); waits until `wait`, the read end, is at its end; closes `keep` and
/// exits. No array, no iterator and no arithmetic that can overflow: what a debug build makes
/// of it has no panic to take (the child may share the parent's memory, see `shared`).
fn closer(keep: RawFd, wait: RawFd, tell: RawFd, sys: Syscall) -> ! {
    sys(libc::SYS_close, tell as usize, 0, 0);
    let (low, high) = if keep < wait {
        (keep, wait)
    } else {
        (wait, keep)
    };
    let close_range =
        |first: RawFd, last: usize| sys(libc::SYS_close_range, first as usize, last, 0) >= 0;
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
                sys(libc::SYS_close, fd as usize, 0, 0);
            }
            fd = fd.wrapping_add(1);
        }
    }
    let mut byte = 0u8;
    // A pipe's read end returns 0 once every write end is closed; a few interrupted or
    // failed reads are not waited on for ever.
    let mut tries = 0u8;
    while tries < 64 {
        if sys(libc::SYS_read, wait as usize, (&raw mut byte) as usize, 1) >= 0 {
            break;
        }
        tries = tries.wrapping_add(1);
    }
    sys(libc::SYS_close, keep as usize, 0, 0);
    loop {
        sys(libc::SYS_exit, 0, 0, 0);
    }
}

/// The child made without a copy of this process's memory (`clone(CLONE_VM)`, as
/// `posix_spawn` makes its child): `fork` copies the page tables of the whole process, which
/// took 0.12 ms of a DHCP attach. The child shares this process's memory, so it touches
/// nothing but its own stack, a mapping of its own that is never unmapped (the child runs on
/// it after this process is gone), and makes its system calls without libc, whose wrappers
/// write `errno` in the thread-local storage of the thread that made the child.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod shared {
    use std::{os::fd::RawFd, ptr};

    use nix::{
        libc,
        sys::signal::{SigSet, SigmaskHow, pthread_sigmask},
    };

    /// The child's stack: it makes system calls only.
    const STACK: usize = 16 * 1024;

    /// Starts the closer of `keep` (see [`super::closer`]); false when no child was made.
    pub(super) fn spawn(keep: RawFd, wait: RawFd, tell: RawFd) -> bool {
        // The three descriptors go in the one argument, 21 bits each (the kernel's default
        // `nr_open`, 2^20, is below): a larger one is forked for.
        let Some(packed) = pack([keep, wait, tell]) else {
            return false;
        };
        #[allow(unsafe_code)]
        // SAFETY: a new private mapping; nothing else is touched.
        let stack = unsafe {
            libc::mmap(
                ptr::null_mut(),
                STACK,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if stack == libc::MAP_FAILED {
            return false;
        }
        // The child starts with every signal blocked, and never unblocks one: a handler of
        // this process (a copy of each is the child's) would run on memory it shares.
        let mut was = SigSet::empty();
        let blocked = pthread_sigmask(
            SigmaskHow::SIG_SETMASK,
            Some(&SigSet::all()),
            Some(&mut was),
        );
        if blocked.is_err() {
            #[allow(unsafe_code)]
            // SAFETY: the mapping made above, which no child runs on.
            unsafe {
                libc::munmap(stack, STACK);
            }
            return false;
        }
        #[allow(unsafe_code)]
        // SAFETY: the child starts at `entry` on the top of its own stack (it grows down)
        // and runs `closer` with `raw` system calls only (see the module); the mapping is
        // left to it.
        let made = unsafe {
            libc::clone(
                entry,
                stack.cast::<u8>().add(STACK).cast(),
                libc::CLONE_VM | libc::SIGCHLD,
                packed as usize as *mut libc::c_void,
            )
        };
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&was), None);
        if made < 0 {
            #[allow(unsafe_code)]
            // SAFETY: the mapping made above, which no child runs on.
            unsafe {
                libc::munmap(stack, STACK);
            }
        }
        made > 0
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
        super::closer(part(2 * BITS), part(BITS), part(0), raw)
    }

    /// A system call made here, not through libc (see the module).
    #[cfg(target_arch = "x86_64")]
    fn raw(number: libc::c_long, a: usize, b: usize, c: usize) -> isize {
        let done: isize;
        #[allow(unsafe_code)]
        // SAFETY: the closer's calls take descriptor numbers, or a pointer to a byte on its
        // own stack; the kernel clobbers rcx and r11 only.
        unsafe {
            std::arch::asm!(
                "syscall",
                inlateout("rax") number as isize => done,
                in("rdi") a,
                in("rsi") b,
                in("rdx") c,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        done
    }

    /// A system call made here, not through libc (see the module).
    #[cfg(target_arch = "aarch64")]
    fn raw(number: libc::c_long, a: usize, b: usize, c: usize) -> isize {
        let done: isize;
        #[allow(unsafe_code)]
        // SAFETY: as on x86_64; the kernel returns in x0.
        unsafe {
            std::arch::asm!(
                "svc 0",
                in("x8") number,
                inlateout("x0") a as isize => done,
                in("x1") b,
                in("x2") c,
                options(nostack),
            );
        }
        done
    }
}

/// Elsewhere the child is forked.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod shared {
    pub(super) fn spawn(
        _: std::os::fd::RawFd,
        _: std::os::fd::RawFd,
        _: std::os::fd::RawFd,
    ) -> bool {
        false
    }
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
    fn without_close_range(number: libc::c_long, a: usize, b: usize, c: usize) -> isize {
        if number == libc::SYS_close_range {
            return -(libc::ENOSYS as isize);
        }
        sys(number, a, b, c)
    }

    /// Where `close_range` fails, the child still lets go of its copy of the pipe's write end
    /// (else its read never ends: it would keep the socket, and the hook's stdout and stderr,
    /// for ever) and closes the rest one by one.
    #[test]
    fn without_close_range_the_child_still_ends_and_closes_the_socket() {
        let socket = crate::packet_socket(1, 0x0800).expect("needs root: a packet socket on lo");
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
        let socket = crate::packet_socket(1, 0x0800).expect("needs root: a packet socket on lo");
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
