//! The series "dhcp": the hook on a `--ipam-driver dhcp` network against dnsmasq on the LAN's
//! router link, and the DHCP exchange alone (the same client, in-process, on a link of the
//! same kind): the hook's own cost on a DHCP attach is the first minus the second. The client
//! runs optimized here as in the release hook (the workspace's `profile.dev.package` for
//! `oci-macvlan-dhcp` and `dhcproto`): unoptimized, its own work would be counted as the
//! exchange's.

use std::{
    collections::HashMap,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use oci_macvlan_dhcp::{Client, ClientId, Config, OnLink, PacketLink};
use oci_macvlan_tests::{Lan, TestNetns, dnsmasq::Dnsmasq};

/// The DHCP network's name.
pub(super) const NETWORK: &str = "benchdhcp";
const TIMEOUT: Duration = Duration::from_secs(5);

/// dnsmasq on the router's link (`rtr`), leasing 192.168.77.100–.240 (.250 is the bench's
/// etcd), and the network `benchdhcp` on `lan0`.
pub(super) fn start(lan: &Lan, host: &str, binary: &Path, dirs: &[String]) -> Result<Dnsmasq> {
    let server = Dnsmasq::start(
        &lan.router,
        "rtr",
        "192.168.77.100",
        "192.168.77.240",
        Lan::GATEWAY,
        "10m",
    );
    let status = Command::new("nsenter")
        .arg(host)
        .arg(binary)
        .args(dirs)
        .args([
            "network",
            "create",
            "-d",
            "macvlan",
            "--ipam-driver",
            "dhcp",
        ])
        .args(["-o", "parent=lan0", NETWORK])
        .stdout(std::process::Stdio::null())
        .status()?;
    if !status.success() {
        bail!("network create {NETWORK} failed");
    }
    Ok(server)
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip").args(args).output()?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// One DISCOVER…ACK on a fresh macvlan in a fresh namespace, timed from opening the socket to
/// the lease (the link is made untimed, as the hook makes it before its exchange); the lease
/// is released untimed.
pub(super) fn exchange(i: usize) -> Result<Duration> {
    let ns = TestNetns::new("omb-dora-");
    let id = format!("dora{i}");
    let client_id = ClientId::derive(b"bench", NETWORK, &id);
    let mac = ClientId::default_mac(b"bench", NETWORK, &id);
    let shown = mac.map(|b| format!("{b:02x}")).join(":");
    ip(&[
        "link", "add", "link", "lan0", "name", "eth0", "address", &shown, "netns", &ns.name,
        "type", "macvlan", "mode", "bridge",
    ])?;
    ip(&["-n", &ns.name, "link", "set", "eth0", "up"])?;
    let shown_link = Command::new("ip")
        .args(["-n", &ns.name, "-o", "link", "show", "eth0"])
        .output()?;
    // `5: eth0@if2: <…`
    let index: u32 = String::from_utf8_lossy(&shown_link.stdout)
        .split(':')
        .next()
        .and_then(|n| n.trim().parse().ok())
        .context("eth0's index")?;
    let config = Config {
        mac,
        client_id,
        hostname: None,
        broadcast: false,
        subnet: None,
        retry_floor: Duration::from_secs(60),
    };
    let on = OnLink {
        name: "eth0".into(),
        index,
        mac,
    };
    let started = Instant::now();
    let socket = ns.inside(|| PacketLink::open(&on, None))?;
    let mut client = Client::new(config, i as u32 ^ 0x5eed);
    oci_macvlan_dhcp::acquire(&mut client, &socket, TIMEOUT)?;
    let took = started.elapsed();
    drop(socket);
    // RELEASE goes from the leased address (unicast to the server): on the link, as the hook
    // puts it.
    let lease = client.lease().context("no lease")?;
    let cidr = format!("{}/{}", lease.address, lease.prefix);
    ip(&["-n", &ns.name, "addr", "add", &cidr, "dev", "eth0"])?;
    let leased = Some(lease.address);
    let socket = ns.inside(|| PacketLink::open(&on, leased))?;
    oci_macvlan_dhcp::release(&mut client, &socket)?;
    Ok(took)
}

/// Each DHCP attach's wait for the server, as the hook's journal in `state` gives it
/// (`dhcp_wait_ms`), and the attach's time without it: the hook's own cost, attach by attach.
pub(super) fn own_costs(
    state: &Path,
    attaches: &[(String, Duration)],
) -> Result<(Vec<Duration>, Vec<Duration>)> {
    // The journal rotates at 4 MiB: the older half first.
    let older = std::fs::read_to_string(state.join("hooks.jsonl.1")).unwrap_or_default();
    let journal = older + &std::fs::read_to_string(state.join("hooks.jsonl"))?;
    let mut waited = HashMap::new();
    for line in journal.lines() {
        let entry: serde_json::Value = serde_json::from_str(line)?;
        if entry["action"] == "attach"
            && entry["outcome"] == "ok"
            && let (Some(id), Some(ms)) =
                (entry["container"].as_str(), entry["dhcp_wait_ms"].as_f64())
        {
            waited.insert(id.to_owned(), Duration::from_secs_f64(ms / 1e3));
        }
    }
    let mut waits = Vec::new();
    let mut own = Vec::new();
    for (id, took) in attaches {
        let Some(&wait) = waited.get(id) else {
            bail!("the journal has no DHCP wait for {id}'s attach");
        };
        waits.push(wait);
        own.push(took.saturating_sub(wait));
    }
    Ok((waits, own))
}
