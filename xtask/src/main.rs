//! `cargo xtask demo`, `ci`, `dist`, `vm` and `bench`.
//!
//! xtask depends on no crate of the workspace: it is built before anything else can run, so it
//! drives cargo and leaves the core (netlink, tokio, LMDB) to the targets it runs. The demo and
//! the benchmark, which need the test harness, are examples of the tests crate
//! (`tests/examples/`) that xtask runs through cargo.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

mod bench;
mod ci;
mod demo;
mod dist;
mod vm;

const USAGE: &str = "usage: cargo xtask <demo|ci|dist|vm [FILTER]|bench [CYCLES]>

  demo   build, then run two busybox containers with real runc on a throw-away LAN
  ci     fmt check, clippy (warnings denied), unit + snapshot tests, privileged tier, the Debian
         package (dist, lintian, dpkg -i, podman, dpkg --purge), VM tier
  dist   the static binary and the Debian package (cargo-deb, checked by lintian) in target/dist/
  vm     the VM tier alone: tests/tests/vm.rs inside Debian's kernel under qemu (802.1q, dummy)
  bench  attach/detach against CNI macvlan + host-local and netavark; figures in target/bench/
  bench-plot RESULTS.json OUT.svg   the chart of an earlier run's results.json";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("demo") => demo::run(),
        Some("ci") => ci::run(),
        Some("dist") => dist::run().map(drop),
        Some("vm") => vm::run(args.get(1).map(String::as_str)),
        Some("bench") => bench::run(args.get(1).map(String::as_str)),
        Some("bench-plot") => bench::plot(&args[1..]),
        Some("-h" | "--help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => bail!("{USAGE}"),
    }
}

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Runs `cargo ARGS…` in the workspace root, echoing the command; fails if it fails.
pub fn cargo(args: &[&str], env: &[(&str, &str)]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("==> cargo {}", args.join(" "));
    let status = Command::new(cargo)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(root())
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// What the privileged tiers need, and the Debian package that provides each.
pub const PREREQUISITES: &[(&str, &str)] = &[
    ("/usr/sbin/ip", "iproute2"),
    ("/usr/bin/nsenter", "util-linux"),
    ("/usr/sbin/runc", "runc"),
    ("/usr/bin/crun", "crun"),
    ("/usr/bin/podman", "podman"),
    ("/bin/busybox", "busybox-static"),
    ("/usr/bin/qemu-system-x86_64", "qemu-system-x86"),
    ("/usr/bin/strip", "binutils"),
    // Networks shared by several hosts (`tests/tests/etcd.rs`): etcd members, etcdctl to read
    // them, openssl for the TLS test's CA and certificates.
    ("/usr/bin/etcd", "etcd-server"),
    ("/usr/bin/etcdctl", "etcd-client"),
    ("/usr/bin/openssl", "openssl"),
    // The DHCP client against a real server (`tests/tests/dhcp.rs`): Kea, started by the test.
    ("/usr/sbin/kea-dhcp4", "kea-dhcp4-server"),
    ("/usr/sbin/kea-dhcp6", "kea-dhcp6-server"), // the DHCPv6 client, `tests/tests/dhcp6.rs`
    // Renewals left unanswered, dropped in the container's namespace (`tests/tests/dhcp_renew.rs`).
    ("/usr/sbin/iptables", "iptables"),
    // The CNI door's real clients: podman's CNI backend runs CNI's own plugins too (and the
    // bench measures `macvlan` + `host-local`); `ctr run --cni` against a containerd the test
    // starts (`tests/tests/cni_containerd.rs`).
    ("/usr/lib/cni/host-local", "containernetworking-plugins"),
    ("/usr/bin/containerd", "containerd"),
    // The DHCP source's RELEASE and identity against dnsmasq (`tests/tests/dhcp_*.rs`).
    ("/usr/sbin/dnsmasq", "dnsmasq-base"),
    // `cargo xtask dist` checks the package with lintian.
    ("/usr/bin/lintian", "lintian"),
    // Completion tests drive the shells themselves; man pages are rendered with `man -l`.
    ("/usr/bin/zsh", "zsh"),
    ("/usr/bin/fish", "fish"),
    ("/usr/bin/man", "man-db"),
];

/// Which prerequisites are missing, as Debian package names.
pub fn missing_packages() -> Vec<&'static str> {
    PREREQUISITES
        .iter()
        .filter(|(path, _)| {
            !Path::new(path).exists() && which(Path::new(path).file_name()).is_none()
        })
        .map(|(_, package)| *package)
        .collect()
}

fn which(name: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    let name = name?;
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|path| path.exists())
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| out.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}
