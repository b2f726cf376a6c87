//! `cargo xtask vm`: the VM tier. This machine's kernel has no 802.1q and no dummy links, so the
//! tests that need them (`tests/tests/vm.rs`) run inside Debian's own kernel, booted under qemu
//! (`-accel tcg`: KVM hangs for nested guests here) with an initramfs that holds busybox, the
//! kernel modules, iproute2, util-linux and dnsmasq with their shared libraries, the test binary
//! and `oci-macvlan`. The guest runs the tests, prints cargo's summary lines and a last line
//! `OMT-VM-EXIT <code>`, and powers off.

use std::{
    fs,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::{cargo, root};

/// The Debian kernel package: whatever `linux-image-amd64` depends on today.
const META_PACKAGE: &str = "linux-image-amd64";
/// Modules in load order (dependencies first).
const MODULES: &[&str] = &[
    "net/llc/llc.ko",
    "net/802/stp.ko",
    "net/802/garp.ko",
    "net/802/mrp.ko",
    "net/8021q/8021q.ko",
    "drivers/net/macvlan.ko",
    "drivers/net/ipvlan/ipvlan.ko",
    "drivers/net/veth.ko",
    "drivers/net/dummy.ko",
];
/// Host programs the test harness runs, copied with the libraries they link.
const PROGRAMS: &[&str] = &[
    "/usr/sbin/ip",
    "/usr/bin/nsenter",
    "/usr/bin/unshare",
    "/usr/bin/flock",
    // The LAN's DHCP server of `tests/tests/vm/dhcp.rs` (Debian's dnsmasq-base).
    "/usr/sbin/dnsmasq",
];
/// How long the guest may take, boot to power-off.
const GUEST_TIMEOUT: Duration = Duration::from_secs(1200);

/// Test totals, from the guest's `test result:` lines.
#[derive(Debug, Default)]
pub struct Totals {
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
}

/// `cargo xtask vm [FILTER]`: build, boot, run, report.
pub fn run(filter: Option<&str>) -> Result<()> {
    let totals = run_tier(filter)?;
    println!(
        "vm: {} passed, {} failed, {} skipped",
        totals.passed, totals.failed, totals.ignored
    );
    if totals.failed > 0 {
        bail!("{} VM tests failed", totals.failed);
    }
    Ok(())
}

/// Builds the pieces, boots the guest and returns what its tests reported.
pub fn run_tier(filter: Option<&str>) -> Result<Totals> {
    let work = root().join("target/vm");
    fs::create_dir_all(&work)?;
    let kernel = kernel(&work)?;
    cargo(&["build", "--package", "oci-macvlan"], &[])?;
    crate::ci::build_failpoints()?;
    let tests = test_binary()?;
    let initrd = initramfs(&work, &kernel, &tests, filter)?;
    boot(&kernel.vmlinuz, &initrd)
}

struct Kernel {
    vmlinuz: PathBuf,
    modules: PathBuf,
}

/// Downloads and unpacks the Debian kernel package once (kept under `target/vm/`).
fn kernel(work: &Path) -> Result<Kernel> {
    let unpacked = work.join("kernel");
    if find_kernel(&unpacked).is_err() {
        let package = kernel_package()?;
        eprintln!("==> apt-get download {package}");
        // apt's download user (_apt) cannot write in a root-owned work dir: download as root
        // rather than have apt warn that it does so unsandboxed.
        run_in(
            work,
            "apt-get",
            &["-o", "APT::Sandbox::User=root", "download", &package],
        )?;
        let deb = fs::read_dir(work)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&package) && n.ends_with(".deb"))
            })
            .with_context(|| format!("apt-get download {package} left no .deb in {work:?}"))?;
        let _ = fs::remove_dir_all(&unpacked);
        run_in(
            work,
            "dpkg-deb",
            &["-x", &deb.to_string_lossy(), &unpacked.to_string_lossy()],
        )?;
        fs::remove_file(&deb)?;
    }
    find_kernel(&unpacked)
}

fn find_kernel(unpacked: &Path) -> Result<Kernel> {
    let boot = unpacked.join("boot");
    let vmlinuz = fs::read_dir(&boot)
        .with_context(|| format!("no {boot:?}"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().contains("vmlinuz-"))
        .with_context(|| format!("no vmlinuz in {boot:?}"))?;
    let release = vmlinuz
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("vmlinuz-"))
        .context("vmlinuz name")?
        .to_owned();
    let modules = unpacked.join("lib/modules").join(release).join("kernel");
    if !modules.is_dir() {
        bail!("no modules at {modules:?}");
    }
    Ok(Kernel { vmlinuz, modules })
}

