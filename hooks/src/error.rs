use std::{io, path::PathBuf};

use oci_macvlan_macvlan::{self as macvlan, ErrorKind};

/// Exit codes, as README.md lists them.
pub mod exit {
    pub const SYSTEM: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const INVALID: u8 = 3;
    pub const NOT_FOUND: u8 = 4;
    pub const CONFLICT: u8 = 5;
    pub const INCONSISTENT: u8 = 6;
}

/// Failures of the binary itself; library errors are wrapped as they are.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the OCI state from stdin")]
    ReadStdin(#[source] io::Error),
    #[error(
        "no OCI state on stdin (the runtime passes it; to run by hand: oci-macvlan hook < state.json)"
    )]
    EmptyState,
    #[error("OCI state on stdin is larger than 1 MiB")]
    StateTooLarge,
    #[error("invalid OCI state on stdin")]
    ParseState(#[source] serde_json::Error),
    #[error("OCI state of container {id} has no bundle")]
    NoBundle { id: String },
    #[error("cannot read bundle config {path}")]
    ReadConfig {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid bundle config {path}")]
    ParseConfig {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "container {id} has no pid in its state, and its config names no network namespace path"
    )]
    NoPid { id: String },
    #[error(
        "container {id} shares the host's network namespace: oci-macvlan needs one of its own (add {{\"type\": \"network\"}} to linux.namespaces)"
    )]
    HostNetns { id: String },
    #[error(
        "cannot tell the hook stage from status {status:?}: pass it as an argument, e.g. 'oci-macvlan hook poststop'"
    )]
    UnknownStatus { status: String },
    #[error("hook stage {0:?} is not supported: use createRuntime (or prestart) and poststop")]
    UnsupportedStage(String),
    #[error("invalid annotation {key}={value:?}: {reason}")]
    Annotation {
        key: String,
        value: String,
        reason: String,
    },
    #[error("cannot start the async runtime")]
    Runtime(#[source] io::Error),
    #[error("cannot open a netlink socket in the host namespace")]
    HostNetlink(#[source] oci_macvlan_netlink_core::Error),
    #[error("cannot write to stdout")]
    Stdout(#[source] io::Error),
    #[error("verify found {0} problems (listed on stdout)")]
    Inconsistent(usize),
    #[error("invalid --binary {path}: {reason}")]
    InvalidBinary { path: PathBuf, reason: &'static str },
    #[error("cannot find this program's own path (give --binary)")]
    CurrentExe(#[source] io::Error),
    #[error("doctor: {0} failed checks (see above)")]
    DoctorFailed(usize),
    #[error("invalid doctor option {0:?}: expected parent=IF")]
    DoctorOption(String),
    #[error(transparent)]
    Macvlan(#[from] macvlan::Error),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Macvlan(err) => match err.kind() {
                ErrorKind::Invalid => exit::INVALID,
                ErrorKind::NotFound => exit::NOT_FOUND,
                ErrorKind::Conflict => exit::CONFLICT,
                ErrorKind::System => exit::SYSTEM,
            },
            Self::Inconsistent(_) => exit::INCONSISTENT,
            Self::ReadConfig { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                exit::NOT_FOUND
            }
            Self::EmptyState
            | Self::StateTooLarge
            | Self::ParseState(_)
            | Self::NoBundle { .. }
            | Self::ParseConfig { .. }
            | Self::NoPid { .. }
            | Self::HostNetns { .. }
            | Self::UnknownStatus { .. }
            | Self::UnsupportedStage(_)
            | Self::Annotation { .. }
            | Self::InvalidBinary { .. }
            | Self::DoctorOption(_) => exit::INVALID,
            Self::ReadStdin(_)
            | Self::ReadConfig { .. }
            | Self::Runtime(_)
            | Self::HostNetlink(_)
            | Self::Stdout(_)
            | Self::CurrentExe(_)
            | Self::DoctorFailed(_) => exit::SYSTEM,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub use oci_macvlan_macvlan::one_line;
