//! DHCP on ipvlan in the VM tier (`cargo xtask vm dhcp`): dnsmasq, started by the test on the
//! LAN's router link (its lease file in the test's temp dir), serves an ipvlan L2 network of
//! `--ipam-driver dhcp`. ipvlan links share their parent's MAC: two containers on one MAC get
//! two leases, each under its own client identifier, and the answers reach them (the broadcast
//! flag: a unicast answer to an address no ipvlan holds yet would go to the parent). Poststop
//! releases each lease, also right after the container died, when its ipvlan, holding the
//! leased address, is still going with its namespace while the RELEASE's scratch ipvlan wants
//! that address. With `--ipv6`, dnsmasq's DHCPv6 gives each a v6 lease beside, released too.

use std::{
    io::Write,
    os::unix::fs::MetadataExt,
    process::{Child, Command},
    time::{Duration, Instant},
};

use oci_macvlan_tests::{
    Lan, TestNetns,
    dnsmasq::{Dnsmasq, DnsmasqLease},
};
use serde_json::Value;

use super::{ANN, host_link};

const NET: &str = "wifi";

/// dnsmasq on the router link: 192.168.77.100 to .150, the router as option 3, and with
/// `v6` a DHCPv6 range of fd77::/64 (the router link given an address in it, without DAD).
/// `--no-ping`: dnsmasq pings an address before it offers it and waits 3 s for no answer (seen
/// in its log: 3 s from a DISCOVER to its OFFER), which the VM tier's time cannot spare.
fn dnsmasq(lan: &Lan, v6: bool) -> Dnsmasq {
    let mut extra = vec!["--no-ping"];
    if v6 {
        lan.router.sysctl("net/ipv6/conf/rtr/accept_dad", "0");
        // Made again on link-up, now without DAD.
        lan.router.ip(&["link", "set", "rtr", "down"]);
        lan.router.ip(&["link", "set", "rtr", "up"]);
        lan.router
            .ip(&["addr", "add", "fd77::1/64", "dev", "rtr", "nodad"]);
        extra.push("--dhcp-range=fd77::100,fd77::1ff,64,2m");
    }
    Dnsmasq::start_with(
        &lan.router,
        "rtr",
        "192.168.77.100",
        "192.168.77.150",
        Lan::GATEWAY,
        "2m",
        &extra,
    )
}

/// `network create -d ipvlan --ipam-driver dhcp -o parent=lan0 EXTRA… wifi` (L2, the default).
fn create(lan: &Lan, extra: &[&str]) {
    let mut args = vec![
        "network",
        "create",
        "-d",
        "ipvlan",
        "--ipam-driver",
        "dhcp",
        "-o",
        "parent=lan0",
    ];
    args.extend_from_slice(extra);
    args.push(NET);
    lan.cli_ok(&args, "");
}

/// A container attached through the hook: its namespace and its state at poststop.
struct Container {
    id: &'static str,
    ns: TestNetns,
    stopped: String,
}

impl Container {
    fn attach(lan: &Lan, server: &Dnsmasq, id: &'static str) -> Self {
        let ns = TestNetns::new("omt-ctr-");
        let creating = lan.fake_bundle(id, &[(ANN, NET)], &ns.path(), "creating");
        let out = lan.cli(&["hook"], &creating);
        assert_eq!(
            out.code,
            0,
            "{id}: {}{}\ndnsmasq: {}",
            out.stdout,
            out.stderr,
            server.log()
        );
        let stopped = lan.fake_bundle(id, &[(ANN, NET)], &ns.path(), "stopped");
        Self { id, ns, stopped }
    }

    /// The address on eth0 of the family (`v6`), without its prefix.
    fn address(&self, v6: bool) -> String {
        let addresses = self.ns.addresses("eth0");
        let of: Vec<&String> = addresses.iter().filter(|a| a.contains(':') == v6).collect();
        assert_eq!(of.len(), 1, "{}: {addresses:?}", self.id);
        of[0].split_once('/').unwrap().0.to_owned()
    }

    /// The endpoint record's DHCP part.
    fn dhcp(&self, lan: &Lan) -> Value {
        let path = lan.state_dir().join(format!("endpoints/{}.json", self.id));
        let record: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        record["endpoints"][0]["dhcp"].clone()
    }

    fn poststop(&self, lan: &Lan) {
        let out = lan.cli(&["hook", "poststop"], &self.stopped);
        assert_eq!(out.code, 0, "{}: {}", self.id, out.stderr);
    }
}

