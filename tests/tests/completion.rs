//! Shell completion, driven through the shells themselves: bash (`COMP_WORDS`/`COMP_CWORD` and
//! the completion function, as bash calls it), zsh (the script loaded by `compinit`, its network
//! names asked as `_arguments` asks them) and fish (`complete -C`, fish's own query). Network
//! names come from the binary, with the --config-dir and --state-dir the line gives.

#![allow(clippy::unwrap_used)]

use std::{path::Path, process::Command};

use oci_macvlan_tests::{Lan, binary, privileged};

/// A LAN with two networks, `lan-a` and `lan-b`, and a third, `other`.
fn lan() -> Lan {
    let lan = Lan::new();
    lan.create_network("lan-a", &[]);
    for (name, subnet) in [("lan-b", "10.61.0.0/24"), ("other", "10.62.0.0/24")] {
        lan.cli_ok(
            &[
                "network",
                "create",
                "--subnet",
                subnet,
                "-o",
                "parent=lan0",
                name,
            ],
            "",
        );
    }
    lan
}

fn shell(program: &str, script: &str) -> Vec<String> {
    let bin_dir = binary().parent().unwrap().display().to_string();
    let path = format!("{bin_dir}:{}", std::env::var("PATH").unwrap_or_default());
    let out = Command::new(program)
        .args(["-c", script])
        .env("PATH", path)
        .env("HOME", std::env::temp_dir())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{program}: {script}\n{stderr}");
    assert!(stderr.trim().is_empty(), "{program} said: {stderr}");
    let mut words: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').next().unwrap_or("").to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    words.sort();
    words
}

fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

/// What bash offers for `words`, the last being the word under the cursor.
fn bash(words: &[&str]) -> Vec<String> {
    let bin = binary();
    let quoted: Vec<String> = words.iter().map(|w| quote(w)).collect();
    let script = format!(
        "source <({bin} completion bash)\n\
         COMP_WORDS=({bin} {words})\n\
         COMP_CWORD={cword}\n\
         COMP_LINE=\"${{COMP_WORDS[*]}}\"\n\
         COMP_POINT=${{#COMP_LINE}}\n\
         _oci_macvlan {bin} {cur} {prev}\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        bin = quote(&bin.display().to_string()),
        words = quoted.join(" "),
        cword = words.len(),
        cur = quoted.last().unwrap(),
        prev = if words.len() > 1 {
            quoted[words.len() - 2].clone()
        } else {
            quote(&bin.display().to_string())
        },
    );
    shell("bash", &script)
}

fn dirs(lan: &Lan) -> Vec<String> {
    lan.dir_args()
}

fn with_dirs<'a>(dirs: &'a [String], rest: &[&'a str]) -> Vec<&'a str> {
    let mut words: Vec<&str> = dirs.iter().map(String::as_str).collect();
    words.extend_from_slice(rest);
    words
}

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

#[privileged]
fn bash_completes_commands_flags_and_network_names() {
    let lan = lan();
    let d = dirs(&lan);
    // Past the first word: the subcommands of `network` (nothing completed here before).
    let network = bash(&["network", ""]);
    for sub in [
        "connect",
        "create",
        "disconnect",
        "inspect",
        "ls",
        "prune",
        "rm",
    ] {
        assert!(network.iter().any(|w| w == sub), "{sub}: {network:?}");
    }
    // The hidden command is not offered.
    let top = bash(&[""]);
    assert!(top.iter().any(|w| w == "network"), "{top:?}");
    assert!(!top.iter().any(|w| w == "dist-files"), "{top:?}");
    // A command's flags.
    let create = bash(&["network", "create", "--s"]);
    assert!(create.iter().any(|w| w == "--subnet"), "{create:?}");
    // Network names, from the dirs the line gives.
    assert_eq!(
        bash(&with_dirs(&d, &["network", "inspect", "lan"])),
        strings(&["lan-a", "lan-b"])
    );
    assert_eq!(
        bash(&with_dirs(&d, &["network", "rm", "lan-a", ""])),
        strings(&["lan-a", "lan-b", "other"])
    );
    assert_eq!(
        bash(&with_dirs(&d, &["network", "connect", "o"])),
        strings(&["other"])
    );
    // Where no network name goes: the container of connect, a flag's value.
    assert!(
        !bash(&with_dirs(&d, &["network", "connect", "lan-a", ""]))
            .iter()
            .any(|w| w == "lan-b")
    );
    assert!(
        !bash(&with_dirs(&d, &["network", "inspect", "-f", ""]))
            .iter()
            .any(|w| w == "lan-b")
    );
}

#[privileged]
fn zsh_and_fish_load_the_scripts_and_complete_network_names() {
    let lan = lan();
    let bin = binary().display().to_string();
    let d = dirs(&lan);
    let dir_words: Vec<String> = d.iter().map(|w| quote(w)).collect();

    // zsh: the script autoloads through compinit, with no error, and its network arguments ask
    // `_oci_macvlan_networks`, which lists the names (`_describe` shown as what it is given).
    let dir = tempfile::tempdir().unwrap();
    let fpath = dir.path();
    let script = Command::new(&bin)
        .args(["completion", "zsh"])
        .output()
        .unwrap()
        .stdout;
    std::fs::write(fpath.join("_oci-macvlan"), script).unwrap();
    let zsh = format!(
        "fpath=({fpath} $fpath)\n\
         autoload -Uz compinit && compinit -u -d {dump}\n\
         autoload -Uz _oci-macvlan\n\
         [[ $_comps[oci-macvlan] == _oci-macvlan ]] || {{ print -u2 'not registered'; exit 1 }}\n\
         source {fpath}/_oci-macvlan 2>/dev/null || true\n\
         _describe() {{ print -l -- \"${{(@P)${{@[-1]}}}}\" }}\n\
         words=({bin} {dirs} network inspect '')\n\
         CURRENT=${{#words}}\n\
         _oci_macvlan_networks",
        fpath = quote(&fpath.display().to_string()),
        dump = quote(&fpath.join("zcompdump").display().to_string()),
        bin = quote(&bin),
        dirs = dir_words.join(" "),
    );
    assert_eq!(shell("zsh", &zsh), strings(&["lan-a", "lan-b", "other"]));

    // fish: its own query of a command line.
    let fish = |line: &str| {
        shell(
            "fish",
            &format!(
                "source ({} completion fish | psub)\ncomplete -C {}",
                quote(&bin),
                quote(line)
            ),
        )
    };
    let line = format!("oci-macvlan {} network inspect ", d.join(" "));
    assert_eq!(fish(&line), strings(&["lan-a", "lan-b", "other"]));
    let network = fish("oci-macvlan network ");
    assert!(network.iter().any(|w| w == "disconnect"), "{network:?}");
    assert!(!fish("oci-macvlan ").iter().any(|w| w == "dist-files"));
    assert!(Path::new(&bin).exists());
}
