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

    /// The text `man -l` renders of `page`, without overstrike.
    fn rendered(page: &Path) -> String {
        let out = std::process::Command::new("man")
            .arg("-l")
            .arg(page)
            .env("MANWIDTH", "200")
            .env("MAN_KEEP_FORMATTING", "0")
            .output()
            .expect("man -l (apt-get install man-db)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let mut plain = String::new();
        for c in text.chars() {
            if c == '\u{8}' {
                plain.pop();
            } else {
                plain.push(c);
            }
        }
        plain
    }

    /// The body of section `name` in a rendered page (to the next heading).
    fn section<'a>(text: &'a str, name: &str) -> Option<&'a str> {
        let start = text.find(&format!("\n{name}\n"))? + name.len() + 2;
        let rest = &text[start..];
        let end = rest
            .match_indices('\n')
            .map(|(i, _)| i + 1)
            .find(|i| rest[*i..].starts_with(|c: char| c.is_ascii_uppercase()))
            .unwrap_or(rest.len());
        Some(&rest[..end])
    }

    /// Every page, rendered by man itself, has a DESCRIPTION beyond its one-line summary,
    /// OPTIONS, EXAMPLES, EXIT STATUS (README's table) and FILES; the hook's shows the wiring
    /// of a config.json.
    #[test]
    fn man_pages_have_every_section() {
        let dir = tempfile::tempdir().unwrap();
        dist_files(dir.path()).unwrap();
        let mut pages: Vec<_> = fs::read_dir(dir.path().join("man"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        pages.sort();
        assert!(pages.len() >= 15, "{pages:?}");
        for page in &pages {
            let text = rendered(page);
            let name = page.display();
            for heading in [
                "NAME",
                "SYNOPSIS",
                "DESCRIPTION",
                "OPTIONS",
                "EXAMPLES",
                "EXIT STATUS",
                "FILES",
            ] {
                assert!(
                    section(&text, heading).is_some(),
                    "{name}: no {heading}:\n{text}"
                );
            }
            let summary = section(&text, "NAME").unwrap().trim().len();
            let description = section(&text, "DESCRIPTION").unwrap().trim();
            assert!(
                description.len() > summary + 60,
                "{name}: DESCRIPTION is no more than its summary: {description}"
            );
            let examples = section(&text, "EXAMPLES").unwrap();
            assert!(
                examples.contains("oci-macvlan") || examples.contains("oci\u{2010}macvlan"),
                "{name}: {examples}"
            );
            let status = section(&text, "EXIT STATUS").unwrap();
            for (code, _) in crate::man_extra::EXIT_STATUS {
                assert!(
                    status.contains(&format!("{code} ")),
                    "{name}: {code}: {status}"
                );
            }
            assert!(
                section(&text, "FILES")
                    .unwrap()
                    .contains("/etc/oci-macvlan/networks/"),
                "{name}"
            );
        }
        let hook = rendered(&dir.path().join("man/oci-macvlan-hook.1"));
        let examples = section(&hook, "EXAMPLES").unwrap();
        for wiring in [
            "\"createRuntime\"",
            "\"poststop\"",
            "\"oci-macvlan.networks\"",
            "\"hook\"]",
        ] {
            assert!(examples.contains(wiring), "{wiring}: {examples}");
        }
    }

    /// README's exit code table and the man pages' EXIT STATUS say the same codes and meanings.
    #[test]
    fn the_exit_status_is_readmes_table() {
        let readme = include_str!("../../README.md");
        let table = &readme[readme.find("## Exit codes").unwrap()..];
        let rows: Vec<(u8, &str)> = table
            .lines()
            .filter_map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                Some((cells.get(1)?.parse().ok()?, *cells.get(2)?))
            })
            .collect();
        assert_eq!(rows, crate::man_extra::EXIT_STATUS);
    }

    /// A command's help lists its own options first, then the global ones under their heading;
    /// `-o` names every driver option; `rm`'s argument is described.
    #[test]
    fn help_puts_a_commands_own_flags_first() {
        use clap::CommandFactory;
        let mut cli = cli::Cli::command();
        cli.build();
        let network = cli.find_subcommand_mut("network").unwrap();
        let help = network
            .find_subcommand_mut("create")
            .unwrap()
            .render_long_help()
            .to_string();
        let at = |s: &str| help.find(s).unwrap_or_else(|| panic!("{s}: {help}"));
        assert!(
            at("--subnet") < at("Global Options:") && at("Global Options:") < at("--config-dir"),
            "{help}"
        );
        for option in [
            "parent=",
            "mtu=",
            "host_access=",
            "macvlan_mode=",
            "source_macs=",
            "ipvlan_mode=",
            "ipvlan_flag=",
        ] {
            assert!(help.contains(option), "{option}: {help}");
        }
        let rm = network
            .find_subcommand_mut("rm")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(
            rm.contains("<NETWORK>...") && rm.contains("a full id or the start of one id"),
            "{rm}"
        );
    }
}
