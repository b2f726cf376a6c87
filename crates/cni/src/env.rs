//! The `CNI_*` environment variables a runtime runs a plugin with, read and checked once.

use std::{ffi::OsString, path::PathBuf};

use oci_macvlan_macvlan::{ContainerId, ifname_problem};

use crate::{Args, Error, Result, error::echo};

/// The longest path read from the environment (`PATH_MAX`).
const MAX_PATH: usize = 4096;
/// The most directories `CNI_PATH` may list.
const MAX_PATH_DIRS: usize = 64;

/// `CNI_COMMAND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Attach the container to the network.
    Add,
    /// Detach it; succeeds when there is nothing left to detach.
    Del,
    /// Check that an attachment is as ADD made it.
    Check,
    /// List the versions the plugin speaks.
    Version,
    /// Release every attachment not in the config's valid list (1.1.0).
    Gc,
    /// Whether the plugin could serve an ADD now (1.1.0).
    Status,
}

impl Command {
    /// The command as CNI names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "ADD",
            Self::Del => "DEL",
            Self::Check => "CHECK",
            Self::Version => "VERSION",
            Self::Gc => "GC",
            Self::Status => "STATUS",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [
            Self::Add,
            Self::Del,
            Self::Check,
            Self::Version,
            Self::Gc,
            Self::Status,
        ]
        .into_iter()
        .find(|c| c.as_str() == text)
    }

    /// Whether the command is about one container's interface (ADD, DEL, CHECK).
    fn names_a_container(self) -> bool {
        matches!(self, Self::Add | Self::Del | Self::Check)
    }
}

/// The environment of one invocation, checked: what a command needs is there and valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    /// `CNI_COMMAND`.
    pub command: Command,
    /// `CNI_CONTAINERID`, under the core's rule (set for ADD, DEL and CHECK).
    pub container_id: Option<ContainerId>,
    /// `CNI_NETNS`: an absolute path (set for ADD and CHECK; DEL may lack it when the
    /// namespace is gone).
    pub netns: Option<PathBuf>,
    /// `CNI_IFNAME`, a name the kernel takes as it is (set for ADD, DEL and CHECK).
    pub ifname: Option<String>,
    /// `CNI_ARGS`.
    pub args: Args,
    /// `CNI_PATH`: where the runtime's plugins are (this plugin delegates to none).
    pub path: Vec<PathBuf>,
}

