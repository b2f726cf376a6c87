//! Text generated from the CLI's own definition, so it never drifts from it: shell completions
//! (`clap_complete`, clap's own generator) and man pages (`clap_mangen`, likewise), one page per
//! command and subcommand as git and podman ship them
//! (`oci-macvlan-network-create.1`); and the podman hooks.d file a package installs.

use std::{fs, path::Path};

use clap::CommandFactory;
use clap_complete::Shell;

use crate::{
    cli::{self, Cli},
    error::{Error, Result},
    install,
};

pub fn completion(shell: Shell) -> Result<()> {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "oci-macvlan", &mut out);
    crate::network_cmd::print(format_args!("{}", String::from_utf8_lossy(&out)))
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
    clap_mangen::generate_to(Cli::command(), &man).map_err(failed(&man))?;

    let completions = dir.join("completions");
    fs::create_dir_all(&completions).map_err(failed(&completions))?;
    for (shell, name) in [
        (Shell::Bash, "oci-macvlan.bash"),
        (Shell::Zsh, "_oci-macvlan"),
        (Shell::Fish, "oci-macvlan.fish"),
    ] {
        let path = completions.join(name);
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "oci-macvlan", &mut out);
        fs::write(&path, out).map_err(failed(&path))?;
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
