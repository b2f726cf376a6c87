//! Parents of a network's links, for every driver (macvlan, ipvlan): a plain link (`eth0`), an
//! 802.1q sub-interface (`eth0.50`), or the dummy link of a network without a parent.
//!
//! Names are checked here (by the kernel's rules, `oci_macvlan_netlink_core::ifname_problem`),
//! before the kernel is asked, so that errors name the bad input.
//! [`ensure`] and [`remove`] find, create and delete the parent links oci-macvlan owns.

#![warn(missing_docs)]

mod ensure;

pub use ensure::{Ensured, LinkError, OWNER_ALIAS, ensure, remove};

use std::fmt;

use oci_macvlan_netlink_core::ifname_problem;

/// Why a parent's name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The name is not one the kernel takes as a link's.
    #[error("invalid parent interface name {name:?}: {reason}")]
    BadName {
        /// The name given.
        name: String,
        /// Why the kernel would not take it.
        reason: &'static str,
    },
    /// Loopback (`lo`, or a VLAN on it) is no parent.
    #[error("loopback interface is not a valid parent link")]
    Loopback,
    /// The VLAN id after the dot is not 1–4094.
    #[error("vlan id must be between 1-4094, received: {0}")]
    VlanIdOutOfRange(String),
}

/// The result of parsing a parent's name.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A parsed parent name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parent {
    /// A link used as it is.
    Plain(String),
    /// `base.vid`: an 802.1q sub-interface of `base`.
    Vlan {
        /// The whole name, `base.vid`.
        name: String,
        /// The link the VLAN sits on.
        base: String,
        /// The VLAN id, 1–4094.
        vid: u16,
    },
    /// The dummy link of a network defined without a parent ([`Parent::dummy_for`]).
    Dummy(String),
}

impl Parent {
    /// Parses `eth0` or `eth0.50`. A suffix after the last dot that is all digits is a VLAN id;
    /// any other dotted name (`br.lan`) is a plain link name.
    pub fn parse(name: &str) -> Result<Self> {
        check_ifname(name)?;
        let Some((base, suffix)) = name.rsplit_once('.') else {
            return Ok(Self::Plain(name.to_owned()));
        };
        if suffix.is_empty() || !suffix.bytes().all(|b| b.is_ascii_digit()) || base.is_empty() {
            return Ok(Self::Plain(name.to_owned()));
        }
        if base == "lo" {
            return Err(Error::Loopback);
        }
        let vid = suffix
            .parse::<u16>()
            .ok()
            .filter(|vid| (1..=4094).contains(vid))
            .ok_or_else(|| Error::VlanIdOutOfRange(suffix.to_owned()))?;
        Ok(Self::Vlan {
            name: name.to_owned(),
            base: base.to_owned(),
            vid,
        })
    }

    /// The dummy parent of the network with id `network_id`: `dm-` and the id's first 12
    /// characters, as Docker names it (15 bytes, the kernel's limit).
    pub fn dummy_for(network_id: &str) -> Self {
        let short: String = network_id.chars().take(12).collect();
        Self::Dummy(format!("dm-{short}"))
    }

    /// The parent link's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Plain(name) | Self::Vlan { name, .. } | Self::Dummy(name) => name,
        }
    }

    /// What a link must be to serve as this parent, for error messages.
    pub fn describe(&self) -> String {
        match self {
            Self::Plain(name) => format!("link {name}"),
            Self::Vlan { base, vid, .. } => format!("VLAN {vid} on {base}"),
            Self::Dummy(_) => format!("a dummy link {OWNER_ALIAS}"),
        }
    }
}

impl fmt::Display for Parent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn check_ifname(name: &str) -> Result<()> {
    if let Some(reason) = ifname_problem(name) {
        return Err(Error::BadName {
            name: name.to_owned(),
            reason,
        });
    }
    if name == "lo" {
        return Err(Error::Loopback);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_vlan_parents() {
        assert_eq!(Parent::parse("eth0"), Ok(Parent::Plain("eth0".into())));
        assert_eq!(Parent::parse("br.lan"), Ok(Parent::Plain("br.lan".into())));
        assert_eq!(
            Parent::parse("eth0.50"),
            Ok(Parent::Vlan {
                name: "eth0.50".into(),
                base: "eth0".into(),
                vid: 50
            })
        );
        assert_eq!(
            Parent::parse("enp3s0f1.4094"),
            Ok(Parent::Vlan {
                name: "enp3s0f1.4094".into(),
                base: "enp3s0f1".into(),
                vid: 4094
            })
        );
    }

    #[test]
    fn rejects_bad_parents() {
        let report: Vec<String> = [
            "",
            "lo",
            "lo.5",
            "eth0.0",
            "eth0.4095",
            "eth0.99999999",
            "averyveryverylongname",
            "a/b",
            "a b",
            "..",
            ".",
            "a:b",
            "eth%d",
            "a%sb",
            "all",
            "default",
            "a\tb",
            "a\nb",
            "a\u{7f}b",
            "a\0b",
            "eth\u{e9}",
            "sixteen-bytes-xx",
        ]
        .iter()
        .map(|name| format!("{name:?} -> {}", Parent::parse(name).unwrap_err()))
        .collect();
        insta::assert_snapshot!(report.join("\n"));
    }
}
