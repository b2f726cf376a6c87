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

/// What the child hands `execve`: C strings and two null-ended arrays of pointers to them.
#[derive(Debug)]
struct Exec {
    program: &'static [u8],
    argv: &'static [*const libc::c_char],
    envp: &'static [*const libc::c_char],
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
    /// variable with a NUL byte is refused.
    pub fn new<I, K, V>(program: &Path, args: &[OsString], env: I) -> io::Result<Self>
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
            })),
        })
    }

    /// Starts the program with every standard stream on `/dev/null` and every signal blocked
    /// (the program unblocks those it takes: the child shares this process's signal handlers
    /// until its `execve`, so it never unblocks one), and returns its pid at once. Whether its
    /// `execve` succeeds is not waited for: a child whose `execve` fails exits with status
    /// 127. The child is not reaped here: whoever inherits it does, once this process ends.
    /// Where no such child can be made, `std::process::Command` starts it (waited for until its
    /// `execve`; its signal mask this thread's).
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

/// The child: puts `/dev/null` on its standard streams (a runtime waits for every writer of a
/// hook's stdout and stderr: it must never keep one), then `execve`s. No iterator, no indexing
/// and no arithmetic that can overflow: what a debug build makes of it has no panic to take
/// (the child shares the parent's memory).
fn starter(exec: &Exec, sys: Syscall) -> ! {
    let null = sys(
        libc::SYS_openat,
        libc::AT_FDCWD as isize as usize,
        DEV_NULL.as_ptr() as usize,
        libc::O_RDWR as usize,
    );
    if null < 0 {
        clone::exit(sys, 127);
    }
    let mut fd = 0isize;
    while fd < 3 {
        if fd != null && sys(libc::SYS_dup3, null as usize, fd as usize, 0) < 0 {
            clone::exit(sys, 127);
        }
        fd = fd.wrapping_add(1);
    }
    if null > 2 {
        sys(libc::SYS_close, null as usize, 0, 0);
    }
    sys(
        libc::SYS_execve,
        exec.program.as_ptr() as usize,
        exec.argv.as_ptr() as usize,
        exec.envp.as_ptr() as usize,
    );
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

    /// The program runs with the arguments and exactly the environment given, its standard
    /// streams on `/dev/null`, every signal blocked (so it was the child that shares this
    /// process's memory, not `Command`'s); the start returns its pid. All read from `/proc`
    /// while it runs.
    #[test]
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    fn the_program_runs_with_its_arguments_environment_and_null_streams() {
        let start = Start::new(
            Path::new("/bin/sleep"),
            &["30".into(), "1s".into()],
            [("ONLY", "this"), ("AND", "a=b")],
        )
        .expect("ready");
        let pid = start.start().expect("started");
        let proc = Path::new("/proc").join(pid.to_string());
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
        let (cmdline, environ) = (read("cmdline"), read("environ"));
        let streams: Vec<_> = (0..3)
            .map(|fd| std::fs::read_link(proc.join(format!("fd/{fd}"))).expect("a stream"))
            .collect();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid.try_into().expect("a pid")),
            nix::sys::signal::Signal::SIGKILL,
        );
        reaped_any(pid);
        assert_eq!(cmdline, b"/bin/sleep\x0030\x001s\x00");
        assert_eq!(environ, b"ONLY=this\x00AND=a=b\x00");
        assert_eq!(streams, [Path::new("/dev/null"); 3]);
        let blocked = status
            .lines()
            .find_map(|line| line.strip_prefix("SigBlk:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .expect("a mask");
        for signal in [
            libc::SIGHUP,
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGUSR1,
            libc::SIGCHLD,
        ] {
            assert_ne!(
                blocked & (1 << (signal - 1)),
                0,
                "signal {signal}: {status}"
            );
        }
    }

    /// A program that cannot be started is said when the start is made ready: the child's
    /// own failure would not be seen.
    #[test]
    fn a_missing_program_or_a_nul_byte_is_refused_when_made_ready() {
        let missing = Start::new(Path::new("/nonexistent/keeper"), &[], [("A", "b")]);
        assert_eq!(
            missing.expect_err("refused").kind(),
            io::ErrorKind::NotFound
        );
        let nul = Start::new(Path::new("/bin/true"), &["a\0b".into()], [("A", "b")]);
        let err = nul.expect_err("refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("a\\0b"), "{err}");
    }

    /// The start does not wait for the program: it returns while the program still runs.
    #[test]
    fn the_start_returns_while_the_program_runs() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let gate = dir.path().join("gate");
        // Gives up after ~10 s, with status 1.
        let script = format!(
            "i=0; while [ ! -e {} ]; do i=$((i+1)); [ $i -lt 1000 ] || exit 1; sleep 0.01; done",
            gate.display()
        );
        let start = Start::new(
            Path::new("/bin/sh"),
            &["-c".into(), script.into()],
            [("A", "b")],
        )
        .expect("ready");
        let pid = start.start().expect("started");
        let raw = nix::unistd::Pid::from_raw(pid.try_into().expect("a pid"));
        let still = nix::sys::wait::waitpid(raw, Some(nix::sys::wait::WaitPidFlag::WNOHANG))
            .expect("waitpid");
        assert_eq!(still, nix::sys::wait::WaitStatus::StillAlive);
        std::fs::write(&gate, b"").expect("the gate");
        assert_eq!(reaped(pid), 0, "the program never saw its gate");
    }
}
