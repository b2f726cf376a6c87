//! This host's identity in stores several hosts share: `<config-dir>/host-identity`, JSON
//! `{"id","secret"}`, mode 0600, written once (atomically, never replaced) by the first command
//! that writes to a shared store. Every command reads the id from it, so the hooks, `connect`
//! and the gc timer (which is given no `--host-id`) are one host. `--host-id` and
//! `OCI_MACVLAN_HOST_ID` stay as overrides that must agree with it; without the file, they (or
//! `/etc/machine-id`) give the id the file is made with.
//!
//! The secret never leaves the machine: a shared store keeps only a hash of it (the claim's
//! proof, see `oci_macvlan_ipam_etcd`), so a machine that presents the same id (a clone that
//! shares `/etc/machine-id`, a host run with another's `--host-id`) cannot prove it.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Read, Write},
    os::unix::fs::{MetadataExt, OpenOptionsExt},
    path::{Path, PathBuf},
};

use nix::libc;
use oci_macvlan_ipam::HostIdentity;
use oci_macvlan_ipam_etcd::valid_host_id;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    HostStores,
    error::{Error, Result},
};

/// The file's name in the config dir.
pub const FILE: &str = "host-identity";
/// Where the id comes from when neither the file nor `--host-id` gives it.
const MACHINE_ID: &str = "/etc/machine-id";
/// The file is a few dozen bytes.
const MAX_FILE: u64 = 4096;

#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    id: String,
    /// 64 hex digits (32 random bytes).
    secret: String,
}

impl HostStores {
    /// This host's id in a shared store (see the module): read, never written.
    pub fn host_id(&self) -> Result<String> {
        Ok(self.identity(false)?.id)
    }

    /// This host's identity. `make`: a command that writes to a shared store; the file is made
    /// if it is missing. Otherwise (a command that only reads) a missing file stays missing,
    /// and the identity has no proof.
    pub fn identity(&self, make: bool) -> Result<HostIdentity> {
        Ok(self.identity_stored(make)?.0)
    }

    /// [`Self::identity`], and what the file holds when it was read or made (one read: an
    /// address source's secret comes from the same).
    fn identity_stored(&self, make: bool) -> Result<(HostIdentity, Option<Stored>)> {
        let path = self.config_dir.join(FILE);
        if let Some(given) = &self.host_id {
            check_host_id(given, "--host-id")?;
        }
        // Twice at most: a first command that loses the race to make the file reads the winner's.
        for _ in 0..2 {
            if let Some(stored) = read(&path)? {
                return Ok((self.agreeing(&path, &stored)?, Some(stored)));
            }
            let id = match &self.host_id {
                Some(id) => id.clone(),
                None => machine_id()?,
            };
            if !make {
                let identity = HostIdentity {
                    id,
                    proof: None,
                    kept_in: path.display().to_string(),
                };
                return Ok((identity, None));
            }
            let stored = Stored {
                id,
                secret: secret()?,
            };
            match write_new(&path, &stored) {
                Ok(()) => return Ok((self.agreeing(&path, &stored)?, Some(stored))),
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
                Err(source) => return Err(Error::IdentityFile { path, source }),
            }
        }
        Err(Error::IdentityFile {
            path,
            source: io::Error::other("made and gone again while it was read"),
        })
    }

    /// What an address source derives a container's identity on the LAN from (the DHCP client
    /// identifier and MAC): a key derived from this host's secret, never the secret itself,
    /// so that nothing a LAN sees tells the proof of this host's claim. The identity file is
    /// made at first use, as a write to a shared store makes it.
    pub fn source_secret(&self) -> Result<Vec<u8>> {
        let (_, stored) = self.identity_stored(true)?;
        let stored = stored.ok_or_else(|| Error::IdentityFile {
            path: self.config_dir.join(FILE),
            source: io::Error::other("made and gone again while it was read"),
        })?;
        let mut hash = Sha256::new();
        hash.update(b"oci-macvlan address sources v1\0");
        hash.update(stored.secret.as_bytes());
        Ok(hash.finalize().to_vec())
    }

    /// The identity `stored` in `path`, if `--host-id` (when given) agrees with it.
    fn agreeing(&self, path: &Path, stored: &Stored) -> Result<HostIdentity> {
        if let Some(given) = &self.host_id
            && *given != stored.id
        {
            return Err(Error::HostIdMismatch {
                given: given.clone(),
                kept: stored.id.clone(),
                path: path.to_path_buf(),
            });
        }
        Ok(HostIdentity {
            id: stored.id.clone(),
            proof: Some(proof(&stored.id, &stored.secret)),
            kept_in: path.display().to_string(),
        })
    }
}

/// A host id as `--host-id` and `gc --forget-host` take it; `from` names where it came from.
pub fn check_host_id(id: &str, from: &'static str) -> Result<()> {
    if valid_host_id(id) {
        Ok(())
    } else {
        Err(Error::InvalidHostId {
            id: id.to_owned(),
            from,
        })
    }
}

fn machine_id() -> Result<String> {
    let text = fs::read_to_string(MACHINE_ID).map_err(|source| Error::ReadHostId {
        path: MACHINE_ID.into(),
        source,
    })?;
    let id = text.trim().to_owned();
    check_host_id(&id, MACHINE_ID)?;
    Ok(id)
}

