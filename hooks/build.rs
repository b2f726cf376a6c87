//! Shell completions and man pages, generated from the CLI's own definition (`src/cli.rs`,
//! compiled into this script too) at build time, so that they never drift from it and their
//! generators (clap_complete, clap_mangen, roff) are not linked into the binary: every hook is
//! a static PIE that relocates its whole image at each start. The binary carries the generated
//! text (`completion SHELL` prints it, `dist-files` writes it).
//!
//! In `OUT_DIR`: `completion.SHELL` for each shell, and `man.pages`, every page as
//! `NAME\0TEXT\0` (one string, so the binary needs no table of pointers to relocate).

#[allow(dead_code)]
#[path = "src/cli.rs"]
mod cli;

use std::{fs, path::PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

fn main() -> std::io::Result<()> {
    println!("cargo::rerun-if-changed=src/cli.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for (shell, name) in [
        (Shell::Bash, "bash"),
        (Shell::Elvish, "elvish"),
        (Shell::Fish, "fish"),
        (Shell::PowerShell, "powershell"),
        (Shell::Zsh, "zsh"),
    ] {
        let mut text = Vec::new();
        clap_complete::generate(shell, &mut cli::Cli::command(), "oci-macvlan", &mut text);
        fs::write(out.join(format!("completion.{name}")), text)?;
    }

    let man = out.join("man");
    let _ = fs::remove_dir_all(&man);
    fs::create_dir_all(&man)?;
    clap_mangen::generate_to(cli::Cli::command(), &man)?;
    let mut pages: Vec<_> = fs::read_dir(&man)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    pages.sort();
    let mut bundle = Vec::new();
    for page in pages {
        let text = fs::read(&page)?;
        assert!(!text.contains(&0), "{} holds a NUL", page.display());
        let name = page.file_name().unwrap_or_default().to_string_lossy();
        bundle.extend_from_slice(name.as_bytes());
        bundle.push(0);
        bundle.extend_from_slice(&text);
        bundle.push(0);
    }
    fs::write(out.join("man.pages"), bundle)
}
