//! The OCI inputs of a hook: the state on stdin and the bundle's `config.json`.

use std::{
    collections::HashMap,
    io::Read,
    path::{Path, PathBuf},
};

use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};
use serde::Deserialize;

use crate::error::{Error, Result};

const MAX_STATE: u64 = 1 << 20;

/// The OCI state, parsed leniently: runtimes add status values (`paused`, …) and fields that a
/// closed enum would reject, and podman's poststop has no pid.
#[derive(Debug, Deserialize)]
pub struct State {
    pub id: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub pid: Option<i64>,
    #[serde(default)]
    pub bundle: Option<PathBuf>,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
}

impl State {
    pub fn read(input: impl Read) -> Result<Self> {
        let mut bytes = Vec::new();
        input
            .take(MAX_STATE + 1)
            .read_to_end(&mut bytes)
            .map_err(Error::ReadStdin)?;
        if bytes.len() as u64 > MAX_STATE {
            return Err(Error::StateTooLarge);
        }
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            None => return Err(Error::EmptyState),
            // serde would take a JSON array for the struct's fields in order.
            Some(b'{') => {}
            Some(_) => {
                return Err(Error::ParseState(serde::de::Error::custom(
                    "expected a JSON object",
                )));
            }
        }
        serde_json::from_slice(&bytes).map_err(Error::ParseState)
    }

    /// The pid, if the runtime gave a real one (podman's poststop may say 0).
    pub fn pid(&self) -> Option<i64> {
        self.pid.filter(|pid| *pid > 0)
    }

    pub fn config_path(&self) -> Result<PathBuf> {
        match &self.bundle {
            Some(bundle) if !bundle.as_os_str().is_empty() => Ok(bundle.join("config.json")),
            _ => Err(Error::NoBundle {
                id: self.id.clone(),
            }),
        }
    }
}

/// What an attach needs from `config.json`.
#[derive(Debug)]
pub struct Config {
    pub annotations: HashMap<String, String>,
    /// `Some(path)` when the config names the network namespace; `None` when the runtime made a
    /// new one for the container (found through its pid); the host's namespace is an error.
    netns_path: Option<PathBuf>,
}

/// The parts of `config.json` a hook reads. A real bundle config is mostly mounts, process and
/// a seccomp profile of tens of kilobytes: serde skips those without building them, which a full
/// `oci_spec::runtime::Spec` would do (and validate) at every hook start.
#[derive(Debug, Deserialize)]
struct ConfigJson {
    #[serde(default)]
    annotations: Option<HashMap<String, String>>,
    #[serde(default)]
    linux: Option<LinuxJson>,
}

#[derive(Debug, Deserialize)]
struct LinuxJson {
    #[serde(default)]
    namespaces: Option<Vec<LinuxNamespace>>,
}

impl Config {
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| Error::ReadConfig {
            path: path.to_path_buf(),
            source,
        })?;
        let config: ConfigJson =
            serde_json::from_slice(&bytes).map_err(|source| Error::ParseConfig {
                path: path.to_path_buf(),
                source,
            })?;
        let network = config
            .linux
            .and_then(|linux| linux.namespaces)
            .and_then(|namespaces| {
                namespaces
                    .into_iter()
                    .find(|ns| ns.typ() == LinuxNamespaceType::Network)
            });
        Ok(Self {
            annotations: config.annotations.unwrap_or_default(),
            netns_path: match network {
                None => Some(PathBuf::new()),
                Some(ns) => ns.path().clone(),
            },
        })
    }

    /// The container's network namespace, and whether it outlives the container.
    pub fn netns(&self, state: &State) -> Result<(PathBuf, bool)> {
        match &self.netns_path {
            Some(path) if path.as_os_str().is_empty() => Err(Error::HostNetns {
                id: state.id.clone(),
            }),
            Some(path) => Ok((path.clone(), true)),
            None => match state.pid() {
                Some(pid) => Ok((PathBuf::from(format!("/proc/{pid}/ns/net")), false)),
                None => Err(Error::NoPid {
                    id: state.id.clone(),
                }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hook's partial reading of `config.json` agrees with oci-spec's full one, on a config
    /// `runc spec` wrote (plus annotations and a namespace path).
    #[test]
    fn config_reads_what_oci_spec_reads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/runc-config.json");
        let ours = Config::load(&path).unwrap();
        let spec = oci_spec::runtime::Spec::load(&path).unwrap();
        assert_eq!(Some(&ours.annotations), spec.annotations().as_ref());
        assert_eq!(ours.netns_path, Some(PathBuf::from("/run/netns/ctr1")));

        let dir = tempfile::tempdir().unwrap();
        let write = |json: &str| {
            let path = dir.path().join("config.json");
            std::fs::write(&path, json).unwrap();
            Config::load(&path)
        };
        // No network namespace: the host's, refused by `netns`.
        let host = write(r#"{"linux":{"namespaces":[{"type":"pid"}]}}"#).unwrap();
        assert_eq!(host.netns_path, Some(PathBuf::new()));
        // A new namespace: found through the pid.
        let new = write(r#"{"linux":{"namespaces":[{"type":"network"}]}}"#).unwrap();
        assert_eq!(new.netns_path, None);
        let errors: Vec<String> = [
            r#"{"linux":{"namespaces":[{"type":"netz"}]}}"#,
            r#"{"annotations":{"a":1}}"#,
            "not json",
        ]
        .iter()
        .map(|json| {
            crate::error::one_line(&write(json).unwrap_err())
                .replace(&dir.path().display().to_string(), "[DIR]")
        })
        .collect();
        insta::assert_snapshot!(errors.join("\n"));
    }

    #[test]
    fn state_parsing_is_lenient_and_errors_are_clear() {
        let ok = State::read(
            br#"{"ociVersion":"1.0.2","id":"c1","status":"paused","pid":0,"bundle":"/b","extra":{"x":1}}"#
                .as_slice(),
        )
        .unwrap();
        assert_eq!(ok.status, "paused");
        assert_eq!(ok.pid(), None);

        let cases: &[&[u8]] = &[
            b"",
            b"  \n",
            b"not json",
            br#"{"ociVersion":"1.0.2","status":"creating"}"#,
            br#"{"id":"c1","pid":"12"}"#,
            br#"{"id":"c1","status":"creating","bun"#,
            b"\xff\xfe{}",
        ];
        let report: Vec<String> = cases
            .iter()
            .map(|input| {
                let err = State::read(*input).unwrap_err();
                format!(
                    "{:?}\n  -> {}",
                    String::from_utf8_lossy(input),
                    crate::error::one_line(&err)
                )
            })
            .collect();
        insta::assert_snapshot!(report.join("\n"));

        let big = vec![b' '; (MAX_STATE + 10) as usize];
        assert!(matches!(
            State::read(big.as_slice()),
            Err(Error::StateTooLarge)
        ));
    }
}
