//! Text generated from the CLI's own definition, so it never drifts from it: shell completions
//! (`clap_complete`, clap's own generator) and man pages (`clap_mangen`, likewise), one page per
//! command and subcommand as git and podman ship them (`oci-macvlan-network-create.1`), both
//! made by build.rs at build time (the generators are not linked in); and the podman hooks.d
//! file a package installs.

use std::{fs, path::Path};

use crate::{
    cli::{self, Shell},
    error::{Error, Result},
    install,
};

/// The completion script of `shell`.
fn completion_text(shell: Shell) -> &'static str {
    match shell {
        Shell::Bash => include_str!(concat!(env!("OUT_DIR"), "/completion.bash")),
        Shell::Elvish => include_str!(concat!(env!("OUT_DIR"), "/completion.elvish")),
        Shell::Fish => include_str!(concat!(env!("OUT_DIR"), "/completion.fish")),
        Shell::Powershell => include_str!(concat!(env!("OUT_DIR"), "/completion.powershell")),
        Shell::Zsh => include_str!(concat!(env!("OUT_DIR"), "/completion.zsh")),
    }
}

/// Every man page as (file name, text).
fn man_pages() -> impl Iterator<Item = (&'static str, &'static str)> {
    let bundle = include_str!(concat!(env!("OUT_DIR"), "/man.pages"));
    let mut parts = bundle.split('\0');
    std::iter::from_fn(move || Some((parts.next()?, parts.next()?)))
}

pub fn completion(shell: Shell) -> Result<()> {
    crate::network_cmd::print(format_args!("{}", completion_text(shell)))
}

/// Where a package puts the binary: what its hooks.d file runs.
pub const PACKAGED_BINARY: &str = "/usr/bin/oci-macvlan";

/// Writes, under `dir`: `man/oci-macvlan.1` and a page per visible subcommand
/// (`oci-macvlan-network-ls.1`); `completions/oci-macvlan.bash`, `_oci-macvlan` (zsh) and
/// `oci-macvlan.fish`; `hooks.d/oci-macvlan.json` for [`PACKAGED_BINARY`] and the default dirs.
pub fn dist_files(dir: &Path) -> Result<()> {
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Generate { path, source }
    };
    let man = dir.join("man");
    fs::create_dir_all(&man).map_err(failed(&man))?;
    for (name, text) in man_pages() {
        let path = man.join(name);
        fs::write(&path, text).map_err(failed(&path))?;
    }

    let completions = dir.join("completions");
    fs::create_dir_all(&completions).map_err(failed(&completions))?;
    for (shell, name) in [
        (Shell::Bash, "oci-macvlan.bash"),
        (Shell::Zsh, "_oci-macvlan"),
        (Shell::Fish, "oci-macvlan.fish"),
    ] {
        let path = completions.join(name);
        fs::write(&path, completion_text(shell)).map_err(failed(&path))?;
    }

    let hooks = dir.join("hooks.d");
    fs::create_dir_all(&hooks).map_err(failed(&hooks))?;
    let path = hooks.join(install::FILE_NAME);
    let file = install::hook_file(
        Path::new(PACKAGED_BINARY),
        Path::new(cli::CONFIG_DIR),
        Path::new(cli::STATE_DIR),
    );
    let mut text = serde_json::to_string_pretty(&file).unwrap_or_default();
    text.push('\n');
    fs::write(&path, text).map_err(failed(&path))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a package installs besides the binary, generated from the CLI: a page per command,
    /// the three shells' completions knowing the subcommands, and the hooks.d file for
    /// /usr/bin/oci-macvlan with the default dirs.
    #[test]
    fn dist_files_cover_every_command() {
        let dir = tempfile::tempdir().unwrap();
        dist_files(dir.path()).unwrap();
        for page in [
            "oci-macvlan.1",
            "oci-macvlan-network-ls.1",
            "oci-macvlan-network-connect.1",
            "oci-macvlan-network-prune.1",
            "oci-macvlan-gc.1",
        ] {
            let text = fs::read_to_string(dir.path().join("man").join(page)).unwrap();
            assert!(text.starts_with(".ie"), "{page}: {}", &text[..40]);
        }
        // Hidden commands get no page.
        assert!(!dir.path().join("man/oci-macvlan-dist-files.1").exists());
        for script in ["oci-macvlan.bash", "_oci-macvlan", "oci-macvlan.fish"] {
            let text = fs::read_to_string(dir.path().join("completions").join(script)).unwrap();
            assert!(
                text.contains("disconnect") && text.contains("prune"),
                "{script}"
            );
        }
        let hook: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.path().join("hooks.d/oci-macvlan.json")).unwrap())
                .unwrap();
        assert_eq!(hook["hook"]["path"], PACKAGED_BINARY);
        assert_eq!(hook["hook"]["args"][2], "/etc/oci-macvlan");
        assert_eq!(hook["hook"]["args"][4], "/run/oci-macvlan");
    }
}
