//! A container's name, as a front door may know it beside its id: the pod a CNI runtime names
//! (`K8S_POD_NAMESPACE`/`K8S_POD_NAME`, as `namespace/name`). It is shown (`network inspect`)
//! and never becomes a file name; it is checked where it enters and again when a record is read
//! back, so nothing a less-trusted party wrote reaches an output unbounded.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The longest part (a namespace or a name): Kubernetes' own limit for a name (a DNS
/// subdomain, 253 characters) bounds both.
pub const MAX_NAME_PART: usize = 253;

/// A name that passed [`ContainerName::parse`]: one or two parts separated by `/` (a pod's
/// namespace and name), each 1 to [`MAX_NAME_PART`] of `[A-Za-z0-9._-]`, never `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContainerName(String);

impl ContainerName {
    /// Checks `name` (`name` or `namespace/name`).
    pub fn parse(name: &str) -> Result<Self> {
        let mut parts = name.split('/');
        let reason = match (parts.next(), parts.next(), parts.next()) {
            (_, _, Some(_)) => Some("it has more than one '/'"),
            (Some(first), second, None) => [Some(first), second]
                .into_iter()
                .flatten()
                .find_map(part_problem),
            (None, _, _) => Some("it is empty"),
        };
        match reason {
            Some(reason) => Err(Error::InvalidContainerName {
                name: crate::cut(name, 64).into_owned(),
                reason,
            }),
            None => Ok(Self(name.to_owned())),
        }
    }

    /// The name of a pod `name` in `namespace` (`namespace/name`), or `name` alone when no
    /// namespace is given: what CNI runtimes pass as `K8S_POD_NAMESPACE` and `K8S_POD_NAME`.
    pub fn pod(namespace: Option<&str>, name: &str) -> Result<Self> {
        let whole = match namespace {
            Some(namespace) => format!("{namespace}/{name}"),
            None => name.to_owned(),
        };
        if namespace.is_some_and(|ns| ns.contains('/')) || name.contains('/') {
            return Err(Error::InvalidContainerName {
                name: crate::cut(&whole, 64).into_owned(),
                reason: "a pod's namespace and name have no '/'",
            });
        }
        Self::parse(&whole)
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn part_problem(part: &str) -> Option<&'static str> {
    if part.is_empty() {
        Some("a part of it is empty")
    } else if part.len() > MAX_NAME_PART {
        Some("a part of it is longer than 253 characters")
    } else if part == "." || part == ".." {
        Some("'.' and '..' are not names")
    } else if !part
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        Some("only letters, digits, '.', '_' and '-' are allowed (and one '/')")
    } else {
        None
    }
}

impl fmt::Display for ContainerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ContainerName {
    type Error = Error;

    fn try_from(name: String) -> Result<Self> {
        Self::parse(&name)
    }
}

impl From<ContainerName> for String {
    fn from(name: ContainerName) -> Self {
        name.0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// What runtimes send is kept as `namespace/name`; every hostile or malformed value is
    /// refused naming why, its echo cut, and a record holding one does not load.
    #[test]
    fn pod_names_are_kept_and_hostile_ones_refused() {
        assert_eq!(
            ContainerName::pod(Some("default"), "web-0")
                .unwrap()
                .as_str(),
            "default/web-0"
        );
        assert_eq!(
            ContainerName::pod(None, "web_0.a").unwrap().as_str(),
            "web_0.a"
        );
        let long = "a".repeat(MAX_NAME_PART + 1);
        for (namespace, name, why) in [
            (Some("a/b"), "web", "no '/'"),
            (Some("ns"), "a/b", "no '/'"),
            (None, "a/b", "no '/'"),
            (Some(""), "web", "empty"),
            (None, "", "empty"),
            (None, "..", "'.' and '..'"),
            (None, "web\n0", "only letters"),
            (None, "w\u{1b}[31m", "only letters"),
            (Some("ns"), long.as_str(), "longer than 253"),
        ] {
            let err = ContainerName::pod(namespace, name).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(why), "{namespace:?} {name:?}: {msg}");
            assert!(msg.len() < 200, "{msg}");
            assert_eq!(err.kind(), crate::ErrorKind::Invalid);
        }
        assert!(
            ContainerName::parse("a/b/c")
                .unwrap_err()
                .to_string()
                .contains("more than one '/'")
        );
        assert!(serde_json::from_str::<ContainerName>("\"ns/a b\"").is_err());
        let name: ContainerName = serde_json::from_str("\"ns/web-0\"").unwrap();
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"ns/web-0\"");
    }
}
