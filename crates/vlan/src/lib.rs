//! Parents of macvlan networks: a plain link (`eth0`) or an 802.1q sub-interface (`eth0.50`).
//!
//! Names are checked here, before the kernel is asked, so that errors name the bad input.
//! [`ensure`] and [`remove`] find, create and delete the parent links oci-macvlan owns.

mod ensure;

pub use ensure::{Ensured, LinkError, OWNER_ALIAS, ensure, remove};

use std::fmt;

/// `IFNAMSIZ` minus the terminating NUL.
pub const MAX_IFNAME_LEN: usize = 15;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("invalid parent interface name {name:?}: {reason}")]
    BadName { name: String, reason: &'static str },
    #[error("loopback interface is not a valid macvlan parent link")]
    Loopback,
    #[error("vlan id must be between 1-4094, received: {0}")]
    VlanIdOutOfRange(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A parsed parent name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parent {
    /// A link used as it is.
    Plain(String),
    /// `base.vid`: an 802.1q sub-interface of `base`.
    Vlan {
        name: String,
        base: String,
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

/// Why `name` cannot be a Linux interface name, if it cannot. Checked before the kernel is asked,
/// for parents and container interfaces alike: besides what the kernel refuses itself, a name the
/// kernel would reinterpret (`eth%d` becomes `eth0`) or that names its per-protocol settings
/// (`all`, `default`) rather than a link, and anything but printable ASCII.
pub fn ifname_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_IFNAME_LEN {
        Some("it is longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("'.' and '..' are not interface names")
    } else if name == "all" || name == "default" {
        Some("'all' and 'default' name the kernel's settings for every interface")
    } else if name.contains('%') {
        Some("'%' makes the kernel pick a name of its own (eth%d becomes eth0)")
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        Some("it contains '/', ':' or whitespace")
    } else if !name.bytes().all(|b| b.is_ascii_graphic()) {
        Some("only printable ASCII is allowed: no control or non-ASCII characters")
    } else {
        None
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
    fn ifname_problem_accepts_what_links_are_called() {
        for name in [
            "eth0",
            "eth0.50",
            "enp3s0f1",
            "wlp2s0",
            "br-lan_1",
            "fifteen-bytes-x",
            "alle",
            "defaults",
            "x.all",
        ] {
            assert_eq!(ifname_problem(name), None, "{name}");
        }
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
