//! Privileged tier: DHCPv6 beside DHCPv4 through the hook (`--ipam-driver dhcp --ipv6`),
//! against Kea's `kea-dhcp4` and `kea-dhcp6`, both started by the test on the LAN's router
//! link: the attach gets both leases on the container's link, the v6 address with no
//! tentative flag (nothing waited for DAD), the link taking router advertisements without
//! SLAAC; the DUID, IAID and hostname in Kea 6's lease file, the lease on the record and in
//! `inspect`; poststop releases both; a re-created container gets its v6 address back; a v6
//! lease outside the network's v6 `--subnet` is refused; a LAN without a DHCPv6 server fails
//! in the timeout and leaves nothing (its v4 lease given back).

#![allow(clippy::unwrap_used)]

use std::{
    net::{Ipv6Addr, SocketAddrV6},
    os::fd::AsFd,
    time::{Duration, Instant},
};

use nix::{
    sched::{CloneFlags, setns},
    sys::socket::{
        AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn6, sendto, setsockopt,
        socket, sockopt,
    },
};
use oci_macvlan_tests::{
    Lan, TestNetns,
    dhcp_lan::{NET, create_dhcp_network, kea_config, last_leased, record, released},
    kea::Kea,
    kea6::Kea6,
    privileged,
};
use serde_json::Value;

#[path = "dhcp6/attach.rs"]
mod attach;
use attach::{SUBNET6, hook, kea6_config, released6, router_v6, v6_addresses};

#[privileged]
fn dual_stack_attach_gets_both_leases_and_poststop_releases_both() {
    let lan = Lan::new();
    router_v6(&lan);
    let kea = Kea::start(&lan.router, &kea_config());
    let kea6 = Kea6::start(&lan.router, &kea6_config());
    create_dhcp_network(&lan, &["--ipv6"]);
    let container = TestNetns::new("omt-ctr-");
    let out = hook(&lan, "c1", &container, "creating");
    assert_eq!(out.code, 0, "{}{}\n{}", out.stdout, out.stderr, kea6.log());

    let addresses = container.addresses("eth0");
    assert_eq!(addresses.len(), 2, "{addresses:?}");
    let v4 = addresses.iter().find(|a| !a.contains(':')).unwrap();
    let v4 = v4.split_once('/').unwrap().0.to_owned();
    let v6 = v6_addresses(&container);
    assert_eq!(v6.len(), 1, "{addresses:?}");
    let (v6, prefix) = v6[0].split_once('/').unwrap();
    assert_eq!(prefix, "128", "no --subnet: the address alone");
    assert!(v6.starts_with("2001:db8:77::1"), "not Kea 6's pool: {v6}");

    // Nothing waited for DAD: no address of the link is tentative.
    let shown: Value =
        serde_json::from_str(&container.ip(&["-j", "-6", "addr", "show", "dev", "eth0"])).unwrap();
    let infos = shown[0]["addr_info"].as_array().unwrap();
    assert!(
        infos.iter().all(|i| i.get("tentative").is_none()),
        "a tentative address: {infos:?}"
    );
    // Router advertisements decide the default route; no SLAAC address without the option.
    assert_eq!(container.sysctl_value("net/ipv6/conf/eth0/accept_dad"), "0");
    assert_eq!(container.sysctl_value("net/ipv6/conf/eth0/accept_ra"), "2");
    assert_eq!(container.sysctl_value("net/ipv6/conf/eth0/autoconf"), "0");

    // Kea 6's lease: our DUID and IAID, the OCI hostname; the record keeps the same.
    let lease6 = kea6
        .lease(v6)
        .unwrap_or_else(|| panic!("Kea 6 holds no lease of {v6}: {:?}", kea6.rows()));
    let recorded = record(&lan, "c1");
    let dhcp = &recorded["endpoints"][0]["dhcp"];
    assert_eq!(dhcp["lease"]["address"], v4.as_str());
    let rec6 = &dhcp["v6"];
    assert_eq!(rec6["lease"]["address"], v6, "{recorded}");
    assert_eq!(rec6["duid"].as_str().unwrap(), lease6.duid);
    assert_eq!(rec6["iaid"].as_u64().unwrap(), u64::from(lease6.iaid));
    assert!(lease6.hostname.starts_with("web1"), "{lease6:?}");
    for key in [
        "obtained",
        "t1",
        "t2",
        "preferred_until",
        "expiry",
        "server_id",
    ] {
        assert!(!rec6["lease"][key].is_null(), "{key} missing: {rec6}");
    }
    assert!(kea.lease(&v4).is_some(), "Kea 4 holds no lease of {v4}");

    // `inspect` shows it; `verify` is content.
    let inspect = lan.inspect(NET);
    let containers = inspect[0]["Containers"].as_object().unwrap();
    let shown = &containers.values().next().unwrap()["DhcpLease"]["V6"];
    assert_eq!(shown["Address"], format!("{v6}/128"), "{inspect}");
    assert_eq!(shown["Duid"].as_str().unwrap(), lease6.duid);
    let verify = lan.cli(&["verify"], "");
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);

    // A hook run again for the live container keeps both leases: no exchange, no RELEASE.
    let rows = kea6.rows().len();
    let out = hook(&lan, "c1", &container, "creating");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(container.addresses("eth0"), addresses);
    assert_eq!(
        kea6.rows().len(),
        rows,
        "the re-run asked Kea 6: {:?}",
        kea6.rows()
    );

    // An address the lease does not explain is flagged.
    container.ip(&["addr", "add", "2001:db8:77::99/128", "dev", "eth0", "nodad"]);
    let verify = lan.cli(&["verify"], "");
    assert_ne!(verify.code, 0, "an unexplained v6 address passed verify");
    assert!(
        format!("{}{}", verify.stdout, verify.stderr).contains("2001:db8:77::99"),
        "{}{}",
        verify.stdout,
        verify.stderr
    );
    container.ip(&["addr", "del", "2001:db8:77::99/128", "dev", "eth0"]);

    // Poststop gives both back.
    let out = hook(&lan, "c1", &container, "stopped");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        released6(&kea6, v6),
        "Kea 6 still holds {v6} after poststop: {:?}\n{}",
        kea6.rows(),
        kea6.log()
    );
    assert!(released(&kea, &v4), "Kea 4 still holds {v4}");
    assert!(container.link("eth0").is_none());
    lan.assert_no_residue(&[NET], "after poststop");
}

