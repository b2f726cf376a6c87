//! How the benchmark spawns each tool: oci-macvlan (and its variants), the CNI plugin, netavark
//! and the floors, each as its caller does, timed from spawn to exit.

use std::{
    io::Write,
    net::Ipv4Addr,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use oci_macvlan_tests::TestNetns;

use super::{CNI_MACVLAN, NETAVARK, Setup};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tool {
    Ours,
    /// oci-macvlan with its state dir on disk.
    OursOnDisk,
    /// oci-macvlan on network `etcd`, whose leases are in etcd.
    OursOnEtcd,
    /// oci-macvlan on a network with `-o host_access` (a host route per container address).
    OursHostAccess,
    /// oci-macvlan asked for a static address (network `benchst`): checked against the host,
    /// its routers and neighbours, and probed for on the LAN (ARP).
    OursStatic,
    /// The same on network `benchnp`, made with `-o address_probe=off`: the checks without the
    /// probe.
    OursStaticNoProbe,
    /// The `OCI_MACVLAN_BENCH_BASELINE` build on the local network.
    Baseline,
    /// oci-macvlan as a CNI plugin (`CNI_COMMAND=ADD|DEL`, no arguments) on network
    /// `benchcni`, spawned as the CNI macvlan plugin is.
    OursCni,
    /// oci-macvlan on network `benchdhcp` (`--ipam-driver dhcp`), dnsmasq on the LAN.
    OursDhcp,
    /// The `OCI_MACVLAN_BENCH_BASELINE` build on network `benchdhcp` (containers of ids of
    /// their own: the server's leases of the two builds never meet).
    BaselineDhcp,
    Cni,
    Netavark,
    /// A program that does nothing, spawned the same way: what starting a hook costs.
    Floor(Floor),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Floor {
    /// `/bin/true`: dynamically linked, as most hooks are.
    BinTrue,
    /// A static Rust program with an empty `main`, built as oci-macvlan is.
    StaticNoop,
    /// A static program without libc: the kernel's exec and exit alone.
    NoLibc,
    /// oci-macvlan's hook for a container that is not its own (annotations without
    /// `oci-macvlan.networks`): it reads the state and exits. What the hook's start-up costs
    /// every container on a host, linked code and relocations included.
    Idle,
    /// The same with the `OCI_MACVLAN_BENCH_BASELINE` build.
    BaselineIdle,
}

impl Tool {
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Ours => "oci-macvlan",
            Self::OursOnDisk => "oci-macvlan, state dir on disk",
            Self::OursOnEtcd => "oci-macvlan, leases on etcd",
            Self::OursHostAccess => "oci-macvlan, host access",
            Self::OursStatic => "oci-macvlan, static address, probed",
            Self::OursStaticNoProbe => "oci-macvlan, static address, address_probe=off",
            Self::Baseline => "oci-macvlan, baseline build",
            Self::OursCni => "oci-macvlan as a CNI plugin",
            Self::OursDhcp => "oci-macvlan, DHCP (dnsmasq)",
            Self::BaselineDhcp => "oci-macvlan, baseline build, DHCP (dnsmasq)",
            Self::Cni => "CNI macvlan + host-local",
            Self::Netavark => "netavark macvlan",
            Self::Floor(Floor::BinTrue) => "floor: /bin/true (dynamic, glibc)",
            Self::Floor(Floor::StaticNoop) => "floor: static no-op (Rust, glibc)",
            Self::Floor(Floor::NoLibc) => "floor: static no-op, no libc",
            Self::Floor(Floor::Idle) => "oci-macvlan hook, a container not its own",
            Self::Floor(Floor::BaselineIdle) => "baseline build hook, a container not its own",
        }
    }
}

fn floor_path(setup: &Setup, floor: Floor) -> PathBuf {
    match floor {
        Floor::BinTrue => PathBuf::from("/bin/true"),
        Floor::StaticNoop => setup.floors.join("static-noop"),
        Floor::NoLibc => setup.floors.join("no-libc"),
        Floor::Idle => setup.binary.clone(),
        Floor::BaselineIdle => setup
            .baseline
            .as_ref()
            .map_or_else(|| setup.binary.clone(), |(binary, _)| binary.clone()),
    }
}

/// One spawn of a floor program, fed and awaited as a hook is.
pub(super) fn spawn_floor(setup: &Setup, floor: Floor) -> Result<Duration> {
    invoke(
        setup,
        Tool::Floor(floor),
        "",
        "",
        0,
        (Path::new(""), None),
        true,
    )
}

/// A command with the environment a runtime gives a hook: runc and crun pass exactly the `env`
/// of its config.json entry (often empty), here `PATH` alone. With this process's environment
/// (cargo's dozens of variables), glibc's start-up is slower (a static no-op: 0.71 -> 1.01 ms
/// with 95 variables, measured here), which would weigh on oci-macvlan and netavark and much
/// less on CNI's Go binaries.
fn hook_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new(program);
    command.env_clear().env(
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    );
    command
}

