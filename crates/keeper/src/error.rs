//! What a keeper's calls fail with.

use std::{io, path::PathBuf};

/// What a keeper's calls fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The container's process is gone, or the pid is another process's now.
    #[error("container process {pid} is gone")]
    Gone {
        /// The pid that was the container's.
        pid: i32,
    },
    /// The container's namespace path (a container watched by its namespace) is gone, or
    /// names another namespace now.
    #[error("the container's network namespace {} is gone", path.display())]
    NetnsGone {
        /// The namespace's path.
        path: PathBuf,
    },
    /// A file of the keeper's (its slot, a lock, a pid file, `/proc`) could not be used.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// A keeper process could not be started.
    #[error("cannot start a keeper ({program}): {source}")]
    Spawn {
        /// The program.
        program: String,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// Waiting failed.
    #[error("waiting for container process {pid}: {source}")]
    Wait {
        /// The container's pid.
        pid: i32,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
}

impl Error {
    pub(crate) fn file(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::File {
            path: path.into(),
            source,
        }
    }
}

/// This crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
