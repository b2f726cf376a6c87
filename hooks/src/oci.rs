//! The OCI inputs of a hook: the state on stdin and the bundle's `config.json`.

use std::{
    collections::HashMap,
    fs::{self, OpenOptions},
    io::{self, Read},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use nix::libc;
use oci_macvlan_netlink_core::{self as netlink, Netns};
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};
use serde::Deserialize;

use crate::error::{Error, Result};

/// Largest OCI state read from stdin.
pub const MAX_STATE: u64 = 1 << 20;
/// Largest bundle `config.json` read: runtimes write tens of kilobytes (a seccomp profile is the
/// bulk of it), and the file may come from a less-trusted party.
pub const MAX_CONFIG: u64 = 4 << 20;

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
    /// The container's hostname (`hostname`), told to a DHCP network's server.
    pub hostname: Option<String>,
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
    hostname: Option<String>,
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
        let bytes = read_config(path)?;
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
            hostname: config.hostname,
            netns_path: match network {
                None => Some(PathBuf::new()),
                Some(ns) => ns.path().clone(),
            },
        })
    }

    /// The container's network namespace, and whether it outlives the container.
    ///
    /// A path that names something other than a namespace file (a FIFO, a regular file, a
    /// directory) is the bundle's fault and refused here, without opening it. Attach makes the
    /// same check again when it opens the namespace; a path that does not exist is its to report.
    pub fn netns(&self, state: &State) -> Result<(PathBuf, bool)> {
        let (path, persistent) = match &self.netns_path {
            Some(path) if path.as_os_str().is_empty() => {
                return Err(Error::HostNetns {
                    id: state.id.clone(),
                });
            }
            Some(path) => (path.clone(), true),
            None => match state.pid() {
                Some(pid) => (PathBuf::from(format!("/proc/{pid}/ns/net")), false),
                None => {
                    return Err(Error::NoPid {
                        id: state.id.clone(),
                    });
                }
            },
        };
        match Netns::open(&path) {
            Err(source @ netlink::Error::NotNamespace { .. }) => Err(Error::NetnsPath {
                id: state.id.clone(),
                source,
            }),
            _ => Ok((path, persistent)),
        }
    }
}

/// Reads `config.json`: a regular file of at most [`MAX_CONFIG`] bytes. The path is checked
/// before it is opened (opening a FIFO blocks for ever, opening a device may act on it), and the
/// file again once open, non-blocking, in case the path was swapped in between; the read stops
/// past the cap whatever the size said.
pub(crate) fn read_config(path: &Path) -> Result<Vec<u8>> {
    let read_error = |source: io::Error| Error::ReadConfig {
        path: path.to_path_buf(),
        source,
    };
    let check = |meta: &fs::Metadata| {
        if !meta.is_file() {
            return Err(Error::ConfigNotFile {
                path: path.to_path_buf(),
                what: oci_macvlan_netlink_core::file_kind(meta),
            });
        }
        if meta.len() > MAX_CONFIG {
            return Err(Error::ConfigTooLarge {
                path: path.to_path_buf(),
            });
        }
        Ok(())
    };
    check(&fs::metadata(path).map_err(read_error)?)?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
        .map_err(read_error)?;
    let meta = file.metadata().map_err(read_error)?;
    check(&meta)?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(MAX_CONFIG + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_CONFIG {
        return Err(Error::ConfigTooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(bytes)
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
            fs::write(&path, json).unwrap();
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

    /// `config.json` is read only if it is a regular file of at most [`MAX_CONFIG`] bytes: a
    /// FIFO is refused without being opened (opening it would block the hook for ever), and
    /// neither `/dev/zero` nor a huge sparse file is read. A namespace path that is not a
    /// namespace file is refused the same way; one that does not exist is left to attach.
    #[test]
    fn only_a_small_regular_config_is_read_and_the_netns_must_be_a_namespace_file() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let sparse = dir.path().join("sparse");
        fs::File::create(&sparse)
            .unwrap()
            .set_len(300 << 20)
            .unwrap();
        let at_cap = dir.path().join("at-cap");
        let mut json = vec![b' '; MAX_CONFIG as usize];
        json[0] = b'{';
        json[MAX_CONFIG as usize - 1] = b'}';
        fs::write(&at_cap, &json).unwrap();
        assert!(Config::load(&at_cap).is_ok(), "a config of exactly the cap");

        let mut report = Vec::new();
        for path in [&fifo, &zero, &sparse, &dir.path().to_path_buf()] {
            // On its own thread, so that a regression hangs that thread, not the test.
            let (tx, rx) = std::sync::mpsc::channel();
            let opening = path.clone();
            std::thread::spawn(move || tx.send(Config::load(&opening).map(|_| ())));
            let err = rx
                .recv_timeout(std::time::Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("reading {} blocked", path.display()))
                .unwrap_err();
            assert_eq!(err.exit_code(), crate::error::exit::INVALID, "{err}");
            report.push(crate::error::line(&err));
        }

        let state = State::read(br#"{"id":"c1","status":"creating","pid":1}"#.as_slice()).unwrap();
        for path in [&fifo, &sparse, &dir.path().to_path_buf()] {
            let config = Config {
                annotations: HashMap::new(),
                hostname: None,
                netns_path: Some(path.clone()),
            };
            let err = config.netns(&state).unwrap_err();
            assert_eq!(err.exit_code(), crate::error::exit::INVALID, "{err}");
            report.push(crate::error::line(&err));
        }
        let missing = Config {
            annotations: HashMap::new(),
            hostname: None,
            netns_path: Some(dir.path().join("missing")),
        };
        assert!(missing.netns(&state).is_ok(), "attach reports it");
        let own = Config {
            annotations: HashMap::new(),
            hostname: None,
            netns_path: None,
        };
        assert_eq!(
            own.netns(&state).unwrap(),
            (PathBuf::from("/proc/1/ns/net"), false)
        );
        let report = report
            .join("\n")
            .replace(&dir.path().display().to_string(), "[DIR]");
        insta::assert_snapshot!(report);
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
