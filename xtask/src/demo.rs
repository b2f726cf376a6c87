//! `cargo xtask demo`: checks for root, installs what the demo needs, builds the binary, then
//! runs the demo itself, `tests/examples/demo.rs` (it uses the test harness's LAN and runtimes,
//! which xtask does not compile).

use std::process::Command;

use anyhow::{Result, bail};

use crate::{cargo, is_root, missing_packages};

pub fn run() -> Result<()> {
    if !is_root() {
        bail!("the demo needs root: it makes network namespaces and runs runc");
    }
    install_missing()?;
    cargo(&["build", "--package", "oci-macvlan"], &[])?;
    cargo(
        &["run", "--package", "oci-macvlan-tests", "--example", "demo"],
        &[],
    )
}

fn install_missing() -> Result<()> {
    let missing = missing_packages();
    if missing.is_empty() {
        return Ok(());
    }
    println!(
        "==> installing missing Debian packages: {}",
        missing.join(" ")
    );
    let ok = Command::new("apt-get")
        .args(["update", "-qq"])
        .status()?
        .success()
        && Command::new("apt-get")
            .args(["install", "-y", "-qq"])
            .args(&missing)
            .status()?
            .success();
    if !ok {
        bail!("apt-get install {} failed", missing.join(" "));
    }
    Ok(())
}
