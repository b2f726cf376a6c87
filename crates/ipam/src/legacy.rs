//! The lease store of oci-macvlan before 0.2: one SQLite database, `leases.db`, in the state
//! directory. The LMDB store takes its leases over once and renames it `leases.db.imported`, so a
//! host upgraded with containers running hands none of their addresses out twice.

use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    time::Duration,
};

use rusqlite::{Connection, OpenFlags};

use crate::{Error, Lease, Owner, Result, addr::from_blob};

pub(crate) const FILE_NAME: &str = "leases.db";
const RETIRED: &str = "leases.db.imported";

/// ip, subnet, network, container id, ifname.
type LegacyRow = (Vec<u8>, String, String, String, String);

pub(crate) struct Legacy {
    path: PathBuf,
    /// Device and inode of the file: which copy the store has taken over.
    pub(crate) identity: [u8; 16],
}

impl Legacy {
    pub(crate) fn find(state_dir: &Path) -> Result<Option<Self>> {
        let path = state_dir.join(FILE_NAME);
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(legacy_error(&path, &err.to_string())),
        };
        let mut identity = [0; 16];
        identity[..8].copy_from_slice(&meta.dev().to_be_bytes());
        identity[8..].copy_from_slice(&meta.ino().to_be_bytes());
        Ok(Some(Self { path, identity }))
    }

    /// Every lease of the old store. One that cannot be read fails the open: an address it
    /// holds would otherwise be handed out again.
    pub(crate) fn leases(&self) -> Result<Vec<Lease>> {
        let read = || -> rusqlite::Result<Vec<LegacyRow>> {
            let conn = Connection::open_with_flags(
                &self.path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            conn.busy_timeout(Duration::from_secs(30))?;
            let mut stmt = conn.prepare(
                "SELECT ip, subnet, network, container_id, ifname FROM leases ORDER BY ip",
            )?;
            let rows = stmt.query_map([], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                ))
            })?;
            rows.collect()
        };
        let rows = read().map_err(|err| legacy_error(&self.path, &err.to_string()))?;
        rows.into_iter()
            .map(|(ip, subnet, network, container_id, ifname)| {
                let ip = from_blob(&ip).ok_or_else(|| {
                    legacy_error(&self.path, &format!("an address of {} bytes", ip.len()))
                })?;
                let subnet = subnet.parse().map_err(|_| {
                    legacy_error(&self.path, &format!("subnet {subnet:?} of lease {ip}"))
                })?;
                Ok(Lease {
                    ip,
                    subnet,
                    network,
                    owner: Owner {
                        container_id,
                        ifname,
                    },
                })
            })
            .collect()
    }

    /// Renames the taken-over file. Failing to is harmless: the store remembers which file it
    /// took over and does not copy it twice.
    pub(crate) fn retire(self) {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let _ = std::fs::rename(&self.path, dir.join(RETIRED));
    }
}

fn legacy_error(path: &Path, reason: &str) -> Error {
    Error::Legacy {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    }
}
