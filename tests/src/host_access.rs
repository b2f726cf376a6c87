//! Shared setup of the host-access suites (`tests/tests/host_access.rs` and
//! `tests/tests/host_access_repair.rs`): a LAN whose host has addresses of its own on the parent,
//! dual-stack networks with `-o host_access`, and what the tests read back.

use std::time::Duration;

use serde_json::Value;

use crate::{Bundle, Container, Lan, Runtime, TestNetns, unique};

pub const NET: &str = "lan77";
pub const V6_SUBNET: &str = "fd00:77::/64";
pub const V6_GATEWAY: &str = "fd00:77::1";
/// The host's own addresses on the parent (not the network's business).
pub const HOST_V4: &str = "192.168.77.254";
pub const HOST_V6: &str = "fd00:77::fe";
pub const ACCESS: &str = "host_access=192.168.77.3,fd00:77::3";

/// A LAN whose host has addresses of its own on the parent, and whose router has an IPv6 one.
pub fn lan_with_host_addresses() -> Lan {
    let lan = Lan::new();
    let p = Lan::PARENT;
    lan.host
        .ip(&["addr", "add", &format!("{HOST_V4}/24"), "dev", p]);
    lan.host
        .ip(&["addr", "add", &format!("{HOST_V6}/64"), "dev", p, "nodad"]);
    lan.router.ip(&[
        "addr",
        "add",
        &format!("{V6_GATEWAY}/64"),
        "dev",
        "rtr",
        "nodad",
    ]);
    // The parent's link-local address comes after its DAD: before the test watches the host.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let text = lan
            .host
            .ip(&["-6", "addr", "show", "dev", p, "scope", "link"]);
        if text.contains("fe80") && !text.contains("tentative") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{p}: {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
    lan
}

/// `network create --subnet SUBNET -o parent=lan0 -o OPTION… NAME` (no gateway).
pub fn on_lan0<'a>(name: &'a str, subnet: &'a str, options: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["network", "create", "--subnet", subnet, "-o", "parent=lan0"];
    for option in options {
        args.extend(["-o", option]);
    }
    args.push(name);
    args
}

pub fn create_dual_stack(lan: &Lan, name: &str, extra: &[&str]) {
    let mut args = vec!["--subnet", V6_SUBNET, "--gateway", V6_GATEWAY];
    args.extend_from_slice(extra);
    lan.create_network(name, &args);
}

/// The network's host link name, from `inspect`.
pub fn host_link(lan: &Lan, net: &str) -> String {
    lan.inspect(net)[0]["HostAccess"]["Link"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The host namespace's routes of both families that do not go through a host link of ours:
/// what must never change.
pub fn host_own_routes(ns: &TestNetns) -> Vec<Value> {
    let mut routes: Vec<Value> = ns.routes(false);
    routes.extend(ns.routes(true));
    routes
        .into_iter()
        .filter(|r| !r["dev"].as_str().unwrap_or("").starts_with("ha-"))
        .collect()
}

/// The `host access` and `rp_filter` checks of `doctor -o parent=lan0 --json`.
pub fn host_access_doctor(lan: &Lan) -> Vec<Value> {
    let out = lan.cli(&["doctor", "-o", "parent=lan0", "--json"], "");
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["check"] == "host access" || c["check"] == "rp_filter")
        .cloned()
        .collect()
}

pub fn assert_lan_and_host_reach_each_other(lan: &Lan, when: &str) {
    assert!(
        lan.router.ping(HOST_V4),
        "{when}: router cannot ping the host"
    );
    assert!(
        lan.router.ping(HOST_V6),
        "{when}: router cannot ping the host (v6)"
    );
    assert!(
        lan.host.ping(Lan::GATEWAY),
        "{when}: host cannot ping the router"
    );
    assert!(
        lan.host.ping(V6_GATEWAY),
        "{when}: host cannot ping the router (v6)"
    );
}

pub fn ping(from: &Container, to: &str) {
    let (ok, out) = from.exec(&["ping", "-c", "1", "-W", "2", to]);
    assert!(ok, "{} cannot ping {to}: {out}", from.id);
}

pub fn runc(lan: &Lan, networks: &str) -> Container {
    let id = unique("omt-ha-");
    let bundle = Bundle::new(lan, &id, &[("oci-macvlan.networks", networks)]);
    Container::start(lan, Runtime::Runc, &id, &bundle).unwrap_or_else(|e| panic!("runc: {e}"))
}
