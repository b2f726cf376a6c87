//! `oci-macvlan network connect | disconnect`: a running container joins or leaves a network.
//! Both go through the hook's own core calls (`attach`, `disconnect`): the same leases, records,
//! locks and rollback, and a line in the journal. A connected network is on the container's
//! record, so its poststop (or `gc`) takes it back with the rest.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
    process::Command,
};

use oci_macvlan_macvlan::{
    self as macvlan, AttachRequest, Attachment, MacAddr, Networks, Record, Records,
};
use serde::Deserialize;

use crate::{
    Context,
    cli::{ConnectArgs, DisconnectArgs, Locate, Runtime},
    error::{Error, Result},
    journal::Invocation,
    log,
    network_cmd::print,
};

/// Where a running container's namespace is, and its process.
#[derive(Debug, PartialEq, Eq)]
struct Located {
    netns: PathBuf,
    /// The namespace outlives the container (a path the runtime was given): detach deletes
    /// the links.
    persistent: bool,
    pid: Option<i32>,
}

pub fn connect(
    ctx: &Context,
    networks: &Networks,
    args: &ConnectArgs,
    inv: &mut Invocation,
) -> Result<()> {
    inv.set_container(&args.container);
    inv.action = Some("connect");
    inv.networks = vec![args.network.clone()];
    let id = macvlan::ContainerId::parse(&args.container)?;
    let static_ips = static_ips(args)?;
    let mac = args
        .mac
        .as_deref()
        .map(|mac| {
            mac.parse::<MacAddr>().map_err(|_| Error::Flag {
                flag: "--mac",
                value: mac.to_owned(),
                reason: "not a MAC address (expected six hex octets separated by ':')",
            })
        })
        .transpose()?;
    let records = Records::new(&ctx.state_dir);
    let record = records.read(&args.container)?;
    if let Some(ep) = record
        .as_ref()
        .and_then(|r| r.endpoints.iter().find(|e| e.network == args.network))
    {
        return Err(macvlan::Error::AlreadyConnected {
            container_id: args.container.clone(),
            network: args.network.clone(),
            ifname: ep.ifname.clone(),
        }
        .into());
    }
    let located = locate(
        &args.container,
        &args.locate,
        args.root.as_deref(),
        record.as_ref(),
    )?;
    let ifname = args
        .ifname
        .clone()
        .unwrap_or_else(|| next_ifname(record.as_ref()));
    // Held until the attach is done: `network rm` waits for it, then sees the lease.
    let _hold = networks.hold()?;
    let network = networks.load(&args.network)?;
    let request = AttachRequest {
        container_id: &id,
        netns: &located.netns,
        persistent_netns: located.persistent,
        pid: located.pid,
        attachments: vec![Attachment {
            network: &network,
            ifname,
            static_ips,
            mac,
        }],
        definitions: networks,
    };
    let endpoints = crate::hook::attach_now(ctx, &records, &request)?;
    for ep in endpoints {
        let addresses: Vec<String> = ep.addresses.iter().map(ToString::to_string).collect();
        print(format_args!(
            "{} {} {} {}\n",
            ep.ifname,
            ep.network,
            ep.mac,
            addresses.join(" ")
        ))?;
    }
    Ok(())
}

pub fn disconnect(ctx: &Context, args: &DisconnectArgs, inv: &mut Invocation) -> Result<()> {
    inv.set_container(&args.container);
    inv.action = Some("disconnect");
    inv.networks = vec![args.network.clone()];
    let id = macvlan::ContainerId::parse(&args.container)?;
    let records = Records::new(&ctx.state_dir);
    let open = |endpoints: &[_]| crate::stores::for_endpoints(ctx, endpoints);
    let released = ctx.block_on(macvlan::disconnect(open, &records, &id, &args.network))??;
    log::released(ctx, &args.container, &released);
    Ok(())
}

fn static_ips(args: &ConnectArgs) -> Result<Vec<IpAddr>> {
    let mut ips = Vec::new();
    if let Some(ip) = &args.ip {
        let v4: Ipv4Addr = ip.parse().map_err(|_| Error::Flag {
            flag: "--ip",
            value: ip.clone(),
            reason: "not an IPv4 address",
        })?;
        ips.push(IpAddr::V4(v4));
    }
    if let Some(ip) = &args.ip6 {
        let v6: Ipv6Addr = ip.parse().map_err(|_| Error::Flag {
            flag: "--ip6",
            value: ip.clone(),
            reason: "not an IPv6 address",
        })?;
        ips.push(IpAddr::V6(v6));
    }
    Ok(ips)
}

/// The first `ethN` the container's record does not use.
fn next_ifname(record: Option<&Record>) -> String {
    let used = |name: &str| record.is_some_and(|r| r.endpoints.iter().any(|e| e.ifname == name));
    (0..)
        .map(|n| format!("eth{n}"))
        .find(|name| !used(name))
        .unwrap_or_default()
}

/// Where the container runs: a namespace path its record keeps (the links must then be deleted
/// there at poststop: the record must keep saying so), else what the flags say, else the process
/// its record names.
fn locate(
    id: &str,
    flags: &Locate,
    root: Option<&Path>,
    record: Option<&Record>,
) -> Result<Located> {
    let recorded_pid = record
        .and_then(|r| r.liveness.as_ref())
        .and_then(|l| l.process)
        .map(|p| p.pid);
    let by_pid = |pid: i32| Located {
        netns: PathBuf::from(format!("/proc/{pid}/ns/net")),
        persistent: false,
        pid: Some(pid),
    };
    let flagged_pid = match (flags.pid, flags.runtime) {
        (Some(pid), _) => Some(pid),
        (None, Some(runtime)) => Some(runtime_pid(runtime, root, id)?),
        (None, None) => None,
    };
    if let Some(path) = record.and_then(|r| r.netns.clone()) {
        return Ok(Located {
            netns: path,
            persistent: true,
            pid: flagged_pid.or(recorded_pid),
        });
    }
    match (&flags.netns, flagged_pid, recorded_pid) {
        (Some(path), pid, _) => Ok(Located {
            netns: path.clone(),
            persistent: true,
            pid: pid.or(recorded_pid),
        }),
        (None, Some(pid), _) | (None, None, Some(pid)) => Ok(by_pid(pid)),
        (None, None, None) => Err(Error::Unlocated { id: id.to_owned() }),
    }
}

