//! A program started without waiting for it. `posix_spawn` (what `std::process::Command`
//! uses) blocks its caller until the child has called `execve`: a wake of the child and one
//! of the caller, each on whichever CPU is idle. Where waking an idle CPU is slow (a VM's
//! halted vCPU) that took 0.3 to 1.1 ms of a hook, against ~0.03 ms for a child it does not
//! wait for. [`Start`] makes everything the child needs ahead (its path, arguments and
//! environment as `execve` takes them, in memory never freed), and [`Start::start`] makes the
//! child and returns at once.

use std::{
    ffi::{CString, OsStr, OsString},
    io,
    os::unix::ffi::{OsStrExt, OsStringExt},
    path::Path,
    process::{Command, Stdio},
};

use nix::{libc, unistd::AccessFlags};

use crate::clone::{self, Syscall};

/// A program's start, made ready: see the module. Its strings are leaked (the child may read
/// them after this process has ended): for short-lived processes, a few starts each.
#[derive(Debug, Clone, Copy)]
pub struct Start {
    exec: &'static Exec,
}

/// What the child hands `execve` (C strings and two null-ended arrays of pointers to them), and
/// what it says when it cannot.
#[derive(Debug)]
pub(crate) struct Exec {
    program: &'static [u8],
    argv: &'static [*const libc::c_char],
    envp: &'static [*const libc::c_char],
    failed: &'static [u8],
}

#[allow(unsafe_code)]
// SAFETY: an `Exec` and what its pointers point at are leaked and never written after it is
// made: any thread (and a child sharing the memory) may read them.
unsafe impl Sync for Exec {}
#[allow(unsafe_code)]
// SAFETY: as for `Sync`: nothing in it is owned by a thread.
unsafe impl Send for Exec {}

/// The path the child opens for its standard streams.
const DEV_NULL: &[u8] = b"/dev/null\0";

impl Start {
    /// The start of `program` (which must be there and executable now) with `args` (after
    /// `argv[0]`, which is `program`) and exactly the environment `env`. An argument or
    /// variable with a NUL byte is refused. `failed` is the line the child writes on this
    /// process's standard error if it cannot start the program, followed by ` (errno N)`.
    pub fn new<I, K, V>(program: &Path, args: &[OsString], env: I, failed: &str) -> io::Result<Self>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        nix::unistd::access(program, AccessFlags::X_OK).map_err(io::Error::from)?;
        let program = leak(c_string(program.as_os_str().as_bytes().to_vec())?);
        let mut argv = vec![program.as_ptr().cast()];
        for arg in args {
            argv.push(leak(c_string(arg.as_bytes().to_vec())?).as_ptr().cast());
        }
        argv.push(std::ptr::null());
        let mut envp = Vec::new();
        for (key, value) in env {
            let mut pair = key.as_ref().as_bytes().to_vec();
            pair.push(b'=');
            pair.extend_from_slice(value.as_ref().as_bytes());
            envp.push(leak(c_string(pair)?).as_ptr().cast());
        }
        envp.push(std::ptr::null());
        Ok(Self {
            exec: Box::leak(Box::new(Exec {
                program,
                argv: Vec::leak(argv),
                envp: Vec::leak(envp),
                failed: Box::leak(failed.as_bytes().to_vec().into_boxed_slice()),
            })),
        })
    }

    /// What the child hands `execve`: leaked, never written (a child sharing this process's
    /// memory may read it).
    pub(crate) fn exec(self) -> &'static Exec {
        self.exec
    }

    /// Starts the program and returns its pid at once, the child not reaped here (whoever
    /// inherits it does, once this process ends). The program starts as `posix_spawn` would
    /// start it with these settings: its standard streams on `/dev/null`, every signal's
    /// disposition the default and none blocked, this process's other descriptors but those
    /// marked close-on-exec (the child holds those too until its `execve`: a lock, a socket
    /// whose last close it may then be). Its `execve` is not waited for: a child that cannot start it
    /// writes the `failed` line on this process's standard error (a copy of it, closed by a
    /// successful `execve`) and exits with status 127. Where no such child can be made,
    /// `std::process::Command` starts it (and a failure is returned).
    pub fn start(self) -> io::Result<u32> {
        let exec: *const Exec = self.exec;
        if let Some(pid) = clone::spawn(entry, exec as usize) {
            return Ok(pid.unsigned_abs());
        }
        let exec = self.exec;
        let text = |p: *const libc::c_char| {
            #[allow(unsafe_code)]
            // SAFETY: every pointer of `argv` and `envp` but the last is a leaked C string.
            OsStr::from_bytes(unsafe { std::ffi::CStr::from_ptr(p) }.to_bytes())
        };
        let (args, env) = (
            &exec.argv[1..exec.argv.len() - 1],
            &exec.envp[..exec.envp.len() - 1],
        );
        let mut command = Command::new(OsStr::from_bytes(&exec.program[..exec.program.len() - 1]));
        command.args(args.iter().map(|p| text(*p))).env_clear();
        for pair in env {
            let pair = text(*pair).as_bytes();
            let at = pair.iter().position(|b| *b == b'=').unwrap_or(pair.len());
            command.env(
                OsStr::from_bytes(&pair[..at]),
                OsStr::from_bytes(pair.get(at + 1..).unwrap_or_default()),
            );
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(child.id())
    }
}

