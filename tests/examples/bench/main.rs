//! `cargo xtask bench [CYCLES]` (this example, run by xtask once it has built the release
//! binary): attach and detach times of oci-macvlan against the CNI macvlan
//! plugin with host-local IPAM and netavark's macvlan driver, in one run, on one topology.
//!
//! xtask builds the release binary (statically linked, as README.md's install builds it) and
//! runs `bench run BINARY [CYCLES]`. The outer process makes a throw-away LAN (a host namespace whose veth
//! end `lan0` is the parent), then re-runs itself inside the host namespace (`nsenter`), so that
//! every tool is spawned there directly, as a runtime spawns a hook: no `nsenter` in any timing.
//! Each cycle makes a fresh container namespace (not timed). Tools take turns within a cycle, so
//! drift of the machine hits all of them alike. Three floors take their turns too: `/bin/true`,
//! a static Rust program that does nothing, and a static program without libc.
//!
//! oci-macvlan runs twice in each cycle: with its state dir on a tmpfs (as `/run` is on most
//! hosts) and with its state dir on disk (a directory under `target/bench/`, on the workspace's
//! filesystem: hosts whose `/run` is not a tmpfs). The report gives the ratio of the two.
//!
//! And a third time, on a network whose leases are in etcd (`--ipam-opt etcd_endpoints`): one
//! member, started here on the LAN's router (a veth hop away, as a cluster on the LAN is), its
//! data on a tmpfs. The report gives its ratio to the local attach and detach of the same run.
//!
//! And twice asking for a static address, which is checked against what the LAN holds before
//! it is taken: once with the address-conflict probe (network `benchst`), once on a network made
//! with `-o address_probe=off` (`benchnp`). The report gives their ratios to each other and to
//! the dynamic attach.
//!
//! And as a CNI plugin (network `benchcni`), spawned as the CNI macvlan plugin is, with the
//! same `CNI_*` variables: the report gives CNI macvlan + host-local over it, ADD and DEL.
//!
//! `OCI_MACVLAN_BENCH_BASELINE=PATH` adds another build of oci-macvlan (an earlier commit's)
//! on the same local network, with a state dir of its own: the report gives ours / its, so a
//! change is measured before/after in one run; on the DHCP network too.
//!
//! `OCI_MACVLAN_BENCH_SERIES=dhcp` runs the series "dhcp" alone: the local attach it is
//! compared with, the DHCP attach and the exchange alone (and the baseline build's local and
//! DHCP attach), without the peers, the floors and the scale series.

use std::{
    net::{IpAddr, Ipv4Addr},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use oci_macvlan_ipam::{Lease, LeaseStoreExt, LmdbStore, Owner};
use oci_macvlan_tests::{Etcd, Lan};

use report::{Report, Row, ScalePoint};

mod dhcp;
mod report;
mod tools;

use tools::{Floor, Tool, cycle, spawn_floor};

const CNI_MACVLAN: &str = "/usr/lib/cni/macvlan";
const CNI_HOST_LOCAL: &str = "/usr/lib/cni/host-local";
const NETAVARK: &str = "/usr/lib/podman/netavark";
const DEFAULT_CYCLES: usize = 200;
const SCALE_CYCLES: usize = 100;
const SCALE_SERIES: [usize; 3] = [10, 1_000, 10_000];
const BASELINE_ENV: &str = "OCI_MACVLAN_BENCH_BASELINE";
const SERIES_ENV: &str = "OCI_MACVLAN_BENCH_SERIES";

const USAGE: &str = "usage (cargo xtask bench runs it): bench run BINARY [CYCLES] | bench plot RESULTS.json OUT.svg";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("run") => run(args.get(1).context(USAGE)?, args.get(2).map(String::as_str)),
        Some("inner") => inner(),
        Some("plot") => plot(args.get(1), args.get(2)),
        _ => bail!(USAGE),
    }
}

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `plot RESULTS.json OUT.svg`: the chart of a run, without running it again.
fn plot(json: Option<&String>, out: Option<&String>) -> Result<()> {
    let (Some(json), Some(out)) = (json, out) else {
        bail!("usage: cargo xtask bench-plot RESULTS.json OUT.svg");
    };
    let text = std::fs::read_to_string(json).with_context(|| format!("cannot read {json}"))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{json} is not JSON"))?;
    let report = Report::from_json(&value)
        .with_context(|| format!("{json} is not a results.json of cargo xtask bench"))?;
    std::fs::write(out, report.svg()).with_context(|| format!("cannot write {out}"))
}

