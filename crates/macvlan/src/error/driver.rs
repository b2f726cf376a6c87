//! What the core knows of a driver's failures, and the error of a definition's flag that
//! drivers share with the core: enough for the drivers to need nothing else of `error.rs`.

use super::{DefinitionError, Error, ErrorKind};

/// A driver's own failure as the core carries it, without naming the driver: its text and how
/// a caller treats it.
pub trait DriverError: std::error::Error + Send + Sync + 'static {
    /// How a caller treats it.
    fn kind(&self) -> ErrorKind;
}

/// `FLAG VALUE` refused, saying why: the error of a flag or option of a definition.
pub(crate) fn invalid(flag: &'static str, value: &str, reason: &str) -> Error {
    DefinitionError::InvalidFlag {
        flag,
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
    .into()
}