/// `network disconnect` and `gc` (a container whose namespace went without a poststop) give
/// the v6 lease back too, from the scratch link.
#[privileged]
fn disconnect_and_gc_release_the_v6_lease() {
    let lan = Lan::new();
    router_v6(&lan);
    let _kea = Kea::start(&lan.router, &kea_config());
    let kea6 = Kea6::start(&lan.router, &kea6_config());
    create_dhcp_network(&lan, &["--ipv6"]);

    let live = TestNetns::new("omt-ctr-");
    assert_eq!(hook(&lan, "c1", &live, "creating").code, 0);
    let address = v6_addresses(&live)[0].split_once('/').unwrap().0.to_owned();
    assert!(kea6.lease(&address).is_some());
    lan.cli_ok(&["network", "disconnect", NET, "c1"], "");
    assert!(
        released6(&kea6, &address),
        "Kea 6 kept {address} after disconnect: {:?}",
        kea6.rows()
    );
    assert!(live.link("eth0").is_none());

    let gone = TestNetns::new("omt-ctr-");
    assert_eq!(hook(&lan, "c2", &gone, "creating").code, 0);
    let address = v6_addresses(&gone)[0].split_once('/').unwrap().0.to_owned();
    drop(gone);
    lan.cli_ok(&["gc"], "");
    assert!(
        released6(&kea6, &address),
        "Kea 6 kept {address} after gc: {:?}",
        kea6.rows()
    );
    lan.assert_no_residue(&[NET], "after disconnect and gc");
}

/// The server knows the container by its DUID and IAID alone: a container re-created on a
/// host that lost its state (its record gone, as a state dir on tmpfs after a reboot) asks
/// under the same identity and gets the address Kea still holds for it. (After a RELEASE,
/// the SOLICIT's hint asks for it again: `dhcp6_hint.rs`.)
#[privileged]
fn a_recreated_container_gets_its_v6_address_back() {
    let lan = Lan::new();
    router_v6(&lan);
    let _kea = Kea::start(&lan.router, &kea_config());
    let kea6 = Kea6::start(&lan.router, &kea6_config());
    create_dhcp_network(&lan, &["--ipv6"]);
    let first = TestNetns::new("omt-ctr-");
    assert_eq!(hook(&lan, "c1", &first, "creating").code, 0);
    let address = v6_addresses(&first);
    assert_eq!(address.len(), 1, "{address:?}");
    let duid = record(&lan, "c1")["endpoints"][0]["dhcp"]["v6"]["duid"].clone();
    // The container and the host's memory of it gone; Kea's lease lives on.
    drop(first);
    std::fs::remove_file(lan.state_dir().join("endpoints/c1.json")).unwrap();

    let second = TestNetns::new("omt-ctr-");
    let out = hook(&lan, "c1", &second, "creating");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(v6_addresses(&second), address, "{:?}", kea6.rows());
    assert_eq!(
        record(&lan, "c1")["endpoints"][0]["dhcp"]["v6"]["duid"],
        duid
    );
    let exchanges = kea6.rows().len();
    assert!(
        exchanges >= 2,
        "the second attach asked Kea nothing: {:?}",
        kea6.rows()
    );
    assert_eq!(hook(&lan, "c1", &second, "stopped").code, 0);
    lan.assert_no_residue(&[NET], "at the end");
}

