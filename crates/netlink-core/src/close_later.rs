//! A packet socket closed without waiting for it. The kernel's release of an `AF_PACKET` socket
//! waits for an RCU grace period (`packet_release` calls `synchronize_net`, whatever the
//! socket did): 4 to 16 ms on a 250 Hz kernel, measured at 8–15 ms in a hook's DHCP attach,
//! more than the whole rest of the hook. A process about to end (a hook, a CLI command) hands
//! the socket to a child that closes it there and exits; the process itself lets go of its
//! copy at once.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

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
    let Ok((told, tell)) = pipe2(OFlag::O_CLOEXEC) else {
        return drop(socket);
    };
    let (keep, wait) = (socket.as_raw_fd(), told.as_raw_fd());
    #[allow(unsafe_code)]
    // SAFETY: the child runs `closer` alone, which makes only async-signal-safe system calls
    // (`close_range`, `read`, `close`, `_exit`) on its own stack and touches no memory another
    // thread of this process may hold a lock on; it never returns into Rust code.
    let forked = unsafe { fork() };
    if let Ok(ForkResult::Child) = forked {
        closer(keep, wait);
    }
    // The parent (or no child): this copy first, then the end that lets the child go on.
    drop(socket);
    drop(tell);
    drop(told);
}

/// The child: closes every descriptor but `keep` and `wait`, waits until `wait` (a pipe's read
/// end) is at its end, closes `keep` and exits.
fn closer(keep: RawFd, wait: RawFd) -> ! {
    let (low, high) = (keep.min(wait), keep.max(wait));
    let ranges = [(0, low - 1), (low + 1, high - 1), (high + 1, RawFd::MAX)];
    for (first, last) in ranges {
        if first <= last {
            #[allow(unsafe_code)]
            // SAFETY: a system call on descriptor numbers only.
            unsafe {
                libc::syscall(
                    libc::SYS_close_range,
                    first as libc::c_uint,
                    last as libc::c_uint,
                    0 as libc::c_uint,
                );
            }
        }
    }
    let mut byte = 0u8;
    // A pipe's read end returns 0 once every write end is closed; a few interrupted or
    // failed reads are not waited on for ever.
    for _ in 0..64 {
        #[allow(unsafe_code)]
        // SAFETY: reads at most one byte into `byte`, which lives across the call.
        let read = unsafe { libc::read(wait, (&raw mut byte).cast(), 1) };
        if read >= 0 {
            break;
        }
    }
    #[allow(unsafe_code)]
    // SAFETY: system calls on this process's own descriptor, then its end.
    unsafe {
        libc::close(keep);
        libc::_exit(0)
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
