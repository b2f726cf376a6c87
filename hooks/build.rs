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
#[path = "src/man_extra.rs"]
mod man_extra;

use std::{fs, path::PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

fn main() -> std::io::Result<()> {
    println!("cargo::rerun-if-changed=src/cli.rs");
    println!("cargo::rerun-if-changed=completion");
    println!("cargo::rerun-if-changed=src/man_extra.rs");
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
        let text = String::from_utf8(text).expect("clap_complete writes UTF-8");
        fs::write(out.join(format!("completion.{name}")), finish(shell, text))?;
    }

    let mut command = cli::Cli::command().disable_help_subcommand(true);
    command.build();
    let mut pages = Vec::new();
    man_pages(&command, &mut pages)?;
    pages.sort();
    let mut bundle = Vec::new();
    for (name, text) in pages {
        assert!(!text.contains(&0), "{name} holds a NUL");
        bundle.extend_from_slice(name.as_bytes());
        bundle.push(0);
        bundle.extend_from_slice(&text);
        bundle.push(0);
    }
    fs::write(out.join("man.pages"), bundle)
}

/// A page for `command` and each visible subcommand, as clap_mangen names them
/// (`oci-macvlan-network-create.1`): clap_mangen's sections, then EXAMPLES, EXIT STATUS and FILES
/// (`src/man_extra.rs`).
fn man_pages(command: &clap::Command, pages: &mut Vec<(String, Vec<u8>)>) -> std::io::Result<()> {
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        man_pages(sub, pages)?;
    }
    let man = clap_mangen::Man::new(command.clone());
    let name = man.get_filename();
    let mut text = Vec::new();
    man.render(&mut text)?;
    let mut text = String::from_utf8(text).expect("clap_mangen writes UTF-8");
    let page = name.trim_end_matches(".1");
    let examples = man_extra::examples(page);
    assert!(
        !examples.is_empty(),
        "{page}: no EXAMPLES in src/man_extra.rs"
    );
    text.push_str(".SH EXAMPLES\n");
    for (what, commands) in examples {
        text.push_str(&format!(".PP\n{}\n.PP\n.RS 4\n.nf\n", roff(what)));
        for line in commands.lines() {
            text.push_str(&roff(line));
            text.push('\n');
        }
        text.push_str(".fi\n.RE\n");
    }
    text.push_str(".SH \"EXIT STATUS\"\n");
    for (code, meaning) in man_extra::EXIT_STATUS {
        text.push_str(&format!(".TP\n.B {code}\n{}\n", roff(meaning)));
    }
    text.push_str(".SH FILES\n");
    for (path, what) in man_extra::FILES {
        text.push_str(&format!(".TP\n.I {}\n{}\n", roff(path), roff(what)));
    }
    pages.push((name, text.into_bytes()));
    Ok(())
}

/// `text` as one roff text line: backslashes and minus signs escaped, a leading `.` or `'`
/// (a request) made plain text.
fn roff(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// What clap_complete's script lacks or gets wrong, mended: bash's dispatcher named its cases
/// `oci__subcmd__macvlan__…` while its walker sets `oci__macvlan__…` (the `-` of the binary's
/// name), so nothing past the first word completed; hidden commands (`dist-files`, `dhcp-keeper`) are offered;
/// and network names are completed by asking the binary (`completion/`, one snippet a shell).
/// A pattern that is no longer found fails the build: a new clap_complete is looked at, not
/// trusted.
fn finish(shell: Shell, text: String) -> String {
    fn must(text: &str, pattern: &str) {
        assert!(
            text.contains(pattern),
            "clap_complete's script lacks {pattern:?}"
        );
    }
    let hidden = |line: &str| {
        ["dist-files", "dhcp-keeper"]
            .iter()
            .any(|name| line.contains(&format!("-a \"{name}\"")))
            && !line.contains("case")
    };
    match shell {
        Shell::Bash => {
            must(&text, "oci__subcmd__macvlan");
            must(&text, " dhcp-keeper dist-files\"");
            let text = text
                .replace("oci__subcmd__macvlan", "oci__macvlan")
                .replace(" dhcp-keeper dist-files\"", "\"");
            text + include_str!("completion/oci-macvlan.bash")
        }
        Shell::Zsh => {
            let mut out = String::with_capacity(text.len());
            let mut names = 0;
            for line in text.lines() {
                if line.starts_with("'dist-files:") || line.starts_with("'dhcp-keeper:") {
                    continue;
                }
                let network = line.starts_with("'*::names") || line.starts_with("':network -- ");
                if network && line.ends_with(":_default' \\") {
                    names += 1;
                    out.push_str(&line.replace(":_default' \\", ":_oci_macvlan_networks' \\"));
                } else {
                    out.push_str(line);
                }
                out.push('\n');
            }
            assert_eq!(
                names, 4,
                "zsh: the network arguments of inspect, rm, connect, disconnect"
            );
            // Defined before the script's last lines, which run the completion when autoloaded.
            let last = "if [ \"$funcstack[1]\" = \"_oci-macvlan\" ]; then";
            must(&out, last);
            out.replacen(
                last,
                &format!("{}\n{last}", include_str!("completion/oci-macvlan.zsh")),
                1,
            )
        }
        Shell::Fish => {
            must(&text, "-a \"dist-files\"");
            let kept: Vec<&str> = text.lines().filter(|line| !hidden(line)).collect();
            kept.join("\n") + "\n" + include_str!("completion/oci-macvlan.fish")
        }
        _ => text,
    }
}
