//! Where a running container is, for `network connect` (or any front door that is given a
//! container rather than its namespace): by its record, by a pid, by a namespace path, or by
//! asking its runtime (`runc state`, `crun state`).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use serde::Deserialize;

pub use crate::error::LocateError;
use crate::{ContainerId, Record, error::cut};

/// Where a running container's namespace is, and its process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The container's network namespace.
    pub netns: PathBuf,
    /// The namespace outlives the container (a path the runtime was given): detach deletes
    /// the links.
    pub persistent: bool,
    /// The container's process, if known.
    pub pid: Option<i32>,
}

/// What the caller was told about where the container runs (`connect`'s flags).
#[derive(Debug, Clone, Copy, Default)]
pub struct Hints<'a> {
    /// `--pid`.
    pub pid: Option<i32>,
    /// `--netns`.
    pub netns: Option<&'a Path>,
    /// `--runtime` (its program: `runc`, `crun`) and `--root`.
    pub runtime: Option<(&'static str, Option<&'a Path>)>,
}

/// Where the container `id` runs: a namespace path its record keeps (the links must then be
/// deleted there at poststop: the record must keep saying so), else what the hints say, else
/// the process its record names.
pub fn locate(
    id: &ContainerId,
    hints: &Hints<'_>,
    record: Option<&Record>,
) -> Result<Located, LocateError> {
    let recorded_pid = record
        .and_then(|r| r.liveness.as_ref())
        .and_then(|l| l.process)
        .map(|p| p.pid);
    let by_pid = |pid: i32| Located {
        netns: PathBuf::from(format!("/proc/{pid}/ns/net")),
        persistent: false,
        pid: Some(pid),
    };
    let hinted_pid = match (hints.pid, hints.runtime) {
        (Some(pid), _) => Some(pid),
        (None, Some((runtime, root))) => Some(runtime_pid(runtime, root, id)?),
        (None, None) => None,
    };
    if let Some(path) = record.and_then(|r| r.netns.clone()) {
        return Ok(Located {
            netns: path,
            persistent: true,
            pid: hinted_pid.or(recorded_pid),
        });
    }
    match (hints.netns, hinted_pid, recorded_pid) {
        (Some(path), pid, _) => Ok(Located {
            netns: path.to_path_buf(),
            persistent: true,
            pid: pid.or(recorded_pid),
        }),
        (None, Some(pid), _) | (None, None, Some(pid)) => Ok(by_pid(pid)),
        (None, None, None) => Err(LocateError::Unlocated { id: id.to_string() }),
    }
}

/// The first `ethN` the container's record does not use: a connected network's interface.
pub fn next_ifname(record: Option<&Record>) -> String {
    let used = |name: &str| record.is_some_and(|r| r.endpoints.iter().any(|e| e.ifname == name));
    (0..)
        .map(|n| format!("eth{n}"))
        .find(|name| !used(name))
        .unwrap_or_default()
}

/// What `runc state` / `crun state` print that is read here.
#[derive(Debug, Deserialize)]
struct RuntimeState {
    status: String,
    #[serde(default)]
    pid: i32,
}

/// Longest part of a runtime's complaint an error repeats.
const MAX_STDERR: usize = 200;

/// `RUNTIME [--root ROOT] state -- ID`: the `--` keeps an id that starts with `-` an id, never
/// a flag of the runtime's.
fn state_command(runtime: &str, root: Option<&Path>, id: &str) -> Command {
    let mut command = Command::new(runtime);
    if let Some(root) = root {
        command.arg("--root").arg(root);
    }
    command.args(["state", "--", id]);
    command
}

