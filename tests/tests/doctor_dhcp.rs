//! Privileged tier: `oci-macvlan doctor -o parent=lan0` asks the LAN whether a DHCP server and a
//! DHCPv6 server answer. Kea (v4 and v6) runs in the LAN's router namespace, on the other end of
//! the host's parent; doctor's probe runs from a namespace of its own, on a macvlan of the
//! parent, and must take no lease, leave nothing behind, and not touch the parent.

#![allow(clippy::unwrap_used)]

use std::{
    os::unix::fs::{DirBuilderExt, PermissionsExt},
    time::{Duration, Instant},
};

use oci_macvlan_tests::{
    Lan,
    doctor::{self, check},
    kea::{Kea, KeaConfig},
    kea6::{Kea6, Kea6Config},
    privileged,
};
use serde_json::Value;

/// Doctor's bound for each probe, which run at once.
const PROBE: Duration = Duration::from_secs(3);

fn kea4(lan: &Lan) -> Kea {
    Kea::start(
        &lan.router,
        &KeaConfig {
            interface: "rtr".into(),
            subnet: Lan::SUBNET.into(),
            pool: "192.168.77.100 - 192.168.77.150".into(),
            router: Lan::GATEWAY.into(),
            routes_hex: None,
            valid_lifetime: 600,
            renew_timer: 300,
            rebind_timer: 500,
        },
    )
}

fn kea6(lan: &Lan) -> Kea6 {
    // Kea binds rtr's link-local address: made again without DAD, usable at once.
    lan.router.sysctl("net/ipv6/conf/rtr/accept_dad", "0");
    lan.router.ip(&["link", "set", "rtr", "down"]);
    lan.router.ip(&["link", "set", "rtr", "up"]);
    lan.router
        .ip(&["addr", "add", "fd77::1/64", "dev", "rtr", "nodad"]);
    Kea6::start(
        &lan.router,
        &Kea6Config {
            interface: "rtr".into(),
            subnet: "fd77::/64".into(),
            pool: "fd77::100-fd77::1ff".into(),
            preferred_lifetime: 300,
            valid_lifetime: 600,
            renew_timer: 150,
            rebind_timer: 250,
            unicast: None,
        },
    )
}

/// What the host looks like from outside the tool: its links, the parent as the kernel has it
/// (counters aside), the parent's addresses (link-local included), and `/run/netns`.
fn host_view(lan: &Lan) -> (Vec<String>, Value, Vec<String>, Vec<String>) {
    // The parent's link-local address comes with its carrier, a moment after the LAN is made.
    let start = Instant::now();
    while !parent_addresses(lan).iter().any(|a| a.starts_with("fe80:")) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no link-local address on lan0"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (
        lan.host_link_names(),
        lan.parent_view(),
        parent_addresses(lan),
        run_netns(),
    )
}

/// The parent's addresses of any scope, as `ADDR/PREFIX` (DAD's flags aside: the link-local
/// address of a parent just made turns from tentative to valid meanwhile).
fn parent_addresses(lan: &Lan) -> Vec<String> {
    let out = lan.host.ip(&["-j", "addr", "show", "dev", Lan::PARENT]);
    let list: Value = serde_json::from_str(&out).unwrap();
    list[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect()
}

fn run_netns() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().into_string().ok())
                // Other tests' namespaces come and go meanwhile.
                .filter(|name| !name.starts_with("omt-"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The MACs in the parent's unicast filter (a macvlan's own MAC is added there while it lives).
fn parent_filter(lan: &Lan) -> String {
    let net = format!("--net={}", lan.host.path().display());
    oci_macvlan_tests::run_ok(
        "nsenter",
        &[&net, "bridge", "fdb", "show", "dev", Lan::PARENT],
    )
}

/// `doctor --json -o parent=lan0`: its exit code, its report, how long it took.
fn doctor(lan: &Lan) -> (i32, Value, Duration) {
    doctor_on(lan, Lan::PARENT)
}

fn doctor_on(lan: &Lan, parent: &str) -> (i32, Value, Duration) {
    let start = Instant::now();
    let parent = format!("parent={parent}");
    let (code, report) = doctor::run(lan, &["-o", &parent]);
    (code, report, start.elapsed())
}

fn detail<'a>(report: &'a Value, name: &str) -> &'a str {
    check(report, name)["detail"].as_str().unwrap()
}

