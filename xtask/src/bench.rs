//! `cargo xtask bench [CYCLES]` and `bench-plot`: xtask builds the binary to measure, then runs
//! the benchmark itself, `tests/examples/bench/` (it uses the test harness's LAN and etcd, and
//! the lease store, which xtask does not compile).

use anyhow::Result;

use crate::{cargo, root};

const STATIC_TARGET: &str = "x86_64-unknown-linux-gnu";

pub fn run(cycles: Option<&str>) -> Result<()> {
    // The binary as README.md's install builds it: release, statically linked (no dynamic
    // loader at every hook start).
    cargo(
        &[
            "build",
            "--release",
            "--package",
            "oci-macvlan",
            "--target",
            STATIC_TARGET,
        ],
        &[("RUSTFLAGS", "-C target-feature=+crt-static")],
    )?;
    let built = root()
        .join("target")
        .join(STATIC_TARGET)
        .join("release/oci-macvlan");
    let built = built.to_string_lossy();
    let mut args = vec!["run", built.as_ref()];
    args.extend(cycles);
    example(&args)
}

/// `bench-plot RESULTS.json OUT.svg`: the chart of a run, without running it again.
pub fn plot(args: &[String]) -> Result<()> {
    let mut plot = vec!["plot"];
    plot.extend(args.iter().map(String::as_str));
    example(&plot)
}

/// `tests/examples/bench ARGS…`.
fn example(args: &[&str]) -> Result<()> {
    let mut cargo_args = vec![
        "run",
        "--package",
        "oci-macvlan-tests",
        "--example",
        "bench",
        "--",
    ];
    cargo_args.extend(args);
    cargo(&cargo_args, &[])
}
