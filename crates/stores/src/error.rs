use std::{io, path::PathBuf};

use oci_macvlan_macvlan::{self as macvlan, ErrorKind};

/// What choosing or opening a store, or this host's identity, can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Neither `--host-id` nor the identity file gives an id, and `/etc/machine-id` cannot be read.
    #[error("cannot read this host's id from {path} (give --host-id)")]
    ReadHostId {
        /// The file read.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: io::Error,
    },
    /// A host id that is not one (`--host-id`, `gc --forget-host`, `/etc/machine-id`).
    #[error(
        "invalid host id {id:?} (from {from}): expected 1 to 64 letters, digits, '.', '-' or '_'"
    )]
    InvalidHostId {
        /// The id as given.
        id: String,
        /// Where it came from.
        from: &'static str,
    },
    /// The networks of one attach keep their leases in different stores.
    #[error(
        "networks {first} and {second} keep their leases in different stores (local or etcd): \
         a container joins networks of one store"
    )]
    MixedStores {
        /// The first network.
        first: String,
        /// The first network of another store.
        second: String,
    },
    /// `--host-id` disagrees with the id the identity file keeps.
    #[error(
        "host id {given} (from --host-id) is not this host's id {kept}, kept in {path}: give \
         the same id, or none (remove {path} only to give this machine a new identity)"
    )]
    HostIdMismatch {
        /// The id given.
        given: String,
        /// The id the file keeps.
        kept: String,
        /// The identity file.
        path: PathBuf,
    },
    /// The identity file cannot be read, written, or is not one.
    #[error("cannot use this host's identity file {path}")]
    IdentityFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: io::Error,
    },
    /// The core's error (a store that fails, a definition that does not load).
    #[error(transparent)]
    Core(#[from] macvlan::Error),
}

impl From<oci_macvlan_ipam::Error> for Error {
    fn from(err: oci_macvlan_ipam::Error) -> Self {
        Self::Core(macvlan::Error::store(err))
    }
}

impl Error {
    /// What kind of failure it is, for a front door's exit code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Core(err) => err.kind(),
            Self::InvalidHostId { .. } | Self::MixedStores { .. } | Self::HostIdMismatch { .. } => {
                ErrorKind::Invalid
            }
            Self::ReadHostId { .. } | Self::IdentityFile { .. } => ErrorKind::System,
        }
    }
}

/// The result of this crate's functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;