/// `bytes` with its NUL at the end; one inside is refused.
fn c_string(bytes: Vec<u8>) -> io::Result<CString> {
    CString::new(bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "a NUL byte in {:?}",
                OsString::from_vec(e.into_vec()).to_string_lossy()
            ),
        )
    })
}

fn leak(string: CString) -> &'static [u8] {
    Box::leak(string.into_bytes_with_nul().into_boxed_slice())
}

extern "C" fn entry(exec: *mut libc::c_void) -> libc::c_int {
    let exec: *const Exec = exec.cast_const().cast();
    #[allow(unsafe_code)]
    // SAFETY: the pointer `Start::start` passed: to an `Exec` that is leaked and never written.
    starter(unsafe { &*exec }, clone::raw)
}

/// The highest signal number (`_NSIG` on x86_64 and aarch64).
const SIGNALS: usize = 64;

/// The child: keeps a close-on-exec copy of this process's standard error to say a failure
/// on, puts `/dev/null` on its standard streams (a runtime waits for every writer of a hook's
/// stdout and stderr: the program must never keep one), sets every signal's disposition to
/// the default (its table of handlers is its own copy) and only then unblocks them all, then
/// `execve`s. No iterator, no indexing and no arithmetic that can overflow: what a debug build
/// makes of it has no panic to take (the child shares the parent's memory).
pub(crate) fn starter(exec: &Exec, sys: Syscall) -> ! {
    let said = sys(libc::SYS_fcntl, 2, libc::F_DUPFD_CLOEXEC as usize, 3, 0);
    let null = sys(
        libc::SYS_openat,
        libc::AT_FDCWD as isize as usize,
        DEV_NULL.as_ptr() as usize,
        libc::O_RDWR as usize,
        0,
    );
    if null < 0 {
        failed(exec, said, null, sys);
    }
    let mut fd = 0isize;
    while fd < 3 {
        if fd != null {
            let done = sys(libc::SYS_dup3, null as usize, fd as usize, 0, 0);
            if done < 0 {
                failed(exec, said, done, sys);
            }
        }
        fd = fd.wrapping_add(1);
    }
    if null > 2 {
        sys(libc::SYS_close, null as usize, 0, 0, 0);
    }
    // A kernel `struct sigaction` of zeros: `SIG_DFL`, no flags, no mask (its layout does not
    // matter then); SIGKILL's and SIGSTOP's are refused, as they may be.
    let default = [0u64; 4];
    let none = 0u64;
    let mut signal = 1;
    while signal <= SIGNALS {
        let done = sys(
            libc::SYS_rt_sigaction,
            signal,
            (&raw const default) as usize,
            0,
            8,
        );
        // Any other refusal (a seccomp filter) leaves a handler of the parent's: unblocked,
        // it would run on shared memory.
        if done < 0 && signal != libc::SIGKILL as usize && signal != libc::SIGSTOP as usize {
            failed(exec, said, done, sys);
        }
        signal = signal.wrapping_add(1);
    }
    sys(
        libc::SYS_rt_sigprocmask,
        libc::SIG_SETMASK as usize,
        (&raw const none) as usize,
        0,
        8,
    );
    let done = sys(
        libc::SYS_execve,
        exec.program.as_ptr() as usize,
        exec.argv.as_ptr() as usize,
        exec.envp.as_ptr() as usize,
        0,
    );
    failed(exec, said, done, sys)
}