/// One attach and one detach in a fresh namespace; returns their times.
pub(super) fn cycle(
    setup: &Setup,
    tool: Tool,
    network: &str,
    id: &str,
    i: usize,
    gone: bool,
) -> Result<(Duration, Duration)> {
    let ns = TestNetns::new("omb-");
    let path = ns.path();
    let process = match tool {
        Tool::Ours | Tool::OursDhcp | Tool::Baseline | Tool::BaselineDhcp if setup.processes => {
            Some(Process::start(&path)?)
        }
        _ => None,
    };
    let pid = process.as_ref().map(Process::pid);
    let attach = invoke(setup, tool, network, id, i, (&path, pid), true)?;
    // A DHCP attach's keepers may start after the hook has ended (the packet socket's closer
    // child starts the first once the socket is closed): both are waited for here, outside
    // any timed call, so that no keeper's start runs in the next one.
    if process.is_some() && matches!(tool, Tool::OursDhcp | Tool::BaselineDhcp) {
        wait_for_keepers(id, 2)?;
    }
    // A runtime runs poststop once the container's process has died; its keepers end with it.
    if let Some(process) = process {
        process.end(id)?;
    }
    let ns = if gone {
        drop(ns);
        None
    } else {
        Some(ns)
    };
    let detach = invoke(setup, tool, network, id, i, (&path, pid), false)?;
    drop(ns);
    Ok((attach, detach))
}

/// A container's process, as a runtime's hook is given one (the series "dhcp"): `sleep` in the
/// container's namespace. With it the hook records the container's liveness, and a DHCP attach
/// starts the lease's renewer, as on a real host.
pub(super) struct Process {
    child: std::process::Child,
}

