use std::{borrow::Cow, io, path::PathBuf};

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
    #[error("OCI state on stdin is larger than {} MiB", crate::oci::MAX_STATE >> 20)]
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
    #[error("bundle config {path} is {what}: only a regular file is read")]
    ConfigNotFile { path: PathBuf, what: &'static str },
    #[error("bundle config {path} is larger than {} MiB", crate::oci::MAX_CONFIG >> 20)]
    ConfigTooLarge { path: PathBuf },
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
    #[error("invalid network namespace path for container {id}")]
    NetnsPath {
        id: String,
        #[source]
        source: oci_macvlan_netlink_core::Error,
    },
    #[error(
        "container {id} shares the host's network namespace: oci-macvlan needs one of its own (add {{\"type\": \"network\"}} to linux.namespaces)"
    )]
    HostNetns { id: String },
    #[error(
        "cannot tell the hook stage from status {:?}: pass it as an argument, e.g. 'oci-macvlan hook poststop'",
        echo(status)
    )]
    UnknownStatus { status: String },
    #[error(
        "hook stage {:?} is not supported: use createRuntime (or prestart) and poststop",
        echo(.0)
    )]
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
    #[error(
        "{command} could not reach {count} lease stores (listed on stdout): it did all it could without them; run it again once they answer"
    )]
    Unreached { command: &'static str, count: usize },
    #[error(
        "cannot remove network {name}: {}; `network rm -f {name}` removes its definition anyway and leaves what its store holds for `gc`",
        macvlan::one_line(source)
    )]
    RmUnreached {
        name: String,
        source: Box<macvlan::Error>,
    },
    #[error(
        "gc could not repair the host access of {0} networks (listed on stdout): it did the rest"
    )]
    HostAccessUnrepaired(usize),
    #[error("invalid --binary {path}: {reason}")]
    InvalidBinary { path: PathBuf, reason: &'static str },
    #[error("cannot find this program's own path (give --binary)")]
    CurrentExe(#[source] io::Error),
    #[error("cannot make {path} an absolute path for the hooks.d file")]
    AbsolutePath {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("doctor: {0} failed checks (see above)")]
    DoctorFailed(usize),
    #[error("{path}: not an OCI config (its top level, hooks and annotations must be objects)")]
    BundleNotObject { path: PathBuf },
    #[error("bundle: no network given (--network NAME)")]
    BundleNoNetwork,
    #[error("{path} is a symlink: give the file it points to")]
    BundleSymlink { path: PathBuf },
    #[error("cannot write {path}")]
    WriteBundle {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid doctor option {0:?}: expected parent=IF or dhcp_timeout=DURATION (0s to 60s)")]
    DoctorOption(String),
    #[error("invalid --format {:?}", echo(format))]
    Format {
        format: String,
        #[source]
        source: gotmpl::TemplateError,
    },
    #[error("cannot render --format")]
    FormatRender {
        #[source]
        source: gotmpl::TemplateError,
    },
    #[error("--format table needs a template here: table {{{{.Name}}}}, say")]
    FormatEmptyTable,
    #[error("--format printed more than {limit} bytes: refused")]
    FormatTooLong { limit: usize },
    #[error("invalid filter {:?}: {reason}", echo(filter))]
    Filter { filter: String, reason: String },
    #[error("invalid {flag} {:?}: {reason}", echo(value))]
    Flag {
        flag: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("cannot write {path}")]
    Generate {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("--forget-host {host} is this host: its containers are gc's to judge")]
    ForgetSelf { host: String },
    /// Store policy and this host's identity (the core's own errors come as [`Error::Macvlan`]).
    #[error(transparent)]
    Stores(Box<oci_macvlan_stores::Error>),
    /// `gc --forget-host` of a host that is alive (its claim says so).
    #[error(transparent)]
    HostAlive(Box<oci_macvlan_ipam::Error>),
    #[error(
        "{}: looked in {netns}, whose links are {links}",
        macvlan::one_line(missing)
    )]
    ParentMissing {
        missing: Box<macvlan::Error>,
        netns: String,
        links: String,
    },
    #[error("cannot read the answer from stdin")]
    Prompt(#[source] io::Error),
    #[error(transparent)]
    Macvlan(#[from] macvlan::Error),
    /// A DHCP lease's renewer could not start or run.
    #[error("DHCP renewer: {0}")]
    Keeper(#[source] io::Error),
    /// A renewal act failed (the keeper's journal line; it is tried again).
    #[error("{0}")]
    Renewal(String),
}

/// The store policy's errors: the core's as [`Error::Macvlan`] (so that a command matches them
/// as it always has), the policy's own as [`Error::Stores`].
impl From<oci_macvlan_stores::Error> for Error {
    fn from(err: oci_macvlan_stores::Error) -> Self {
        match err {
            oci_macvlan_stores::Error::Core(err) => Self::Macvlan(err),
            err => Self::Stores(Box::new(err)),
        }
    }
}

/// The exit code of a kind of failure.
fn kind_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Invalid => exit::INVALID,
        ErrorKind::NotFound => exit::NOT_FOUND,
        ErrorKind::Conflict => exit::CONFLICT,
        ErrorKind::System => exit::SYSTEM,
    }
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Macvlan(err) => kind_code(err.kind()),
            Self::Stores(err) => kind_code(err.kind()),
            Self::Inconsistent(_) => exit::INCONSISTENT,
            Self::HostAlive(_) => exit::CONFLICT,
            Self::ReadConfig { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                exit::NOT_FOUND
            }
            Self::EmptyState
            | Self::StateTooLarge
            | Self::ParseState(_)
            | Self::NoBundle { .. }
            | Self::ConfigNotFile { .. }
            | Self::ConfigTooLarge { .. }
            | Self::ParseConfig { .. }
            | Self::NetnsPath { .. }
            | Self::NoPid { .. }
            | Self::HostNetns { .. }
            | Self::UnknownStatus { .. }
            | Self::UnsupportedStage(_)
            | Self::Annotation { .. }
            | Self::InvalidBinary { .. }
            | Self::DoctorOption(_)
            | Self::BundleNotObject { .. }
            | Self::BundleNoNetwork
            | Self::BundleSymlink { .. }
            | Self::ForgetSelf { .. }
            | Self::Format { .. }
            | Self::FormatRender { .. }
            | Self::FormatTooLong { .. }
            | Self::FormatEmptyTable
            | Self::Filter { .. }
            | Self::Flag { .. } => exit::INVALID,
            Self::ParentMissing { .. } => exit::NOT_FOUND,
            Self::ReadStdin(_)
            | Self::ReadConfig { .. }
            | Self::Runtime(_)
            | Self::HostNetlink(_)
            | Self::Stdout(_)
            | Self::CurrentExe(_)
            | Self::WriteBundle { .. }
            | Self::AbsolutePath { .. }
            | Self::DoctorFailed(_)
            | Self::Prompt(_)
            | Self::Unreached { .. }
            | Self::RmUnreached { .. }
            | Self::HostAccessUnrepaired(_)
            | Self::Generate { .. }
            | Self::Keeper(_)
            | Self::Renewal(_) => exit::SYSTEM,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub use oci_macvlan_macvlan::one_line;

/// Longest part of an input (an annotation's key or value, a stage, a status) that an error
/// repeats: enough to recognise it, never a whole 20 MiB value.
pub const MAX_ECHO: usize = 80;
/// Longest error line the binary prints and journals: the backstop for an input that reaches
/// an error deeper down (an interface name checked by the macvlan crate, say) whole.
pub const MAX_LINE: usize = 1024;

/// `text` cut to at most `max` bytes (at a character boundary), with `…` when it was cut.
pub use oci_macvlan_macvlan::cut;

/// An input as an error repeats it: cut to [`MAX_ECHO`].
pub fn echo(text: &str) -> Cow<'_, str> {
    cut(text, MAX_ECHO)
}

/// The line the binary prints on stderr after `oci-macvlan: error: ` and appends to the
/// journal: the whole chain ([`one_line`]), cut to [`MAX_LINE`].
pub fn line(err: &Error) -> String {
    let line = one_line(err);
    match cut(&line, MAX_LINE) {
        Cow::Borrowed(_) => line,
        Cow::Owned(cut) => cut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_cut_at_a_character_boundary() {
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(cut("abcd", 3), "abc…");
        // 'é' is two bytes: a cut inside it moves back before it.
        assert_eq!(cut("aébc", 2), "a…");
        assert_eq!(cut("", 0), "");
        assert_eq!(
            echo(&"x".repeat(MAX_ECHO + 1)).len(),
            MAX_ECHO + '…'.len_utf8()
        );
    }

    /// An input that reaches an error whole (here an interface name, which the macvlan crate
    /// checks and repeats) still makes a line a person can read.
    #[test]
    fn the_error_line_is_capped() {
        let huge = "x".repeat(20 << 20);
        let err = Error::Macvlan(macvlan::Error::InvalidIfname {
            name: huge.clone(),
            network: "lan50".into(),
            reason: "too long",
        });
        let printed = line(&err);
        assert_eq!(printed.len(), MAX_LINE + '…'.len_utf8());
        assert!(printed.starts_with("invalid interface name \"xxx"));
        assert!(printed.ends_with('…'));

        // A stage or status is cut where the error repeats it.
        let stage = line(&Error::UnsupportedStage(huge));
        assert!(stage.len() < 200, "{stage}");
        assert!(stage.contains("xxx…\" is not supported"), "{stage}");
    }
}
