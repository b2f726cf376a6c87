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

    /// Runs `f` on a fresh thread that entered this namespace; the calling thread never moves.
    /// The thread ends with `f`, so no thread is ever left behind in a foreign namespace.
    pub(crate) fn run_inside<T: Send>(&self, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
        let fd = self.file.as_fd();
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    setns(fd, CloneFlags::CLONE_NEWNET).map_err(|source| Error::EnterNetns {
                        path: self.path.clone(),
                        source,
                    })?;
                    f()
                })
                .join()
                .map_err(|_| Error::HelperPanicked {
                    path: self.path.clone(),
                })?
        })
    }

    /// Writes sysctls under `/proc/sys/` inside this namespace, in order, from one helper
    /// thread. Keys are path segments, e.g. `["net", "ipv4", "conf", "eth0", "arp_notify"]`, so
    /// interface names containing dots (`eth0.50`) need no escaping.
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
