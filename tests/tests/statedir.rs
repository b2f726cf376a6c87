//! Privileged tier: the config and state dirs are root's alone. Whatever umask the runtime left,
//! what oci-macvlan makes has fixed modes; nothing planted in its dirs is followed through a
//! symlink; a dir others could write in is refused; `gc` removes what a killed `network create`
//! left; a lease's keeper started for a state dir that is gone makes nothing again.

#![allow(clippy::unwrap_used)]

use std::{
    fs,
    os::unix::fs::{MetadataExt, PermissionsExt, symlink},
    path::Path,
    process::Command,
};

use oci_macvlan_tests::{Lan, TestNetns, binary, privileged};

const NET: &str = "lan77";
const ANN: &str = "oci-macvlan.networks";

/// Runs `oci-macvlan ARGS…` in the LAN's host namespace under `umask 000`.
fn cli_umask_000(lan: &Lan, args: &[&str], stdin: &str) {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("umask 000 && exec \"$@\"")
        .arg("sh")
        .arg("nsenter")
        .arg(format!("--net={}", lan.host.path().display()))
        .arg(binary())
        .args(lan.dir_args())
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

#[privileged]
fn under_umask_000_nothing_is_writable_by_others() {
    let lan = Lan::new();
    let ns = TestNetns::new("omt-ctr-");
    let parent = format!("parent={}", Lan::PARENT);
    cli_umask_000(
        &lan,
        &[
            "network",
            "create",
            "--subnet",
            Lan::SUBNET,
            "--gateway",
            Lan::GATEWAY,
            "-o",
            &parent,
            NET,
        ],
        "",
    );
    cli_umask_000(
        &lan,
        &["hook"],
        &lan.fake_bundle("c1", &[(ANN, NET)], &ns.path(), "creating"),
    );
    let (config, state) = (lan.config_dir(), lan.state_dir());
    let mut checked = 0;
    for path in [
        config.clone(),
        config.join("networks"),
        config.join(format!("networks/{NET}.json")),
        state.clone(),
        state.join("endpoints"),
        state.join("endpoints/c1.json"),
        state.join("locks"),
        state.join("locks/c1.lock"),
        state.join("leases"),
        state.join("hooks.jsonl"),
    ] {
        let m = mode(&path);
        assert_eq!(
            m & 0o022,
            0,
            "{} has mode {m:o}: writable by group or others",
            path.display()
        );
        checked += 1;
    }
    for entry in fs::read_dir(state.join("leases")).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path) & 0o022, 0, "{}", path.display());
        checked += 1;
    }
    assert!(checked > 10);
    lan.cli_ok(
        &["hook"],
        &lan.fake_bundle("c1", &[(ANN, NET)], &ns.path(), "stopped"),
    );
}

