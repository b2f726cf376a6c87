//! `cargo xtask dist`: the static binaries and the Debian package, in `target/dist/`.
//!
//! The package is built by cargo-deb (`[package.metadata.deb]` in hooks/Cargo.toml) from the
//! static binary, its TLS helper (`oci-macvlan-tls`, in `/usr/libexec/oci-macvlan/`) and the
//! files the binary writes from its CLI definition (`oci-macvlan dist-files`: man pages,
//! completions, the podman hooks.d file), then checked by lintian, which must report no error.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::{cargo, root};

/// The target the binary is built for: this machine's, with the C runtime linked in.
fn target() -> String {
    format!("{}-unknown-linux-gnu", std::env::consts::ARCH)
}

/// Builds everything; returns the path of the `.deb`.
pub fn run() -> Result<PathBuf> {
    let target = target();
    let dist = root().join("target/dist");
    let _ = std::fs::remove_dir_all(&dist);
    std::fs::create_dir_all(&dist).context("cannot make target/dist")?;
    // A static binary runs on any glibc or musl distribution, whatever libc it has: with an
    // explicit --target, the flag reaches only the binary, not build scripts.
    cargo(
        &[
            "build",
            "--release",
            "--locked",
            "--package",
            "oci-macvlan",
            "--package",
            "oci-macvlan-etcd-tls",
            "--target",
            &target,
        ],
        &[("RUSTFLAGS", "-C target-feature=+crt-static")],
    )?;
    let release = root().join(format!("target/{target}/release"));
    for name in ["oci-macvlan", "oci-macvlan-tls"] {
        let binary = release.join(name);
        check_static(&binary)?;
        std::fs::copy(&binary, dist.join(name))
            .with_context(|| format!("cannot copy {}", binary.display()))?;
    }
    let binary = release.join("oci-macvlan");
    check_lean_binary(&binary)?;
    run_ok(
        Command::new(&binary)
            .arg("dist-files")
            .arg(dist.join("files")),
    )?;
    ensure_cargo_deb()?;
    cargo(
        &[
            "deb",
            "--package",
            "oci-macvlan",
            "--no-build",
            "--target",
            &target,
            "--output",
            dist.to_str().context("target dir is not UTF-8")?,
        ],
        &[],
    )?;
    let deb = std::fs::read_dir(&dist)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .context("cargo deb made no .deb")?;
    lintian(&deb)?;
    println!("{}", deb.display());
    Ok(deb)
}

/// The binary has no program interpreter: the kernel runs it with no loader, no libc.
fn check_static(binary: &Path) -> Result<()> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .context("cannot run ldd")?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if !(text.contains("not a dynamic executable") || text.contains("statically linked")) {
        bail!("{} is not static: ldd says {text}", binary.display());
    }
    Ok(())
}

/// What the hook's binary must not link: every hook (a static PIE) relocates its whole image at
/// each start, so TLS (rustls, ring: the `oci-macvlan-tls` helper's) and the generators of
/// completions and man pages (build.rs's) would slow every attach, local networks included.
const NOT_IN_THE_HOOK: &[&str] = &["rustls", "ring", "clap_complete", "clap_mangen", "roff"];

/// None of [`NOT_IN_THE_HOOK`] is a dependency of the `oci-macvlan` binary (build scripts
/// aside): cheap, so `cargo xtask ci` checks it first.
pub fn check_lean() -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "--package", "oci-macvlan", "--edges", "normal"])
        .args(["--prefix", "none", "--format", "{p}"])
        .current_dir(root())
        .output()
        .context("cannot run cargo tree")?;
    if !out.status.success() {
        bail!(
            "cargo tree failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let tree = String::from_utf8_lossy(&out.stdout);
    let linked: Vec<&str> = tree
        .lines()
        .filter_map(|line| line.split(' ').next())
        .filter(|name| NOT_IN_THE_HOOK.contains(name))
        .collect();
    if !linked.is_empty() {
        bail!(
            "oci-macvlan depends on {} (keep TLS in oci-macvlan-tls, generators in build.rs)",
            linked.join(", ")
        );
    }
    Ok(())
}

/// The static release binary names none of the crates [`check_lean`] keeps out (their panic
/// locations and type names would be in it).
fn check_lean_binary(binary: &Path) -> Result<()> {
    let bytes =
        std::fs::read(binary).with_context(|| format!("cannot read {}", binary.display()))?;
    for name in ["rustls", "clap_complete", "clap_mangen"] {
        if bytes.windows(name.len()).any(|w| w == name.as_bytes()) {
            bail!("{} holds {name}: it must not link it", binary.display());
        }
    }
    Ok(())
}

/// cargo-deb, installed with cargo when it is missing (CI's machine is fresh).
fn ensure_cargo_deb() -> Result<()> {
    let cargo_bin = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let present = Command::new(&cargo_bin)
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    if present {
        return Ok(());
    }
    cargo(&["install", "--locked", "cargo-deb@3.8.0"], &[])
}

/// lintian's verdict: errors fail, warnings are shown.
fn lintian(deb: &Path) -> Result<()> {
    eprintln!("==> lintian {}", deb.display());
    let out = Command::new("lintian")
        .args(["--fail-on", "error", "--tag-display-limit", "0"])
        .arg(deb)
        .output()
        .context("cannot run lintian (apt-get install lintian)")?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        bail!("lintian found errors in {}", deb.display());
    }
    Ok(())
}

fn run_ok(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("cannot run {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed ({status})");
    }
    Ok(())
}