/// What a shared store keeps of the secret: a hash, bound to the id.
fn proof(id: &str, secret: &str) -> String {
    let digest = Sha256::digest(format!("oci-macvlan host claim\n{id}\n{secret}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// 32 bytes from the kernel's random source, as hex.
fn secret() -> Result<String> {
    let mut bytes = [0u8; 32];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|source| Error::IdentityFile {
            path: "/dev/urandom".into(),
            source,
        })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The file, if there is one: a regular file (never through a symlink), root's alone (no
/// permission for group or others: it holds the secret), small, with a valid id and secret.
fn read(path: &Path) -> Result<Option<Stored>> {
    let wrap = |source: io::Error| Error::IdentityFile {
        path: path.to_path_buf(),
        source,
    };
    let Some(file) = oci_macvlan_macvlan::open_own(path).map_err(wrap)? else {
        return Ok(None);
    };
    let meta = file.metadata().map_err(wrap)?;
    // Only the user oci-macvlan runs as (root) may hold the secret.
    if meta.uid() != nix::unistd::geteuid().as_raw() {
        return Err(wrap(io::Error::other(format!(
            "it is owned by uid {}, not by the uid oci-macvlan runs as",
            meta.uid()
        ))));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(wrap(io::Error::other(format!(
            "its mode {:o} lets others than its owner read it (it holds this host's secret: chmod 600)",
            meta.mode() & 0o7777
        ))));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(wrap)?;
    let stored: Stored = serde_json::from_slice(&bytes)
        .ok()
        .filter(|s: &Stored| {
            valid_host_id(&s.id)
                && s.secret.len() == 64
                && s.secret.bytes().all(|b| b.is_ascii_hexdigit())
        })
        .ok_or_else(|| {
            wrap(io::Error::other(
                "it is not {\"id\": HOST-ID, \"secret\": 64 hex digits}",
            ))
        })?;
    Ok(Some(stored))
}

/// Writes `stored` to `path` if there is no file there: through a temporary file made 0600,
/// flushed, then linked into place (`link(2)` never replaces: the first writer wins, and an
/// `AlreadyExists` error tells the others to read its file).
fn write_new(path: &Path, stored: &Stored) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp: PathBuf = dir.join(format!(".{FILE}.tmp-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        let mut text = serde_json::to_vec(stored).map_err(io::Error::other)?;
        text.push(b'\n');
        file.write_all(&text)?;
        file.sync_all()?;
        fs::hard_link(&tmp, path)?;
        // The link itself must survive a power loss: the dir's entry.
        File::open(dir)?.sync_all()
    })();
    let _ = fs::remove_file(&tmp);
    result
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::fs::PermissionsExt;

    use oci_macvlan_macvlan::ErrorKind;

    use super::*;

    fn ctx(dir: &Path, host_id: Option<&str>) -> HostStores {
        HostStores::new(dir, &dir.join("run"), host_id.map(str::to_owned))
    }

    #[test]
    fn the_file_is_made_once_0600_with_the_given_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        // A command that only reads makes no file.
        let read = ctx(dir.path(), Some("hostA")).identity(false).unwrap();
        assert_eq!((read.id.as_str(), read.proof), ("hostA", None));
        assert!(!path.exists());

        let first = ctx(dir.path(), Some("hostA")).identity(true).unwrap();
        assert_eq!(first.id, "hostA");
        let meta = fs::symlink_metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
        let text = fs::read_to_string(&path).unwrap();
        let stored: Stored = serde_json::from_str(&text).unwrap();
        assert_eq!(stored.id, "hostA");
        assert_eq!(stored.secret.len(), 64);
        // The proof is a hash, never the secret.
        assert!(!first.proof.as_deref().unwrap().contains(&stored.secret));

        // Without the flag (the gc timer), and again with it: the same id and proof, the
        // file untouched.
        for given in [None, Some("hostA")] {
            let again = ctx(dir.path(), given).identity(true).unwrap();
            assert_eq!(
                (again.id, again.proof),
                (first.id.clone(), first.proof.clone())
            );
        }
        assert_eq!(fs::read_to_string(&path).unwrap(), text);
        assert_eq!(ctx(dir.path(), None).host_id().unwrap(), "hostA");
    }

    #[test]
    fn an_override_that_disagrees_is_refused_naming_both_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        ctx(dir.path(), Some("hostA")).identity(true).unwrap();
        for make in [false, true] {
            let err = ctx(dir.path(), Some("hostB")).identity(make).unwrap_err();
            let line = err.to_string();
            assert!(
                line.contains("hostB")
                    && line.contains("hostA")
                    && line.contains(&dir.path().join(FILE).display().to_string()),
                "{line}"
            );
            assert_eq!(err.kind(), ErrorKind::Invalid);
        }
    }

    #[test]
    fn a_file_others_may_read_or_that_is_not_an_identity_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let good = format!("{{\"id\":\"hostA\",\"secret\":\"{}\"}}", "ab".repeat(32));
        for (text, mode, why) in [
            (good.as_str(), 0o644, "chmod 600"),
            ("{\"id\":\"a/b\",\"secret\":\"00\"}", 0o600, "it is not"),
            ("not json", 0o600, "it is not"),
        ] {
            fs::write(&path, text).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            let err = ctx(dir.path(), None).identity(true).unwrap_err();
            let line = oci_macvlan_macvlan::one_line(&err);
            assert!(line.contains(why), "{line}");
            assert_eq!(err.kind(), ErrorKind::System);
            // Never replaced by a new one.
            assert_eq!(fs::read_to_string(&path).unwrap(), text);
        }
    }

    #[test]
    fn host_ids_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let id = ctx(dir.path(), Some("hostA.lan-1_b")).host_id().unwrap();
        assert_eq!(id, "hostA.lan-1_b");
        for bad in ["", "a/b", "a b", &"x".repeat(65), "é"] {
            let err = ctx(dir.path(), Some(bad)).host_id().unwrap_err();
            assert!(
                err.to_string().starts_with("invalid host id ")
                    && err.to_string().contains("(from --host-id)"),
                "{err}"
            );
            assert_eq!(err.kind(), ErrorKind::Invalid);
        }
    }
}
