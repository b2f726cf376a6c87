//! A container's id, checked once where it enters (the OCI state, a command line, a record
//! read back): it becomes file names (records, locks), so runc's rule holds for it.

use std::{borrow::Cow, fmt, ops::Deref};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A container id that passed [`ContainerId::parse`]: runc's rule (`[A-Za-z0-9_+.-]+`), at
/// most 1024 characters, never `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContainerId(String);

impl ContainerId {
    /// Checks `id`.
    pub fn parse(id: &str) -> Result<Self> {
        let reason = if id.is_empty() {
            Some("it is empty")
        } else if id.len() > 1024 {
            Some("it is longer than 1024 characters")
        } else if id == "." || id == ".." {
            Some("'.' and '..' are not container ids")
        } else if !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+.-".contains(c))
        {
            Some("only letters, digits, '_', '+', '.' and '-' are allowed")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(Error::InvalidContainerId {
                id: id.to_owned(),
                reason,
            }),
            None => Ok(Self(id.to_owned())),
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for ContainerId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ContainerId {
    type Error = Error;

    fn try_from(id: String) -> Result<Self> {
        Self::parse(&id)
    }
}

impl From<ContainerId> for String {
    fn from(id: ContainerId) -> Self {
        id.0
    }
}

impl PartialEq<str> for ContainerId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for ContainerId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for ContainerId {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

/// Checks a container id (see [`ContainerId::parse`]).
pub fn check_container_id(id: &str) -> Result<()> {
    ContainerId::parse(id).map(drop)
}

/// What names a container to [`crate::Records`]: a [`ContainerId`] as it is, or text, checked
/// on the way (an id read from a lease or a file name, by `gc` and `verify`).
pub trait IdRef {
    /// The id, checked.
    fn checked(&self) -> Result<Cow<'_, ContainerId>>;
}

impl IdRef for ContainerId {
    fn checked(&self) -> Result<Cow<'_, ContainerId>> {
        Ok(Cow::Borrowed(self))
    }
}

impl IdRef for str {
    fn checked(&self) -> Result<Cow<'_, ContainerId>> {
        ContainerId::parse(self).map(Cow::Owned)
    }
}

impl IdRef for String {
    fn checked(&self) -> Result<Cow<'_, ContainerId>> {
        self.as_str().checked()
    }
}
