use std::{
    borrow::Cow,
    fs, io,
    path::{Path, PathBuf},
};

use oci_macvlan_ipam::StoreChoice;
use oci_macvlan_netlink_core::{Link, MacAddr, NetnsId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    ContainerId, ContainerName, Error, Liveness, Result, StateError,
    files::{Durability, Put, json_stems, read_own, remove_stale_temps, write_atomic},
    id::IdRef,
    lock::FileLock,
};

mod dhcp;

pub use dhcp::{Dhcp6Record, DhcpRecord, Renewal};

/// The longest container id used as a file name as it is. With the `.json` of a record and the
/// `.…tmp-PID` of its temporary file, a longer one would pass NAME_MAX (255 bytes).
const MAX_PLAIN_STEM: usize = 200;
/// What starts the file name of a longer id: never in an id (see [`ContainerId`]).
const HASHED_MARK: char = '=';

/// What an attach did to a container, written before its first step so that a detach (or `gc`)
/// after a crash at any point knows what to undo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Whose record it is.
    pub container_id: ContainerId,
    /// The container's name, where its front door gave one (a CNI runtime's pod,
    /// `namespace/name`): shown by `network inspect`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<ContainerName>,
    /// Set when the namespace outlives the container (a path from `config.json`): detach must
    /// delete the links itself. `None` when the namespace dies with the container, taking its
    /// links with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<PathBuf>,
    /// What `gc` judges the container's life by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness: Option<Liveness>,
    /// The container's endpoints, one per network it is on.
    pub endpoints: Vec<RecordedEndpoint>,
    /// Attached through the CNI plugin: the plugin's GC judges this container, and never one a
    /// hook attached. Records written before it was kept load as not attached through CNI.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cni: bool,
}

/// One endpoint of a container, as its record keeps it: what detach and gc need
/// to find its link and its leases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedEndpoint {
    /// The network.
    pub network: String,
    /// The link's name in the container.
    pub ifname: String,
    /// Only a link with this MAC is ours to delete. `None` for passthru, whose macvlan carries
    /// its parent's MAC.
    #[serde(default, with = "mac_string")]
    pub mac: Option<MacAddr>,
    /// The link's kind (`macvlan`). Records written before it was kept mean `macvlan`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The index of the parent link in the host namespace when the record was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower: Option<u32>,
    /// The link's own index in the container's namespace, recorded once the link exists (for a
    /// namespace that outlives the container, where detach deletes it): a link of another index
    /// is not this one, whatever its name and MAC. `None` until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// The network's host-side link in the host namespace (`-o host_access`), through which
    /// attach routed the host to this endpoint's addresses: detach deletes those routes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_link: Option<String>,
    /// The lease store the endpoint's leases were taken from (the network's `--ipam-opt` at
    /// attach): a detach opens it from here, never from the definition, which may have been
    /// removed or edited since. `None` only in a record an earlier build wrote: that network's
    /// definition is asked then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreChoice>,
    /// The DHCP lease of the endpoint (`--ipam-driver dhcp`), once the server gave it: what a
    /// renewer and a release need. Records without it are our allocator's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dhcp: Option<DhcpRecord>,
}

impl RecordedEndpoint {
    /// Whether `link` is the one this endpoint made: its kind, its lower device (the network's
    /// parent) and its MAC all match. A name, or a name and a MAC, prove nothing: another
    /// container sharing the namespace may have asked for both.
    pub fn is(&self, link: &Link) -> bool {
        let kind = self.kind.as_deref().unwrap_or("macvlan");
        self.index.is_none_or(|index| link.index == index)
            && link.kind.as_deref() == Some(kind)
            && self.lower.is_none_or(|lower| link.lower == Some(lower))
            && self.mac.is_none_or(|mac| link.mac == Some(mac))
    }
}

#[path = "record/locks.rs"]
mod locks;

/// Endpoint records: `<state-dir>/endpoints/<container-id>.json`, and the containers' locks,
/// `<state-dir>/locks/<container-id>.lock`.
#[derive(Debug, Clone)]
pub struct Records {
    pub(crate) state: PathBuf,
    pub(crate) dir: PathBuf,
    pub(crate) locks: PathBuf,
}

