use std::{
    fs::File,
    io,
    os::{
        fd::{AsFd, AsRawFd, BorrowedFd, RawFd},
        unix::fs::MetadataExt,
    },
    path::{Path, PathBuf},
};

use nix::sched::{CloneFlags, setns, unshare};

use crate::{Error, Result};

/// Device and inode of a namespace file: equal identities are the same namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NetnsId {
    pub dev: u64,
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
    pub fn open(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        match File::open(&path) {
            Ok(file) => Ok(Self { file, path }),
            Err(source) => Err(Error::OpenNetns { path, source }),
        }
    }

    /// Like [`Netns::open`], but a namespace that no longer exists is `Ok(None)`.
    pub fn open_if_exists(path: impl Into<PathBuf>) -> Result<Option<Self>> {
        match Self::open(path) {
            Ok(ns) => Ok(Some(ns)),
            Err(Error::OpenNetns { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Ok(None)
            }
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

    /// Writes sysctls under `/proc/sys/` inside this namespace, in order. Keys are path
    /// segments, e.g. `["net", "ipv4", "conf", "eth0", "arp_notify"]`, so interface names
    /// containing dots (`eth0.50`) need no escaping.
    pub fn write_sysctls(&self, sysctls: &[Sysctl<'_>]) -> Result<()> {
        self.run_inside(|| {
            for sysctl in sysctls {
                let mut path = PathBuf::from("/proc/sys");
                path.extend(&sysctl.key);
                match std::fs::write(&path, sysctl.value) {
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
    pub key: Vec<&'a str>,
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