/// `linux-image-6.1.0-NN-amd64`, from the meta package's dependency.
fn kernel_package() -> Result<String> {
    let out = Command::new("apt-cache")
        .args(["depends", META_PACKAGE])
        .output()
        .context("cannot run apt-cache")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with("linux-image-"))
        .map(str::to_owned)
        .with_context(|| format!("apt-cache depends {META_PACKAGE}: no linux-image dependency"))
}

/// Builds `tests/tests/vm.rs` and returns its executable.
fn test_binary() -> Result<PathBuf> {
    let args = [
        "test",
        "--package",
        "oci-macvlan-tests",
        "--features",
        "privileged,vm",
        "--test",
        "vm",
        "--no-run",
        "--message-format=json",
    ];
    eprintln!("==> cargo {}", args.join(" "));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(args)
        .current_dir(root())
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo test --no-run")?;
    if !out.status.success() {
        bail!("building the VM tests failed");
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["target"]["name"] == "vm")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .context("cargo did not name the VM test executable")
}

/// Lays out the guest's root and packs it with `busybox cpio` (newc, uncompressed).
fn initramfs(work: &Path, kernel: &Kernel, tests: &Path, filter: Option<&str>) -> Result<PathBuf> {
    let dir = work.join("root");
    let _ = fs::remove_dir_all(&dir);
    for sub in [
        "bin", "proc", "sys", "dev", "tmp", "run", "mods", "omt", "etc",
    ] {
        fs::create_dir_all(dir.join(sub))?;
    }
    fs::copy("/bin/busybox", dir.join("bin/busybox")).context("busybox-static")?;
    for program in PROGRAMS {
        copy_with_libraries(Path::new(program), &dir)?;
    }
    // dnsmasq's `--user=root --group=root` are looked up by name.
    fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/tmp:/bin/sh\n")?;
    fs::write(dir.join("etc/group"), "root:x:0:\n")?;
    // A booted system's id, which a host's identity starts from (a DHCP network's needs one).
    fs::write(
        dir.join("etc/machine-id"),
        "0e3c1d5a7b9f4e2d8c6a1b3d5f7e9a0c\n",
    )?;
    let mut names = Vec::new();
    for module in MODULES {
        let name = Path::new(module).file_name().context("module name")?;
        fs::copy(kernel.modules.join(module), dir.join("mods").join(name))
            .with_context(|| format!("module {module}"))?;
        names.push(name.to_string_lossy().trim_end_matches(".ko").to_owned());
    }
    copy_stripped(tests, &dir.join("omt/vm-tests"), &dir)?;
    copy_stripped(
        &root().join("target/debug/oci-macvlan"),
        &dir.join("omt/oci-macvlan"),
        &dir,
    )?;
    // The fault-injection suite's build, for the ipvlan sample of that suite.
    copy_stripped(
        &root().join("target/failpoints/debug/oci-macvlan"),
        &dir.join("omt/oci-macvlan-failpoints"),
        &dir,
    )?;
    let filter = filter.map(|f| format!(" '{f}'")).unwrap_or_default();
    let init = format!(
        r#"#!/bin/busybox sh
/bin/busybox mkdir -p /bb
/bin/busybox --install -s /bb
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:/bb HOME=/tmp
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
for m in {modules}; do insmod /mods/$m.ko || echo "OMT-VM: insmod $m failed"; done
echo "OMT-VM: kernel $(cat /proc/sys/kernel/osrelease)"
cd /tmp
OCI_MACVLAN_BIN=/omt/oci-macvlan OCI_MACVLAN_FAILPOINTS_BIN=/omt/oci-macvlan-failpoints RUST_BACKTRACE=1 /omt/vm-tests --test-threads=2{filter}
echo "OMT-VM-EXIT $?"
poweroff -f
"#,
        modules = names.join(" ")
    );
    let init_path = dir.join("init");
    fs::write(&init_path, init)?;
    run_in(&dir, "chmod", &["0755", "init"])?;
    let image = work.join("initrd.cpio");
    let list = Command::new("/bin/busybox")
        .args(["find", "."])
        .current_dir(&dir)
        .output()
        .context("busybox find")?;
    let mut cpio = Command::new("/bin/busybox")
        .args(["cpio", "-o", "-H", "newc"])
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(fs::File::create(&image)?)
        .stderr(Stdio::null())
        .spawn()
        .context("busybox cpio")?;
    std::io::Write::write_all(cpio.stdin.as_mut().context("cpio stdin")?, &list.stdout)?;
    drop(cpio.stdin.take());
    if !cpio.wait()?.success() {
        bail!("busybox cpio failed");
    }
    Ok(image)
}

/// Copies a dynamically linked program and every library it links, at the same paths.
fn copy_with_libraries(program: &Path, dir: &Path) -> Result<()> {
    copy_libraries(program, dir)?;
    let target = dir.join(program.strip_prefix("/")?);
    fs::create_dir_all(target.parent().context("parent")?)?;
    fs::copy(program, &target).with_context(|| format!("copy {program:?}"))?;
    Ok(())
}