/// The probe's MAC, as doctor names it ("… from 4a:…").
fn probe_mac(detail: &str) -> String {
    let at = detail.find("from ").expect("the probe's MAC") + 5;
    detail[at..at + 17].to_owned()
}

/// Kea's server DUID, as its log says when it starts (`DHCP6_USING_SERVERID … server-id HEX`).
fn kea6_duid(kea: &Kea6) -> String {
    let log = kea.log();
    let line = log
        .lines()
        .find(|line| line.contains("DHCP6_USING_SERVERID"))
        .unwrap_or_else(|| panic!("no server id in Kea's log: {log}"));
    let at = line.find("server-id ").unwrap() + "server-id ".len();
    line[at..].split_whitespace().next().unwrap().to_owned()
}

#[privileged]
fn doctor_hears_kea4_and_kea6_offers_and_leases_nothing() {
    let lan = Lan::new();
    let kea = kea4(&lan);
    let kea6 = kea6(&lan);
    let before = host_view(&lan);

    let (code, report, took) = doctor(&lan);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["failed"], 0, "{report:#}");

    // DHCPv4: Kea's address is the server, the address is from its pool, with its router.
    let v4 = check(&report, "dhcp");
    assert_eq!(v4["status"], "ok", "{v4}");
    let text = detail(&report, "dhcp");
    let prefix = format!("server {} offers 192.168.77.", Lan::GATEWAY);
    assert!(text.starts_with(&prefix), "{text}");
    let offered: u8 = text[prefix.len()..]
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((100..=150).contains(&offered), "{text}");
    assert!(
        text.contains(&format!("/24, router {}, lease 10m", Lan::GATEWAY)),
        "{text}"
    );
    assert!(text.contains("nothing was leased"), "{text}");

    // DHCPv6: Kea's DUID, an address of its pool.
    let v6 = check(&report, "dhcpv6");
    assert_eq!(v6["status"], "ok", "{v6}");
    let text6 = detail(&report, "dhcpv6");
    assert!(text6.contains(" offers fd77::1"), "{text6}");
    assert!(text6.contains("(valid 600s)"), "{text6}");
    let duid = kea6_duid(&kea6);
    assert!(
        text6.starts_with(&format!("server {duid} offers ")),
        "{text6} / {duid}"
    );

    // Both probes ran at once, each within its bound (they stop soon after an answer).
    assert!(took < PROBE + Duration::from_secs(2), "took {took:?}");

    // Nothing leased: no REQUEST, no lease in either lease file.
    let log = kea.log();
    assert!(log.contains("trying to send packet DHCPOFFER"), "{log}");
    assert!(
        !log.contains("DHCPREQUEST") && !log.contains("DHCPACK"),
        "{log}"
    );
    assert_eq!(kea.rows(), [], "Kea's lease file");
    assert_eq!(kea6.rows(), [], "Kea6's lease file");

    // Nothing left: the probe's link gone from the parent's filter, the host as it was.
    let mac = probe_mac(text);
    assert_eq!(mac, probe_mac(text6));
    assert!(
        !parent_filter(&lan).contains(&mac),
        "{}",
        parent_filter(&lan)
    );
    assert_eq!(host_view(&lan), before);

    // The same identity next time: repeated runs look like one client.
    let (_, again, _) = doctor(&lan);
    assert_eq!(probe_mac(detail(&again, "dhcp")), mac);

    // With this host's identity file, the identity is derived from its secret (not only its
    // id): the same on every run, another with another secret; the file as it was.
    std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(lan.config_dir())
        .unwrap();
    let identity = lan.config_dir().join("host-identity");
    let keyed = |secret: &str| {
        let text = format!("{{\"id\":\"hostA\",\"secret\":\"{}\"}}", secret.repeat(32));
        std::fs::write(&identity, &text).unwrap();
        std::fs::set_permissions(&identity, std::fs::Permissions::from_mode(0o600)).unwrap();
        let (_, report, _) = doctor(&lan);
        assert_eq!(std::fs::read_to_string(&identity).unwrap(), text);
        probe_mac(detail(&report, "dhcp"))
    };
    let first = keyed("ab");
    assert_ne!(first, mac);
    assert_eq!(keyed("ab"), first);
    assert_ne!(keyed("cd"), first);
    assert_eq!(kea.rows(), [], "Kea's lease file");
}

