//! Why a container could not be located ([`crate::locate`]): an error of its own, kept with
//! the core's errors so that `error.rs` stays a leaf of the module graph.

use std::io;

use super::ErrorKind;

/// Why a container could not be located.
#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    /// No record and no hint.
    #[error(
        "container {id} has no record here (it was not started with the hook): say where it runs with --pid, --netns or --runtime and --root"
    )]
    Unlocated {
        /// The container's id.
        id: String,
    },
    /// The runtime could not be run.
    #[error("cannot run {runtime} state {id}")]
    RuntimeState {
        /// The runtime's program.
        runtime: &'static str,
        /// The container's id.
        id: String,
        /// Why it could not be run.
        #[source]
        source: io::Error,
    },
    /// The runtime said no, or something unreadable.
    #[error("{runtime} state {id} failed: {stderr}")]
    RuntimeStateFailed {
        /// The runtime's program.
        runtime: &'static str,
        /// The container's id.
        id: String,
        /// What it said (cut).
        stderr: String,
    },
    /// The runtime knows the container, and it does not run.
    #[error("{runtime} state {id}: container is {status}, not running")]
    NotRunning {
        /// The runtime's program.
        runtime: &'static str,
        /// The container's id.
        id: String,
        /// Its status.
        status: String,
    },
}

impl LocateError {
    /// What kind of failure it is, for a front door's exit code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Unlocated { .. } => ErrorKind::Invalid,
            Self::RuntimeStateFailed { .. } | Self::NotRunning { .. } => ErrorKind::NotFound,
            Self::RuntimeState { .. } => ErrorKind::System,
        }
    }
}
