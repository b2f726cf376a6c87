//! The DHCP renewer's tests share this (v4's `dhcp_renew.rs`, v6's `dhcp6_renew.rs`): a
//! container process attached through the hook as a runtime does it, its keepers found, its
//! namespace read with `ip -j`, the record's times read back, and a bounded wait.

use std::{
    io::{Read, Write},
    path::Path,
    process::Command,
    time::{Duration, Instant, SystemTime},
};

use serde_json::Value;

use crate::{ContainerProcess, Lan, dhcp_lan::NET};

const ANN: &str = "oci-macvlan.networks";

/// `ip -j ARGS…` in the namespace of process `pid`.
pub fn ip_in(pid: u32, args: &[&str]) -> Value {
    let out = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n", "ip", "-j"])
        .args(args)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// The `addr_info` entries of the container's eth0 of family `family` (`-4`, `-6`), those of
/// global scope.
pub fn addr_info(pid: u32, family: &str) -> Vec<Value> {
    let links = ip_in(
        pid,
        &[family, "addr", "show", "dev", "eth0", "scope", "global"],
    );
    links
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|l| l["addr_info"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// The addresses of family `family` (`-4`, `-6`) of global scope on the container's eth0.
pub fn addresses(pid: u32, family: &str) -> Vec<String> {
    addr_info(pid, family)
        .iter()
        .filter_map(|a| a["local"].as_str().map(str::to_owned))
        .collect()
}

/// A time of the record (`SystemTime` as serde writes it), in seconds since the epoch.
pub fn secs(time: &Value) -> f64 {
    time["secs_since_epoch"].as_f64().unwrap() + time["nanos_since_epoch"].as_f64().unwrap() / 1e9
}

/// Now, in seconds since the epoch.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Whether `done` holds within `within` (asked every 100 ms).
pub fn wait_until(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    done()
}

/// The pids of this LAN's keepers ([`Lan::keepers`]).
pub fn keepers(lan: &Lan) -> Vec<u32> {
    lan.keepers(None)
}

/// Attaches container `c1` (process `process`) to [`NET`] through the hook; asserts that the
/// hook's stdout and stderr close as soon as it exits although its keepers live on (a runtime
/// reads them to their end: a keeper holding them would hold the runtime), and that an active
/// and a standby keeper run.
pub fn attach(lan: &Lan, process: &ContainerProcess) {
    attach_with(lan, process, &crate::binary(), &[]);
}

/// [`attach`] by another build of the binary (`program`, with `env` as its only environment,
/// which its keepers inherit).
pub fn attach_with(lan: &Lan, process: &ContainerProcess, program: &Path, env: &[(&str, &str)]) {
    let state = lan.pid_bundle("c1", &[(ANN, NET)], process.pid(), "creating");
    let mut hook = lan.spawn_with(program, env, &["hook"], true);
    let (tx, rx) = std::sync::mpsc::channel();
    for mut pipe in [
        Box::new(hook.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(hook.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            let _ = tx.send(text);
        });
    }
    let mut stdin = hook.stdin.take().unwrap();
    stdin.write_all(state.as_bytes()).unwrap();
    drop(stdin);
    let status = hook.wait().unwrap();
    let exited = Instant::now();
    let mut output = String::new();
    for _ in 0..2 {
        match rx.recv_timeout(Duration::from_secs(3)) {
            Ok(text) => output.push_str(&text),
            Err(_) => panic!("the hook's output pipes stayed open after it exited"),
        }
    }
    assert!(exited.elapsed() < Duration::from_secs(1));
    assert!(status.success(), "{status}: {output}");
    assert!(
        wait_until(Duration::from_secs(5), || keepers(lan).len() == 2),
        "no active and standby keeper: {:?}",
        keepers(lan)
    );
}

/// The container's (process `pid`'s) v4 routes through a gateway, as `(dst, gateway, dev)`,
/// sorted.
pub fn gateway_routes(pid: u32) -> Vec<(String, String, String)> {
    let shown = ip_in(pid, &["-4", "route", "show"]);
    let mut found: Vec<_> = shown
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["gateway"].is_string())
        .map(|r| {
            let text = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
            (text("dst"), text("gateway"), text("dev"))
        })
        .collect();
    found.sort();
    found
}