impl Env {
    /// Reads and checks the environment through `get` (`std::env::var_os` in the plugin).
    pub fn read(get: impl Fn(&'static str) -> Option<OsString>) -> Result<Self> {
        let text = |var: &'static str| -> Result<Option<String>> {
            match get(var) {
                None => Ok(None),
                Some(value) => value
                    .into_string()
                    .map(Some)
                    .map_err(|value| Error::InvalidEnv {
                        var,
                        value: echo(&value.to_string_lossy()),
                        reason: "not UTF-8".into(),
                    }),
            }
        };
        let command = text("CNI_COMMAND")?.ok_or(Error::MissingEnv { var: "CNI_COMMAND" })?;
        let command = Command::parse(&command).ok_or_else(|| Error::InvalidEnv {
            var: "CNI_COMMAND",
            value: echo(&command),
            reason: "not one of ADD, DEL, CHECK, VERSION, GC, STATUS".into(),
        })?;
        let needed = command.names_a_container();
        let required = |var: &'static str| -> Result<Option<String>> {
            match text(var)?.filter(|v| !v.is_empty()) {
                None if needed => Err(Error::MissingEnv { var }),
                value => Ok(value),
            }
        };
        let container_id = required("CNI_CONTAINERID")?
            .map(|id| {
                ContainerId::parse(&id).map_err(|err| Error::InvalidEnv {
                    var: "CNI_CONTAINERID",
                    value: echo(&id),
                    reason: id_reason(&err),
                })
            })
            .transpose()?;
        let ifname = required("CNI_IFNAME")?
            .map(|name| match ifname_problem(&name) {
                Some(reason) => Err(Error::InvalidEnv {
                    var: "CNI_IFNAME",
                    value: echo(&name),
                    reason: reason.into(),
                }),
                None => Ok(name),
            })
            .transpose()?;
        // Only ADD, DEL and CHECK use a namespace: libcni asks for VERSION (podman does it to
        // validate every conflist it loads) with `CNI_NETNS=dummy`, as skel once required.
        let netns = match text("CNI_NETNS")?.filter(|v| !v.is_empty()) {
            None if matches!(command, Command::Add | Command::Check) => {
                return Err(Error::MissingEnv { var: "CNI_NETNS" });
            }
            Some(_) if !needed => None,
            None => None,
            Some(path) => Some(netns_path(path)?),
        };
        let args = Args::parse(&text("CNI_ARGS")?.unwrap_or_default())?;
        let path = match text("CNI_PATH")? {
            None => Vec::new(),
            Some(list) => {
                let invalid = |reason: String| Error::InvalidEnv {
                    var: "CNI_PATH",
                    value: echo(&list),
                    reason,
                };
                if list.len() > MAX_PATH * 4 {
                    return Err(invalid(format!("longer than {} bytes", MAX_PATH * 4)));
                }
                let dirs: Vec<PathBuf> = list
                    .split(':')
                    .filter(|d| !d.is_empty())
                    .map(PathBuf::from)
                    .collect();
                if dirs.len() > MAX_PATH_DIRS {
                    return Err(invalid(format!("more than {MAX_PATH_DIRS} directories")));
                }
                dirs
            }
        };
        Ok(Self {
            command,
            container_id,
            netns,
            ifname,
            args,
            path,
        })
    }

    /// `CNI_CONTAINERID` (which [`Env::read`] made sure of for ADD, DEL and CHECK).
    pub fn container_id(&self) -> Result<&ContainerId> {
        self.container_id.as_ref().ok_or(Error::MissingEnv {
            var: "CNI_CONTAINERID",
        })
    }

    /// `CNI_IFNAME` (which [`Env::read`] made sure of for ADD, DEL and CHECK).
    pub fn ifname(&self) -> Result<&str> {
        self.ifname
            .as_deref()
            .ok_or(Error::MissingEnv { var: "CNI_IFNAME" })
    }

    /// `CNI_NETNS` (which [`Env::read`] made sure of for ADD and CHECK).
    pub fn netns(&self) -> Result<&std::path::Path> {
        self.netns
            .as_deref()
            .ok_or(Error::MissingEnv { var: "CNI_NETNS" })
    }
}

/// The reason the core gives for refusing an id, without the id it repeats.
fn id_reason(err: &oci_macvlan_macvlan::Error) -> String {
    match err {
        oci_macvlan_macvlan::Error::InvalidContainerId { reason, .. } => (*reason).to_owned(),
        other => other.to_string(),
    }
}