#[privileged]
fn a_v6_subnet_gives_its_prefix_and_refuses_a_lease_outside_it() {
    let lan = Lan::new();
    router_v6(&lan);
    let _kea = Kea::start(&lan.router, &kea_config());
    let _kea6 = Kea6::start(&lan.router, &kea6_config());

    // Inside: the address gets the subnet's prefix.
    create_dhcp_network(&lan, &["--ipv6", "--subnet", SUBNET6]);
    let container = TestNetns::new("omt-ctr-");
    let out = hook(&lan, "c1", &container, "creating");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v6 = v6_addresses(&container);
    assert!(v6.len() == 1 && v6[0].ends_with("/64"), "{v6:?}");
    assert_eq!(hook(&lan, "c1", &container, "stopped").code, 0);
    lan.cli_ok(&["network", "rm", NET], "");

    // Outside: every answer refused, the attach fails in its timeout, nothing left.
    create_dhcp_network(
        &lan,
        &[
            "--ipv6",
            "--subnet",
            "2001:db8:99::/64",
            "--ipam-opt",
            "dhcp_timeout=2s",
        ],
    );
    let container = TestNetns::new("omt-ctr-");
    let out = hook(&lan, "c2", &container, "creating");
    assert_ne!(out.code, 0, "a lease outside --subnet was taken");
    assert!(out.stderr.contains("DHCPv6"), "{}", out.stderr);
    assert!(container.link("eth0").is_none(), "the link was left");
    lan.assert_no_residue(&[NET], "after a refused v6 lease");
}

#[privileged]
fn no_dhcpv6_server_fails_in_the_timeout_and_gives_the_v4_lease_back() {
    let lan = Lan::new();
    let kea = Kea::start(&lan.router, &kea_config());
    create_dhcp_network(&lan, &["--ipv6", "--ipam-opt", "dhcp_timeout=2s"]);
    let container = TestNetns::new("omt-ctr-");
    let start = Instant::now();
    let out = hook(&lan, "c1", &container, "creating");
    let took = start.elapsed();
    assert_ne!(out.code, 0, "attached without a DHCPv6 server");
    assert!(
        took < Duration::from_secs(8),
        "the 2 s timeout took {took:?}"
    );
    let line = out.stderr.trim();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.contains("eth0") && line.contains("2s") && line.contains("DHCPv6"),
        "{line}"
    );
    assert!(container.link("eth0").is_none(), "the link was left");
    lan.assert_no_residue(&[NET], "after a DHCPv6 timeout");
    // The v4 lease this attach got went back to Kea 4.
    let v4 = last_leased(&kea);
    assert!(released(&kea, &v4), "Kea 4 still holds {v4}: {}", kea.log());
}

