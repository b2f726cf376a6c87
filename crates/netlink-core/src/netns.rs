use std::{
    fs::{self, File, OpenOptions},
    io,
    os::{
        fd::{AsFd, AsRawFd, BorrowedFd, RawFd},
        unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt},
    },
    path::{Path, PathBuf},
};

use nix::{
    libc,
    sched::{CloneFlags, setns, unshare},
    sys::statfs::{NSFS_MAGIC, fstatfs, statfs},
};

use crate::{Error, Result};

/// Device and inode of a namespace file: equal identities are the same namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NetnsId {
    /// The device of the namespace file (nsfs).
    pub dev: u64,
    /// Its inode: the namespace's own number.
    pub ino: u64,
}

impl NetnsId {
    /// The namespace the calling thread is in.
    pub fn current() -> Result<Self> {
        Netns::open("/proc/thread-self/ns/net")?.identity()
    }
}

/// An open network namespace: a file descriptor that keeps it alive while we hold it.
#[derive(Debug)]
pub struct Netns {
    file: File,
    path: PathBuf,
}

impl Netns {
    /// Opens the namespace at `path` (`/run/netns/NAME`, `/proc/PID/ns/net`, a bind mount).
    ///
    /// The path comes from a bundle, so it may name anything: only a file of the kernel's
    /// namespace filesystem (nsfs) is opened. The path is checked with `statfs(2)` before it is
    /// opened (opening a FIFO blocks, opening a device may act on it), then opened with
    /// `O_NONBLOCK` and checked again through the descriptor, in case the path was swapped in
    /// between. Anything else is [`Error::NotNamespace`].
    pub fn open(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let open_error = |source: io::Error| Error::OpenNetns {
            path: path.clone(),
            source,
        };
        let before = statfs(&path).map_err(|errno| open_error(errno.into()))?;
        if before.filesystem_type() != NSFS_MAGIC {
            return Err(Error::NotNamespace {
                what: describe(fs::metadata(&path)),
                path,
            });
        }
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
            .open(&path)
            .map_err(open_error)?;
        let after = fstatfs(&file).map_err(|errno| open_error(errno.into()))?;
        if after.filesystem_type() != NSFS_MAGIC {
            return Err(Error::NotNamespace {
                what: describe(file.metadata()),
                path,
            });
        }
        Ok(Self { file, path })
    }

    /// A namespace file opened by someone else (a keeper's `/proc/PID/ns/net`, opened while
    /// its process was known to be alive); `path` names it in errors. Checked like
    /// [`Netns::open`]'s: a file of another filesystem is [`Error::NotNamespace`].
    pub fn from_file(file: File, path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let kind = fstatfs(&file).map_err(|errno| Error::OpenNetns {
            path: path.clone(),
            source: errno.into(),
        })?;
        if kind.filesystem_type() != NSFS_MAGIC {
            return Err(Error::NotNamespace {
                what: describe(file.metadata()),
                path,
            });
        }
        Ok(Self { file, path })
    }

