//! Privileged tier: the hook journal's own hostile conditions (the malformed-input corpus is in
//! `malformed.rs`): a state dir that is full, and a symlink planted as the journal.

#![allow(clippy::unwrap_used)]

use std::{
    fs,
    io::Write,
    path::PathBuf,
    process::{Command, Stdio},
};

use oci_macvlan_tests::{binary, privileged, run, run_ok};

/// Unmounts a mount the test made, when dropped (also when the test fails).
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let done = run("umount", &[&self.0.display().to_string()]);
        if !done.status.success() {
            let _ = run("umount", &["-l", &self.0.display().to_string()]);
        }
    }
}

/// A journal line is written whole or not at all: on a state dir with no room left, a record
/// that does not fit is cut back (the hook warns and keeps its exit code), and once there is
/// room again the next record starts on a line of its own.
#[privileged]
fn a_full_state_dir_never_tears_a_journal_line() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("run");
    fs::create_dir(&state).unwrap();
    let mounted = state.display().to_string();
    run_ok(
        "mount",
        &[
            "-t",
            "tmpfs",
            "-o",
            "size=64k,mode=0755",
            "omt-journal",
            &mounted,
        ],
    );
    let _unmount = Unmount(state.clone());

    // Whole lines that end 150 bytes before a page boundary: a record (~230 bytes) fits only
    // in part once no page is left.
    let journal = state.join("hooks.jsonl");
    let mut text = String::new();
    while text.len() < 2 * 4096 - 150 {
        let pad = (2 * 4096 - 150 - text.len()).clamp(20, 1000);
        text.push_str(&format!("{{\"pad\":\"{}\"}}\n", "x".repeat(pad - 11)));
    }
    assert_eq!(text.len(), 2 * 4096 - 150);
    fs::write(&journal, &text).unwrap();
    let filler = state.join("filler");
    let mut file = fs::File::create(&filler).unwrap();
    while file.write_all(&[0; 4096]).is_ok() {}
    drop(file);

    let hook = |n: usize| {
        let out = Command::new(binary())
            .args(["--config-dir"])
            .arg(dir.path().join("etc"))
            .arg("--state-dir")
            .arg(&state)
            .arg("hook")
            .env_clear()
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "hook {n}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    for n in 0..5 {
        let stderr = hook(n);
        assert!(
            stderr.contains("warning: cannot write the hook journal"),
            "hook {n}: {stderr}"
        );
        let now = fs::read_to_string(&journal).unwrap();
        assert!(
            now == text,
            "hook {n}: the journal changed to {} bytes, ending {:?}",
            now.len(),
            now.get(text.len().min(now.len())..)
        );
    }

    fs::remove_file(&filler).unwrap();
    let stderr = hook(5);
    assert!(!stderr.contains("warning"), "{stderr}");
    let now = fs::read_to_string(&journal).unwrap();
    let lines: Vec<serde_json::Value> = now
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}")))
        .collect();
    assert!(now.starts_with(&text));
    assert_eq!(lines.len(), text.lines().count() + 1);
    assert_eq!(lines.last().unwrap()["exit"], 3);
}

/// A symlink planted in the state dir as the journal is not followed: the hook keeps its exit
/// code, says on stderr that it could not write the journal, and the target is untouched.
#[privileged]
fn a_journal_symlink_planted_in_the_state_dir_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("run");
    fs::create_dir(&state).unwrap();
    let target = dir.path().join("target");
    fs::write(&target, "precious\n").unwrap();
    std::os::unix::fs::symlink(&target, state.join("hooks.jsonl")).unwrap();

    let out = Command::new(binary())
        .arg("--config-dir")
        .arg(dir.path().join("etc"))
        .arg("--state-dir")
        .arg(&state)
        .args(["hook", "poststop"])
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].ends_with("hooks.jsonl: it is a symbolic link, which is never followed"),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with("oci-macvlan: error: no OCI state"),
        "{stderr}"
    );
    assert_eq!(fs::read_to_string(&target).unwrap(), "precious\n");
    assert!(
        fs::symlink_metadata(state.join("hooks.jsonl"))
            .unwrap()
            .is_symlink()
    );
}
