//! A network namespace's cookie: `SO_NETNS_COOKIE` (Linux 5.14) of a socket made inside it, 64
//! bits the kernel gives one namespace for as long as it runs, never another. The device and
//! inode of a namespace's nsfs file are not that: the kernel gives a deleted namespace's inode
//! to the next namespace made, so a path re-mounted at once with a new namespace shows the old
//! one's identity ([`crate::NetnsId`]).

use std::{
    io,
    os::fd::{AsRawFd, BorrowedFd},
};

use nix::libc;

/// `SO_NETNS_COOKIE` where its value is asm-generic's (the libc crate does not name it yet);
/// `None` on architectures whose number is not known here.
const SO_NETNS_COOKIE: Option<libc::c_int> = if cfg!(any(
    target_arch = "x86_64",
    target_arch = "x86",
    target_arch = "aarch64",
    target_arch = "arm",
    target_arch = "riscv64"
)) {
    Some(71)
} else {
    None
};

/// The cookie of the namespace `socket` was made in; `None` where the kernel has none to give
/// (before 5.14) or this architecture's option number is not known here.
pub(crate) fn of_socket(socket: BorrowedFd<'_>) -> io::Result<Option<u64>> {
    let Some(option) = SO_NETNS_COOKIE else {
        return Ok(None);
    };
    let mut cookie: u64 = 0;
    let mut len = libc::socklen_t::try_from(size_of::<u64>()).unwrap_or(8);
    // SAFETY: `socket` is an open descriptor for the call; the kernel writes at most `len`
    // bytes (8) into `cookie`, a u64 that lives across the call, and sets `len` to what it
    // wrote.
    #[allow(unsafe_code)]
    let done = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            std::ptr::from_mut(&mut cookie).cast(),
            &mut len,
        )
    };
    if done == 0 {
        return Ok((usize::try_from(len).ok() == Some(8)).then_some(cookie));
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ENOPROTOOPT) => Ok(None),
        _ => Err(err),
    }
}
