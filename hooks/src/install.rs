//! `oci-macvlan install`: the podman hooks.d file.

use std::path::{Path, PathBuf};

use oci_macvlan_macvlan as macvlan;
use serde_json::{Value, json};

use crate::{
    Context, annotations,
    cli::InstallArgs,
    error::{Error, Result},
    network_cmd::print,
};

/// The file's name in the hooks directory.
pub const FILE_NAME: &str = "oci-macvlan.json";

pub fn run(ctx: &Context, args: &InstallArgs) -> Result<()> {
    let binary = binary(args.binary.as_deref())?;
    let (config_dir, state_dir) = ctx.absolute_dirs()?;
    let hook = hook_file(&binary, &config_dir, &state_dir);
    let mut text = serde_json::to_string_pretty(&hook).unwrap_or_default();
    text.push('\n');
    let path = args.hooks_dir.join(FILE_NAME);
    // Podman may read the directory at any moment: it sees the old file or the new one.
    macvlan::write_atomic(
        &path,
        text.as_bytes(),
        macvlan::Put::Replace,
        macvlan::Durability::Durable,
    )?;
    print(format_args!("{}\n", path.display()))
}

/// The binary a hook runs: `given` (an absolute path to a file), or this one.
pub fn binary(given: Option<&Path>) -> Result<PathBuf> {
    match given {
        Some(path) => {
            check_binary(path)?;
            Ok(path.to_path_buf())
        }
        None => std::env::current_exe().map_err(Error::CurrentExe),
    }
}

impl Context {
    /// The config and state dirs as absolute paths: what a hook's args must name, run from
    /// wherever the runtime runs it.
    pub fn absolute_dirs(&self) -> Result<(PathBuf, PathBuf)> {
        let absolute = |path: &Path| {
            std::path::absolute(path).map_err(|source| Error::AbsolutePath {
                path: path.to_path_buf(),
                source,
            })
        };
        Ok((absolute(&self.config_dir)?, absolute(&self.state_dir)?))
    }
}

fn check_binary(path: &Path) -> Result<()> {
    let reason = if !path.is_absolute() {
        Some("the runtime needs an absolute path")
    } else if !path.is_file() {
        Some("no such file")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidBinary {
            path: path.to_path_buf(),
            reason,
        }),
        None => Ok(()),
    }
}

/// oci-hooks(5), version 1.0.0: run at createRuntime and poststop, only for containers that carry
/// the networks annotation. The directories are given as flags because podman runs poststop with
/// an empty environment.
pub fn hook_file(binary: &Path, config_dir: &Path, state_dir: &Path) -> Value {
    let key = format!("^{}$", annotations::NETWORKS.replace('.', "\\."));
    json!({
        "version": "1.0.0",
        "hook": hook_entry(binary, config_dir, state_dir),
        "when": {"annotations": {key: ".+"}},
        "stages": ["createRuntime", "poststop"],
    })
}

/// One hook as the OCI runtime spec lists it (`config.json`'s `hooks`, a hooks.d file's `hook`):
/// this binary, run as `oci-macvlan --config-dir D --state-dir S hook`.
pub fn hook_entry(binary: &Path, config_dir: &Path, state_dir: &Path) -> Value {
    let args: Vec<String> = [
        "oci-macvlan".into(),
        "--config-dir".into(),
        config_dir.display().to_string(),
        "--state-dir".into(),
        state_dir.display().to_string(),
        "hook".into(),
    ]
    .into();
    json!({"path": binary, "args": args})
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn hook_file_is_oci_hooks_1_0_0() {
        let file = hook_file(
            &PathBuf::from("/usr/local/bin/oci-macvlan"),
            Path::new("/etc/oci-macvlan"),
            Path::new("/run/oci-macvlan"),
        );
        insta::assert_json_snapshot!(file, @r#"
        {
          "version": "1.0.0",
          "hook": {
            "path": "/usr/local/bin/oci-macvlan",
            "args": [
              "oci-macvlan",
              "--config-dir",
              "/etc/oci-macvlan",
              "--state-dir",
              "/run/oci-macvlan",
              "hook"
            ]
          },
          "when": {
            "annotations": {
              "^oci-macvlan\\.networks$": ".+"
            }
          },
          "stages": [
            "createRuntime",
            "poststop"
          ]
        }
        "#);
    }
}