/// Symlinks planted in the state dir are never followed: a lock file, a record, a whole
/// subdirectory. The hook fails with one line, and the target is neither made nor changed.
#[privileged]
fn symlinks_planted_in_the_state_dir_are_not_followed() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    let ns = TestNetns::new("omt-ctr-");
    let state = lan.state_dir();
    let outside = lan.tmp().join("outside");
    fs::create_dir_all(&outside).unwrap();

    // A lock file that points outside: poststop of that id must not create the target.
    fs::create_dir_all(state.join("locks")).unwrap();
    let evil = outside.join("evil");
    symlink(&evil, state.join("locks/evil.lock")).unwrap();
    let out = lan.cli(
        &["hook"],
        &lan.fake_bundle("evil", &[(ANN, NET)], &ns.path(), "stopped"),
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(!evil.exists(), "the lock's target was created");
    fs::remove_file(state.join("locks/evil.lock")).unwrap();

    // A record that points at a file outside, holding a record of another container.
    let fake = outside.join("record.json");
    fs::write(
        &fake,
        br#"{"container_id":"r1","endpoints":[{"network":"lan77","ifname":"eth0","mac":null}]}"#,
    )
    .unwrap();
    fs::create_dir_all(state.join("endpoints")).unwrap();
    symlink(&fake, state.join("endpoints/r1.json")).unwrap();
    let out = lan.cli(
        &["hook"],
        &lan.fake_bundle("r1", &[(ANN, NET)], &ns.path(), "creating"),
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("symlink"), "{}", out.stderr);
    assert!(ns.link("eth0").is_none());
    fs::remove_file(state.join("endpoints/r1.json")).unwrap();
    // Its lock file stays (the record could not be read, so the attach could not tell whether
    // it was the first): harmless, and the operator's to remove with the planted record.
    fs::remove_file(state.join("locks/r1.lock")).unwrap();

    // The endpoints dir itself a symlink to a dir outside: nothing is written there.
    fs::remove_dir(state.join("endpoints")).unwrap();
    let elsewhere = outside.join("endpoints");
    fs::create_dir_all(&elsewhere).unwrap();
    symlink(&elsewhere, state.join("endpoints")).unwrap();
    let out = lan.cli(
        &["hook"],
        &lan.fake_bundle("d1", &[(ANN, NET)], &ns.path(), "creating"),
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
    assert!(ns.link("eth0").is_none());
    fs::remove_file(state.join("endpoints")).unwrap();
    fs::remove_file(state.join("locks/d1.lock")).unwrap();

    assert!(fake.exists());
    lan.assert_no_residue(&[NET], "after the planted symlinks");
}

/// A state or config dir that others could write in, or that another user owns, is refused by
/// every command with one line saying so.
#[privileged]
fn a_state_or_config_dir_others_could_change_is_refused() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    let ns = TestNetns::new("omt-ctr-");
    let state = lan.fake_bundle("c1", &[(ANN, NET)], &ns.path(), "creating");
    for (what, dir) in [
        ("state dir", lan.state_dir()),
        ("config dir", lan.config_dir()),
    ] {
        for (case, set) in [
            ("mode 777", 0o777_u32),
            ("mode 775", 0o775),
            ("another owner", 0o755),
        ] {
            fs::create_dir_all(&dir).unwrap();
            fs::set_permissions(&dir, fs::Permissions::from_mode(set)).unwrap();
            let owner = (case == "another owner").then_some(65534);
            std::os::unix::fs::chown(&dir, owner, None).unwrap();
            for args in [&["hook"][..], &["network", "ls"], &["gc"]] {
                let out = lan.cli(args, &state);
                assert_eq!(out.code, 1, "{what} {case} {args:?}: {}", out.stderr);
                assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
                assert!(
                    out.stderr
                        .contains(&format!("refusing {what} {}", dir.display())),
                    "{what} {case}: {}",
                    out.stderr
                );
            }
            assert!(ns.link("eth0").is_none(), "{what} {case}");
            std::os::unix::fs::chown(&dir, Some(0), None).unwrap();
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    lan.cli_ok(&["hook"], &state);
    assert!(ns.link("eth0").is_some());
    lan.cli_ok(
        &["hook"],
        &lan.fake_bundle("c1", &[(ANN, NET)], &ns.path(), "stopped"),
    );
    lan.assert_no_residue(&[NET], "after the dirs were made safe again");
}

/// `network create` killed between writing its temporary file and linking it into place leaves
/// `.NAME.json.tmp-PID`; `gc` removes it once that pid is gone, and not while it runs.
#[privileged]
fn gc_removes_what_a_killed_network_create_left() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    let networks = lan.config_dir().join("networks");
    let dead = networks.join(".lan9.json.tmp-999999999");
    let live = networks.join(format!(".lan8.json.tmp-{}", std::process::id()));
    fs::write(&dead, b"{").unwrap();
    fs::write(&live, b"{").unwrap();
    let out = lan.cli_ok(&["gc"], "");
    assert!(out.contains("removed 1 temporary files"), "{out}");
    assert!(!dead.exists());
    assert!(live.exists());
    assert!(networks.join(format!("{NET}.json")).exists());
}

/// A keeper started for a state dir that is gone (removed with all it held while the pair
/// lived: a standby spawned then, or one started by hand) ends at once, content, and makes
/// neither the state dir nor anything in it again.
#[privileged]
fn a_keeper_for_a_gone_state_dir_makes_nothing_again() {
    let dir = tempfile::tempdir().unwrap();
    let (config, state) = (dir.path().join("etc"), dir.path().join("run"));
    fs::create_dir(&config).unwrap();
    let out = Command::new(binary())
        .arg("--config-dir")
        .arg(&config)
        .arg("--state-dir")
        .arg(&state)
        .args(["dhcp-keeper", "--container", "c1", "--network", NET])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!state.exists(), "the state dir was made again");
}
