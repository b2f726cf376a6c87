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