    /// Like [`Netns::open`], but a path that no longer holds a namespace is `Ok(None)`: it is
    /// gone, or it is something else now (an unmounted `/run/netns/NAME` is an empty file).
    pub fn open_if_exists(path: impl Into<PathBuf>) -> Result<Option<Self>> {
        match Self::open(path) {
            Ok(ns) => Ok(Some(ns)),
            Err(Error::OpenNetns { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Ok(None)
            }
            Err(Error::NotNamespace { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// A new, empty network namespace that lives as long as the returned value: made by a helper
    /// thread that unshares and exits, so the caller never leaves its own namespace. Nothing is
    /// mounted; dropping it frees the namespace and every link in it (a scratch space for probes).
    pub fn new_anonymous() -> Result<Self> {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    unshare(CloneFlags::CLONE_NEWNET).map_err(Error::CreateNetns)?;
                    let path = PathBuf::from("/proc/thread-self/ns/net");
                    let file = File::open(&path).map_err(|source| Error::OpenNetns {
                        path: path.clone(),
                        source,
                    })?;
                    Ok(Self {
                        file,
                        path: PathBuf::from("(anonymous)"),
                    })
                })
                .join()
                .map_err(|_| Error::HelperPanicked {
                    path: PathBuf::from("(anonymous)"),
                })?
        })
    }

    /// [`Self::new_anonymous`] without a helper thread (for the hook, which starts none): the
    /// calling thread unshares into the new namespace, opens it and returns into its own
    /// before this returns, through the guard of [`Self::run_inside`] (which aborts the
    /// process if it cannot).
    pub fn new_scratch() -> Result<Self> {
        let home_path = Path::new("/proc/thread-self/ns/net");
        let anonymous = Path::new("(anonymous)");
        let home = File::open(home_path).map_err(|source| Error::OpenNetns {
            path: home_path.to_path_buf(),
            source,
        })?;
        unshare(CloneFlags::CLONE_NEWNET).map_err(Error::CreateNetns)?;
        let _return = ReturnHome {
            home,
            visited: anonymous,
        };
        let file = File::open(home_path).map_err(|source| Error::OpenNetns {
            path: home_path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            file,
            path: anonymous.to_path_buf(),
        })
    }

    /// The path this namespace was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The namespace's identity: the device and inode of its nsfs file, which no other live
    /// namespace shares (what `ip netns identify` and `lsns` compare).
    pub fn identity(&self) -> Result<NetnsId> {
        let meta = self.file.metadata().map_err(|source| Error::OpenNetns {
            path: self.path.clone(),
            source,
        })?;
        Ok(NetnsId {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    /// The namespace's cookie (see `crate::cookie`): what tells it from a namespace made after
    /// it was deleted that shows its [`Self::identity`]. `None` on a kernel without cookies.
    pub fn cookie(&self) -> Result<Option<u64>> {
        let what = "a socket for the namespace's cookie";
        let socket = self.open_inside(what, || {
            nix::sys::socket::socket(
                nix::sys::socket::AddressFamily::Unix,
                nix::sys::socket::SockType::Datagram,
                nix::sys::socket::SockFlag::SOCK_CLOEXEC,
                None,
            )
            .map_err(io::Error::from)
        })?;
        crate::cookie::of_socket(socket.as_fd()).map_err(|source| Error::OpenInside {
            what: what.to_owned(),
            path: self.path.clone(),
            source,
        })
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Runs `f` on the calling thread, moved into this namespace for the call and back into its
    /// own before returning (also when `f` fails or panics). A network namespace is per thread,
    /// and two `setns(2)` cost microseconds where a helper thread costs ~0.1 ms of a hook's run
    /// (its stack, its malloc arena, its start). `f` must not await: it runs in one go, so no
    /// other task runs on this thread while it is away.
    ///
    /// A thread that cannot return to its own namespace aborts the process: going on would create
    /// links, addresses and routes in the container's namespace instead of the host's.
    pub(crate) fn run_inside<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let home_path = Path::new("/proc/thread-self/ns/net");
        let home = File::open(home_path).map_err(|source| Error::OpenNetns {
            path: home_path.to_path_buf(),
            source,
        })?;
        setns(self.file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|source| Error::EnterNetns {
            path: self.path.clone(),
            source,
        })?;
        let _return = ReturnHome {
            home,
            visited: &self.path,
        };
        f()
    }

    /// Opens, inside this namespace, what `open` opens (`what` names it for the error): sockets
    /// keep the namespace they were opened in, so the caller uses them from its own, and no
    /// thread stays here (see [`Self::run_inside`]). `open` must not block.
    pub fn open_inside<T>(&self, what: &str, open: impl FnOnce() -> io::Result<T>) -> Result<T> {
        self.run_inside(|| {
            open().map_err(|source| Error::OpenInside {
                what: what.to_owned(),
                path: self.path.clone(),
                source,
            })
        })
    }

    /// Writes sysctls under `/proc/sys/` inside this namespace, in order. Keys are path
    /// segments, e.g. `["net", "ipv4", "conf", "eth0", "arp_notify"]`, so interface names
    /// containing dots (`eth0.50`) need no escaping.
    pub fn write_sysctls(&self, sysctls: &[Sysctl<'_>]) -> Result<()> {
        self.run_inside(|| {
            for sysctl in sysctls {
                let mut path = PathBuf::from("/proc/sys");
                path.extend(&sysctl.key);
                match fs::write(&path, sysctl.value) {
                    Err(err) if err.kind() == io::ErrorKind::NotFound && sysctl.missing_ok => {}
                    Err(source) => {
                        return Err(Error::WriteSysctl {
                            key: sysctl.key.join("."),
                            path: self.path.clone(),
                            source,
                        });
                    }
                    Ok(()) => {}
                }
            }
            Ok(())
        })
    }
}

/// What a file that is not a namespace file is, for [`Error::NotNamespace`].
fn describe(meta: io::Result<fs::Metadata>) -> &'static str {
    meta.map_or("a file of unknown kind", |meta| file_kind(&meta))
}

/// What kind of file `meta` describes, for a message ("a FIFO", "a directory", …): what the
/// hook's bounded readers say of a file they refuse.
pub fn file_kind(meta: &fs::Metadata) -> &'static str {
    let kind = meta.file_type();
    if kind.is_file() {
        "a regular file"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else {
        "a file of unknown kind"
    }
}

/// Moves the thread back into the namespace it came from when dropped; see [`Netns::run_inside`].
struct ReturnHome<'a> {
    home: File,
    visited: &'a Path,
}

impl Drop for ReturnHome<'_> {
    fn drop(&mut self) {
        if let Err(errno) = setns(self.home.as_fd(), CloneFlags::CLONE_NEWNET) {
            eprintln!(
                "oci-macvlan: fatal: cannot return from network namespace {}: {errno}",
                self.visited.display()
            );
            std::process::abort();
        }
    }
}

/// One sysctl to write; see [`Netns::write_sysctls`].
#[derive(Debug, Clone)]
pub struct Sysctl<'a> {
    /// The key's components under `/proc/sys` (`["net", "ipv4", "conf", "eth0", "rp_filter"]`).
    pub key: Vec<&'a str>,
    /// The value written.
    pub value: &'a str,
    /// A key the kernel does not have is skipped (e.g. IPv6 keys on a kernel booted without IPv6).
    pub missing_ok: bool,
}

impl AsFd for Netns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use nix::errno::Errno;