/// The files in the config dir (doctor makes none: not even this host's identity file, from
/// which the probe's identity is derived when it exists).
fn config_files(lan: &Lan) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(lan.config_dir())
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[privileged]
fn doctor_warns_within_its_bound_when_no_server_answers() {
    let lan = Lan::new();
    let before = host_view(&lan);
    // A config dir that exists, where a command that makes the identity file would make it.
    std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(lan.config_dir())
        .unwrap();
    let files = config_files(&lan);

    let (code, report, took) = doctor(&lan);
    // A LAN without DHCP is normal: a warning, not a failure.
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["failed"], 0, "{report:#}");
    for (name, family, advice) in [
        ("dhcp", "DHCP", "--ipam-driver dhcp"),
        ("dhcpv6", "DHCPv6", "router advertisements"),
    ] {
        let c = check(&report, name);
        assert_eq!(c["status"], "warn", "{c}");
        let text = c["detail"].as_str().unwrap();
        assert!(
            text.starts_with(&format!("no {family} server answered on lan0 within 3s (")),
            "{text}"
        );
        assert!(text.ends_with("; nothing was leased"), "{text}");
        assert!(c["advice"].as_str().unwrap().contains(advice), "{c}");
    }
    // The two waits ran at once: the whole command took one bound, not two.
    assert!(took >= PROBE, "took {took:?}");
    assert!(took < PROBE + Duration::from_secs(2), "took {took:?}");

    let mac = probe_mac(detail(&report, "dhcp"));
    assert!(
        !parent_filter(&lan).contains(&mac),
        "{}",
        parent_filter(&lan)
    );
    assert_eq!(host_view(&lan), before);
    assert_eq!(config_files(&lan), files, "doctor made a file");

    // A wait of one's own: -o dhcp_timeout=; 0s leaves the probes out.
    let start = Instant::now();
    let out = lan.cli(
        &[
            "doctor",
            "--json",
            "-o",
            "parent=lan0",
            "-o",
            "dhcp_timeout=1s",
        ],
        "",
    );
    let took = start.elapsed();
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(
        detail(&report, "dhcp").starts_with("no DHCP server answered on lan0 within 1s ("),
        "{report:#}"
    );
    assert!(took >= Duration::from_secs(1), "took {took:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    let out = lan.cli(
        &[
            "doctor",
            "--json",
            "-o",
            "dhcp_timeout=0s",
            "-o",
            "parent=lan0",
        ],
        "",
    );
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| !c["check"].as_str().unwrap().starts_with("dhcp")),
        "{report:#}"
    );
    assert_eq!(check(&report, "parent up")["status"], "ok");
    let out = lan.cli(&["doctor", "-o", "dhcp_timeout=2m"], "");
    assert_eq!(out.code, 3, "{}", out.stderr);
}

#[privileged]
fn doctor_says_why_a_parent_was_not_probed() {
    let lan = Lan::new();
    // A tunnel has no Ethernet header: the kernel refuses a macvlan on it (EINVAL), as it does
    // on a parent that has ipvlan links. Said in the check's detail; doctor goes on.
    lan.host
        .ip(&["tuntap", "add", "dev", "tun0", "mode", "tun"]);
    lan.host.ip(&["link", "set", "tun0", "up"]);
    let links = lan.host_link_names();
    let (code, report, took) = doctor_on(&lan, "tun0");
    assert_eq!(code, 0, "{report:#}");
    let c = check(&report, "dhcp");
    assert_eq!(c["status"], "warn", "{c}");
    assert!(
        c["detail"]
            .as_str()
            .unwrap()
            .starts_with("not probed: a macvlan cannot be made on tun0: "),
        "{c}"
    );
    assert!(c["advice"].as_str().unwrap().contains("tunnel"), "{c}");
    assert!(
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["check"] != "dhcpv6")
    );
    assert!(took < PROBE, "took {took:?}");
    assert_eq!(lan.host_link_names(), links);

    // A parent that is down is not probed: the parent's own check fails.
    lan.host.ip(&["link", "set", Lan::PARENT, "down"]);
    let (code, report, took) = doctor(&lan);
    assert_eq!(code, 1, "{report:#}");
    let c = check(&report, "dhcp");
    assert_eq!(c["status"], "info", "{c}");
    assert_eq!(c["detail"], "not probed: lan0 is down", "{c}");
    assert!(took < PROBE, "took {took:?}");
    assert_eq!(lan.host_link_names(), links);
}
