//! The Debian package of `cargo xtask dist` ($OCI_MACVLAN_DEB), installed as a user would: dpkg
//! puts the podman hooks.d file in place, so a podman container with the annotation gets its
//! leg with no `install` step; `dpkg --purge` then leaves nothing of the package behind.
//!
//! It changes the system (/usr, /etc/oci-macvlan, /run/oci-macvlan): `cargo xtask ci` runs it
//! alone, after every other test. The podman of the other tests reads hooks from their own
//! directories only (`--hooks-dir`), never the system's, so they cannot see this package.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use oci_macvlan_tests::{Lan, Podman, run, run_ok};

const PACKAGE: &str = "oci-macvlan";
const BINARY: &str = "/usr/bin/oci-macvlan";

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

#[test]
fn the_package_installs_works_with_podman_unaided_and_purges_clean() {
    let deb = PathBuf::from(
        std::env::var_os("OCI_MACVLAN_DEB")
            .expect("OCI_MACVLAN_DEB: the .deb of `cargo xtask dist` (cargo xtask ci sets it)"),
    );
    assert!(
        !run("dpkg", &["-s", PACKAGE]).status.success(),
        "{PACKAGE} is already installed: this test installs and purges it"
    );
    for dir in ["/etc/oci-macvlan", "/run/oci-macvlan"] {
        assert!(!Path::new(dir).exists(), "{dir} exists before the install");
    }
    run_ok("dpkg", &["-i", deb.to_str().unwrap()]);
    let installed = Installed;
    let files: Vec<String> = run_ok("dpkg", &["-L", PACKAGE])
        .lines()
        .map(str::to_owned)
        .collect();
    for expected in [
        BINARY,
        "/usr/share/containers/oci/hooks.d/oci-macvlan.json",
        "/usr/share/man/man1/oci-macvlan-network-create.1.gz",
        "/usr/share/bash-completion/completions/oci-macvlan",
        "/usr/share/zsh/vendor-completions/_oci-macvlan",
        "/usr/share/fish/vendor_completions.d/oci-macvlan.fish",
        "/usr/lib/systemd/system/oci-macvlan-gc.timer",
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
