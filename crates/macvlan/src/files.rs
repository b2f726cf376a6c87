//! Atomic file writes: a reader sees the old file or the new one, never a torn one.

use std::{
    fs::{self, File},
    io::{self, Write},
    path::{Path, PathBuf},
};

use crate::{Error, Result};

/// Writes `contents` to `path` through a temporary file in the same directory, made durable
/// before it is put in place. With `replace == false`, an existing `path` is an
/// `io::ErrorKind::AlreadyExists` error and is left untouched (`link(2)` never replaces).
pub(crate) fn write_atomic(path: &Path, contents: &[u8], replace: bool) -> Result<()> {
    let wrap = |source: io::Error| Error::WriteFile {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(wrap)?;
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        if replace {
            fs::rename(&tmp, path)
        } else {
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
        if let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".json")) {
            if !stem.starts_with('.') {
                stems.push(stem.to_owned());
            }
        }
    }
    stems.sort();
    Ok(stems)
}
