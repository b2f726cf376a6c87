use std::{
    fs, io,
    path::{Path, PathBuf},
};

use oci_macvlan_netlink_core::{Link, MacAddr};
use serde::{Deserialize, Serialize};

use crate::{
    Error, Liveness, Result,
    files::{json_stems, remove_stale_temps, stems, write_atomic},
    lock::FileLock,
};

/// What an attach did to a container, written before its first step so that a detach (or `gc`)
/// after a crash at any point knows what to undo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub container_id: String,
    /// Set when the namespace outlives the container (a path from `config.json`): detach must
    /// delete the links itself. `None` when the namespace dies with the container, taking its
    /// links with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<PathBuf>,
    /// What `gc` judges the container's life by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness: Option<Liveness>,
    pub endpoints: Vec<RecordedEndpoint>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedEndpoint {
    pub network: String,
    pub ifname: String,
    /// Only a link with this MAC is ours to delete. `None` for passthru, whose macvlan carries
    /// its parent's MAC: there a macvlan of that name is ours.
    #[serde(default, with = "mac_string")]
    pub mac: Option<MacAddr>,
}

impl RecordedEndpoint {
    /// Whether `link` is the one this endpoint created.
    pub fn is(&self, link: &Link) -> bool {
        match self.mac {
            Some(mac) => link.mac == Some(mac),
            None => link.kind.as_deref() == Some("macvlan"),
        }
    }
}

/// Endpoint records: `<state-dir>/endpoints/<container-id>.json`, and the containers' locks,
/// `<state-dir>/locks/<container-id>.lock`.
#[derive(Debug, Clone)]
pub struct Records {
    dir: PathBuf,
    locks: PathBuf,
}

impl Records {
    pub fn new(state_dir: &Path) -> Self {
        Self {
            dir: state_dir.join("endpoints"),
            locks: state_dir.join("locks"),
        }
    }

    /// Removes what writers killed halfway left behind (see [`crate::files::remove_stale_temps`]).
    pub(crate) fn remove_stale_temps(&self) -> Result<()> {
        remove_stale_temps(&self.dir)
    }

    fn path_of(&self, container_id: &str) -> Result<PathBuf> {
        check_container_id(container_id)?;
        Ok(self.dir.join(format!("{container_id}.json")))
    }

    /// Waits for the container's lock (see [`FileLock`]).
    pub(crate) fn lock(&self, container_id: &str) -> Result<FileLock> {
        FileLock::acquire(&self.lock_path(container_id)?)
    }

    /// The container's lock, or `None` while an attach, detach or `gc` holds it.
    pub(crate) fn try_lock(&self, container_id: &str) -> Result<Option<FileLock>> {
        FileLock::try_acquire(&self.lock_path(container_id)?)
    }

    /// The container ids that have a lock file, sorted.
    pub(crate) fn locked(&self) -> Result<Vec<String>> {
        stems(&self.locks, ".lock", |path, source| Error::Lock {
            path,
            source,
        })
    }

    fn lock_path(&self, container_id: &str) -> Result<PathBuf> {
        check_container_id(container_id)?;
        Ok(self.locks.join(format!("{container_id}.lock")))
    }

    pub(crate) fn write(&self, record: &Record) -> Result<()> {
        let path = self.path_of(&record.container_id)?;
        let json = serde_json::to_vec(record).map_err(|source| Error::ParseRecord {
            path: path.clone(),
            source,
        })?;
        write_atomic(&path, &json, true)
    }

    pub fn read(&self, container_id: &str) -> Result<Option<Record>> {
        let path = self.path_of(container_id)?;
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| Error::ParseRecord { path, source }),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::ReadRecord { path, source }),
        }
    }

    /// The container ids that have a record, sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        json_stems(&self.dir, |path, source| Error::ReadRecord { path, source })
    }

    pub(crate) fn remove(&self, container_id: &str) -> Result<()> {
        let path = self.path_of(container_id)?;
        match fs::remove_file(&path) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => {
                Err(Error::WriteFile { path, source: err })
            }
            _ => Ok(()),
        }
    }
}

/// Container ids become file names: runc's rule (`[A-Za-z0-9_+.-]+`), and never `.` or `..`.
pub fn check_container_id(id: &str) -> Result<()> {
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
        None => Ok(()),
    }
}

mod mac_string {
    use oci_macvlan_netlink_core::MacAddr;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(mac: &Option<MacAddr>, s: S) -> Result<S::Ok, S::Error> {
        match mac {
            Some(mac) => s.collect_str(mac),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<MacAddr>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| text.parse().map_err(D::Error::custom))
            .transpose()
    }
}