/// dnsmasq's lease of `address`, waited for.
fn lease_of(server: &Dnsmasq, address: &str) -> DnsmasqLease {
    let leases = server.wait_for(|l| l.iter().any(|l| l.address == address));
    leases
        .into_iter()
        .find(|l| l.address == address)
        .unwrap_or_else(|| panic!("dnsmasq has no lease of {address}: {}", server.log()))
}

/// Whether dnsmasq's lease file lost `addresses` within 3 s (and, if not, what it holds).
fn released(server: &Dnsmasq, addresses: &[String]) -> Result<(), String> {
    let leases = server.wait_for(|l| l.iter().all(|l| !addresses.contains(&l.address)));
    match leases.iter().any(|l| addresses.contains(&l.address)) {
        false => Ok(()),
        true => Err(format!(
            "dnsmasq kept a lease of {addresses:?}: {leases:?}\n{}",
            server.log()
        )),
    }
}

/// Two containers on one parent MAC (ipvlan L2) get two leases, each under the container's own
/// client identifier, each with its address and default route applied; a plain poststop of each
/// releases its lease and leaves nothing.
#[test]
fn dhcp_ipvlan_two_containers_on_one_mac_get_two_leases() {
    let lan = Lan::new();
    let server = dnsmasq(&lan, false);
    create(&lan, &[]);
    let parent_mac = host_link(&lan, "lan0").unwrap()["address"]
        .as_str()
        .unwrap()
        .to_owned();
    let containers = [
        Container::attach(&lan, &server, "c1"),
        Container::attach(&lan, &server, "c2"),
    ];
    let mut addresses = Vec::new();
    let mut client_ids = Vec::new();
    for c in &containers {
        let address = c.address(false);
        assert_eq!(c.ns.link("eth0").unwrap()["address"], parent_mac.as_str());
        let lease = lease_of(&server, &address);
        let dhcp = c.dhcp(&lan);
        assert_eq!(lease.mac, parent_mac, "{}: {lease:?}", c.id);
        assert_eq!(dhcp["client_id"], lease.client_id.as_str(), "{}", c.id);
        assert_eq!(dhcp["broadcast"], true, "{}: {dhcp}", c.id);
        assert_eq!(dhcp["lease"]["address"], address.as_str());
        let default =
            c.ns.routes(false)
                .into_iter()
                .find(|r| r["dst"] == "default");
        assert_eq!(
            default.as_ref().map(|r| r["gateway"].clone()),
            Some(Lan::GATEWAY.into()),
            "{}: {:?}",
            c.id,
            c.ns.routes(false)
        );
        assert!(c.ns.ping(Lan::GATEWAY), "{} cannot reach the router", c.id);
        addresses.push(address);
        client_ids.push(lease.client_id);
    }
    assert_ne!(addresses[0], addresses[1], "one address for two containers");
    assert_ne!(
        client_ids[0], client_ids[1],
        "one client id for two containers"
    );
    assert_eq!(server.leases().len(), 2, "{:?}", server.leases());
    // Each answer was broadcast, as the clients asked (dnsmasq logs it with --log-dhcp).
    let log = server.log();
    assert_eq!(
        log.matches("broadcast response").count(),
        log.matches("DHCPOFFER").count() + log.matches("DHCPACK").count(),
        "{log}"
    );

    for c in &containers {
        c.poststop(&lan);
        assert!(c.ns.link("eth0").is_none(), "{}: eth0 left", c.id);
    }
    released(&server, &addresses).unwrap();
    lan.assert_no_residue(&[NET], "after poststop");
}

/// A process that holds a namespace (`sleep` entered into it), as the kernel does while it
/// tears a dead container's namespace down: its links, and their addresses, stay until it lets
/// go (on drop).
struct Straggler(Child);

