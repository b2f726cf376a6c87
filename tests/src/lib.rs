//! Test harness: namespaces, links and runtimes that each test makes for itself and removes in
//! `Drop`, so that even a failing test leaves nothing behind. Tests never touch a namespace or a
//! link they did not make.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

pub mod cni;
pub mod containerd;
pub mod dhcp_lan;
pub mod dhcp_pair;
pub mod dnsmasq;
pub mod doctor;
mod driver;
mod etcd;
pub mod etcd_network;
pub mod host_access;
pub mod kea;
pub mod kea6;
mod lan;
mod monitor;
mod netns;
mod podman;
mod process;
pub mod renewal;
mod runc;
mod server;
pub mod suites;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

pub use driver::{DRIVERS, Driver, IPVLAN, MACVLAN, MACVLAN_ON_ETCD};
pub use etcd::Etcd;
pub use lan::Lan;
pub use monitor::Monitor;
pub use netns::TestNetns;
/// `#[privileged]` marks a test of the privileged tier: ignored, with the command that runs it,
/// unless the `privileged` feature is on.
pub use oci_macvlan_test_macros::privileged;
pub use podman::Podman;
pub use process::ContainerProcess;
pub use runc::{Bundle, Container, Runtime, busybox_rootfs};

/// The `oci-macvlan` binary under test: `$OCI_MACVLAN_BIN` (set by `cargo xtask ci`), or the
/// workspace's debug build. Its TLS helper `oci-macvlan-tls` is beside it (https etcd).
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("OCI_MACVLAN_BIN") {
        return PathBuf::from(path);
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/oci-macvlan");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p oci-macvlan -p oci-macvlan-etcd-tls` or `cargo xtask ci`",
        path.display()
    );
    path
}

/// The `oci-macvlan` binary built with the `failpoints` feature: `$OCI_MACVLAN_FAILPOINTS_BIN`
/// (built by `cargo xtask ci`), or built here into a target dir of its own, so that the binary
/// other tests run is never replaced under them.
pub fn failpoints_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("OCI_MACVLAN_FAILPOINTS_BIN") {
        return PathBuf::from(path);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = root.join("target/failpoints");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--package",
            "oci-macvlan",
            "--features",
            "failpoints",
        ])
        .arg("--target-dir")
        .arg(&target)
        .current_dir(&root)
        .status()
        .unwrap();
    assert!(status.success(), "cannot build oci-macvlan with failpoints");
    target.join("debug/oci-macvlan")
}

/// Runs a program and returns its output; panics if it cannot be started.
pub fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("cannot run {program}: {err}"))
}

/// Runs a program and panics, with its stderr, unless it succeeds.
pub fn run_ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A name no other test (or test run) uses at the same time.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// What one invocation of the binary did.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}