impl Records {
    /// The records and locks under `state_dir`.
    pub fn new(state_dir: &Path) -> Self {
        Self {
            state: state_dir.to_path_buf(),
            dir: state_dir.join("endpoints"),
            locks: state_dir.join("locks"),
        }
    }

    /// Removes what writers killed halfway left behind (see [`crate::files::remove_stale_temps`]).
    pub(crate) fn remove_stale_temps(&self) -> Result<usize> {
        remove_stale_temps(&self.dir)
    }

    pub(crate) fn path_of(&self, container_id: &(impl IdRef + ?Sized)) -> Result<PathBuf> {
        Ok(self.dir.join(format!(
            "{}.json",
            file_stem(container_id.checked()?.as_ref())
        )))
    }

    /// The slot directory of a keeper of the container (`duty` names what it keeps, e.g. the
    /// DHCP network whose lease it renews): `<state-dir>/keepers/<container>.<duty>`.
    pub fn keeper_dir(&self, container_id: &ContainerId, duty: &str) -> PathBuf {
        self.state
            .join("keepers")
            .join(format!("{}.{duty}", file_stem(container_id)))
    }

    /// Waits for the container's lock (see [`FileLock`]).
    pub(crate) fn lock(&self, container_id: &(impl IdRef + ?Sized)) -> Result<FileLock> {
        FileLock::acquire(&self.lock_path(container_id)?)
    }

    /// Waits until no attach, detach or `gc` holds the container's lock (making no lock file
    /// where there is none: one a detach removed stays removed): a renewer started while its
    /// container's attach runs (beside the lease's exchange) then reads the record that attach
    /// left, not the one it started from.
    pub fn wait_unlocked(&self, container_id: &(impl IdRef + ?Sized)) -> Result<()> {
        FileLock::wait_free(&self.lock_path(container_id)?)
    }

    /// The container's lock, or `None` while an attach, detach or `gc` holds it.
    pub(crate) fn try_lock(
        &self,
        container_id: &(impl IdRef + ?Sized),
    ) -> Result<Option<FileLock>> {
        FileLock::try_acquire(&self.lock_path(container_id)?)
    }

    pub(crate) fn lock_path(&self, container_id: &(impl IdRef + ?Sized)) -> Result<PathBuf> {
        Ok(self.locks.join(format!(
            "{}.lock",
            file_stem(container_id.checked()?.as_ref())
        )))
    }

    /// Writes the record. The state dir lives until the next boot only, as do containers:
    /// no `fsync` (see [`Durability::UntilReboot`]).
    pub(crate) fn write(&self, record: &Record) -> Result<()> {
        let path = self.path_of(&record.container_id)?;
        let json = serde_json::to_vec(record).map_err(|source| {
            Error::from(StateError::SerializeRecord {
                path: path.clone(),
                source,
            })
        })?;
        write_atomic(&path, &json, Put::Replace, Durability::UntilReboot)
    }

    /// The container's record, if it has one.
    pub fn read(&self, container_id: &(impl IdRef + ?Sized)) -> Result<Option<Record>> {
        let container_id = container_id.checked()?;
        let path = self.path_of(container_id.as_ref())?;
        let record = self.read_path(&path)?;
        match record {
            // Two long ids whose names share a hash: never read one as the other.
            Some(record) if record.container_id != *container_id => {
                Err(Error::from(StateError::RecordOfAnother {
                    path,
                    container_id: record.container_id.into(),
                }))
            }
            other => Ok(other),
        }
    }