fn netns_path(path: String) -> Result<PathBuf> {
    let reason = if path.len() > MAX_PATH {
        Some("longer than 4096 bytes")
    } else if !path.starts_with('/') {
        Some("not an absolute path")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidEnv {
            var: "CNI_NETNS",
            value: echo(&path),
            reason: reason.into(),
        }),
        None => Ok(PathBuf::from(path)),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn read(vars: &[(&'static str, &str)]) -> Result<Env> {
        let vars: HashMap<&str, OsString> =
            vars.iter().map(|&(k, v)| (k, OsString::from(v))).collect();
        Env::read(|name| vars.get(name).cloned())
    }

    const ADD: [(&str, &str); 5] = [
        ("CNI_COMMAND", "ADD"),
        ("CNI_CONTAINERID", "c0ffee"),
        ("CNI_NETNS", "/run/netns/c0ffee"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/opt/cni/bin:/usr/lib/cni"),
    ];

    fn with(overrides: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut vars: Vec<_> = ADD
            .iter()
            .filter(|(k, _)| !overrides.iter().any(|(o, _)| o == k))
            .copied()
            .collect();
        vars.extend(overrides.iter().filter(|(_, v)| !v.is_empty()).copied());
        vars
    }

    #[test]
    fn an_add_environment_is_read() {
        let env = read(&ADD).unwrap();
        assert_eq!(env.command, Command::Add);
        assert_eq!(env.container_id().unwrap().as_str(), "c0ffee");
        assert_eq!(
            env.netns().unwrap(),
            std::path::Path::new("/run/netns/c0ffee")
        );
        assert_eq!(env.ifname().unwrap(), "eth0");
        assert_eq!(env.path.len(), 2);
    }

    #[test]
    fn del_may_lack_the_namespace_and_version_needs_nothing() {
        let env = read(&with(&[("CNI_COMMAND", "DEL"), ("CNI_NETNS", "")])).unwrap();
        assert_eq!(env.netns, None);
        assert!(read(&[("CNI_COMMAND", "VERSION")]).is_ok());
    }

    /// libcni's `GetVersionInfo` (what podman runs on every conflist it loads) passes
    /// `CNI_NETNS`, `CNI_IFNAME` and `CNI_PATH` set to `dummy`; a command that names no
    /// container ignores the namespace.
    #[test]
    fn version_ignores_libcnis_dummy_namespace() {
        for command in ["VERSION", "STATUS", "GC"] {
            let env = read(&[
                ("CNI_COMMAND", command),
                ("CNI_NETNS", "dummy"),
                ("CNI_IFNAME", "dummy"),
                ("CNI_PATH", "dummy"),
            ])
            .unwrap();
            assert_eq!(env.netns, None, "{command}");
        }
    }

    /// Every missing or hostile variable is refused with code 4, naming the variable.
    #[test]
    fn a_missing_or_hostile_variable_is_refused_naming_it() {
        let long_id = "a".repeat(1025);
        let long_id: &'static str = Box::leak(long_id.into_boxed_str());
        for (overrides, var) in [
            (vec![("CNI_COMMAND", "")], "CNI_COMMAND"),
            (vec![("CNI_COMMAND", "add")], "CNI_COMMAND"),
            (vec![("CNI_CONTAINERID", "")], "CNI_CONTAINERID"),
            (vec![("CNI_CONTAINERID", "../etc")], "CNI_CONTAINERID"),
            (vec![("CNI_CONTAINERID", "..")], "CNI_CONTAINERID"),
            (vec![("CNI_CONTAINERID", long_id)], "CNI_CONTAINERID"),
            (vec![("CNI_IFNAME", "")], "CNI_IFNAME"),
            (vec![("CNI_IFNAME", "eth%d")], "CNI_IFNAME"),
            (vec![("CNI_IFNAME", "a-very-long-name0")], "CNI_IFNAME"),
            (vec![("CNI_IFNAME", "a/b")], "CNI_IFNAME"),
            (vec![("CNI_IFNAME", "..")], "CNI_IFNAME"),
            (vec![("CNI_NETNS", "")], "CNI_NETNS"),
            (vec![("CNI_NETNS", "run/netns/x")], "CNI_NETNS"),
            (vec![("CNI_ARGS", "IP=no")], "CNI_ARGS"),
            (
                vec![("CNI_COMMAND", "CHECK"), ("CNI_NETNS", "")],
                "CNI_NETNS",
            ),
        ] {
            let err = read(&with(&overrides)).unwrap_err();
            assert_eq!(
                err.code(),
                crate::code::INVALID_ENVIRONMENT,
                "{overrides:?}"
            );
            assert!(err.to_string().contains(var), "{overrides:?}: {err}");
            assert!(err.to_string().len() < 300, "{err}");
        }
    }
}
