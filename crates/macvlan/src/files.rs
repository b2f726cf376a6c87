//! Atomic file writes: a reader sees the old file or the new one, never a torn one.

use std::{
    fs::{self, File},
    io::{self, Write},
    path::{Path, PathBuf},
};

use crate::{Error, Result};

/// Temporary files are `.NAME.tmp-PID`: the pid tells whether their writer may still run.
const TEMP_MARK: &str = ".tmp-";

/// Writes `contents` to `path` through a temporary file in the same directory. With
/// `replace == false` (network definitions), the file is made durable before it is put in
/// place, and an existing `path` is an `io::ErrorKind::AlreadyExists` error and is left untouched
/// (`link(2)` never replaces). With `replace == true` (endpoint records in the state dir; also
/// `install`'s hooks.d file) it is not flushed: a process killed after the rename leaves it in
/// the page cache, but after a power loss it may be empty. A record describes containers of one
/// boot, and a hook must not wait for the disk.
pub fn write_atomic(path: &Path, contents: &[u8], replace: bool) -> Result<()> {
    let wrap = |source: io::Error| Error::WriteFile {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(wrap)?;
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{file_name}{TEMP_MARK}{}", std::process::id()));
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(contents)?;
        if replace {
            fs::rename(&tmp, path)
        } else {
            file.sync_all()?;
            fs::hard_link(&tmp, path)
        }
    })();
    // After a rename the temporary name is gone already; after link, or an error, remove it.
    let _ = fs::remove_file(&tmp);
    result.map_err(wrap)
}

/// The stems of the `*.json` files in `dir` (temporary `.name…` files excluded), sorted. A
/// missing directory holds none. Errors come back as `wrap(dir, error)`.
pub(crate) fn json_stems(
    dir: &Path,
    wrap: impl Fn(PathBuf, io::Error) -> Error,
) -> Result<Vec<String>> {
    stems(dir, ".json", wrap)
}

/// The stems of the files in `dir` named `*SUFFIX` (hidden files excluded), sorted.
pub(crate) fn stems(
    dir: &Path,
    suffix: &str,
    wrap: impl Fn(PathBuf, io::Error) -> Error,
) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(wrap(dir.to_path_buf(), err)),
    };
    let mut stems = Vec::new();
    for entry in entries {
        let name = entry
            .map_err(|err| wrap(dir.to_path_buf(), err))?
            .file_name();
        if let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(suffix)) {
            if !stem.starts_with('.') {
                stems.push(stem.to_owned());
            }
        }
    }
    stems.sort();
    Ok(stems)
}

/// Removes the temporary files in `dir` whose writer is gone (a process killed between creating
/// and renaming one). A file whose pid was reused by another process is left for a later run.
pub(crate) fn remove_stale_temps(dir: &Path) -> Result<()> {
    let wrap = |source: io::Error| Error::WriteFile {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(wrap(err)),
    };
    for entry in entries {
        let name = entry.map_err(wrap)?.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.starts_with('.'))
            .and_then(|n| n.rsplit_once(TEMP_MARK))
            .and_then(|(_, pid)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            match fs::remove_file(dir.join(&name)) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(wrap(err)),
                _ => {}
            }
        }
    }
    Ok(())
}
