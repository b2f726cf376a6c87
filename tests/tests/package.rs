//! The Debian package of `cargo xtask dist` ($OCI_MACVLAN_DEB), installed as a user would: the
//! README's quick start, run as written (it installs, uses and purges the package); then dpkg
//! puts the podman hooks.d file in place, so a podman container with the annotation gets its
//! leg with no `install` step; `dpkg --purge` then leaves nothing of the package behind.
//!
//! It changes the system (/usr, /etc/oci-macvlan, /run/oci-macvlan): `cargo xtask ci` runs it
//! alone, after every other test. The podman of the other tests reads hooks from their own
//! directories only (`--hooks-dir`), never the system's, so they cannot see this package.

#![allow(clippy::unwrap_used)]

use std::{
    path::{Path, PathBuf},
    sync::{Mutex, MutexGuard, PoisonError},
};

use oci_macvlan_tests::{Lan, Podman, run, run_ok};

const PACKAGE: &str = "oci-macvlan";
const BINARY: &str = "/usr/bin/oci-macvlan";
/// Where the installed binary finds its TLS helper (`../libexec/oci-macvlan/`).
const TLS_HELPER: &str = "/usr/libexec/oci-macvlan/oci-macvlan-tls";

/// Both tests install and purge the one package: one at a time.
static SYSTEM: Mutex<()> = Mutex::new(());

fn alone() -> MutexGuard<'static, ()> {
    SYSTEM.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Purges the package on drop, so that a failing test leaves the system as it found it.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = run("dpkg", &["--purge", PACKAGE]);
    }
}

/// The installed binary, with the default dirs, in the LAN's host namespace.
fn packaged(lan: &Lan, args: &[&str]) -> String {
    let net = format!("--net={}", lan.host.path().display());
    let mut all = vec![net.as_str(), BINARY];
    all.extend_from_slice(args);
    run_ok("nsenter", &all)
}

fn deb() -> PathBuf {
    PathBuf::from(
        std::env::var_os("OCI_MACVLAN_DEB")
            .expect("OCI_MACVLAN_DEB: the .deb of `cargo xtask dist` (cargo xtask ci sets it)"),
    )
}

/// Nothing of the package is on the system.
fn assert_not_installed(when: &str) {
    assert!(
        !run("dpkg", &["-s", PACKAGE]).status.success(),
        "{PACKAGE} is installed {when}"
    );
    for path in [BINARY, "/etc/oci-macvlan", "/run/oci-macvlan"] {
        assert!(!Path::new(path).exists(), "{path} exists {when}");
    }
}

/// The shell block of README.md between `<!-- quick-start -->` and `<!-- /quick-start -->`.
fn quick_start() -> String {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let text = std::fs::read_to_string(readme).unwrap();
    let (_, rest) = text.split_once("<!-- quick-start -->\n").unwrap();
    let (block, _) = rest.split_once("<!-- /quick-start -->").unwrap();
    let block = block.trim();
    let body = block
        .strip_prefix("```sh\n")
        .and_then(|b| b.strip_suffix("```"))
        .unwrap_or_else(|| panic!("the quick start is not one sh block: {block}"));
    body.to_owned()
}

/// README.md's quick start, as written, as root in a namespace whose `eth0` leads to a router
/// at `192.168.1.1`, from the directory holding `target/dist/` (where `cargo xtask dist` put
/// the package).
#[test]
fn the_readmes_quick_start_runs_as_written() {
    let _alone = alone();
    let deb = deb();
    assert_not_installed("before the quick start");
    let lan = Lan::with("eth0", "192.168.1.1/24");
    let _installed = Installed;
    let workspace = deb.parent().unwrap().parent().unwrap().parent().unwrap();
    let script = quick_start();
    let out = std::process::Command::new("nsenter")
        .arg(format!("--net={}", lan.host.path().display()))
        .args(["bash", "-euo", "pipefail", "-c", &script])
        .current_dir(workspace)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the quick start failed:\n{stdout}\n{stderr}"
    );
    // What the container had, as `inspect` said it.
    let endpoint = stdout
        .lines()
        .find(|l| l.starts_with("web "))
        .unwrap_or_else(|| panic!("no inspect line: {stdout}"));
    let fields: Vec<&str> = endpoint.split(' ').collect();
    assert_eq!(fields[..2], ["web", "192.168.1.200/24"], "{endpoint}");
    assert_eq!(fields[2].len(), 17, "{endpoint}");
    assert!(stdout.contains("1 packets received"), "{stdout}");
    assert_not_installed("after the quick start");
}

