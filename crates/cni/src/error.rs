//! What the protocol refuses, each with the spec's code, and the error a plugin prints.

use std::io;

use serde::Serialize;

/// The spec's well-known error codes (0-99), and this plugin's own (100 and up).
pub mod code {
    /// The config's `cniVersion` is not one the plugin speaks.
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    /// A field of the config is not supported.
    pub const UNSUPPORTED_FIELD: u32 = 2;
    /// The container (its namespace) is unknown or gone: nothing to clean up.
    pub const UNKNOWN_CONTAINER: u32 = 3;
    /// A `CNI_*` environment variable is missing or invalid.
    pub const INVALID_ENVIRONMENT: u32 = 4;
    /// Reading stdin (or another I/O) failed.
    pub const IO_FAILURE: u32 = 5;
    /// Stdin is not the JSON expected.
    pub const DECODE: u32 = 6;
    /// The network config fails validation.
    pub const INVALID_CONFIG: u32 = 7;
    /// A transient condition: the runtime should retry later.
    pub const TRY_AGAIN_LATER: u32 = 11;
    /// STATUS: the plugin cannot serve an ADD now.
    pub const NOT_AVAILABLE: u32 = 50;
    /// STATUS: the plugin cannot serve an ADD now, and existing containers may have lost
    /// connectivity.
    pub const LIMITED_CONNECTIVITY: u32 = 51;
    /// The request clashes with what exists (an address or an interface taken).
    pub const CONFLICT: u32 = 100;
    /// The host failed (kernel, files, store).
    pub const FAILED: u32 = 101;
    /// CHECK found the attachment differs from what ADD made.
    pub const CHECK_FAILED: u32 = 102;
}

/// Why the protocol refuses an invocation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config's `cniVersion` is not one of [`crate::SUPPORTED`].
    #[error("incompatible CNI version {version:?}: this plugin speaks {}", crate::SUPPORTED.join(", "))]
    IncompatibleVersion {
        /// The version asked for (cut to 64 bytes).
        version: String,
    },
    /// A command that the config's version does not have (CHECK before 0.4.0, GC and STATUS
    /// before 1.1.0).
    #[error("CNI version {version} has no {command}")]
    CommandNotInVersion {
        /// The command.
        command: &'static str,
        /// The config's version.
        version: &'static str,
    },
    /// An environment variable the command needs is not set.
    #[error("{var} is not set")]
    MissingEnv {
        /// The variable.
        var: &'static str,
    },
    /// An environment variable has a value the plugin refuses.
    #[error("invalid {var}={value:?}: {reason}")]
    InvalidEnv {
        /// The variable.
        var: &'static str,
        /// Its value (cut to 64 bytes).
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// Stdin could not be read.
    #[error("cannot read the network config from stdin")]
    Stdin(#[source] io::Error),
    /// Stdin is larger than [`crate::MAX_CONFIG`].
    #[error("network config on stdin is larger than {} KiB", crate::MAX_CONFIG >> 10)]
    ConfigTooLarge,
    /// Stdin is not JSON of the config's shape.
    #[error("cannot decode the network config on stdin")]
    Decode(#[source] serde_json::Error),
    /// A field of the config is missing or invalid.
    #[error("invalid network config field {field}: {reason}")]
    InvalidConfig {
        /// The field (`network`, `runtimeConfig.ips`, …).
        field: &'static str,
        /// Why it is refused.
        reason: String,
    },
}

/// What the protocol's functions return.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The spec's code for this error.
    pub fn code(&self) -> u32 {
        match self {
            Self::IncompatibleVersion { .. } | Self::CommandNotInVersion { .. } => {
                code::INCOMPATIBLE_VERSION
            }
            Self::MissingEnv { .. } | Self::InvalidEnv { .. } => code::INVALID_ENVIRONMENT,
            Self::Stdin(_) => code::IO_FAILURE,
            Self::Decode(_) => code::DECODE,
            Self::ConfigTooLarge | Self::InvalidConfig { .. } => code::INVALID_CONFIG,
        }
    }
}

/// The longest piece of hostile input an error message repeats.
const ECHO: usize = 64;

/// `text` cut to [`ECHO`] bytes (at a character boundary), with `…` when cut.
pub(crate) fn echo(text: &str) -> String {
    if text.len() <= ECHO {
        return text.to_owned();
    }
    let mut end = ECHO;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The error a plugin prints on stdout (and exits non-zero): `{"cniVersion", "code", "msg",
/// "details"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorReply {
    /// The config's version, or the latest when the config was not read.
    pub cni_version: String,
    /// The spec's code, or this plugin's (100 and up).
    pub code: u32,
    /// One line: what failed.
    pub msg: String,
    /// The causes, outermost first, joined by `: `; left out when there are none.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl ErrorReply {
    /// The reply for `err` with `code`: its own message as `msg`, its sources as `details`.
    pub fn new(version: &str, code: u32, err: &(dyn std::error::Error + 'static)) -> Self {
        let mut details = Vec::new();
        let mut source = err.source();
        while let Some(cause) = source {
            details.push(cause.to_string());
            source = cause.source();
        }
        Self {
            cni_version: version.to_owned(),
            code,
            msg: err.to_string(),
            details: details.join(": "),
        }
    }

    /// The reply for one of the protocol's own errors.
    pub fn of(version: &str, err: &Error) -> Self {
        Self::new(version, err.code(), err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_has_the_spec_keys_and_the_causes_as_details() {
        let source = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        let reply = ErrorReply::of("1.0.0", &Error::Decode(source));
        insta::assert_json_snapshot!(reply, @r#"
        {
          "cniVersion": "1.0.0",
          "code": 6,
          "msg": "cannot decode the network config on stdin",
          "details": "EOF while parsing an object at line 1 column 1"
        }
        "#);
        let reply = ErrorReply::of("1.1.0", &Error::MissingEnv { var: "CNI_IFNAME" });
        let json = serde_json::to_value(&reply).unwrap();
        assert_eq!(json["code"], 4);
        assert!(json.get("details").is_none());
    }

    #[test]
    fn an_echo_is_cut_at_a_character_boundary() {
        assert_eq!(echo("eth0"), "eth0");
        let long = "é".repeat(100);
        let cut = echo(&long);
        assert!(cut.ends_with('…'));
        assert!(cut.len() <= ECHO + '…'.len_utf8());
    }
}