impl Straggler {
    fn hold(ns: &TestNetns) -> Self {
        let child = Command::new("nsenter")
            .arg(format!("--net={}", ns.path().display()))
            .args(["sleep", "60"])
            .spawn()
            .unwrap();
        let straggler = Self(child);
        let inside = std::fs::metadata(ns.path()).unwrap().ino();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let netns = std::fs::metadata(format!("/proc/{}/ns/net", straggler.0.id()));
            if netns.is_ok_and(|n| n.ino() == inside) {
                return straggler;
            }
            assert!(Instant::now() < deadline, "nsenter … sleep did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Straggler {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether process `pid` holds a network namespace other than `known` (by inode): the
/// release's scratch namespace, made just before its ipvlan gets the leased address.
fn holds_another_netns(pid: u32, known: &[u64]) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            target
                .strip_prefix("net:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .any(|inode: u64| !known.contains(&inode))
}

/// Each container dies (its namespace deleted) and its poststop runs at once, as a runtime's
/// does. The first's namespace goes as fast as the kernel lets it; the second's is held until
/// its poststop's RELEASE has begun (a slow teardown: the dying ipvlan keeps the leased address
/// the RELEASE's scratch ipvlan wants, and the kernel refuses it to a second ipvlan until
/// then), and let go 200 ms later. Each RELEASE still reaches dnsmasq, and nothing is left.
#[test]
fn dhcp_ipvlan_poststop_right_after_the_container_died_releases_its_lease() {
    let lan = Lan::new();
    let server = dnsmasq(&lan, false);
    create(&lan, &[]);
    let host = std::fs::metadata(lan.host.path()).unwrap().ino();
    let containers = [
        Container::attach(&lan, &server, "c1"),
        Container::attach(&lan, &server, "c2"),
    ];
    let mut addresses = Vec::new();
    for (c, slow) in containers.into_iter().zip([false, true]) {
        let address = c.address(false);
        lease_of(&server, &address);
        let Container { id, ns, stopped } = c;
        let own = std::fs::metadata(ns.path()).unwrap().ino();
        let holder = slow.then(|| Straggler::hold(&ns));
        drop(ns);
        let mut poststop = lan.spawn_cli(&["hook", "poststop"], false);
        let mut stdin = poststop.stdin.take().unwrap();
        stdin.write_all(stopped.as_bytes()).unwrap();
        drop(stdin);
        if let Some(holder) = holder {
            let deadline = Instant::now() + Duration::from_secs(20);
            while !holds_another_netns(poststop.id(), &[host, own]) {
                assert!(Instant::now() < deadline, "{id}: no RELEASE began");
                std::thread::sleep(Duration::from_millis(2));
            }
            std::thread::sleep(Duration::from_millis(200));
            drop(holder);
        }
        let out = poststop.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        released(&server, std::slice::from_ref(&address))
            .unwrap_or_else(|e| panic!("{id} (held: {slow}): {e}"));
        addresses.push(address);
    }
    lan.assert_no_residue(&[NET], "after poststop");
    // No ipvlan on the parent holds a leased address any more (neither a dead container's nor
    // a release's scratch link): the kernel gives each to a new one.
    let probe = TestNetns::new("omt-probe-");
    lan.host.ip(&[
        "link", "add", "link", "lan0", "name", "probe0", "type", "ipvlan", "mode", "l2",
    ]);
    lan.host
        .ip(&["link", "set", "probe0", "netns", &probe.name]);
    for address in &addresses {
        probe.ip(&["addr", "add", &format!("{address}/24"), "dev", "probe0"]);
    }
}

/// `--ipv6`: each container on the one MAC gets a DHCPv6 lease from dnsmasq beside its v4 one
/// (each under its own DUID), and poststop releases both.
#[test]
fn dhcp_ipvlan_dual_stack_two_containers_get_v6_leases_too() {
    let lan = Lan::new();
    let server = dnsmasq(&lan, true);
    create(&lan, &["--ipv6"]);
    let containers = [
        Container::attach(&lan, &server, "c1"),
        Container::attach(&lan, &server, "c2"),
    ];
    let mut addresses = Vec::new();
    let mut duids = Vec::new();
    for c in &containers {
        let v4 = c.address(false);
        let v6 = c.address(true);
        assert!(
            v6.starts_with("fd77::"),
            "{}: not dnsmasq's range: {v6}",
            c.id
        );
        lease_of(&server, &v4);
        let lease6 = lease_of(&server, &v6);
        let dhcp = c.dhcp(&lan);
        assert_eq!(dhcp["v6"]["lease"]["address"], v6.as_str(), "{dhcp}");
        assert_eq!(
            dhcp["v6"]["duid"].as_str().unwrap().to_lowercase(),
            lease6.client_id.to_lowercase(),
            "{}: {lease6:?}",
            c.id
        );
        addresses.extend([v4, v6]);
        duids.push(lease6.client_id);
    }
    assert_ne!(
        addresses[1], addresses[3],
        "one v6 address for two containers"
    );
    assert_ne!(duids[0], duids[1], "one DUID for two containers");
    for c in &containers {
        c.poststop(&lan);
    }
    released(&server, &addresses).unwrap();
    lan.assert_no_residue(&[NET], "after poststop");
}
