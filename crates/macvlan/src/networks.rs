use std::{
    fs, io,
    path::{Path, PathBuf},
};

use crate::{
    Error, Network, Result,
    files::{json_stems, write_atomic},
    lock::FileLock,
    network::check_network_name,
};

/// The network definitions of a host: one JSON file per network in `<config-dir>/networks/`.
#[derive(Debug, Clone)]
pub struct Networks {
    dir: PathBuf,
}

impl Networks {
    pub fn new(config_dir: &Path) -> Self {
        Self {
            dir: config_dir.join("networks"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, name: &str) -> Result<PathBuf> {
        check_network_name(name)?;
        Ok(self.dir.join(format!("{name}.json")))
    }

    /// Stores a new definition; fails if the name is taken, even by a concurrent `create`.
    pub fn create(&self, network: &Network) -> Result<()> {
        let path = self.path_of(&network.name)?;
        let mut json =
            serde_json::to_vec_pretty(network).map_err(|source| Error::ParseNetwork {
                path: path.clone(),
                source,
            })?;
        json.push(b'\n');
        match write_atomic(&path, &json, false) {
            Err(Error::WriteFile { source, .. })
                if source.kind() == io::ErrorKind::AlreadyExists =>
            {
                Err(Error::NetworkExists(network.name.clone()))
            }
            other => other,
        }
    }

    pub fn load(&self, name: &str) -> Result<Network> {
        let path = self.path_of(name)?;
        let bytes = fs::read(&path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => Error::NetworkNotFound(name.to_owned()),
            _ => Error::ReadNetwork {
                path: path.clone(),
                source,
            },
        })?;
        serde_json::from_slice(&bytes).map_err(|source| Error::ParseNetwork { path, source })
    }

    /// Every definition, sorted by name. A missing directory is an empty list.
    pub fn list(&self) -> Result<Vec<Network>> {
        json_stems(&self.dir, |path, source| Error::ReadNetwork {
            path,
            source,
        })?
        .iter()
        .map(|name| self.load(name))
        .collect()
    }

    /// Whether a definition of that name exists.
    pub fn exists(&self, name: &str) -> Result<bool> {
        let path = self.path_of(name)?;
        path.try_exists()
            .map_err(|source| Error::ReadNetwork { path, source })
    }

    /// Serialises `network create` and `network rm` on this host (a `flock` on
    /// `networks/.lock`), so that two of them never both decide a shared parent is someone
    /// else's to delete, or that a parent is free for passthru.
    pub(crate) fn lock(&self) -> Result<FileLock> {
        FileLock::acquire(&self.dir.join(".lock"))
    }

    /// Deletes a definition. The caller checks that no endpoint uses it.
    pub fn remove(&self, name: &str) -> Result<()> {
        let path = self.path_of(name)?;
        fs::remove_file(&path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => Error::NetworkNotFound(name.to_owned()),
            _ => Error::WriteFile { path, source },
        })
    }
}
