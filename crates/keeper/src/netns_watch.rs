//! A container known only by its network namespace (a CNI attachment: the runtime made the
//! namespace, named it by a path, `CNI_NETNS`, and gave no process): it lives as long as that
//! path still names the namespace the attach recorded (the device and inode of its nsfs file).
//! Only `stat` looks at the path between two acts: a keeper holds no file of the namespace, so
//! a namespace its runtime deletes goes at once (a poll sees it, [`POLL`]).

use std::{
    fs::File,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    time::Duration,
};

use crate::{Error, Result};

/// How often a keeper looks at the path when nothing else wakes it (no fd to wait on: a
/// namespace's end signals nothing to a process that holds none of it).
pub(crate) const POLL: Duration = Duration::from_secs(1);

/// The namespace at a path, as recorded at attach.
#[derive(Debug, Clone)]
pub(crate) struct NetnsWatch {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl NetnsWatch {
    pub(crate) fn new(path: &Path, dev: u64, ino: u64) -> Self {
        Self {
            path: path.to_path_buf(),
            dev,
            ino,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn is_ours(&self, meta: &std::fs::Metadata) -> bool {
        (meta.dev(), meta.ino()) == (self.dev, self.ino)
    }

    /// Whether the path still names the namespace (a `stat`: nothing is held).
    pub(crate) fn alive(&self) -> bool {
        std::fs::metadata(&self.path).is_ok_and(|meta| self.is_ours(&meta))
    }

    /// The namespace, opened for one act (checked on the open file: a namespace mounted at
    /// the path since is not taken for it).
    pub(crate) fn open(&self) -> Result<File> {
        let gone = || Error::NetnsGone {
            path: self.path.clone(),
        };
        let file = File::open(&self.path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => gone(),
            _ => Error::file(&self.path, e),
        })?;
        let meta = file.metadata().map_err(|e| Error::file(&self.path, e))?;
        if !self.is_ours(&meta) {
            return Err(gone());
        }
        Ok(file)
    }

    /// Waits up to `timeout` for the namespace to go, looking every [`POLL`]; whether it has.
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> bool {
        let until = timeout.map(|t| std::time::Instant::now() + t);
        loop {
            if !self.alive() {
                return true;
            }
            let left = until.map(|u| u.saturating_duration_since(std::time::Instant::now()));
            match left {
                Some(left) if left.is_zero() => return false,
                Some(left) => std::thread::sleep(left.min(POLL)),
                None => std::thread::sleep(POLL),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_alive_while_it_names_the_recorded_file_and_gone_after() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ns");
        std::fs::write(&path, b"").expect("file");
        let meta = std::fs::metadata(&path).expect("stat");
        let watch = NetnsWatch::new(&path, meta.dev(), meta.ino());
        assert!(watch.alive());
        watch.open().expect("opens");
        assert!(!watch.wait(Some(Duration::from_millis(20))));
        // Another file at the path (another namespace mounted there) is not the recorded one.
        let other = NetnsWatch::new(&path, meta.dev(), meta.ino() + 1);
        assert!(!other.alive());
        assert!(matches!(other.open(), Err(Error::NetnsGone { .. })));
        std::fs::remove_file(&path).expect("rm");
        assert!(!watch.alive());
        assert!(watch.wait(Some(Duration::from_secs(2))));
        assert!(matches!(watch.open(), Err(Error::NetnsGone { .. })));
    }
}