/// `run BINARY [CYCLES]`: the outer process, `BINARY` being the release build to measure.
fn run(built: &str, cycles: Option<&str>) -> Result<()> {
    let built = Path::new(built);
    let cycles: usize = match cycles {
        Some(n) => n.parse().context("usage: cargo xtask bench [CYCLES]")?,
        None => DEFAULT_CYCLES,
    };
    for (path, package) in [
        (CNI_MACVLAN, "containernetworking-plugins"),
        (CNI_HOST_LOCAL, "containernetworking-plugins"),
        (NETAVARK, "netavark"),
    ] {
        if !Path::new(path).exists() {
            bail!("{path} is missing: apt-get install {package}");
        }
    }
    let lan = Lan::new();
    // Every tool keeps its state on a tmpfs, as on a real host (`/run`; here `/run` is on disk,
    // so `/dev/shm`): oci-macvlan's leases, host-local's data dir, netavark's config dir.
    let shm = tempfile::Builder::new()
        .prefix("omb-")
        .tempdir_in("/dev/shm")
        .context("a tmpfs at /dev/shm")?;
    let state = shm.path().join("state");
    // The same binary with its state on disk: the filesystem the workspace is on.
    let out = root().join("target/bench");
    std::fs::create_dir_all(&out)?;
    let bin = out.join("bin");
    let binary = installed(built, &bin, "oci-macvlan")?;
    let disk = tempfile::Builder::new()
        .prefix("state-disk-")
        .tempdir_in(&out)
        .context("a directory under target/bench")?;
    let dirs = [
        "--config-dir",
        &lan.config_dir().to_string_lossy(),
        "--state-dir",
        &state.to_string_lossy(),
    ]
    .map(str::to_owned);
    let host = format!("--net={}", lan.host.path().display());
    let etcd = Etcd::start(&lan, 1);
    etcd.reach_from(&lan, "192.168.77.250");
    let etcd_endpoints = format!("etcd_endpoints={}", etcd.endpoints());
    for (name, subnet, gateway, extra) in [
        ("bench", "10.90.0.0/16", "10.90.0.1", None),
        ("scale", "10.96.0.0/16", "10.96.0.1", None),
        (
            "etcd",
            "10.93.0.0/16",
            "10.93.0.1",
            Some(["--ipam-opt", &etcd_endpoints]),
        ),
        (
            "benchha",
            "10.91.0.0/16",
            "10.91.0.1",
            Some(["-o", "host_access=10.91.0.3"]),
        ),
        ("benchst", "10.94.0.0/16", "10.94.0.1", None),
        ("benchcni", "10.97.0.0/16", "10.97.0.1", None),
        (
            "benchnp",
            "10.95.0.0/16",
            "10.95.0.1",
            Some(["-o", "address_probe=off"]),
        ),
    ] {
        let status = Command::new("nsenter")
            .arg(&host)
            .arg(&binary)
            .args(&dirs)
            .args([
                "network",
                "create",
                "--subnet",
                subnet,
                "--gateway",
                gateway,
            ])
            .args(["-o", "parent=lan0", name])
            .args(extra.into_iter().flatten())
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("network create {name} failed");
        }
    }
    let dnsmasq = dhcp::start(&lan, &host, &binary, &dirs)?;
    let floors = shm.path().join("floors");
    build_floors(&floors)?;
    for name in ["static-noop", "no-libc"] {
        installed(&floors.join(name), &bin, name)?;
    }
    let floors = bin.clone();
    let baseline = match std::env::var_os(BASELINE_ENV).map(PathBuf::from) {
        Some(path) if !path.is_file() => {
            bail!("{BASELINE_ENV}={} is not a file", path.display())
        }
        Some(path) => Some(installed(&path, &bin, "baseline")?),
        None => None,
    };
    let mut inner = Command::new("nsenter");
    if let Some(path) = &baseline {
        inner
            .env("OMB_BASELINE", path)
            .env("OMB_BASELINE_STATE", shm.path().join("baseline-state"));
    }
    let status = inner
        .arg(&host)
        .arg(std::env::current_exe()?)
        .arg("inner")
        .env("OMB_BIN", &binary)
        .env("OMB_CONFIG", lan.config_dir())
        .env("OMB_STATE", &state)
        .env("OMB_DISK_STATE", disk.path())
        .env("OMB_TMP", shm.path())
        .env("OMB_FLOORS", &floors)
        .env("OMB_CYCLES", cycles.to_string())
        .env("OMB_OUT", &out)
        .status()?;
    drop(etcd);
    drop(dnsmasq);
    if !status.success() {
        bail!("the benchmark failed ({status})");
    }
    Ok(())
}

/// A copy of the program `src` as `dir/name`, written the way an installer writes it (dpkg,
/// `cp`). Every program the benchmark spawns is such a copy: here a binary exactly as the linker
/// left it starts slower than the same bytes copied (a hook that exits at once: 1.66 ms against
/// 1.38 ms, measured), which would weigh on whichever side was linked last.
fn installed(src: &Path, dir: &Path, name: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let to = dir.join(name);
    let _ = std::fs::remove_file(&to);
    std::fs::copy(src, &to)
        .with_context(|| format!("copy {} to {}", src.display(), to.display()))?;
    Ok(to)
}