/// Copies every library `ldd` names for `program` to the same path under `dir`.
fn copy_libraries(program: &Path, dir: &Path) -> Result<()> {
    let out = Command::new("ldd")
        .arg(program)
        .output()
        .with_context(|| format!("ldd {program:?}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    for lib in text.split_whitespace().filter(|w| w.starts_with('/')) {
        let target = dir.join(lib.trim_start_matches('/'));
        fs::create_dir_all(target.parent().context("parent")?)?;
        fs::copy(lib, &target).with_context(|| format!("copy {lib}"))?;
    }
    Ok(())
}

/// Debug binaries are mostly debug info: the guest loads them from RAM, so strip the copies.
/// Their libraries come along, as for the host's programs.
fn copy_stripped(from: &Path, to: &Path, dir: &Path) -> Result<()> {
    copy_libraries(from, dir)?;
    let status = Command::new("strip")
        .args(["--strip-debug", "-o"])
        .arg(to)
        .arg(from)
        .status()
        .context("cannot run strip (binutils)")?;
    if !status.success() {
        bail!("strip {from:?} failed");
    }
    Ok(())
}

/// Boots the guest, echoes its console, and adds up its `test result:` lines.
fn boot(vmlinuz: &Path, initrd: &Path) -> Result<Totals> {
    let args = [
        "-accel",
        "tcg",
        "-m",
        "2048",
        "-smp",
        "2",
        "-nographic",
        "-no-reboot",
        "-kernel",
        &vmlinuz.to_string_lossy(),
        "-initrd",
        &initrd.to_string_lossy(),
        "-append",
        "console=ttyS0 quiet panic=-1",
    ]
    .map(str::to_owned);
    eprintln!("==> qemu-system-x86_64 {}", args.join(" "));
    let mut child = Command::new("qemu-system-x86_64")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run qemu-system-x86_64 (apt-get install qemu-system-x86)")?;
    let stdout = child.stdout.take().context("qemu stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let mut totals = Totals::default();
    let mut exit = None;
    loop {
        let left = GUEST_TIMEOUT.saturating_sub(started.elapsed());
        match rx.recv_timeout(left) {
            Ok(line) => {
                // The serial console ends lines with CR LF and carries terminal escapes.
                let line = plain(&line);
                let line = line.trim_end_matches('\r');
                println!("[vm] {line}");
                if let Some(summary) = line.find("test result: ").map(|at| &line[at + 13..]) {
                    totals.passed += crate::ci::count(summary, "passed");
                    totals.failed += crate::ci::count(summary, "failed");
                    totals.ignored += crate::ci::count(summary, "ignored");
                }
                if let Some(code) = line.find("OMT-VM-EXIT ").map(|at| &line[at + 12..]) {
                    exit = code.trim().parse::<i32>().ok();
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                bail!("the VM did not finish within {GUEST_TIMEOUT:?}");
            }
        }
    }
    let _ = child.wait();
    match exit {
        Some(0) if totals.passed > 0 => Ok(totals),
        Some(0) => bail!("the VM ran no test"),
        Some(code) => {
            if totals.failed == 0 {
                bail!(
                    "the VM tests exited {code} without a failed test (did they build and start?)"
                );
            }
            Ok(totals)
        }
        None => bail!("the VM stopped before the tests finished (no OMT-VM-EXIT line)"),
    }
}

/// `line` without terminal escape sequences (CSI `ESC [ … final`, OSC `ESC ] … BEL`, and
/// two-character `ESC X`): what a log keeps of a serial console.
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        match chars.next() {
            // CSI: parameters and intermediates up to a final byte in '@'..='~'.
            Some('[') => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            // OSC: up to BEL or ESC \.
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\x07' || (c == '\x1b' && chars.next_if_eq(&'\\').is_some()) {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn run_in(dir: &Path, program: &str, args: &[&str]) -> Result<()> {
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .status()
        .with_context(|| format!("cannot run {program}"))?;
    if !status.success() {
        bail!("{program} {} failed ({status})", args.join(" "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::plain;

    #[test]
    fn console_lines_lose_their_escapes() {
        let cases = [
            ("test result: ok.", "test result: ok."),
            ("\x1b[0m\x1b[1;32mok\x1b[0m", "ok"),
            ("\x1b[?25l\x1b[2J\x1b[Hboot", "boot"),
            ("\x1b]0;title\x07after", "after"),
            ("\x1b]0;title\x1b\\after", "after"),
            ("\x1bcreset", "reset"),
            ("é\x1b[31m€", "é€"),
        ];
        for (raw, expected) in cases {
            assert_eq!(plain(raw), expected, "{raw:?}");
        }
    }
}