    fn read_path(&self, path: &Path) -> Result<Option<Record>> {
        match read_own(path) {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).map(Some).map_err(|source| {
                Error::from(StateError::ParseRecord {
                    path: path.to_path_buf(),
                    source,
                })
            }),
            Ok(None) => Ok(None),
            Err(source) => Err(Error::from(StateError::ReadRecord {
                path: path.to_path_buf(),
                source,
            })),
        }
    }

    /// The container ids that have a record, sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        let stems = json_stems(&self.dir, |path, source| {
            Error::from(StateError::ReadRecord { path, source })
        })?;
        let mut ids = Vec::with_capacity(stems.len());
        for stem in stems {
            if !stem.starts_with(HASHED_MARK) {
                ids.push(stem);
                continue;
            }
            // A long id: its record names it (a record removed meanwhile is gone from the list).
            let path = self.dir.join(format!("{stem}.json"));
            if let Some(record) = self.read_path(&path)? {
                ids.push(record.container_id.into());
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// The records of other containers that claim `link` in the namespace `netns`: a link such a
    /// record claims is never adopted or deleted for `container_id`. A record claims the link if
    /// it recorded that index for that name; and, when `ours_confirmed` is false (this
    /// container's own record has not recorded the index either: a hook died between creating
    /// the link and recording it), if it names that interface with no index yet. A record that
    /// merely names the interface (another container's attach in progress, which will find the
    /// name taken) never outweighs a record that holds the link's index. Read only on the rare
    /// paths that need it (a name taken, a link to delete in a namespace that outlives the
    /// container).
    pub(crate) fn claims_of_others(
        &self,
        container_id: &ContainerId,
        netns: NetnsId,
        link: &Link,
        ours_confirmed: bool,
    ) -> Result<Vec<String>> {
        let mut others = Vec::new();
        for id in self.list()? {
            if *container_id == id {
                continue;
            }
            let Ok(Some(record)) = self.read(&id) else {
                continue;
            };
            let same_netns = record
                .liveness
                .as_ref()
                .is_some_and(|facts| facts.netns() == netns);
            let claims = record.endpoints.iter().any(|e| {
                e.ifname == link.name
                    && match e.index {
                        Some(index) => index == link.index,
                        None => !ours_confirmed,
                    }
            });
            if same_netns && claims {
                others.push(id);
            }
        }
        Ok(others)
    }

    pub(crate) fn remove(&self, container_id: &(impl IdRef + ?Sized)) -> Result<()> {
        let path = self.path_of(container_id)?;
        match fs::remove_file(&path) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => {
                Err(Error::from(StateError::WriteFile { path, source: err }))
            }
            _ => Ok(()),
        }
    }
}

