//! The benchmark's figures: median and p99 per tool and operation, our ratios to each peer, the
//! scale series; written as JSON, a Markdown table and an SVG chart under `target/bench/`.

use std::{fmt::Write as _, path::Path, time::Duration};

use anyhow::Result;
use serde_json::json;

/// Median and p99 of one tool's operation.
#[derive(Debug)]
pub struct Row {
    pub tool: String,
    pub op: String,
    pub n: usize,
    pub median_ms: f64,
    pub p99_ms: f64,
}

impl Row {
    pub fn new(tool: &str, op: &str, samples: &mut [Duration]) -> Self {
        let (median_ms, p99_ms) = quantiles(samples);
        Self {
            tool: tool.to_owned(),
            op: op.to_owned(),
            n: samples.len(),
            median_ms,
            p99_ms,
        }
    }
}

/// Attach with `leases` existing leases.
#[derive(Debug)]
pub struct ScalePoint {
    pub leases: usize,
    pub n: usize,
    pub median_ms: f64,
    pub p99_ms: f64,
}

impl ScalePoint {
    pub fn new(leases: usize, samples: &mut [Duration]) -> Self {
        let (median_ms, p99_ms) = quantiles(samples);
        Self {
            leases,
            n: samples.len(),
            median_ms,
            p99_ms,
        }
    }
}

/// Median and nearest-rank p99, in milliseconds.
fn quantiles(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let n = samples.len();
    if n == 0 {
        return (0.0, 0.0);
    }
    let median = if n % 2 == 1 {
        ms(samples[n / 2])
    } else {
        (ms(samples[n / 2 - 1]) + ms(samples[n / 2])) / 2.0
    };
    let rank = (n * 99).div_ceil(100).max(1);
    (median, ms(samples[rank - 1]))
}

#[derive(Debug)]
pub struct Report {
    pub cycles: usize,
    pub rows: Vec<Row>,
    pub scale: Vec<ScalePoint>,
}

const OURS: &str = "oci-macvlan";
/// oci-macvlan with its state dir on disk (`bench/tools.rs`, `Tool::OursOnDisk`): not a peer.
const OURS_ON_DISK: &str = "oci-macvlan, state dir on disk";
/// oci-macvlan on a network with `-o host_access` (`Tool::OursHostAccess`): not a peer.
const OURS_HOST_ACCESS: &str = "oci-macvlan, host access";
/// oci-macvlan on a network whose leases are in etcd (`Tool::OursOnEtcd`): not a peer.
const OURS_ON_ETCD: &str = "oci-macvlan, leases on etcd";
/// oci-macvlan asked for a static address, with and without the address-conflict probe
/// (`Tool::OursStatic`, `Tool::OursStaticNoProbe`): not peers.
const OURS_STATIC: &str = "oci-macvlan, static address, probed";
const OURS_STATIC_UNPROBED: &str = "oci-macvlan, static address, address_probe=off";
/// oci-macvlan as a CNI plugin (`Tool::OursCni`): not a peer; CNI macvlan + host-local is
/// its peer.
const OURS_CNI: &str = "oci-macvlan as a CNI plugin";
/// oci-macvlan on a DHCP network (`Tool::OursDhcp`), and the DHCP exchange alone
/// (`bench/dhcp.rs`): not peers; their difference is the hook's own cost on a DHCP attach.
const OURS_DHCP: &str = "oci-macvlan, DHCP (dnsmasq)";
pub const DORA: &str = "DHCP exchange alone (DISCOVER to ACK, in-process)";
/// Each DHCP attach's wait for the server's answers, from the hook's journal (`dhcp_wait_ms`).
pub const DHCP_WAIT: &str = "DHCP attach's own wait for the server (journal)";
/// Each DHCP attach's time minus its own wait: the hook's own cost, attach by attach.
pub const DHCP_OWN: &str = "DHCP attach minus its own wait for the server";
/// The `OCI_MACVLAN_BENCH_BASELINE` build on the DHCP network (`Tool::BaselineDhcp`).
const BASELINE_DHCP: &str = "oci-macvlan, baseline build, DHCP (dnsmasq)";
/// CNI's own macvlan plugin with host-local IPAM (`Tool::Cni`).
const CNI: &str = "CNI macvlan + host-local";
/// Another build of oci-macvlan (`OCI_MACVLAN_BENCH_BASELINE`): not a peer.
const BASELINE: &str = "oci-macvlan, baseline build";
/// The hook for a container not its own, this build and the baseline (`Floor::Idle`,
/// `Floor::BaselineIdle`): start-up alone, not peers.
const IDLE: &str = "oci-macvlan hook, a container not its own";
const BASELINE_IDLE: &str = "baseline build hook, a container not its own";
const OPS: [&str; 3] = [
    "attach",
    "detach, namespace gone",
    "detach, namespace present",
];

