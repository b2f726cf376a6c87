//! `oci-macvlan bundle`: wires a runc or crun bundle's `config.json` without editing JSON by
//! hand: the hook at `createRuntime` and `poststop` (this binary, with this invocation's dirs in
//! its args, since runtimes may clear a hook's environment) and the annotations that opt the
//! container in. Run again, it replaces what it wrote; `--remove` takes it all out.

use std::{
    collections::HashMap,
    fs::File,
    io::{self, Read, Write},
    os::fd::OwnedFd,
    path::{Path, PathBuf},
};

use nix::{
    errno::Errno,
    fcntl::OFlag,
    sys::stat::{FileStat, Mode, SFlag, fchmod, fstat},
    unistd::{Gid, Uid, UnlinkatFlags},
};
use oci_macvlan_macvlan as macvlan;
use serde_json::{Map, Value};

use crate::{
    Context, annotations,
    cli::BundleArgs,
    error::{Error, Result},
    install,
    network_cmd::print,
    oci,
};

/// The stages the hook is listed at.
const STAGES: [&str; 2] = ["createRuntime", "poststop"];

pub fn run(ctx: &Context, args: &BundleArgs) -> Result<()> {
    // The bundle's directory is opened once, and config.json read and replaced through that
    // handle: the path (often in a directory a less trusted user owns) is resolved once, so a
    // directory swapped meanwhile can neither feed this run another file nor take its write.
    let (dir_path, name) = if args.path.is_dir() {
        (args.path.clone(), "config.json".to_owned())
    } else {
        let name = args
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("config.json")
            .to_owned();
        let dir = args.path.parent().filter(|p| !p.as_os_str().is_empty());
        (dir.unwrap_or(Path::new(".")).to_path_buf(), name)
    };
    let path = dir_path.join(&name);
    let dir = BundleDir::open(&dir_path, &path)?;
    let (bytes, original) = dir.read(&name)?;
    let mut config: Value =
        serde_json::from_slice(&bytes).map_err(|source| Error::ParseConfig {
            path: path.clone(),
            source,
        })?;
    let Some(root) = config.as_object_mut() else {
        return Err(Error::BundleNotObject { path });
    };
    let binary = install::binary(args.binary.as_deref())?;
    let (config_dir, state_dir) = ctx.absolute_dirs()?;
    let entry = install::hook_entry(&binary, &config_dir, &state_dir);
    // Ours: an entry that runs `oci-macvlan … hook`, wherever its binary is.
    let ours = |hook: &Value| hook["args"].get(0).and_then(Value::as_str) == Some("oci-macvlan");
    let hooks = object(root, "hooks", &path)?;
    for stage in STAGES {
        let list = hooks
            .entry(stage)
            .or_insert_with(|| Value::Array(Vec::new()));
        let Some(list) = list.as_array_mut() else {
            return Err(Error::BundleNotObject { path });
        };
        list.retain(|hook| !ours(hook));
        if !args.remove {
            list.push(entry.clone());
        }
    }
    hooks.retain(|_, list| list.as_array().is_none_or(|l| !l.is_empty()));
    if hooks.is_empty() {
        root.remove("hooks");
    }
    let annotations = object(root, "annotations", &path)?;
    annotations.retain(|key, _| !key.starts_with(annotations::PREFIX));
    if !args.remove {
        for (key, value) in requested(args)? {
            annotations.insert(key, Value::String(value));
        }
    }
    if annotations.is_empty() {
        root.remove("annotations");
    }
    let mut text = serde_json::to_string_pretty(&config).unwrap_or_default();
    text.push('\n');
    dir.replace(&name, text.as_bytes(), &original)?;
    print(format_args!("{}\n", path.display()))
}

/// A bundle's directory, open: config.json is read and replaced through it (see [`run`]).
struct BundleDir {
    fd: OwnedFd,
    /// config.json's path, for errors.
    path: PathBuf,
}