/// The file name (without suffix) of a container's record and lock: the id itself, or for an
/// id longer than [`MAX_PLAIN_STEM`], `=` and the SHA-256 of the id (a record names its id, and
/// [`Records::read`] checks it).
fn file_stem(container_id: &ContainerId) -> Cow<'_, str> {
    if container_id.len() <= MAX_PLAIN_STEM {
        return Cow::Borrowed(container_id.as_str());
    }
    let digest = Sha256::digest(container_id.as_bytes());
    let mut stem = String::with_capacity(65);
    stem.push(HASHED_MARK);
    for byte in digest {
        stem.push_str(&format!("{byte:02x}"));
    }
    Cow::Owned(stem)
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A record of `id` with no endpoints.
    pub(crate) fn record(id: &str) -> Record {
        Record {
            container_id: ContainerId::parse(id).unwrap(),
            name: None,
            netns: None,
            liveness: None,
            endpoints: Vec::new(),
            cni: false,
        }
    }

    #[test]
    fn every_id_up_to_the_limit_has_a_record_and_a_lock() {
        let dir = tempfile::tempdir().unwrap();
        let records = Records::new(dir.path());
        let ids: Vec<String> = [1, 200, 201, 240, 251, 1024]
            .iter()
            .map(|&n| "a".repeat(n))
            .collect();
        for id in &ids {
            let lock = records.lock(id).unwrap();
            records.write(&record(id)).unwrap();
            assert_eq!(records.read(id).unwrap(), Some(record(id)));
            lock.remove_file().unwrap();
        }
        let mut listed = records.list().unwrap();
        listed.sort();
        let mut expected = ids.clone();
        expected.sort();
        assert_eq!(listed, expected);
        for id in &ids {
            records.remove(id).unwrap();
            assert_eq!(records.read(id).unwrap(), None);
        }
        assert!(records.list().unwrap().is_empty());
    }

    #[test]
    fn a_record_under_another_ids_name_is_not_read_as_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let records = Records::new(dir.path());
        let long = "b".repeat(300);
        records.write(&record(&long)).unwrap();
        // Planted: the file of `long` holds another id.
        let path = records.path_of(&long).unwrap();
        fs::write(&path, serde_json::to_vec(&record("intruder")).unwrap()).unwrap();
        let err = crate::one_line(&records.read(&long).unwrap_err());
        assert!(err.contains("intruder"), "{err}");
    }

    /// A record an earlier build wrote has no `store`: it still reads, the store unknown (detach
    /// asks the network's definition then). One written now names it on each endpoint: the
    /// only change to a local record is `"store":"local"` (without it, a local endpoint could not
    /// be told from an earlier build's, which may be on etcd).
    #[test]
    fn each_endpoint_names_its_store_and_an_earlier_builds_record_still_reads() {
        let earlier = r#"{"container_id":"c1","endpoints":[{"network":"lan50","ifname":"eth0","mac":"02:42:c0:a8:32:0a","kind":"macvlan","lower":7}]}"#;
        let read: Record = serde_json::from_str(earlier).unwrap();
        assert_eq!(read.endpoints[0].store, None);
        let mut local = read.clone();
        local.endpoints[0].store = Some(StoreChoice::Local);
        assert_eq!(
            serde_json::to_string(&local).unwrap(),
            earlier.replace(r#""lower":7}"#, r#""lower":7,"store":"local"}"#)
        );
        let etcd = oci_macvlan_ipam::Backends(&[&oci_macvlan_ipam_etcd::BACKEND])
            .parse_options(&["etcd_endpoints=http://10.0.0.5:2379".to_owned()])
            .unwrap();
        let mut shared = read;
        shared.endpoints[0].store = Some(etcd);
        let json = serde_json::to_string(&shared).unwrap();
        assert!(
            json.contains(
                r#""store":{"etcd":{"endpoints":["http://10.0.0.5:2379"],"prefix":"/oci-macvlan","timeout_ms":2000}}"#
            ),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Record>(&json).unwrap(), shared);
    }

    #[test]
    fn a_link_is_ours_only_if_kind_parent_and_mac_match() {
        let mac: MacAddr = "02:00:00:00:00:01".parse().unwrap();
        let ep = RecordedEndpoint {
            network: "n".into(),
            ifname: "eth0".into(),
            mac: Some(mac),
            kind: Some("macvlan".into()),
            lower: Some(7),
            index: None,
            host_link: None,
            store: Some(StoreChoice::Local),
            dhcp: None,
        };
        let link = |kind: &str, lower: u32, mac: MacAddr| Link {
            index: 3,
            name: "eth0".into(),
            mac: Some(mac),
            mtu: None,
            up: true,
            loopback: false,
            kind: Some(kind.into()),
            alias: None,
            lower: Some(lower),
            vlan_id: None,
            promiscuity: 0,
            carrier: None,
            mode: None,
        };
        let other: MacAddr = "02:00:00:00:00:02".parse().unwrap();
        assert!(ep.is(&link("macvlan", 7, mac)));
        assert!(!ep.is(&link("veth", 7, mac)));
        assert!(!ep.is(&link("macvlan", 8, mac)));
        assert!(!ep.is(&link("macvlan", 7, other)));
        // Passthru: no MAC of its own, kind and parent decide.
        let passthru = RecordedEndpoint {
            mac: None,
            ..ep.clone()
        };
        assert!(passthru.is(&link("macvlan", 7, other)));
        assert!(!passthru.is(&link("macvlan", 9, other)));
        // Once the index is recorded, a link of another index is not this one.
        let indexed = RecordedEndpoint {
            index: Some(3),
            ..ep.clone()
        };
        assert!(indexed.is(&link("macvlan", 7, mac)));
        let moved = RecordedEndpoint {
            index: Some(4),
            ..ep
        };
        assert!(!moved.is(&link("macvlan", 7, mac)));
    }
}

pub(crate) mod mac_string {
    use oci_macvlan_netlink_core::MacAddr;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(crate) fn serialize<S: Serializer>(mac: &Option<MacAddr>, s: S) -> Result<S::Ok, S::Error> {
        match mac {
            Some(mac) => s.collect_str(mac),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<MacAddr>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| text.parse().map_err(D::Error::custom))
            .transpose()
    }
}
