//! `cargo xtask ci`: everything CI checks, in the order that fails fastest. A tier that cannot
//! run is an error, never a silent skip.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
};

use anyhow::{Context, Result, bail};

use crate::{cargo, is_root, missing_packages, root};

pub fn run() -> Result<()> {
    cargo(&["fmt", "--all", "--", "--check"], &[])?;
    cargo(
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--features",
            "oci-macvlan-tests/privileged,oci-macvlan-tests/vm,oci-macvlan-tests/package,oci-macvlan/failpoints",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    crate::dist::check_lean()?;

    if !is_root() {
        bail!("the privileged tier cannot run: it needs root (network namespaces, links, runc)");
    }
    let missing = missing_packages();
    if !missing.is_empty() {
        bail!(
            "the privileged tier cannot run: missing {} (apt-get install {})",
            missing.join(", "),
            missing.join(" ")
        );
    }
    build_failpoints()?;
    // The tests run target/debug/oci-macvlan, which finds its TLS helper beside it.
    cargo(
        &[
            "build",
            "--package",
            "oci-macvlan",
            "--package",
            "oci-macvlan-etcd-tls",
        ],
        &[],
    )?;
    let mut totals = test_all()?;
    // The Debian package: built and checked by lintian, then installed, used by podman with no
    // `install` step, and purged. It changes the system, so it runs alone, after the rest.
    let deb = crate::dist::run()?;
    let package = test_package(&deb)?;
    totals.passed += package.passed;
    totals.failed += package.failed;
    totals.ignored += package.ignored;
    // The VM tier: what this kernel cannot do (802.1q, dummy), in Debian's kernel under qemu.
    let vm = crate::vm::run_tier(None)?;
    println!(
        "vm: {} passed, {} failed, {} skipped",
        vm.passed, vm.failed, vm.ignored
    );
    totals.passed += vm.passed;
    totals.failed += vm.failed;
    totals.ignored += vm.ignored;
    println!(
        "ci: {} passed, {} failed, {} skipped",
        totals.passed, totals.failed, totals.ignored
    );
    if totals.failed > 0 {
        bail!("{} tests failed", totals.failed);
    }
    if totals.ignored > 0 {
        bail!(
            "{} tests were skipped: every tier must run in ci",
            totals.ignored
        );
    }
    if totals.passed == 0 {
        bail!("no test ran");
    }
    Ok(())
}

#[derive(Debug, Default)]
struct Totals {
    passed: u64,
    failed: u64,
    ignored: u64,
}

/// `tests/tests/package.rs` with the package `deb`.
fn test_package(deb: &std::path::Path) -> Result<Totals> {
    let args = [
        "test",
        "--package",
        "oci-macvlan-tests",
        "--test",
        "package",
        "--features",
        "oci-macvlan-tests/privileged,oci-macvlan-tests/package",
    ];
    cargo_test(&args, &[("OCI_MACVLAN_DEB", deb.as_os_str())])
}

/// One `cargo test` for every tier: unit and snapshot tests, then the privileged ones (own
/// namespaces, real runc). INSTA_UPDATE=no: a changed snapshot fails instead of being written.
/// Each test binary's summary line is echoed and added up.
fn test_all() -> Result<Totals> {
    let args = [
        "test",
        "--workspace",
        "--lib",
        "--bins",
        "--tests",
        "--features",
        "oci-macvlan-tests/privileged",
    ];
    let failpoints = root().join("target/failpoints/debug/oci-macvlan");
    cargo_test(
        &args,
        &[("OCI_MACVLAN_FAILPOINTS_BIN", failpoints.as_os_str())],
    )
}

/// `cargo ARGS…` (a `cargo test`) with `env`, its summary lines echoed and added up.
fn cargo_test(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Result<Totals> {
    eprintln!("==> cargo {}", args.join(" "));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut child = Command::new(cargo)
        .args(args)
        .env("INSTA_UPDATE", "no")
        .envs(env.iter().copied())
        .env("CI", "true")
        .current_dir(root())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run cargo test")?;
    let stdout = child.stdout.take().context("cargo test stdout")?;
    let mut totals = Totals::default();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        if let Some(summary) = line.strip_prefix("test result: ") {
            totals.passed += count(summary, "passed");
            totals.failed += count(summary, "failed");
            totals.ignored += count(summary, "ignored");
        }
    }
    let status = child.wait()?;
    if !status.success() && totals.failed == 0 {
        bail!("cargo test failed ({status})");
    }
    Ok(totals)
}

/// The number before `word` in `ok. 3 passed; 0 failed; 1 ignored; …`.
pub(crate) fn count(summary: &str, word: &str) -> u64 {
    let words: Vec<&str> = summary
        .split([' ', ';', '.'])
        .filter(|w| !w.is_empty())
        .collect();
    words
        .windows(2)
        .find(|pair| pair[1] == word)
        .and_then(|pair| pair[0].parse().ok())
        .unwrap_or(0)
}

/// The fault-injection suite's build, in a target dir of its own: the binary every other test
/// runs never has failpoints.
pub fn build_failpoints() -> Result<()> {
    cargo(
        &[
            "build",
            "--package",
            "oci-macvlan",
            "--features",
            "failpoints",
            "--target-dir",
            "target/failpoints",
        ],
        &[],
    )
}