impl Report {
    /// The rows of a `results.json` this module wrote (the scale series is left out): to plot
    /// a run again without running it.
    pub fn from_json(json: &serde_json::Value) -> Option<Self> {
        let rows = json["results"]
            .as_array()?
            .iter()
            .map(|r| {
                Some(Row {
                    tool: r["tool"].as_str()?.to_owned(),
                    op: r["op"].as_str()?.to_owned(),
                    n: usize::try_from(r["n"].as_u64()?).ok()?,
                    median_ms: r["median_ms"].as_f64()?,
                    p99_ms: r["p99_ms"].as_f64()?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            cycles: usize::try_from(json["cycles"].as_u64()?).ok()?,
            rows,
            scale: Vec::new(),
        })
    }

    fn find(&self, tool: &str, op: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.tool == tool && r.op == op)
    }

    /// `peer / ours` for each peer's attach and normal-case detach: how many times faster we are.
    fn ratios(&self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        let peers: Vec<&str> = self
            .rows
            .iter()
            .map(|r| r.tool.as_str())
            .filter(|t| {
                ![
                    OURS,
                    OURS_ON_DISK,
                    OURS_HOST_ACCESS,
                    OURS_STATIC,
                    OURS_STATIC_UNPROBED,
                    OURS_ON_ETCD,
                    OURS_CNI,
                    OURS_DHCP,
                    BASELINE_DHCP,
                    DORA,
                    DHCP_WAIT,
                    DHCP_OWN,
                    BASELINE,
                    IDLE,
                    BASELINE_IDLE,
                ]
                .contains(t)
                    && !t.starts_with("floor")
            })
            .fold(Vec::new(), |mut v, t| {
                if !v.contains(&t) {
                    v.push(t);
                }
                v
            });
        for peer in peers {
            for op in OPS {
                if let (Some(ours), Some(theirs)) = (self.find(OURS, op), self.find(peer, op)) {
                    out.push((
                        format!("{peer} / oci-macvlan, {op} (median)"),
                        theirs.median_ms / ours.median_ms,
                    ));
                }
            }
        }
        // The series "oci-macvlan as a CNI plugin": the same protocol, the same spawn.
        for op in OPS {
            if let (Some(ours), Some(cni)) = (self.find(OURS_CNI, op), self.find(CNI, op)) {
                out.push((
                    format!("{CNI} / {OURS_CNI}, {op} (median)"),
                    cni.median_ms / ours.median_ms,
                ));
            }
        }
        out.extend(self.dhcp_split());
        for (op, ratio) in self.over_ours(OURS_CNI) {
            out.push((format!("{OURS_CNI} / as a hook, {op} (median)"), ratio));
        }
        for (op, ratio) in self.over_ours(OURS_ON_DISK) {
            out.push((
                format!("oci-macvlan, state dir on disk / on a tmpfs, {op} (median)"),
                ratio,
            ));
        }
        for (op, ratio) in self.over_ours(OURS_HOST_ACCESS) {
            out.push((
                format!("oci-macvlan with host access / without, {op} (median)"),
                ratio,
            ));
        }
        if let (Some(probed), Some(unprobed), Some(dynamic)) = (
            self.find(OURS_STATIC, "attach"),
            self.find(OURS_STATIC_UNPROBED, "attach"),
            self.find(OURS, "attach"),
        ) {
            out.push((
                "oci-macvlan static address, probed - address_probe=off, attach (median, ms)"
                    .into(),
                probed.median_ms - unprobed.median_ms,
            ));
            out.push((
                "oci-macvlan static address with address_probe=off / dynamic, attach (median)"
                    .into(),
                unprobed.median_ms / dynamic.median_ms,
            ));
        }
        for op in OPS {
            if let (Some(local), Some(etcd)) = (self.find(OURS, op), self.find(OURS_ON_ETCD, op)) {
                out.push((
                    format!("oci-macvlan, leases on etcd / local, {op} (median)"),
                    etcd.median_ms / local.median_ms,
                ));
            }
            if let (Some(ours), Some(base)) = (self.find(OURS, op), self.find(BASELINE, op)) {
                out.push((
                    format!("oci-macvlan / baseline build, local network, {op} (median)"),
                    ours.median_ms / base.median_ms,
                ));
            }
        }
        if let (Some(ours), Some(base)) =
            (self.find(IDLE, "spawn"), self.find(BASELINE_IDLE, "spawn"))
        {
            out.push((
                "oci-macvlan / baseline build, hook for a container not its own (median)".into(),
                ours.median_ms / base.median_ms,
            ));
        }
        if let (Some(small), Some(large)) = (self.scale.first(), self.scale.last()) {
            out.push((
                format!(
                    "oci-macvlan attach at {} leases / at {} (median)",
                    large.leases, small.leases
                ),
                large.median_ms / small.median_ms,
            ));
        }
        out
    }

    /// The series "dhcp": a DHCP attach split into the exchange (the exchange alone, timed
    /// in-process) and the rest, the hook's own cost, in ms and against a local attach of the
    /// same build; the same for the baseline build, and this build over it.
    fn dhcp_split(&self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        let Some(dora) = self.find(DORA, "attach") else {
            return out;
        };
        out.push((
            "DHCP attach: the exchange, DISCOVER to ACK (median, ms)".into(),
            dora.median_ms,
        ));
        for (dhcp, local, who) in [
            (OURS_DHCP, OURS, "oci-macvlan"),
            (BASELINE_DHCP, BASELINE, "baseline build"),
        ] {
            if let (Some(dhcp), Some(local)) =
                (self.find(dhcp, "attach"), self.find(local, "attach"))
            {
                let rest = dhcp.median_ms - dora.median_ms;
                out.push((
                    format!("{who}, DHCP attach: the rest, the hook's own cost (median, ms)"),
                    rest,
                ));
                out.push((
                    format!("{who}, DHCP attach minus the exchange / its local attach (median)"),
                    rest / local.median_ms,
                ));
            }
        }
        // Attach by attach: each one's own wait (its journal's), not another process's.
        if let (Some(own), Some(local)) = (self.find(DHCP_OWN, "attach"), self.find(OURS, "attach"))
        {
            out.push((
                "oci-macvlan, DHCP attach minus its own wait for the server (median, ms)".into(),
                own.median_ms,
            ));
            out.push((
                "oci-macvlan, DHCP attach minus its own wait for the server / its local attach (median)".into(),
                own.median_ms / local.median_ms,
            ));
        }
        for op in OPS {
            if let (Some(ours), Some(base)) =
                (self.find(OURS_DHCP, op), self.find(BASELINE_DHCP, op))
            {
                out.push((
                    format!("oci-macvlan / baseline build, DHCP network, {op} (median)"),
                    ours.median_ms / base.median_ms,
                ));
            }
        }
        out
    }

    /// `variant / oci-macvlan` of the medians for each operation: what a state dir on disk, or
    /// host access, costs (1.0 is nothing).
    fn over_ours(&self, variant: &str) -> Vec<(&'static str, f64)> {
        OPS.into_iter()
            .filter_map(|op| {
                let (ours, other) = (self.find(OURS, op)?, self.find(variant, op)?);
                Some((op, other.median_ms / ours.median_ms))
            })
            .collect()
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        let ratios = self.ratios();
        let json = json!({
            "command": "cargo xtask bench",
            "cycles": self.cycles,
            "machine": machine(),
            "results": self.rows.iter().map(|r| json!({
                "tool": r.tool, "op": r.op, "n": r.n,
                "median_ms": round(r.median_ms), "p99_ms": round(r.p99_ms),
            })).collect::<Vec<_>>(),
            "scale": self.scale.iter().map(|p| json!({
                "existing_leases": p.leases, "n": p.n,
                "median_ms": round(p.median_ms), "p99_ms": round(p.p99_ms),
            })).collect::<Vec<_>>(),
            "ratios": ratios.iter().map(|(k, v)| json!({"what": k, "ratio": round(*v)})).collect::<Vec<_>>(),
            "state_dir_on_disk_over_tmpfs": self.over_ours(OURS_ON_DISK).into_iter()
                .map(|(op, v)| (op.to_owned(), json!(round(v))))
                .collect::<serde_json::Map<_, _>>(),
            "host_access_over_without": self.over_ours(OURS_HOST_ACCESS).into_iter()
                .map(|(op, v)| (op.to_owned(), json!(round(v))))
                .collect::<serde_json::Map<_, _>>(),
        });
        std::fs::write(dir.join("results.json"), format!("{json:#}\n"))?;
        let markdown = self.markdown(&ratios);
        std::fs::write(dir.join("results.md"), &markdown)?;
        std::fs::write(dir.join("results.svg"), self.svg())?;
        print!("{markdown}");
        println!(
            "\nwritten: {0}/results.json, {0}/results.md, {0}/results.svg",
            dir.display()
        );
        Ok(())
    }

    fn markdown(&self, ratios: &[(String, f64)]) -> String {
        let mut md = format!(
            "## Attach and detach, {} cycles per tool ({})\n\n| tool | operation | n | median ms | p99 ms |\n|---|---|---:|---:|---:|\n",
            self.cycles,
            machine()
        );
        for r in &self.rows {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.3} | {:.3} |",
                r.tool, r.op, r.n, r.median_ms, r.p99_ms
            );
        }
        md.push_str("\n## oci-macvlan attach with existing leases\n\n| existing leases | n | median ms | p99 ms |\n|---:|---:|---:|---:|\n");
        for p in &self.scale {
            let _ = writeln!(
                md,
                "| {} | {} | {:.3} | {:.3} |",
                p.leases, p.n, p.median_ms, p.p99_ms
            );
        }
        md.push_str("\n## Ratios\n\n| ratio | value |\n|---|---:|\n");
        for (what, value) in ratios {
            let _ = writeln!(md, "| {what} | {value:.2} |");
        }
        md
    }

    /// Horizontal bars: median, with a whisker to p99, one row per tool and operation.
    pub fn svg(&self) -> String {
        let max = self.rows.iter().map(|r| r.p99_ms).fold(1.0, f64::max);
        // Wide enough for the longest label at ~7 px a character of 12 px sans-serif, and for
        // the figures after the longest whisker: no label runs into its bar, none is cut.
        let longest = self
            .rows
            .iter()
            .map(|r| r.tool.chars().count() + r.op.chars().count() + 2)
            .max()
            .unwrap_or(0);
        let (label_w, bar_w, row_h) = (16.0 + 7.0 * longest as f64, 520.0, 26.0);
        let height = row_h * (self.rows.len() as f64 + 2.0);
        let mut svg = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="8" y="18" font-weight="bold">median (bar) and p99 (line), milliseconds, {cycles} cycles</text>
"#,
            w = label_w + bar_w + 120.0,
            cycles = self.cycles
        );
        for (i, r) in self.rows.iter().enumerate() {
            let y = row_h * (i as f64 + 1.0) + 8.0;
            let color = if r.tool.starts_with(OURS) {
                "#2a7"
            } else {
                "#888"
            };
            let median = bar_w * r.median_ms / max;
            let p99 = bar_w * r.p99_ms / max;
            let _ = writeln!(
                svg,
                r#"<text x="8" y="{ty}">{tool}: {op}</text><rect x="{label_w}" y="{y}" width="{median:.1}" height="16" fill="{color}"/><line x1="{label_w}" x2="{x2:.1}" y1="{ly}" y2="{ly}" stroke="black"/><text x="{tx:.1}" y="{ty}">{m:.2} / {p:.2}</text>"#,
                ty = y + 12.0,
                tool = r.tool,
                op = r.op,
                x2 = label_w + p99,
                ly = y + 8.0,
                tx = label_w + p99.max(median) + 6.0,
                m = r.median_ms,
                p = r.p99_ms,
            );
        }
        svg.push_str("</svg>\n");
        svg
    }
}

fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Kernel release and CPU count, so figures are read against their machine.
fn machine() -> String {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    format!("Linux {}, {cpus} CPUs", release.trim())
}