/// Blocks every signal again (a reader gone makes the write a SIGPIPE, whose disposition may be
/// the default by then: it stays pending), writes `exec`'s `failed` line and `error` (`-errno`)
/// on `said` (when there is one) in one `writev` (a pipe takes it whole, not interleaved with
/// another writer's), then exits with status 127.
fn failed(exec: &Exec, said: isize, error: isize, sys: Syscall) -> ! {
    let all = u64::MAX;
    sys(
        libc::SYS_rt_sigprocmask,
        libc::SIG_SETMASK as usize,
        (&raw const all) as usize,
        0,
        8,
    );
    if said >= 0 {
        // Four digits at most: errno values are below 4096.
        let errno = error.unsigned_abs() % 10_000;
        let digits = [
            b'0'.wrapping_add((errno / 1000 % 10) as u8),
            b'0'.wrapping_add((errno / 100 % 10) as u8),
            b'0'.wrapping_add((errno / 10 % 10) as u8),
            b'0'.wrapping_add((errno % 10) as u8),
        ];
        let skip: usize = if errno >= 1000 {
            0
        } else if errno >= 100 {
            1
        } else if errno >= 10 {
            2
        } else {
            3
        };
        let part = |bytes: *const u8, len: usize| libc::iovec {
            iov_base: bytes.cast_mut().cast(),
            iov_len: len,
        };
        let parts = [
            part(exec.failed.as_ptr(), exec.failed.len()),
            part(b" (errno ".as_ptr(), 8),
            part(
                digits.as_ptr().wrapping_add(skip),
                4usize.wrapping_sub(skip),
            ),
            part(b")\n".as_ptr(), 2),
        ];
        sys(
            libc::SYS_writev,
            said as usize,
            parts.as_ptr() as usize,
            4,
            0,
        );
    }
    clone::exit(sys, 127)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits for `pid` (a child of this process) to end, and returns how.
    fn reaped_any(pid: u32) -> nix::sys::wait::WaitStatus {
        let pid = nix::unistd::Pid::from_raw(pid.try_into().expect("a pid"));
        nix::sys::wait::waitpid(pid, None).expect("reaped")
    }

    /// Waits for `pid` (a child of this process) to end, and returns its exit status.
    fn reaped(pid: u32) -> i32 {
        match reaped_any(pid) {
            nix::sys::wait::WaitStatus::Exited(_, code) => code,
            other => panic!("{other:?}"),
        }
    }

    /// A child this test made, killed and reaped however the test ends.
    struct Killed(u32);

    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.0.try_into().expect("a pid")),
                nix::sys::signal::Signal::SIGKILL,
            );
            reaped_any(self.0);
        }
    }

    /// The mask of `field` (`SigBlk`, `SigIgn`) in a `/proc/…/status`.
    fn mask(status: &str, field: &str) -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .expect("a mask")
    }

    /// The program runs with the arguments and exactly the environment given, its standard
    /// streams on `/dev/null`, no signal blocked nor ignored although this process ignores
    /// SIGPIPE (Rust's runtime does); the start returns its pid, and this thread's signal mask
    /// is what it was. All read from `/proc` while it runs.
    #[test]
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    fn the_program_runs_with_its_arguments_environment_null_streams_and_default_signals() {
        let here = std::fs::read_to_string("/proc/self/status").expect("status");
        assert_ne!(
            mask(&here, "SigIgn") & (1 << (libc::SIGPIPE - 1)),
            0,
            "{here}"
        );
        let start = Start::new(
            Path::new("/bin/sleep"),
            &["30".into(), "1s".into()],
            [("ONLY", "this"), ("AND", "a=b")],
            "no sleep",
        )
        .expect("ready");
        let before = nix::sys::signal::SigSet::thread_get_mask().expect("the mask");
        let child = Killed(start.start().expect("started"));
        let after = nix::sys::signal::SigSet::thread_get_mask().expect("the mask");
        assert_eq!(before, after, "this thread's signal mask changed");
        let proc = Path::new("/proc").join(child.0.to_string());
        let mut tries = 0;
        // Its `comm` is set before its arguments are: asleep, it is past both.
        let asleep = || {
            std::fs::read_to_string(proc.join("status")).is_ok_and(|status| {
                status.contains("Name:\tsleep\n") && status.contains("State:\tS")
            })
        };
        while !asleep() {
            tries += 1;
            assert!(tries < 1000, "the program never ran");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let read = |name: &str| std::fs::read(proc.join(name)).expect(name);
        let status = String::from_utf8(read("status")).expect("status");
        assert_eq!(read("cmdline"), b"/bin/sleep\x0030\x001s\x00");
        assert_eq!(read("environ"), b"ONLY=this\x00AND=a=b\x00");
        let streams: Vec<_> = (0..3)
            .map(|fd| std::fs::read_link(proc.join(format!("fd/{fd}"))).expect("a stream"))
            .collect();
        assert_eq!(streams, [Path::new("/dev/null"); 3]);
        assert_eq!(mask(&status, "SigBlk"), 0, "{status}");
        assert_eq!(mask(&status, "SigIgn"), 0, "{status}");
    }

    /// A program that cannot be started is said when the start is made ready.
    #[test]
    fn a_missing_program_or_a_nul_byte_is_refused_when_made_ready() {
        let missing = Start::new(Path::new("/nonexistent/keeper"), &[], [("A", "b")], "");
        assert_eq!(
            missing.expect_err("refused").kind(),
            io::ErrorKind::NotFound
        );
        let nul = Start::new(Path::new("/bin/true"), &["a\0b".into()], [("A", "b")], "");
        let err = nul.expect_err("refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("a\\0b"), "{err}");
    }

    /// Set in this test binary run again by the test below: the directory to run in.
    const GONE_IN: &str = "OCI_MACVLAN_CHILD_TEST_GONE_IN";

    /// This test binary run again for the test below, in a directory beside it (a temp dir may
    /// be on a `noexec` file system), with `stderr` as its standard error.
    fn run_gone(stderr: Stdio) -> std::process::Output {
        let exe = std::env::current_exe().expect("this test binary");
        let dir = tempfile::tempdir_in(exe.parent().expect("its dir")).expect("a temp dir");
        let out = Command::new(&exe)
            .args([
                "--exact",
                "start::tests::a_program_gone_by_its_start_is_said_on_stderr_and_the_child_exits_127",
            ])
            .env(GONE_IN, dir.path())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .output()
            .expect("this test binary ran again");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}");
        assert!(stdout.contains("1 passed"), "the test did not run again");
        out
    }

    /// A program gone between the start made ready and the start: the start, which does not
    /// wait for the `execve`, returns its pid; the child says its line on this process's
    /// standard error and exits with status 127, also when no one reads that (a SIGPIPE does
    /// not kill it). Run in a copy of this test binary, whose standard error the test reads,
    /// or closes.
    #[test]
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    fn a_program_gone_by_its_start_is_said_on_stderr_and_the_child_exits_127() {
        if let Some(dir) = std::env::var_os(GONE_IN) {
            let program = Path::new(&dir).join("gone");
            std::fs::copy("/bin/true", &program).expect("a program");
            let start =
                Start::new(&program, &[], [("A", "b")], "the program is gone").expect("ready");
            std::fs::remove_file(&program).expect("removed");
            let pid = start
                .start()
                .expect("started: its execve is not waited for");
            assert_eq!(reaped(pid), 127);
            return;
        }
        let out = run_gone(Stdio::piped());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("the program is gone (errno 2)\n"),
            "{stderr}"
        );
        // A pipe whose reader is gone before the run starts.
        let (reader, writer) = nix::unistd::pipe().expect("a pipe");
        drop(reader);
        run_gone(Stdio::from(writer));
    }
}