#[test]
fn the_package_installs_works_with_podman_unaided_and_purges_clean() {
    let _alone = alone();
    let deb = deb();
    assert_not_installed("before the install");
    run_ok("dpkg", &["-i", deb.to_str().unwrap()]);
    let installed = Installed;
    let files: Vec<String> = run_ok("dpkg", &["-L", PACKAGE])
        .lines()
        .map(str::to_owned)
        .collect();
    for expected in [
        BINARY,
        TLS_HELPER,
        "/usr/share/containers/oci/hooks.d/oci-macvlan.json",
        "/usr/share/man/man1/oci-macvlan-network-create.1.gz",
        "/usr/share/bash-completion/completions/oci-macvlan",
        "/usr/share/zsh/vendor-completions/_oci-macvlan",
        "/usr/share/fish/vendor_completions.d/oci-macvlan.fish",
        "/usr/lib/systemd/system/oci-macvlan-gc.timer",
        // The CNI plugin: a link to the binary.
        "/usr/lib/cni/oci-macvlan",
    ] {
        assert!(files.iter().any(|f| f == expected), "{expected}: {files:?}");
    }

    // The quick start, with the package's own paths and no `install` step.
    let lan = Lan::new();
    packaged(
        &lan,
        &[
            "network",
            "create",
            "--subnet",
            Lan::SUBNET,
            "--gateway",
            Lan::GATEWAY,
            "-o",
            "parent=lan0",
            "pkgnet",
        ],
    );
    let podman = Podman::with_system_hooks(&lan);
    podman
        .start(
            "pkg",
            &[
                ("oci-macvlan.networks", "pkgnet"),
                ("oci-macvlan.ip", "192.168.77.30"),
            ],
        )
        .unwrap();
    let (ok, out) = podman.exec("pkg", &["ping", "-c", "1", "-W", "5", Lan::GATEWAY]);
    assert!(ok, "{out}");
    let inspect = packaged(
        &lan,
        &[
            "network",
            "inspect",
            "-f",
            "{{range .Containers}}{{.IPv4Address}}{{end}}",
            "pkgnet",
        ],
    );
    assert_eq!(inspect, "192.168.77.30/24\n");
    podman.rm("pkg").unwrap();
    packaged(&lan, &["network", "rm", "pkgnet"]);
    https_network_runs_the_packaged_helper(&lan);

    run_ok("dpkg", &["--purge", PACKAGE]);
    std::mem::forget(installed);
    assert!(!run("dpkg", &["-s", PACKAGE]).status.success());
    let left: Vec<&String> = files.iter().filter(|f| Path::new(f).is_file()).collect();
    assert!(
        left.is_empty(),
        "files of the purged package left: {left:?}"
    );
    for dir in ["/etc/oci-macvlan", "/run/oci-macvlan"] {
        assert!(!Path::new(dir).exists(), "{dir} is left after the purge");
    }
}

/// The gc timer is enabled and started by the install itself (not only at the next boot): the
/// package's postinst starts it. This machine runs no systemd, so the script is read.
#[test]
fn the_package_starts_its_gc_timer_at_install() {
    let dir = tempfile::tempdir().unwrap();
    run_ok(
        "dpkg-deb",
        &["-e", deb().to_str().unwrap(), dir.path().to_str().unwrap()],
    );
    let postinst = std::fs::read_to_string(dir.path().join("postinst")).unwrap();
    // cargo-deb's section: `_dh_action=start` on a first install (restart on an upgrade), then
    // `deb-systemd-invoke $_dh_action … oci-macvlan-gc.timer`, where systemd runs.
    let code: Vec<&str> = postinst
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    let action = code.contains(&"_dh_action=start");
    let invoked = code.iter().any(|l| {
        l.starts_with("deb-systemd-invoke $_dh_action") && l.contains("oci-macvlan-gc.timer")
    });
    assert!(
        action && invoked,
        "postinst does not start the timer:\n{postinst}"
    );
}

/// A network on an https etcd endpoint (in dirs of its own: a store that cannot be reached
/// keeps `network rm` from removing it): the installed binary finds its helper, which reads the
/// CA file (a PEM that is no certificate) and says what is wrong with it; `inspect` shows the
/// definition with that as its store's state.
fn https_network_runs_the_packaged_helper(lan: &Lan) {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(
        &ca,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let cacert = format!("etcd_cacert={}", ca.display());
    let (config, state) = (dir.path().join("config"), dir.path().join("state"));
    let dirs = [
        "--config-dir",
        config.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ];
    let create = [
        "network",
        "create",
        "--subnet",
        Lan::SUBNET,
        "-o",
        "parent=lan0",
        "--ipam-opt",
        "etcd_endpoints=https://127.0.0.1:1",
        "--ipam-opt",
        &cacert,
        "pkgtls",
    ];
    packaged(lan, &[&dirs[..], &create[..]].concat());
    let net = format!("--net={}", lan.host.path().display());
    let inspect = [&net, BINARY, "network", "inspect", "pkgtls"];
    let out = run(
        "nsenter",
        &[&inspect[..2], &dirs[..], &inspect[2..]].concat(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let view: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let store = &view[0]["Store"];
    assert_eq!(store["State"], "unreachable", "{view:#}");
    let why = store["Error"].as_str().unwrap_or_default();
    assert!(
        why.contains(&format!(
            "invalid --ipam-opt etcd_cacert: {}: ",
            ca.display()
        )) && !why.contains("not found"),
        "{why}"
    );
}
