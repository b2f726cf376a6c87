//! What the impersonation tests share: the LAN (a host with addresses of its own and a second
//! link, a router, a third machine only the probe finds, known neighbours) and the hook's
//! attach, detach and refusal checks. Each test file uses part of it.

#![allow(dead_code, clippy::unwrap_used)]

use oci_macvlan_tests::host_access::lan_with_host_addresses;
use oci_macvlan_tests::{Lan, Outcome, TestNetns};

pub const NET: &str = "lan77";
/// Held by the third machine only.
pub const OTHER_V4: &str = "192.168.77.53";
pub const OTHER_V6: &str = "fd00:77::53";
/// On the host's second link.
pub const SIDE_V4: &str = "192.168.77.201";
pub const SIDE_V6: &str = "fd00:77::201";
/// In the host's neighbour table only (nobody answers for them).
pub const NEIGH_PERMANENT: &str = "192.168.77.60";
pub const NEIGH_STALE: &str = "fd00:77::61";
pub const NEIGH_FAILED: &str = "192.168.77.62";
/// Gateways of nexthop objects only (nobody answers for them): one named by a route, one a
/// member of a group a route names, one IPv6.
pub const NEXTHOP_ROUTER: &str = "192.168.77.70";
pub const GROUP_ROUTER: &str = "192.168.77.71";
pub const NEXTHOP_ROUTER_V6: &str = "fd00:77::70";

/// A LAN as the module says, and a dual-stack network on it without `--gateway` (`extra`
/// options added).
pub fn lan() -> (Lan, Lan) {
    let lan = lan_with_host_addresses();
    let other = lan.add_host();
    other
        .host
        .ip(&["addr", "add", &format!("{OTHER_V4}/24"), "dev", "lan0"]);
    other.host.ip(&[
        "addr",
        "add",
        &format!("{OTHER_V6}/64"),
        "dev",
        "lan0",
        "nodad",
    ]);
    lan.host.ip(&[
        "link", "add", "side0", "type", "veth", "peer", "name", "side1",
    ]);
    lan.host
        .ip(&["addr", "add", &format!("{SIDE_V4}/32"), "dev", "side0"]);
    lan.host.ip(&[
        "addr",
        "add",
        &format!("{SIDE_V6}/128"),
        "dev",
        "side0",
        "nodad",
    ]);
    for (ip, mac, state) in [
        (NEIGH_PERMANENT, "02:00:00:00:00:60", "permanent"),
        (NEIGH_STALE, "02:00:00:00:00:61", "stale"),
        (NEIGH_FAILED, "02:00:00:00:00:62", "failed"),
    ] {
        lan.host.ip(&[
            "neigh", "replace", ip, "lladdr", mac, "dev", "lan0", "nud", state,
        ]);
    }
    (lan, other)
}

pub fn create(lan: &Lan, name: &str, extra: &[&str]) -> Outcome {
    let mut args = vec![
        "network",
        "create",
        "--subnet",
        "192.168.77.0/24",
        "--subnet",
        "fd00:77::/64",
        "-o",
        "parent=lan0",
    ];
    for option in extra {
        args.extend(["-o", option]);
    }
    args.push(name);
    lan.cli(&args, "")
}

/// The hook's attach of container `id` into `ns` on `net`, asking for `annotations`.
pub fn attach(
    lan: &Lan,
    ns: &TestNetns,
    id: &str,
    net: &str,
    annotations: &[(&str, &str)],
) -> Outcome {
    let mut all = vec![("oci-macvlan.networks", net)];
    all.extend_from_slice(annotations);
    lan.cli(
        &["hook"],
        &lan.fake_bundle(id, &all, &ns.path(), "creating"),
    )
}

pub fn detach(lan: &Lan, ns: &TestNetns, id: &str, net: &str, annotations: &[(&str, &str)]) {
    let mut all = vec![("oci-macvlan.networks", net)];
    all.extend_from_slice(annotations);
    lan.cli_ok(
        &["hook", "poststop"],
        &lan.fake_bundle(id, &all, &ns.path(), "stopped"),
    );
}

/// Panics unless `out` is a refusal with `code` in one line that names `ip`, `net` and
/// `holder`, and nothing was made: no link in the container's namespace, no lease, no record,
/// no change to the host's links.
pub fn assert_refused(
    lan: &Lan,
    ns: &TestNetns,
    out: &Outcome,
    code: i32,
    says: &[&str],
    links: &[String],
    what: &str,
) {
    assert_eq!(out.code, code, "{what}: {}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{what}: {}", out.stderr);
    for word in says {
        assert!(
            out.stderr.contains(word),
            "{what}: no {word:?} in {}",
            out.stderr
        );
    }
    let names: Vec<String> = ns
        .links()
        .iter()
        .filter_map(|l| l["ifname"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(names, ["lo"], "{what}: a link was made in the container");
    assert_eq!(lan.leased(NET), 0, "{what}: a lease was taken");
    assert_eq!(
        lan.records(),
        Vec::<String>::new(),
        "{what}: a record was written"
    );
    assert_eq!(
        lan.host_link_names(),
        links,
        "{what}: the host's links changed"
    );
}

/// The MAC of the third machine's `lan0`, as a message names it.
pub fn mac_of(other: &Lan) -> String {
    other.host.link("lan0").unwrap()["address"]
        .as_str()
        .unwrap()
        .to_owned()
}
