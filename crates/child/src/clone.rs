//! The child both kinds are: made without a copy of this process's memory
//! (`clone(CLONE_VM)`, as `posix_spawn` makes its child, but not waited for): `fork` copies
//! the page tables of the whole process, which took 0.12 ms of a DHCP attach. The child shares
//! this process's memory, so it touches nothing but its own stack, a mapping of its own that is
//! never unmapped (the child runs on it after this process is gone), and memory this process
//! never frees or writes again; it makes its system calls without libc, whose wrappers write
//! `errno` in the thread-local storage of the thread that made the child. The child shares
//! that thread's TLS register too: glibc's `clone` writes nothing there in the child since
//! 2.25 (before, it reset the pid it cached there, the parent thread's); the release build
//! links Debian 12's, 2.36. Its signal handlers are a copy of this process's (no
//! `CLONE_SIGHAND`): what it sets there is its own.

use nix::libc;

/// A system call of up to four arguments, as a child makes it: its result, or `-errno`.
pub(crate) type Syscall = fn(libc::c_long, usize, usize, usize, usize) -> isize;

/// [`Syscall`] through libc (a forked child has memory of its own).
pub(crate) fn sys(number: libc::c_long, a: usize, b: usize, c: usize, d: usize) -> isize {
    #[allow(unsafe_code)]
    // SAFETY: a child's calls take descriptor numbers, or pointers to memory it may read.
    let done = unsafe { libc::syscall(number, a, b, c, d) };
    // `c_long` is the width of a pointer on Linux.
    done as isize
}

/// Ends the child, whatever happens.
pub(crate) fn exit(sys: Syscall, code: usize) -> ! {
    loop {
        sys(libc::SYS_exit, code, 0, 0, 0);
    }
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) use shared::{raw, spawn};
/// Elsewhere no child is made by [`spawn`]: no call is made so.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub(crate) use sys as raw;

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod shared {
    use std::ptr;

    use nix::{
        libc,
        sys::signal::{SigSet, SigmaskHow, pthread_sigmask},
    };

    /// The child's stack: it makes system calls only. Below it, a page no one may touch (the
    /// system's page: 4, 16 or 64 KiB): a stack overflow (a signal frame) faults there instead
    /// of writing over this process's memory.
    const STACK: usize = 16 * 1024;

    /// Makes a child that runs `entry(arg)` on a stack of its own, sharing this process's
    /// memory (see the module), and returns its pid; `None` when none was made. `entry` must
    /// make system calls through [`raw`] only, read no memory this process may free or write,
    /// and never return.
    pub(crate) fn spawn(
        entry: extern "C" fn(*mut libc::c_void) -> libc::c_int,
        arg: usize,
    ) -> Option<libc::pid_t> {
        #[allow(unsafe_code)]
        // SAFETY: reads a value of the C library's.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let guard = usize::try_from(page).ok().filter(|page| *page > 0)?;
        let size = guard.checked_add(STACK)?;
        #[allow(unsafe_code)]
        // SAFETY: a new private mapping; nothing else is touched.
        let stack = unsafe {
            libc::mmap(
                ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if stack == libc::MAP_FAILED {
            return None;
        }
        let unmap = || {
            #[allow(unsafe_code)]
            // SAFETY: the mapping made above, which no child runs on.
            unsafe {
                libc::munmap(stack, size);
            }
        };
        #[allow(unsafe_code)]
        // SAFETY: the first page of the mapping made above.
        if unsafe { libc::mprotect(stack, guard, libc::PROT_NONE) } != 0 {
            unmap();
            return None;
        }
        // The child starts with every signal blocked (glibc keeps its own two, 32 and 33,
        // which only its threads are sent): a handler of this process (a copy of each is the
        // child's) would run on memory it shares. It unblocks them only once it has set its
        // own handlers to the default (`start`), or never (`close_later`).
        let mut was = SigSet::empty();
        let blocked = pthread_sigmask(
            SigmaskHow::SIG_SETMASK,
            Some(&SigSet::all()),
            Some(&mut was),
        );
        if blocked.is_err() {
            unmap();
            return None;
        }
        #[allow(unsafe_code)]
        // SAFETY: the child starts at `entry` on the top of its own stack (it grows down)
        // and runs with `raw` system calls only (see the module); the mapping is left to it.
        let made = unsafe {
            libc::clone(
                entry,
                stack.cast::<u8>().add(size).cast(),
                libc::CLONE_VM | libc::SIGCHLD,
                arg as *mut libc::c_void,
            )
        };
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&was), None);
        if made <= 0 {
            unmap();
            return None;
        }
        Some(made)
    }

    /// A system call made here, not through libc (see the module).
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn raw(number: libc::c_long, a: usize, b: usize, c: usize, d: usize) -> isize {
        let done: isize;
        #[allow(unsafe_code)]
        // SAFETY: a child's calls take descriptor numbers, or pointers to memory it may read
        // or to its own stack; the kernel clobbers rcx and r11 only.
        unsafe {
            std::arch::asm!(
                "syscall",
                inlateout("rax") number as isize => done,
                in("rdi") a,
                in("rsi") b,
                in("rdx") c,
                in("r10") d,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        done
    }

    /// A system call made here, not through libc (see the module).
    #[cfg(target_arch = "aarch64")]
    pub(crate) fn raw(number: libc::c_long, a: usize, b: usize, c: usize, d: usize) -> isize {
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
                in("x3") d,
                options(nostack),
            );
        }
        done
    }
}

/// Elsewhere no child shares this process's memory: each kind falls back (a fork, a
/// `std::process::Command`).
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub(crate) fn spawn(
    _: extern "C" fn(*mut libc::c_void) -> libc::c_int,
    _: usize,
) -> Option<libc::pid_t> {
    None
}