/// The two static floors, compiled with this toolchain: a Rust program that does nothing (what
/// starting oci-macvlan costs before its first line: the kernel's exec, glibc's and Rust's
/// start-up), and one without any libc, whose `_start` exits at once (the kernel's exec alone).
/// Their difference is glibc's start-up, which on a VM that traps CPUID dominates the floor.
fn build_floors(dir: &Path) -> Result<()> {
    const NOOP: &str = "fn main() {}\n";
    const NO_LIBC: &str = r#"#![no_std]
#![no_main]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
#[unsafe(no_mangle)]
pub extern "C" fn _start() -> ! {
    // exit_group(0)
    unsafe { core::arch::asm!("syscall", in("rax") 231, in("rdi") 0, options(noreturn)) }
}
"#;
    std::fs::create_dir_all(dir)?;
    for (name, source, flags) in [
        (
            "static-noop",
            NOOP,
            &["-C", "target-feature=+crt-static"][..],
        ),
        (
            "no-libc",
            NO_LIBC,
            &[
                "-C",
                "panic=abort",
                "-C",
                "relocation-model=static",
                "-C",
                "link-arg=-nostartfiles",
                "-C",
                "link-arg=-nostdlib",
                "-C",
                "link-arg=-static",
            ][..],
        ),
    ] {
        let source_path = dir.join(format!("{name}.rs"));
        std::fs::write(&source_path, source)?;
        let status = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
            .args(["-O", "--edition", "2024"])
            .args(flags)
            .arg(&source_path)
            .arg("-o")
            .arg(dir.join(name))
            .status()
            .context("rustc")?;
        if !status.success() {
            bail!("cannot build the {name} floor");
        }
    }
    Ok(())
}

/// What the inner process is told by the outer one.
struct Setup {
    binary: PathBuf,
    floors: PathBuf,
    config: PathBuf,
    /// oci-macvlan's state dir on a tmpfs.
    state: PathBuf,
    /// oci-macvlan's state dir on disk.
    disk_state: PathBuf,
    /// Another build to compare with, and its state dir (`OCI_MACVLAN_BENCH_BASELINE`).
    baseline: Option<(PathBuf, PathBuf)>,
    tmp: PathBuf,
    cycles: usize,
    out: PathBuf,
    /// The series "dhcp": each container of ours has a process (see `tools::Process`).
    processes: bool,
}

fn env_path(key: &str) -> Result<PathBuf> {
    std::env::var_os(key)
        .map(PathBuf::from)
        .with_context(|| format!("{key} is not set: run `cargo xtask bench`"))
}