impl BundleDir {
    fn open(dir: &Path, path: &Path) -> Result<Self> {
        let fd = nix::fcntl::open(
            dir,
            OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| read_error(path, errno))?;
        Ok(Self {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// `name`'s bytes and its metadata: a regular file (never through a symlink) of at most
    /// [`oci::MAX_CONFIG`] bytes, opened without blocking (a FIFO is refused, not waited on).
    fn read(&self, name: &str) -> Result<(Vec<u8>, FileStat)> {
        let fd = nix::fcntl::openat(
            &self.fd,
            name,
            OFlag::O_RDONLY
                | OFlag::O_NOFOLLOW
                | OFlag::O_NONBLOCK
                | OFlag::O_NOCTTY
                | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| match errno {
            Errno::ELOOP => Error::BundleSymlink {
                path: self.path.clone(),
            },
            errno => read_error(&self.path, errno),
        })?;
        let stat = fstat(&fd).map_err(|errno| read_error(&self.path, errno))?;
        if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
            return Err(Error::ConfigNotFile {
                path: self.path.clone(),
                what: "not a regular file",
            });
        }
        let mut bytes = Vec::new();
        File::from(fd)
            .take(oci::MAX_CONFIG + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| Error::ReadConfig {
                path: self.path.clone(),
                source,
            })?;
        if bytes.len() as u64 > oci::MAX_CONFIG {
            return Err(Error::ConfigTooLarge {
                path: self.path.clone(),
            });
        }
        Ok((bytes, stat))
    }

    /// Replaces `name` with `contents`: a temporary file in the same directory, given the
    /// original's owner and mode (a private config.json stays private, and its owner's), then
    /// renamed over it.
    fn replace(&self, name: &str, contents: &[u8], original: &FileStat) -> Result<()> {
        let tmp = format!(".{name}.oci-macvlan-{}", std::process::id());
        let write_error = |source: io::Error| Error::WriteBundle {
            path: self.path.clone(),
            source,
        };
        let errno_error = |errno: Errno| write_error(io::Error::from(errno));
        let _ = nix::unistd::unlinkat(&self.fd, tmp.as_str(), UnlinkatFlags::NoRemoveDir);
        let mode = Mode::from_bits_truncate(original.st_mode & 0o7777);
        let fd = nix::fcntl::openat(
            &self.fd,
            tmp.as_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(errno_error)?;
        let written = (|| {
            nix::unistd::fchown(
                &fd,
                Some(Uid::from_raw(original.st_uid)),
                Some(Gid::from_raw(original.st_gid)),
            )
            .map_err(errno_error)?;
            fchmod(&fd, mode).map_err(errno_error)?;
            let mut file = File::from(fd);
            file.write_all(contents).map_err(write_error)?;
            file.sync_all().map_err(write_error)?;
            nix::fcntl::renameat(&self.fd, tmp.as_str(), &self.fd, name).map_err(errno_error)
        })();
        if written.is_err() {
            let _ = nix::unistd::unlinkat(&self.fd, tmp.as_str(), UnlinkatFlags::NoRemoveDir);
        }
        written
    }
}

fn read_error(path: &Path, errno: Errno) -> Error {
    Error::ReadConfig {
        path: path.to_path_buf(),
        source: io::Error::from(errno),
    }
}

/// The annotations `args` ask for, checked as the hook will read them.
fn requested(args: &BundleArgs) -> Result<Vec<(String, String)>> {
    let networks: Vec<&str> = args
        .networks
        .iter()
        .flat_map(|n| n.split(','))
        .map(str::trim)
        .collect();
    if networks.is_empty() {
        return Err(Error::BundleNoNetwork);
    }
    for name in &networks {
        macvlan::check_network_name(name)?;
    }
    let mut out = vec![(annotations::NETWORKS.to_owned(), networks.join(","))];
    for (key, value) in [("ip", &args.ip), ("ip6", &args.ip6), ("mac", &args.mac)] {
        if let Some(value) = value {
            out.push((format!("{}{key}", annotations::PREFIX), value.clone()));
        }
    }
    let map: HashMap<String, String> = out.iter().cloned().collect();
    annotations::parse(&map)?;
    Ok(out)
}

/// The object `root[key]`, made empty when missing.
fn object<'a>(
    root: &'a mut Map<String, Value>,
    key: &str,
    path: &Path,
) -> Result<&'a mut Map<String, Value>> {
    root.entry(key)
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| Error::BundleNotObject {
            path: PathBuf::from(path),
        })
}
