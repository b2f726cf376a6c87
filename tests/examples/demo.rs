//! `cargo xtask demo`: the project's main job, end to end, on a LAN made for the occasion.
//! Everything it makes (namespaces, containers, files) is removed when it ends, even on failure.
//! xtask checks for root, installs what is missing and builds the binary, then runs this example.

use anyhow::{Context, Result, bail};
use oci_macvlan_tests::{Bundle, Container, Lan, Runtime};

const NET: &str = "lan77";

fn main() -> Result<()> {
    let lan = Lan::new();
    say(&format!(
        "a LAN made of two network namespaces, removed at the end (no link of this machine is \
         touched):\n    {} plays the LAN's router, holding {} on its link 'rtr';\n    {} \
         plays this host, whose link '{}' (the other end of 'rtr') stands for eth0",
        lan.router.name,
        Lan::GATEWAY,
        lan.host.name,
        Lan::PARENT
    ));
    let create = format!(
        "network create --subnet {} --gateway {} -o parent={} {NET}",
        Lan::SUBNET,
        Lan::GATEWAY,
        Lan::PARENT
    );
    say(&format!("oci-macvlan {create}"));
    lan.create_network(NET, &[]);
    println!("{}", lan.cli_ok(&["network", "ls"], "").trim_end());

    let mut containers = Vec::new();
    for (id, extra) in [("demo-a", None), ("demo-b", Some("192.168.77.50"))] {
        let mut annotations = vec![("oci-macvlan.networks", NET)];
        if let Some(ip) = extra {
            annotations.push(("oci-macvlan.ip", ip));
        }
        let shown: Vec<String> = annotations
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        say(&format!(
            "runc run {id}   (annotations: {})",
            shown.join(" ")
        ));
        let bundle = Bundle::new(&lan, id, &annotations);
        if containers.is_empty() {
            show_config(&bundle)?;
        }
        let container = Container::start(&lan, Runtime::Runc, id, &bundle)
            .map_err(|err| anyhow::anyhow!("runc run {id}: {err}"))?;
        for args in [
            &["ip", "-4", "addr", "show", "dev", "eth0"][..],
            &["ip", "route"][..],
        ] {
            let (_, out) = container.exec(args);
            for line in out.lines() {
                println!("    {id}$ {line}");
            }
        }
        containers.push(container);
    }

    let targets = [
        ("demo-a", "192.168.77.50"),
        ("demo-b", "192.168.77.2"),
        ("demo-a", Lan::GATEWAY),
        ("demo-b", Lan::GATEWAY),
    ];
    for (from, to) in targets {
        let container = containers
            .iter()
            .find(|c| c.id == from)
            .context("container")?;
        let (ok, out) = container.exec(&["ping", "-c", "1", "-W", "2", to]);
        let rtt = out
            .lines()
            .find(|l| l.contains("time="))
            .unwrap_or("")
            .trim();
        say(&format!(
            "ping {from} -> {to}: {}  {rtt}",
            if ok { "ok" } else { "FAILED" }
        ));
        if !ok {
            bail!("{from} cannot reach {to}: {out}");
        }
    }

    say("stopping the containers (runc runs the poststop hook)");
    for container in containers {
        let id = container.id.clone();
        container
            .stop()
            .map_err(|err| anyhow::anyhow!("runc delete {id}: {err}"))?;
    }
    say(&format!("leases left on {NET}: {}", lan.leased(NET)));
    lan.cli_ok(&["network", "rm", NET], "");
    say("removed the network; the LAN's namespaces go with the demo");
    Ok(())
}

/// What the bundle's `config.json` says to oci-macvlan: its annotations and hooks.
fn show_config(bundle: &Bundle) -> Result<()> {
    let path = bundle.dir.join("config.json");
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?,
    )?;
    let shown = serde_json::json!({
        "annotations": config["annotations"],
        "hooks": config["hooks"],
    });
    println!("    config.json (the parts oci-macvlan reads):");
    for line in serde_json::to_string_pretty(&shown)?.lines() {
        println!("    {line}");
    }
    Ok(())
}

fn say(line: &str) {
    println!("==> {line}");
}