/// What `runc state` / `crun state` print that is read here.
#[derive(Debug, Deserialize)]
struct RuntimeState {
    status: String,
    #[serde(default)]
    pid: i32,
}

/// `RUNTIME [--root ROOT] state -- ID`: the `--` keeps an id that starts with `-` an id, never
/// a flag of the runtime's.
fn state_command(runtime: &str, root: Option<&Path>, id: &str) -> Command {
    let mut command = Command::new(runtime);
    if let Some(root) = root {
        command.arg("--root").arg(root);
    }
    command.args(["state", "--", id]);
    command
}

/// The container's process, from `RUNTIME --root ROOT state -- ID`.
fn runtime_pid(runtime: Runtime, root: Option<&Path>, id: &str) -> Result<i32> {
    let name = match runtime {
        Runtime::Runc => "runc",
        Runtime::Crun => "crun",
    };
    let out = state_command(name, root, id)
        .output()
        .map_err(|source| Error::RuntimeState {
            runtime: name,
            id: id.to_owned(),
            source,
        })?;
    if !out.status.success() {
        return Err(Error::RuntimeStateFailed {
            runtime: name,
            id: id.to_owned(),
            stderr: crate::error::cut(String::from_utf8_lossy(&out.stderr).trim(), 200)
                .into_owned(),
        });
    }
    let state: RuntimeState =
        serde_json::from_slice(&out.stdout).map_err(|err| Error::RuntimeStateFailed {
            runtime: name,
            id: id.to_owned(),
            stderr: format!("unreadable output: {err}"),
        })?;
    if !matches!(state.status.as_str(), "running" | "created" | "paused") || state.pid <= 0 {
        return Err(Error::NotRunning {
            runtime: name,
            id: id.to_owned(),
            status: state.status,
        });
    }
    Ok(state.pid)
}

#[cfg(test)]
mod tests {
    use oci_macvlan_macvlan::{Liveness, Process, RecordedEndpoint};

    use super::*;

    fn record(netns: Option<&str>, pid: Option<i32>, ifnames: &[&str]) -> Record {
        Record {
            container_id: macvlan::ContainerId::parse("c1").unwrap(),
            netns: netns.map(PathBuf::from),
            liveness: Some(Liveness {
                process: pid.map(|pid| Process { pid, start: 1 }),
                netns_dev: 1,
                netns_ino: 2,
            }),
            endpoints: ifnames
                .iter()
                .map(|ifname| RecordedEndpoint {
                    network: format!("net-{ifname}"),
                    ifname: (*ifname).into(),
                    mac: None,
                    kind: None,
                    lower: None,
                    index: None,
                    host_link: None,
                    store: None,
                })
                .collect(),
        }
    }

    fn flags(pid: Option<i32>, netns: Option<&str>) -> Locate {
        Locate {
            pid,
            netns: netns.map(PathBuf::from),
            runtime: None,
        }
    }

    #[test]
    fn the_container_is_found_where_its_record_says() {
        let located = |flags: &Locate, record: Option<&Record>| {
            locate("c1", flags, None, record).map_err(|e| crate::error::line(&e))
        };
        let proc_of = |pid: i32| Located {
            netns: PathBuf::from(format!("/proc/{pid}/ns/net")),
            persistent: false,
            pid: Some(pid),
        };
        // No record: the flags decide, and without them there is nothing to go by.
        assert_eq!(located(&flags(Some(7), None), None), Ok(proc_of(7)));
        assert_eq!(
            located(&flags(None, Some("/run/netns/x")), None),
            Ok(Located {
                netns: "/run/netns/x".into(),
                persistent: true,
                pid: None
            })
        );
        let err = located(&flags(None, None), None).unwrap_err();
        assert!(err.contains("--pid, --netns or --runtime"), "{err}");
        // A record of the hook: its process, or its namespace path, which must stay on record.
        let by_pid = record(None, Some(9), &["eth0"]);
        assert_eq!(located(&flags(None, None), Some(&by_pid)), Ok(proc_of(9)));
        let by_path = record(Some("/run/netns/p"), Some(9), &["eth0"]);
        assert_eq!(
            located(&flags(Some(9), None), Some(&by_path)),
            Ok(Located {
                netns: "/run/netns/p".into(),
                persistent: true,
                pid: Some(9)
            })
        );
    }

    #[test]
    fn an_id_is_never_a_flag_of_the_runtime() {
        let command = state_command("runc", Some(Path::new("/run/r")), "--help");
        let args: Vec<_> = command.get_args().collect();
        assert_eq!(args, ["--root", "/run/r", "state", "--", "--help"]);
        let command = state_command("crun", None, "-x");
        assert_eq!(
            command.get_args().collect::<Vec<_>>(),
            ["state", "--", "-x"]
        );
    }

    #[test]
    fn a_connected_network_gets_the_first_free_eth() {
        assert_eq!(next_ifname(None), "eth0");
        assert_eq!(next_ifname(Some(&record(None, None, &["eth0"]))), "eth1");
        assert_eq!(
            next_ifname(Some(&record(None, None, &["eth0", "eth2"]))),
            "eth1"
        );
    }
}
