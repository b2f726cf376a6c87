//! The CNI versions this plugin speaks, and what each allows.

use serde_json::{Value, json};

/// The versions `VERSION` lists, oldest first: every one whose result has `interfaces`, `ips`
/// and `routes` (0.1.0 and 0.2.0 had another shape and are refused).
pub const SUPPORTED: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// A CNI version this plugin speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    /// 0.3.0.
    V0_3_0,
    /// 0.3.1.
    V0_3_1,
    /// 0.4.0: CHECK.
    V0_4_0,
    /// 1.0.0: `ips` lose `version`.
    V1_0_0,
    /// 1.1.0: GC and STATUS.
    V1_1_0,
}

impl Version {
    /// The newest: what `VERSION` and errors before a config was read say.
    pub const LATEST: Self = Self::V1_1_0;

    /// `text` as a version this plugin speaks, if it is one.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "0.3.0" => Self::V0_3_0,
            "0.3.1" => Self::V0_3_1,
            "0.4.0" => Self::V0_4_0,
            "1.0.0" => Self::V1_0_0,
            "1.1.0" => Self::V1_1_0,
            _ => return None,
        })
    }

    /// The version as CNI writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V0_3_0 => "0.3.0",
            Self::V0_3_1 => "0.3.1",
            Self::V0_4_0 => "0.4.0",
            Self::V1_0_0 => "1.0.0",
            Self::V1_1_0 => "1.1.0",
        }
    }

    /// Whether a config of this version may be CHECKed (0.4.0 and later).
    pub fn has_check(self) -> bool {
        self >= Self::V0_4_0
    }

    /// Whether GC and STATUS exist in this version (1.1.0).
    pub fn has_gc_and_status(self) -> bool {
        self >= Self::V1_1_0
    }

    /// Whether a result's `ips` carry `"version": "4"|"6"` (before 1.0.0).
    pub(crate) fn ips_have_version(self) -> bool {
        self < Self::V1_0_0
    }
}

/// What `VERSION` prints.
pub fn version_info() -> Value {
    json!({ "cniVersion": Version::LATEST.as_str(), "supportedVersions": SUPPORTED })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_version_parses_back_to_itself_and_nothing_else_does() {
        for text in SUPPORTED {
            assert_eq!(Version::parse(text).map(Version::as_str), Some(text));
        }
        for text in ["", "0.1.0", "0.2.0", "1.2.0", "1.0", "v1.0.0", "1.0.0 "] {
            assert_eq!(Version::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn check_comes_with_0_4_0_and_gc_with_1_1_0() {
        assert!(!Version::V0_3_1.has_check());
        assert!(Version::V0_4_0.has_check());
        assert!(!Version::V1_0_0.has_gc_and_status());
        assert!(Version::V1_1_0.has_gc_and_status());
    }

    #[test]
    fn version_lists_every_supported_version() {
        insta::assert_json_snapshot!(version_info(), @r#"
        {
          "cniVersion": "1.1.0",
          "supportedVersions": [
            "0.3.0",
            "0.3.1",
            "0.4.0",
            "1.0.0",
            "1.1.0"
          ]
        }
        "#);
    }
}
