//! `oci-macvlan bundle`: a `runc spec` bundle wired without editing JSON by hand, as README's
//! quick start does it, then run by real runc: the container gets its address, reaches the
//! router, and its poststop releases the lease. Run again it replaces what it wrote; `--remove`
//! takes it out; bad input changes nothing.

#![allow(clippy::unwrap_used)]

use std::{fs, process::Command};

use oci_macvlan_tests::{Bundle, Container, Lan, Runtime, binary, busybox_rootfs, privileged};
use serde_json::Value;

fn config(dir: &std::path::Path) -> Value {
    serde_json::from_slice(&fs::read(dir.join("config.json")).unwrap()).unwrap()
}

#[privileged]
fn a_runc_bundle_is_wired_by_the_bundle_command() {
    let lan = Lan::new();
    lan.create_network("lan77", &[]);
    let dir = lan.tmp().join("bundle");
    busybox_rootfs(&dir.join("rootfs"));
    let spec = Command::new("runc")
        .args(["spec", "--bundle"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(spec.status.success());
    // README's two edits that are not ours: run detached, keep running.
    let path = dir.join("config.json");
    let text = fs::read_to_string(&path)
        .unwrap()
        .replace("\"terminal\": true", "\"terminal\": false")
        .replace("\"sh\"\n", "\"sleep\", \"3600\"\n");
    fs::write(&path, text).unwrap();
    let dir_arg = dir.to_str().unwrap();

    // Bad input: refused, the file as it was.
    let before = fs::read(&path).unwrap();
    for (args, code) in [
        (&["bundle", dir_arg][..], 3),
        (
            &["bundle", "--network", "lan77", "--ip", "not-an-ip", dir_arg][..],
            3,
        ),
        (&["bundle", "--network", "bad/name", dir_arg][..], 3),
    ] {
        let out = lan.cli(args, "");
        assert_eq!(out.code, code, "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert_eq!(
            fs::read(&path).unwrap(),
            before,
            "{args:?} changed the file"
        );
    }

    for _ in 0..2 {
        let out = lan.cli_ok(
            &[
                "bundle",
                "--network",
                "lan77",
                "--ip",
                "192.168.77.40",
                dir_arg,
            ],
            "",
        );
        assert_eq!(out.trim(), path.display().to_string());
    }
    let wired = config(&dir);
    let mut args = vec!["oci-macvlan".to_owned()];
    args.extend(lan.dir_args());
    args.push("hook".into());
    for stage in ["createRuntime", "poststop"] {
        let hooks = wired["hooks"][stage].as_array().unwrap();
        assert_eq!(hooks.len(), 1, "{stage}: run twice, one entry: {hooks:?}");
        assert_eq!(
            hooks[0]["path"],
            fs::canonicalize(binary()).unwrap().display().to_string()
        );
        assert_eq!(hooks[0]["args"], serde_json::json!(args));
    }
    assert_eq!(wired["annotations"]["oci-macvlan.networks"], "lan77");
    assert_eq!(wired["annotations"]["oci-macvlan.ip"], "192.168.77.40");
    assert_eq!(
        wired["process"]["args"],
        serde_json::json!(["sleep", "3600"])
    );

    let container =
        Container::start(&lan, Runtime::Runc, "bundled", &Bundle { dir: dir.clone() }).unwrap();
    let (ok, out) = container.exec(&["ip", "-4", "addr", "show", "eth0"]);
    assert!(ok && out.contains("192.168.77.40/24"), "{out}");
    let (ok, out) = container.exec_with(
        &["--cap", "CAP_NET_RAW"],
        &["ping", "-c", "1", "-W", "5", Lan::GATEWAY],
    );
    assert!(ok, "{out}");
    assert_eq!(lan.leased("lan77"), 1);
    container.stop().unwrap();
    assert_eq!(lan.leased("lan77"), 0);

    // Another annotation and hook of someone else's stay; ours go.
    let mut other = config(&dir);
    other["annotations"]["org.example"] = Value::from("kept");
    other["hooks"]["poststop"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"path": "/bin/true", "args": ["true"]}));
    fs::write(&path, serde_json::to_vec_pretty(&other).unwrap()).unwrap();
    lan.cli_ok(&["bundle", "--remove", dir_arg], "");
    let removed = config(&dir);
    assert_eq!(
        removed["annotations"],
        serde_json::json!({"org.example": "kept"})
    );
    assert_eq!(
        removed["hooks"],
        serde_json::json!({"poststop": [{"path": "/bin/true", "args": ["true"]}]})
    );
}

/// The file keeps its owner and mode (a private config.json stays private, and its owner's); a
/// symlinked config.json is refused, not replaced by a copy; a FIFO is refused, not waited on.
#[privileged]
fn the_bundle_keeps_its_owner_and_mode_and_no_symlink_is_followed() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let lan = Lan::new();
    lan.create_network("lan77", &[]);
    let dir = lan.tmp().join("private");
    fs::create_dir(&dir).unwrap();
    let path = dir.join("config.json");
    fs::write(
        &path,
        "{\"ociVersion\": \"1.0.2\", \"process\": {\"env\": [\"SECRET=x\"]}}\n",
    )
    .unwrap();
    std::os::unix::fs::chown(&path, Some(1000), Some(1000)).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let dir_arg = dir.to_str().unwrap();
    lan.cli_ok(&["bundle", "--network", "lan77", dir_arg], "");
    let meta = fs::metadata(&path).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1000, 1000));
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    assert_eq!(config(&dir)["process"]["env"][0], "SECRET=x");
    // No temporary file is left beside it.
    let names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["config.json"], "{names:?}");

    // A symlinked config.json: refused, both files as they were.
    let linked = lan.tmp().join("linked");
    fs::create_dir(&linked).unwrap();
    fs::write(linked.join("real.json"), "{}\n").unwrap();
    std::os::unix::fs::symlink("real.json", linked.join("config.json")).unwrap();
    let out = lan.cli(
        &["bundle", "--network", "lan77", linked.to_str().unwrap()],
        "",
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("is a symlink"), "{}", out.stderr);
    assert_eq!(
        fs::read_to_string(linked.join("real.json")).unwrap(),
        "{}\n"
    );
    assert!(
        fs::symlink_metadata(linked.join("config.json"))
            .unwrap()
            .file_type()
            .is_symlink()
    );

    // A FIFO: refused at once.
    let fifo_dir = lan.tmp().join("fifo");
    fs::create_dir(&fifo_dir).unwrap();
    oci_macvlan_tests::run_ok("mkfifo", &[fifo_dir.join("config.json").to_str().unwrap()]);
    let out = lan.cli(
        &["bundle", "--network", "lan77", fifo_dir.to_str().unwrap()],
        "",
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
}