impl Process {
    /// `sleep` in the namespace at `netns`, once it is there.
    fn start(netns: &Path) -> Result<Self> {
        let child = Command::new("nsenter")
            .arg(format!("--net={}", netns.display()))
            .args(["sleep", "3600"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let process = Self { child };
        let want = std::fs::metadata(netns)?.ino();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pid = process.pid();
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let ns = std::fs::metadata(format!("/proc/{pid}/ns/net")).map(|m| m.ino());
            if comm.trim() == "sleep" && ns.ok() == Some(want) {
                return Ok(process);
            }
            if Instant::now() > deadline {
                bail!("nsenter --net={} sleep did not start", netns.display());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills and reaps the process, then waits for the keepers of container `id` to end (a
    /// few milliseconds): they would otherwise run beside the next cycle's hooks.
    fn end(mut self, id: &str) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while keepers_of(id) > 0 {
            if Instant::now() > deadline {
                bail!("the keepers of {id} outlived its process");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }
}

/// Waits until `count` keepers of container `id` run (see [`keepers_of`]).
fn wait_for_keepers(id: &str, count: usize) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while keepers_of(id) < count {
        if Instant::now() > deadline {
            bail!("the {count} keepers of {id} did not start");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// How many `dhcp-keeper` processes name a container whose id ends in `-{id}`.
fn keepers_of(id: &str) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let suffix = format!("-{id}");
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            args.contains(&&b"dhcp-keeper"[..])
                && args.iter().any(|a| a.ends_with(suffix.as_bytes()))
        })
        .count()
}

/// Spawns one tool the way its caller does and times it from spawn to exit.
fn invoke(
    setup: &Setup,
    tool: Tool,
    network: &str,
    id: &str,
    i: usize,
    (netns, pid): (&Path, Option<u32>),
    attach: bool,
) -> Result<Duration> {
    let (mut command, stdin) = match tool {
        Tool::Ours
        | Tool::OursOnDisk
        | Tool::OursOnEtcd
        | Tool::OursHostAccess
        | Tool::OursStatic
        | Tool::OursStaticNoProbe
        | Tool::OursDhcp
        | Tool::Baseline
        | Tool::BaselineDhcp => {
            let (state_dir, tag, network) = match (tool, &setup.baseline) {
                (Tool::OursOnDisk, _) => (&setup.disk_state, "disk-", network),
                (Tool::OursOnEtcd, _) => (&setup.state, "etcd-", "etcd"),
                (Tool::OursHostAccess, _) => (&setup.state, "ha-", "benchha"),
                (Tool::OursStatic, _) => (&setup.state, "st-", "benchst"),
                (Tool::OursStaticNoProbe, _) => (&setup.state, "np-", "benchnp"),
                (Tool::OursDhcp, _) => (&setup.state, "dhcp-", super::dhcp::NETWORK),
                (Tool::Baseline, Some((_, state))) => (state, "baseline-", network),
                (Tool::BaselineDhcp, Some((_, state))) => {
                    (state, "baseline-dhcp-", super::dhcp::NETWORK)
                }
                _ => (&setup.state, "", network),
            };
            let binary = match (tool, &setup.baseline) {
                (Tool::Baseline | Tool::BaselineDhcp, Some((binary, _))) => binary,
                _ => &setup.binary,
            };
            let id = match tool {
                Tool::BaselineDhcp => format!("b{id}"),
                _ => id.to_owned(),
            };
            let bundle = setup.tmp.join(format!("bundle-{tag}{network}-{id}"));
            if attach {
                std::fs::create_dir_all(&bundle)?;
                // One address for every cycle: each detach gives it back before the next attach.
                let mut annotations = serde_json::json!({"oci-macvlan.networks": network});
                match tool {
                    Tool::OursStatic => annotations["oci-macvlan.ip"] = "10.94.0.10".into(),
                    Tool::OursStaticNoProbe => annotations["oci-macvlan.ip"] = "10.95.0.10".into(),
                    _ => {}
                }
                let config = serde_json::json!({
                    "ociVersion": "1.0.2",
                    "root": {"path": "rootfs"},
                    "annotations": annotations,
                    "linux": {"namespaces": [{"type": "network", "path": netns}]},
                });
                std::fs::write(bundle.join("config.json"), config.to_string())?;
            }
            let mut state = serde_json::json!({
                "ociVersion": "1.0.2",
                "id": format!("{network}-{id}"),
                "status": if attach { "creating" } else { "stopped" },
                "bundle": bundle,
            });
            if let Some(pid) = pid {
                state["pid"] = pid.into();
            }
            let mut command = hook_command(binary);
            command
                .arg("--config-dir")
                .arg(&setup.config)
                .arg("--state-dir")
                .arg(state_dir);
            if tool == Tool::OursOnEtcd {
                command.args(["--host-id", "bench"]);
            }
            command.arg("hook");
            (command, state.to_string())
        }
        Tool::OursCni => {
            // The config libcni hands a plugin of a one-plugin conflist; no `prevResult` on
            // DEL, as for the CNI macvlan plugin below.
            let conf = serde_json::json!({
                "cniVersion": "1.0.0",
                "name": "benchcni",
                "type": "oci-macvlan",
                "network": "benchcni",
                "configDir": setup.config,
                "stateDir": setup.state,
            });
            let mut command = hook_command(&setup.binary);
            command
                .env("CNI_COMMAND", if attach { "ADD" } else { "DEL" })
                .env("CNI_CONTAINERID", id)
                .env("CNI_NETNS", netns)
                .env("CNI_IFNAME", "eth0")
                .env("CNI_PATH", "/usr/lib/cni");
            (command, conf.to_string())
        }
        Tool::Cni => {
            let conf = serde_json::json!({
                "cniVersion": "1.0.0",
                "name": "bench",
                "type": "macvlan",
                "master": "lan0",
                "mode": "bridge",
                "ipam": {
                    "type": "host-local",
                    "subnet": "10.91.0.0/16",
                    "gateway": "10.91.0.1",
                    "dataDir": setup.tmp.join("cni"),
                },
            });
            let mut command = hook_command(CNI_MACVLAN);
            command
                .env("CNI_COMMAND", if attach { "ADD" } else { "DEL" })
                .env("CNI_CONTAINERID", id)
                .env("CNI_NETNS", netns)
                .env("CNI_IFNAME", "eth0")
                .env("CNI_PATH", "/usr/lib/cni");
            (command, conf.to_string())
        }
        Tool::Netavark => {
            // Podman does the IPAM and hands netavark a static address.
            let ip = Ipv4Addr::new(10, 92, (i / 250) as u8, (i % 250) as u8 + 2);
            let options = serde_json::json!({
                "container_id": format!("{id:0>64}"),
                "container_name": id,
                "networks": {"bench": {"interface_name": "eth0", "static_ips": [ip.to_string()]}},
                "network_info": {"bench": {
                    "dns_enabled": false,
                    "driver": "macvlan",
                    "id": "b".repeat(64),
                    "internal": false,
                    "ipv6_enabled": false,
                    "name": "bench",
                    "network_interface": "lan0",
                    "subnets": [{"subnet": "10.92.0.0/16", "gateway": "10.92.0.1"}],
                    "ipam_options": {"driver": "host-local"},
                }},
                "port_mappings": null,
            });
            let mut command = hook_command(NETAVARK);
            command
                .arg("--config")
                .arg(setup.tmp.join("netavark"))
                .arg(if attach { "setup" } else { "teardown" })
                .arg(netns);
            (command, options.to_string())
        }
        Tool::Floor(floor @ (Floor::Idle | Floor::BaselineIdle)) => {
            let mut command = hook_command(floor_path(setup, floor));
            command
                .arg("--config-dir")
                .arg(&setup.config)
                .arg("--state-dir")
                .arg(setup.tmp.join("idle-state"))
                .arg("hook");
            let state = serde_json::json!({
                "ociVersion": "1.0.2",
                "id": "idle",
                "status": "creating",
                "bundle": setup.tmp.join("idle-bundle"),
                "annotations": {"io.example.other": "x"},
            });
            (command, state.to_string())
        }
        Tool::Floor(floor) => (hook_command(floor_path(setup, floor)), String::new()),
    };
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command.spawn().with_context(|| tool.name())?;
    match child
        .stdin
        .take()
        .context("stdin")?
        .write_all(stdin.as_bytes())
    {
        // `/bin/true` may exit before reading.
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other?,
    }
    let out = child.wait_with_output()?;
    let took = started.elapsed();
    if !out.status.success() {
        bail!(
            "{} {} failed: {}{}",
            tool.name(),
            if attach { "attach" } else { "detach" },
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    Ok(took)
}
