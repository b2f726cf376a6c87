//! The failures of the config and state dirs' files: records, locks, definitions on disk.

use std::{io, path::PathBuf};

/// What the files of the config and state dirs (definitions, endpoint records, locks) and the
/// system's randomness can fail with: the system failed (exit 1), whatever the file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A network definition file could not be read.
    #[error("cannot read network definition {path}")]
    ReadNetwork {
        /// The definition file.
        path: PathBuf,
        /// What the system call returned.
        #[source]
        source: io::Error,
    },
    /// A network definition file is not JSON of a network.
    #[error("network definition {path} is not valid JSON for oci-macvlan")]
    ParseNetwork {
        /// The definition file.
        path: PathBuf,
        /// What the JSON parser said.
        #[source]
        source: serde_json::Error,
    },
    /// The random bytes of a new network's id could not be read.
    #[error("cannot read /dev/urandom")]
    Random(#[source] io::Error),
    /// A definition or record could not be written in place (temporary file, sync,
    /// rename).
    #[error("cannot write {path}")]
    WriteFile {
        /// The file being written.
        path: PathBuf,
        /// What the system call returned.
        #[source]
        source: io::Error,
    },
    /// An endpoint record could not be read.
    #[error("cannot read endpoint record {path}")]
    ReadRecord {
        /// The record file.
        path: PathBuf,
        /// What the system call returned.
        #[source]
        source: io::Error,
    },
    /// An endpoint record is not JSON of a record.
    #[error("endpoint record {path} is corrupt")]
    ParseRecord {
        /// The record file.
        path: PathBuf,
        /// What the JSON parser said.
        #[source]
        source: serde_json::Error,
    },
    /// A lock file could not be made, opened or locked.
    #[error("cannot lock {path}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// What the system call returned.
        #[source]
        source: io::Error,
    },
    /// An endpoint record could not be turned into JSON.
    #[error("cannot write endpoint record {path}")]
    SerializeRecord {
        /// The record file.
        path: PathBuf,
        /// What the JSON parser said.
        #[source]
        source: serde_json::Error,
    },
    /// A network definition could not be turned into JSON.
    #[error("cannot write network definition {path}")]
    SerializeNetwork {
        /// The definition file.
        path: PathBuf,
        /// What the JSON parser said.
        #[source]
        source: serde_json::Error,
    },
    /// The record found under a container's id is another container's.
    #[error("endpoint record {path} belongs to container {container_id}, not to the one looked up")]
    RecordOfAnother {
        /// The record file.
        path: PathBuf,
        /// The container the record names.
        container_id: String,
    },
    /// A config or state dir that someone other than root could change, or that
    /// cannot be checked or made.
    #[error("refusing {what} {path}")]
    UnsafeDir {
        /// Which dir it is (`state dir`, …).
        what: &'static str,
        /// The dir.
        path: PathBuf,
        /// What the system call returned.
        #[source]
        source: io::Error,
    },
}