/// `inner`: runs inside the host namespace.
fn inner() -> Result<()> {
    let only_dhcp = match std::env::var(SERIES_ENV).ok().as_deref() {
        None | Some("" | "all") => false,
        Some("dhcp") => true,
        Some(other) => bail!("{SERIES_ENV}={other}: the series are `all` and `dhcp`"),
    };
    let setup = Setup {
        binary: env_path("OMB_BIN")?,
        floors: env_path("OMB_FLOORS")?,
        config: env_path("OMB_CONFIG")?,
        state: env_path("OMB_STATE")?,
        disk_state: env_path("OMB_DISK_STATE")?,
        baseline: env_path("OMB_BASELINE")
            .ok()
            .zip(env_path("OMB_BASELINE_STATE").ok()),
        tmp: env_path("OMB_TMP")?,
        cycles: std::env::var("OMB_CYCLES")?.parse()?,
        out: env_path("OMB_OUT")?,
        processes: only_dhcp,
    };
    let mut tools = vec![
        Tool::Ours,
        Tool::OursOnDisk,
        Tool::OursHostAccess,
        Tool::OursStatic,
        Tool::OursStaticNoProbe,
        Tool::OursOnEtcd,
        Tool::OursCni,
        Tool::OursDhcp,
        Tool::Cni,
        Tool::Netavark,
        Tool::Floor(Floor::BinTrue),
        Tool::Floor(Floor::StaticNoop),
        Tool::Floor(Floor::NoLibc),
    ];
    tools.insert(tools.len() - 3, Tool::Floor(Floor::Idle));
    if setup.baseline.is_some() {
        tools.insert(1, Tool::Baseline);
        tools.insert(tools.len() - 3, Tool::Floor(Floor::BaselineIdle));
        let dhcp = tools.iter().position(|&t| t == Tool::OursDhcp).unwrap_or(0);
        tools.insert(dhcp + 1, Tool::BaselineDhcp);
    }
    if only_dhcp {
        tools.retain(|t| {
            matches!(
                t,
                Tool::Ours | Tool::Baseline | Tool::OursDhcp | Tool::BaselineDhcp
            )
        });
    }
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); tools.len() * 3];
    let mut exchanges = Vec::new();
    // Each DHCP attach of this build, by container, for its own wait in the journal.
    let mut dhcp_attaches: Vec<(String, Duration)> = Vec::new();
    // Warm-up: page cache, first-use costs of the store and of each binary.
    for i in 0..5 {
        dhcp::exchange(setup.cycles + i)?;
        for &tool in &tools {
            if let Tool::Floor(floor) = tool {
                spawn_floor(&setup, floor)?;
                continue;
            }
            let gone = tool != Tool::Netavark;
            cycle(&setup, tool, "bench", &format!("warm{i}"), i, gone)?;
        }
    }
    for i in 0..setup.cycles {
        exchanges.push(dhcp::exchange(i)?);
        for (t, &tool) in tools.iter().enumerate() {
            if let Tool::Floor(floor) = tool {
                samples[t * 3].push(spawn_floor(&setup, floor)?);
                continue;
            }
            let id = format!("c{i}");
            // Detach as each tool is used: the namespace already gone (runc, crun and CNI
            // runtimes call poststop/DEL after it died), except netavark, which podman always
            // tears down with the namespace still there (it fails on a missing one).
            let gone = tool != Tool::Netavark;
            let (attach, detach) = cycle(&setup, tool, "bench", &id, i, gone)?;
            samples[t * 3].push(attach);
            samples[t * 3 + if gone { 1 } else { 2 }].push(detach);
            let mut dhcp_attach = |id: &str, took| {
                if tool == Tool::OursDhcp {
                    dhcp_attaches.push((format!("{}-{id}", dhcp::NETWORK), took));
                }
            };
            dhcp_attach(&id, attach);
            if tool != Tool::Netavark {
                let id = format!("{id}p");
                let (attach, detach) = cycle(&setup, tool, "bench", &id, i, false)?;
                samples[t * 3].push(attach);
                samples[t * 3 + 2].push(detach);
                dhcp_attach(&id, attach);
            }
        }
    }
    let mut rows = Vec::new();
    for (t, tool) in tools.into_iter().enumerate() {
        let ops = match tool {
            Tool::Floor(_) => ["spawn", "", ""],
            _ => [
                "attach",
                "detach, namespace gone",
                "detach, namespace present",
            ],
        };
        for (k, op) in ops.into_iter().enumerate() {
            if !samples[t * 3 + k].is_empty() {
                rows.push(Row::new(tool.name(), op, &mut samples[t * 3 + k]));
            }
        }
    }
    rows.push(Row::new(report::DORA, "attach", &mut exchanges));
    if !dhcp_attaches.is_empty() {
        let (mut waits, mut own) = dhcp::own_costs(&setup.state, &dhcp_attaches)?;
        rows.push(Row::new(report::DHCP_WAIT, "attach", &mut waits));
        rows.push(Row::new(report::DHCP_OWN, "attach", &mut own));
    }
    let scale = if only_dhcp {
        Vec::new()
    } else {
        scale_series(&setup)?
    };
    let report = Report {
        cycles: setup.cycles,
        rows,
        scale,
    };
    report.write(&setup.out)?;
    Ok(())
}

/// Attach with `existing` leases already in the store, for each size of the series.
fn scale_series(setup: &Setup) -> Result<Vec<ScalePoint>> {
    let mut points = Vec::new();
    let mut filled = 0;
    for existing in SCALE_SERIES {
        fill(&setup.state, filled, existing)?;
        filled = existing;
        let mut attach = Vec::new();
        for i in 0..SCALE_CYCLES {
            let (a, _) = cycle(
                setup,
                Tool::Ours,
                "scale",
                &format!("s{existing}-{i}"),
                i,
                true,
            )?;
            attach.push(a);
        }
        points.push(ScalePoint::new(existing, &mut attach));
    }
    Ok(points)
}

/// Leases `from..to` of network `scale`, held by filler containers, inserted directly.
fn fill(state: &Path, from: usize, to: usize) -> Result<()> {
    let mut store = LmdbStore::open(state)?;
    store.transaction(|txn| {
        for i in from..to {
            let offset = u32::try_from(i + 2).unwrap_or(u32::MAX);
            let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 0)) + offset);
            txn.insert(&Lease {
                ip: IpAddr::V4(ip),
                subnet: "10.96.0.0/16".parse().expect("a CIDR"),
                network: "scale".into(),
                owner: Owner {
                    container_id: format!("filler{i}"),
                    ifname: "eth0".into(),
                },
                host: None,
            })?;
        }
        Ok(())
    })?;
    Ok(())
}