    use super::*;

    fn here() -> NetnsId {
        NetnsId::current().expect("own namespace")
    }

    #[test]
    fn run_inside_enters_and_always_returns() {
        let home = here();
        let other = Netns::new_anonymous().expect("needs root: a scratch namespace");
        let target = other.identity().expect("identity");
        assert_ne!(home, target);

        assert_eq!(other.run_inside(|| Ok(here())).expect("ran"), target);
        assert_eq!(here(), home, "back after success");

        let failed = other.run_inside(|| -> Result<()> { Err(Error::CreateNetns(Errno::EPERM)) });
        assert!(matches!(failed, Err(Error::CreateNetns(Errno::EPERM))));
        assert_eq!(here(), home, "back after an error");

        let panicked =
            std::panic::catch_unwind(|| other.run_inside(|| -> Result<()> { panic!("inside") }));
        assert!(panicked.is_err());
        assert_eq!(here(), home, "back after a panic");
    }

    /// A namespace's cookie is its own: the same each time it is asked, another namespace's
    /// differs, and asking leaves the thread in its own namespace.
    #[test]
    fn a_namespace_has_a_cookie_of_its_own() {
        let home = here();
        let own = Netns::open("/proc/self/ns/net").expect("own namespace");
        let other = Netns::new_anonymous().expect("needs root: a scratch namespace");
        let cookie = own.cookie().expect("asked");
        let Some(cookie) = cookie else {
            // A kernel before 5.14: nothing to compare (the callers fall back to the identity).
            return;
        };
        assert_eq!(own.cookie().expect("asked again"), Some(cookie));
        let theirs = other
            .cookie()
            .expect("asked")
            .expect("a kernel with cookies has one");
        assert_ne!(theirs, cookie);
        assert_eq!(here(), home);
    }

