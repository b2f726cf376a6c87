//! A network's parent: where its link comes from, and its name, parsed once.

use oci_macvlan_vlan::Parent;
use serde::{Deserialize, Serialize};

use crate::{DefinitionError, Result};

/// Where a network's parent link comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ParentLink {
    /// The host's link, used as it is: never created, changed or deleted.
    #[default]
    Existing,
    /// An 802.1q link oci-macvlan created (for this network or another): re-created by attach
    /// when missing (after a reboot), deleted by `network rm` of the last network on it.
    Owned,
    /// The network's own dummy link (`dm-` + 12 characters of the id): a network without
    /// `-o parent`, internal, created and deleted with the network.
    Dummy,
}

impl ParentLink {
    pub(super) fn is_existing(&self) -> bool {
        *self == Self::Existing
    }
}

/// A parent's name, parsed once: by `network create`, or when a definition file is read (a
/// hand-edited one that `network create` would have refused fails to load, with create's
/// words). Stored as the name, the shape every earlier definition has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ParentName(pub(super) Parent);

impl ParentName {
    /// `eth0`, `eth0.50` or a dummy's name, checked as `-o parent` is.
    pub fn parse(name: &str) -> Result<Self> {
        Parent::parse(name)
            .map(Self)
            .map_err(|err| DefinitionError::Parent(err).into())
    }

    /// The parent's name.
    pub fn as_str(&self) -> &str {
        self.0.name()
    }
}

impl TryFrom<String> for ParentName {
    type Error = oci_macvlan_vlan::Error;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        Parent::parse(&name).map(Self)
    }
}

impl From<ParentName> for String {
    fn from(parent: ParentName) -> Self {
        parent.as_str().to_owned()
    }
}

impl std::fmt::Display for ParentName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for ParentName {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ParentName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}
