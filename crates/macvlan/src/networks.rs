use std::{
    fs, io,
    path::{Path, PathBuf},
};

use crate::{
    Error, Network, Result, StateError,
    files::{Durability, Put, json_stems, read_own, remove_stale_temps, write_atomic},
    lock::FileLock,
    network::check_network_name,
};

/// A shared hold on the network definitions (see [`Networks::hold`]), released on drop.
#[derive(Debug)]
pub struct NetworksHold(#[allow(dead_code)] FileLock);

/// The network definitions of a host: one JSON file per network in `<config-dir>/networks/`;
/// and those of networks removed with `rm -f` that left something in a store that did not
/// answer, in `<config-dir>/removed/` (kept until `gc` finds nothing of theirs left).
#[derive(Debug, Clone)]
pub struct Networks {
    dir: PathBuf,
    removed_dir: PathBuf,
}

impl Networks {
    /// The definitions under `config_dir`: `networks/<name>.json`, and what is kept of
    /// removed networks in `removed/`.
    pub fn new(config_dir: &Path) -> Self {
        Self {
            dir: config_dir.join("networks"),
            removed_dir: config_dir.join("removed"),
        }
    }

    fn path_of(&self, name: &str) -> Result<PathBuf> {
        check_network_name(name)?;
        Ok(self.dir.join(format!("{name}.json")))
    }

    /// Stores a new definition; fails if the name is taken, even by a concurrent `create`.
    pub fn create(&self, network: &Network) -> Result<()> {
        let path = self.path_of(&network.name)?;
        let json = definition_json(network, &path)?;
        match write_atomic(&path, &json, Put::CreateNew, Durability::Durable) {
            Err(Error::State(StateError::WriteFile { source, .. }))
                if source.kind() == io::ErrorKind::AlreadyExists =>
            {
                Err(Error::NetworkExists(network.name.clone()))
            }
            other => other,
        }
    }

    /// The definition of the network named `name` ([`Error::NetworkNotFound`] when there is
    /// none).
    pub fn load(&self, name: &str) -> Result<Network> {
        let path = self.path_of(name)?;
        let bytes = match read_own(&path) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Err(Error::NetworkNotFound(name.to_owned())),
            Err(source) => return Err(Error::from(StateError::ReadNetwork { path, source })),
        };
        serde_json::from_slice(&bytes)
            .map_err(|source| Error::from(StateError::ParseNetwork { path, source }))
    }

    /// The name of the network `given` names, as Docker reads a network argument: a full id,
    /// else a name, else the start of exactly one network's id (so a network named like
    /// another's id never takes its place). A prefix of several ids is refused, naming them;
    /// nothing matching is [`Error::NetworkNotFound`]. A full id is 64 hex digits: only such a
    /// string has the definitions read before the name is tried.
    pub fn resolve(&self, given: &str) -> Result<String> {
        let hex = !given.is_empty() && given.bytes().all(|b| b.is_ascii_hexdigit());
        if given.len() == 64
            && hex
            && let Some(net) = self.list()?.into_iter().find(|n| n.id == given)
        {
            return Ok(net.name);
        }
        if check_network_name(given).is_ok() && self.exists(given)? {
            return Ok(given.to_owned());
        }
        if !hex {
            return Err(Error::NetworkNotFound(given.to_owned()));
        }
        let all = self.list()?;
        let mut matching = all.into_iter().filter(|n| n.id.starts_with(given));
        match (matching.next(), matching.next()) {
            (None, _) => Err(Error::NetworkNotFound(given.to_owned())),
            (Some(one), None) => Ok(one.name),
            (Some(first), Some(second)) => {
                let mut names = vec![first.name, second.name];
                names.extend(matching.map(|n| n.name));
                Err(Error::AmbiguousNetwork {
                    prefix: given.to_owned(),
                    names: names.join(", "),
                })
            }
        }
    }

    /// Every definition, sorted by name. A missing directory is an empty list.
    pub fn list(&self) -> Result<Vec<Network>> {
        json_stems(&self.dir, |path, source| {
            Error::from(StateError::ReadNetwork { path, source })
        })?
        .iter()
        .map(|name| self.load(name))
        .collect()
    }

    /// Whether a definition of that name exists.
    pub fn exists(&self, name: &str) -> Result<bool> {
        let path = self.path_of(name)?;
        path.try_exists()
            .map_err(|source| Error::from(StateError::ReadNetwork { path, source }))
    }

    /// Serialises `network create` and `network rm` on this host (a `flock` on
    /// `networks/.lock`), so that two of them never both decide a shared parent is someone
    /// else's to delete, or that a parent is free for passthru.
    pub(crate) fn lock(&self) -> Result<FileLock> {
        FileLock::acquire(&self.dir.join(".lock"))
    }

    /// The hold an attach keeps on the definitions it uses, from before it reads them until it
    /// is done: `network rm` (which takes [`Self::lock`]) waits for it, so a network is never
    /// removed between an attach's reading of its definition and its lease (which `rm` then
    /// sees, and refuses). Attaches share it and never wait for each other.
    pub fn hold(&self) -> Result<NetworksHold> {
        FileLock::acquire_shared(&self.dir.join(".lock")).map(NetworksHold)
    }

    /// [`Self::hold`], waiting at most `wait` for a `network create` or `rm` that has the
    /// definitions: `None` if it still has them then (a caller that must answer in time, as
    /// CNI's STATUS, says "try again later").
    pub fn hold_within(&self, wait: std::time::Duration) -> Result<Option<NetworksHold>> {
        let path = self.dir.join(".lock");
        let deadline = std::time::Instant::now() + wait;
        loop {
            if let Some(lock) = FileLock::try_acquire_shared(&path)? {
                return Ok(Some(NetworksHold(lock)));
            }
            if std::time::Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Removes the `.NAME.json.tmp-PID` files of `network create`s killed half-way, unless their
    /// writer still runs; returns how many.
    pub fn remove_stale_temps(&self) -> Result<usize> {
        Ok(remove_stale_temps(&self.dir)? + remove_stale_temps(&self.removed_dir)?)
    }

    /// Keeps the definition of `network`, which `rm -f` removes while its store does not
    /// answer, in `<config-dir>/removed/NAME.json` (written as definitions are): what its
    /// containers hold there keeps its subnets and name taken ([`Self::removed`]).
    pub(crate) fn keep_removed(&self, network: &Network) -> Result<()> {
        check_network_name(&network.name)?;
        let path = self.removed_dir.join(format!("{}.json", network.name));
        let json = definition_json(network, &path)?;
        write_atomic(&path, &json, Put::Replace, Durability::Durable)
    }

    /// The definitions [`Self::keep_removed`] kept, sorted by name. A missing directory is an
    /// empty list.
    pub fn removed(&self) -> Result<Vec<Network>> {
        let wrap = |path, source| Error::from(StateError::ReadNetwork { path, source });
        let mut removed = Vec::new();
        for name in json_stems(&self.removed_dir, wrap)? {
            let path = self.removed_dir.join(format!("{name}.json"));
            // One `gc` forgot since the listing is no more.
            let Some(bytes) = read_own(&path).map_err(|source| wrap(path.clone(), source))? else {
                continue;
            };
            removed.push(
                serde_json::from_slice(&bytes)
                    .map_err(|source| Error::from(StateError::ParseNetwork { path, source }))?,
            );
        }
        Ok(removed)
    }

    /// Forgets a removed network that [`Self::keep_removed`] kept (`gc`, once nothing of it is
    /// left). One already forgotten is no error.
    pub(crate) fn forget_removed(&self, name: &str) -> Result<()> {
        check_network_name(name)?;
        let path = self.removed_dir.join(format!("{name}.json"));
        match fs::remove_file(&path) {
            Err(source) if source.kind() != io::ErrorKind::NotFound => {
                Err(Error::from(StateError::WriteFile { path, source }))
            }
            _ => Ok(()),
        }
    }

    /// Deletes a definition. The caller checks that no endpoint uses it.
    pub fn remove(&self, name: &str) -> Result<()> {
        let path = self.path_of(name)?;
        fs::remove_file(&path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => Error::NetworkNotFound(name.to_owned()),
            _ => Error::from(StateError::WriteFile { path, source }),
        })
    }
}

/// A definition as its file holds it (`path` names it in an error): pretty JSON, a newline.
fn definition_json(network: &Network, path: &Path) -> Result<Vec<u8>> {
    let mut json = serde_json::to_vec_pretty(network).map_err(|source| {
        Error::from(StateError::SerializeNetwork {
            path: path.to_path_buf(),
            source,
        })
    })?;
    json.push(b'\n');
    Ok(json)
}