/// A router advertisement from the router's `rtr` to all nodes: a default router for 1800 s,
/// and `SUBNET6` on-link and autonomous (a host doing SLAAC makes an address of it).
fn advertise(lan: &Lan) {
    let file = std::fs::File::open(lan.router.path()).unwrap();
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                setns(file.as_fd(), CloneFlags::CLONE_NEWNET).unwrap();
                let index = nix::net::if_::if_nametoindex("rtr").unwrap();
                let fd = socket(
                    AddressFamily::Inet6,
                    SockType::Raw,
                    SockFlag::SOCK_CLOEXEC,
                    SockProtocol::IcmpV6,
                )
                .unwrap();
                // RFC 4861: a router advertisement's hop limit is 255, or it is dropped.
                setsockopt(&fd, sockopt::Ipv6MulticastHops, &255).unwrap();
                let mut ra = vec![134, 0, 0, 0, 64, 0];
                ra.extend_from_slice(&1800u16.to_be_bytes()); // router lifetime
                ra.extend_from_slice(&[0; 8]); // reachable, retransmit
                ra.extend_from_slice(&[3, 4, 64, 0xc0]); // prefix information: L, A
                ra.extend_from_slice(&3600u32.to_be_bytes());
                ra.extend_from_slice(&1800u32.to_be_bytes());
                ra.extend_from_slice(&[0; 4]);
                ra.extend_from_slice(&"2001:db8:77::".parse::<Ipv6Addr>().unwrap().octets());
                let to = SocketAddrV6::new("ff02::1".parse().unwrap(), 0, 0, index);
                use std::os::fd::AsRawFd;
                sendto(
                    fd.as_raw_fd(),
                    &ra,
                    &SockaddrIn6::from(to),
                    MsgFlags::empty(),
                )
                .unwrap();
            })
            .join()
            .unwrap();
    });
}

/// Waits up to 3 s for `until` to hold of the container.
fn eventually(mut until: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !until() && start.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(50));
    }
    until()
}

/// Router advertisements decide the default route, as on any host; they make no SLAAC
/// address unless the network says `-o ipv6_slaac=true`, and `verify` takes one as explained
/// then.
#[privileged]
fn router_advertisements_give_the_default_route_and_slaac_only_when_asked() {
    let lan = Lan::new();
    router_v6(&lan);
    let _kea = Kea::start(&lan.router, &kea_config());
    let _kea6 = Kea6::start(&lan.router, &kea6_config());
    let default6 = |ns: &TestNetns| {
        ns.routes(true).iter().any(|r| {
            r["dst"] == "default"
                && r["gateway"]
                    .as_str()
                    .is_some_and(|g| g.starts_with("fe80:"))
        })
    };

    create_dhcp_network(&lan, &["--ipv6"]);
    let container = TestNetns::new("omt-ctr-");
    assert_eq!(hook(&lan, "c1", &container, "creating").code, 0);
    assert!(!default6(&container), "a v6 default route before any RA");
    advertise(&lan);
    assert!(
        eventually(|| default6(&container)),
        "no default route from the RA: {:?}",
        container.routes(true)
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        v6_addresses(&container).len(),
        1,
        "a SLAAC address without the option"
    );
    assert_eq!(hook(&lan, "c1", &container, "stopped").code, 0);
    lan.cli_ok(&["network", "rm", NET], "");

    create_dhcp_network(&lan, &["--ipv6", "-o", "ipv6_slaac=true"]);
    let container = TestNetns::new("omt-ctr-");
    assert_eq!(hook(&lan, "c2", &container, "creating").code, 0);
    assert_eq!(container.sysctl_value("net/ipv6/conf/eth0/autoconf"), "1");
    advertise(&lan);
    assert!(
        eventually(|| v6_addresses(&container).len() == 2),
        "no SLAAC address beside the lease: {:?}",
        container.addresses("eth0")
    );
    assert!(default6(&container));
    let verify = lan.cli(&["verify"], "");
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
    assert_eq!(hook(&lan, "c2", &container, "stopped").code, 0);
    lan.assert_no_residue(&[NET], "at the end");
}

/// The other way round: no DHCPv4 server. The v6 lease Kea 6 advertises is never asked for
/// (its REQUEST waits for a v4 offer to be noted beside, and the attach fails without one), so
/// Kea 6 commits nothing; before, it committed the lease and got it back at once.
#[privileged]
fn no_dhcpv4_server_fails_and_leaves_kea6_no_lease() {
    let lan = Lan::new();
    router_v6(&lan);
    let kea6 = Kea6::start(&lan.router, &kea6_config());
    create_dhcp_network(&lan, &["--ipv6", "--ipam-opt", "dhcp_timeout=2s"]);
    let container = TestNetns::new("omt-ctr-");
    let out = hook(&lan, "c1", &container, "creating");
    assert_ne!(out.code, 0, "attached without a DHCPv4 server");
    assert!(out.stderr.contains("eth0"), "{}", out.stderr);
    assert!(container.link("eth0").is_none(), "the link was left");
    lan.assert_no_residue(&[NET], "after a DHCPv4 timeout");
    assert!(
        kea6.log().contains("DHCP6_LEASE_ADVERT"),
        "Kea 6 advertised nothing: {}",
        kea6.log()
    );
    assert_eq!(kea6.rows(), Vec::new(), "Kea 6 committed a lease");
}