    /// A bundle may name anything as its namespace path: what is not a namespace file is refused
    /// before it is opened (a FIFO would block the hook for ever), and `open_if_exists` takes it
    /// for a namespace that is gone. Namespace files (the process's own, a bind mount of one) open.
    #[test]
    fn only_namespace_files_are_opened_and_a_fifo_never_blocks() {
        let dir = std::env::temp_dir().join(format!("omt-netns-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).expect("temp dir");
        // Guards drop in reverse: the bind mount goes before the directory.
        let _cleanup = Cleanup(&dir);
        let file = dir.join("file");
        fs::write(&file, b"").expect("regular file");
        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("fifo");
        let cases = [
            (fifo.clone(), "a FIFO"),
            (file.clone(), "a regular file"),
            (dir.clone(), "a directory"),
            (PathBuf::from("/dev/null"), "a character device"),
        ];
        for (path, what) in cases {
            // On its own thread, so that a regression hangs that thread, not the test.
            let (tx, rx) = std::sync::mpsc::channel();
            let opening = path.clone();
            std::thread::spawn(move || {
                let _ = tx.send((
                    Netns::open(&opening).map(|_| ()),
                    Netns::open_if_exists(&opening).map(|ns| ns.is_some()),
                ));
            });
            let (open, if_exists) = rx
                .recv_timeout(std::time::Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("opening {} blocked", path.display()));
            match open {
                Err(Error::NotNamespace { path: p, what: w }) => {
                    assert_eq!((p, w), (path.clone(), what));
                }
                other => panic!("{}: {other:?}", path.display()),
            }
            assert!(matches!(if_exists, Ok(false)), "{}", path.display());
        }
        let err = Netns::open(&fifo).expect_err("a FIFO");
        assert_eq!(
            err.to_string(),
            format!("{} is a FIFO, not a network namespace file", fifo.display())
        );
        assert!(matches!(
            Netns::open_if_exists(dir.join("missing")),
            Ok(None)
        ));

        Netns::open("/proc/self/ns/net").expect("a process's namespace");
        // A bind mount of a namespace file, as `ip netns add` makes under /run/netns.
        let mounted = dir.join("mounted");
        fs::write(&mounted, b"").expect("mount point");
        let status = std::process::Command::new("mount")
            .args(["--bind", "/proc/self/ns/net"])
            .arg(&mounted)
            .status()
            .expect("mount");
        assert!(status.success(), "needs root: mount --bind");
        let _unmount = Unmount(&mounted);
        assert_eq!(
            Netns::open(&mounted)
                .expect("a bind mount")
                .identity()
                .expect("id"),
            here()
        );
    }

    struct Cleanup<'a>(&'a Path);

    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(self.0);
        }
    }

    struct Unmount<'a>(&'a Path);

    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }

    #[test]
    fn another_kind_of_namespace_is_refused_and_the_thread_stays() {
        let home = here();
        let not_a_netns = Netns::open("/proc/self/ns/uts").expect("uts namespace file");
        let err = not_a_netns
            .run_inside(|| Ok(()))
            .expect_err("a UTS namespace is not a network namespace");
        assert!(
            matches!(
                err,
                Error::EnterNetns {
                    source: Errno::EINVAL,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(here(), home);
    }
}
