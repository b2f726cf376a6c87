//! The boot a state dir's records and locks belong to (see [`Records::settle_boot`]).

use std::{fs, io, path::Path};

use crate::{
    Error, Records, Result, StateError,
    files::{Durability, Put, read_own, write_atomic},
    lock::FileLock,
};

/// `<state-dir>/boot_id`: the boot the records and locks belong to.
const BOOT_MARKER: &str = "boot_id";
const BOOT_ID_SOURCE: &str = "/proc/sys/kernel/random/boot_id";

impl Records {
    /// Sets aside the records and locks of an earlier boot. They describe containers that a
    /// reboot ended, and, written without `fsync`, may come back empty after a power loss: an
    /// attach for a reused id must not trip over one. `<state-dir>/boot_id` names the boot they
    /// belong to; when it names another, `endpoints/` and `locks/` are renamed
    /// `endpoints.boot-<that boot id>` (and `locks.boot-…`), never deleted, under a lock. The
    /// move happens once per earlier boot: where that name is taken already, the dirs there
    /// were set aside before and the ones in place are this boot's (the marker could not be
    /// written then: a full disk), so they stay. A state dir without the marker (new, or of a
    /// version that did not keep it) is taken as this boot's. The lease store sets its own aside
    /// (`LmdbStore::open`). Costs one small read when the boot is this one; a marker that cannot
    /// be written is written by a later command.
    pub fn settle_boot(&self) -> Result<Option<String>> {
        let marker = self.state.join(BOOT_MARKER);
        let now = fs::read_to_string(BOOT_ID_SOURCE)
            .map(|id| id.trim().to_owned())
            .map_err(|source| Error::ReadProc {
                path: BOOT_ID_SOURCE.into(),
                source,
            })?;
        let recorded = |path: &Path| match read_own(path) {
            Ok(bytes) => Ok(bytes.map(|b| String::from_utf8_lossy(&b).trim().to_owned())),
            Err(source) => Err(Error::from(StateError::ReadRecord {
                path: path.to_path_buf(),
                source,
            })),
        };
        if recorded(&marker)?.as_deref() == Some(now.as_str()) {
            return Ok(None);
        }
        let _lock = FileLock::acquire(&self.state.join(".boot.lock"))?;
        let earlier = match recorded(&marker)? {
            Some(boot) if boot == now => return Ok(None),
            other => other,
        };
        let mut set_aside = None;
        if let Some(earlier) = earlier {
            let tag: String = earlier
                .chars()
                .filter(|c| c.is_ascii_hexdigit() || *c == '-')
                .take(36)
                .collect();
            for dir in [&self.dir, &self.locks] {
                let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("dir");
                let aside = self.state.join(format!("{name}.boot-{tag}"));
                if fs::symlink_metadata(&aside).is_ok() {
                    continue;
                }
                match fs::rename(dir, &aside) {
                    Ok(()) => set_aside = Some(earlier.clone()),
                    Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                    Err(source) => {
                        return Err(Error::from(StateError::WriteFile {
                            path: dir.clone(),
                            source,
                        }));
                    }
                }
            }
        }
        // Best effort: on a full disk the next command writes it; the moves above are done once
        // per earlier boot whatever happens to it.
        let _ = write_atomic(
            &marker,
            format!("{now}\n").as_bytes(),
            Put::Replace,
            Durability::Durable,
        );
        Ok(set_aside)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::record::tests::record;

    #[test]
    fn records_of_an_earlier_boot_are_set_aside_once_and_never_block_an_attach() {
        let dir = tempfile::tempdir().unwrap();
        let records = Records::new(dir.path());
        // A state dir without the marker: taken as this boot's, nothing moves.
        records.write(&record("kept")).unwrap();
        assert_eq!(records.settle_boot().unwrap(), None);
        assert_eq!(records.list().unwrap(), ["kept"]);
        assert_eq!(records.settle_boot().unwrap(), None);
        // The marker names another boot, and a record came back empty after a power loss.
        fs::write(
            dir.path().join(BOOT_MARKER),
            "0123abcd-0000-4000-8000-000000000001\n",
        )
        .unwrap();
        fs::write(records.path_of("torn").unwrap(), b"").unwrap();
        assert!(records.read("torn").is_err());
        assert_eq!(
            records.settle_boot().unwrap().as_deref(),
            Some("0123abcd-0000-4000-8000-000000000001")
        );
        assert!(records.list().unwrap().is_empty());
        assert_eq!(records.read("torn").unwrap(), None);
        let aside: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n == "endpoints.boot-0123abcd-0000-4000-8000-000000000001")
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");
        assert!(dir.path().join(&aside[0]).join("kept.json").exists());
        assert_eq!(records.settle_boot().unwrap(), None);

        // The marker could not be written after a move (a full disk): the records of this boot
        // made since are not moved by the next command.
        fs::write(
            dir.path().join(BOOT_MARKER),
            "0123abcd-0000-4000-8000-000000000001\n",
        )
        .unwrap();
        records.write(&record("live")).unwrap();
        assert_eq!(records.settle_boot().unwrap(), None);
        assert_eq!(records.list().unwrap(), ["live"]);
    }
}