/// The container's process, from `RUNTIME --root ROOT state -- ID`.
fn runtime_pid(runtime: &'static str, root: Option<&Path>, id: &str) -> Result<i32, LocateError> {
    let out = state_command(runtime, root, id)
        .output()
        .map_err(|source| LocateError::RuntimeState {
            runtime,
            id: id.to_owned(),
            source,
        })?;
    if !out.status.success() {
        return Err(LocateError::RuntimeStateFailed {
            runtime,
            id: id.to_owned(),
            stderr: cut(String::from_utf8_lossy(&out.stderr).trim(), MAX_STDERR).into_owned(),
        });
    }
    let state: RuntimeState =
        serde_json::from_slice(&out.stdout).map_err(|err| LocateError::RuntimeStateFailed {
            runtime,
            id: id.to_owned(),
            stderr: format!("unreadable output: {err}"),
        })?;
    if !matches!(state.status.as_str(), "running" | "created" | "paused") || state.pid <= 0 {
        return Err(LocateError::NotRunning {
            runtime,
            id: id.to_owned(),
            status: state.status,
        });
    }
    Ok(state.pid)
}

/// `text` cut to at most `max` bytes (at a character boundary), with `…` when it was cut.
#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{Liveness, Process, RecordedEndpoint};

    fn record(netns: Option<&str>, pid: Option<i32>, ifnames: &[&str]) -> Record {
        Record {
            container_id: ContainerId::parse("c1").unwrap(),
            name: None,
            netns: netns.map(PathBuf::from),
            liveness: Some(Liveness {
                process: pid.map(|pid| Process { pid, start: 1 }),
                netns_dev: 1,
                netns_ino: 2,
                netns_cookie: None,
            }),
            endpoints: ifnames
                .iter()
                .map(|ifname| RecordedEndpoint {
                    network: format!("net-{ifname}"),
                    ifname: (*ifname).into(),
                    mac: None,
                    kind: None,
                    lower: None,
                    index: None,
                    host_link: None,
                    store: None,
                    dhcp: None,
                })
                .collect(),
            cni: false,
        }
    }

    fn hints(pid: Option<i32>, netns: Option<&str>) -> Hints<'_> {
        Hints {
            pid,
            netns: netns.map(Path::new),
            runtime: None,
        }
    }

    #[test]
    fn the_container_is_found_where_its_record_says() {
        let located = |hints: &Hints<'_>, record: Option<&Record>| {
            locate(&ContainerId::parse("c1").unwrap(), hints, record)
                .map_err(|e| crate::one_line(&e))
        };
        let proc_of = |pid: i32| Located {
            netns: PathBuf::from(format!("/proc/{pid}/ns/net")),
            persistent: false,
            pid: Some(pid),
        };
        // No record: the hints decide, and without them there is nothing to go by.
        assert_eq!(located(&hints(Some(7), None), None), Ok(proc_of(7)));
        assert_eq!(
            located(&hints(None, Some("/run/netns/x")), None),
            Ok(Located {
                netns: "/run/netns/x".into(),
                persistent: true,
                pid: None
            })
        );
        let err = located(&hints(None, None), None).unwrap_err();
        assert!(err.contains("--pid, --netns or --runtime"), "{err}");
        // A record of the hook: its process, or its namespace path, which must stay on record.
        let by_pid = record(None, Some(9), &["eth0"]);
        assert_eq!(located(&hints(None, None), Some(&by_pid)), Ok(proc_of(9)));
        let by_path = record(Some("/run/netns/p"), Some(9), &["eth0"]);
        assert_eq!(
            located(&hints(Some(9), None), Some(&by_path)),
            Ok(Located {
                netns: "/run/netns/p".into(),
                persistent: true,
                pid: Some(9)
            })
        );
    }

    #[test]
    fn an_id_is_never_a_flag_of_the_runtime() {
        let command = state_command("runc", Some(Path::new("/run/r")), "--help");
        let args: Vec<_> = command.get_args().collect();
        assert_eq!(args, ["--root", "/run/r", "state", "--", "--help"]);
        let command = state_command("crun", None, "-x");
        assert_eq!(
            command.get_args().collect::<Vec<_>>(),
            ["state", "--", "-x"]
        );
    }

    #[test]
    fn a_connected_network_gets_the_first_free_eth() {
        assert_eq!(next_ifname(None), "eth0");
        assert_eq!(next_ifname(Some(&record(None, None, &["eth0"]))), "eth1");
        assert_eq!(
            next_ifname(Some(&record(None, None, &["eth0", "eth2"]))),
            "eth1"
        );
    }
}
