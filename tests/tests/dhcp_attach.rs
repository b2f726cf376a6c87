//! Privileged tier: the DHCP address source (`--ipam-driver dhcp`) through the hook, against
//! Kea started by the test in the LAN's router namespace (the veth peer of the host's parent):
//! DORA at attach with the address, the router and the option-121 routes applied, the hostname
//! and the client identifier in Kea's lease file, the lease on the record and in `inspect`, the
//! RELEASE at poststop; and a LAN whose server is down, where the attach fails in its timeout
//! naming the link and leaves nothing.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use oci_macvlan_tests::{
    ContainerProcess, Lan, TestNetns,
    dhcp_lan::{
        NET, create_dhcp_network, kea_config, last_leased, record, released, state_with_hostname,
    },
    failpoints_binary,
    kea::{Kea, KeaConfig},
    privileged,
};

use serde_json::Value;

const ANN: &str = "oci-macvlan.networks";

#[privileged]
fn attach_leases_from_the_lans_server_and_poststop_releases_it() {
    let lan = Lan::new();
    let kea = Kea::start(&lan.router, &kea_config());
    create_dhcp_network(&lan, &[]);
    let container = TestNetns::new("omt-ctr-");
    lan.cli_ok(
        &["hook"],
        &state_with_hostname(&lan, "c1", &container, "creating", "web1"),
    );

    let addresses = container.addresses("eth0");
    assert_eq!(addresses.len(), 1, "{addresses:?}");
    let (address, prefix) = addresses[0].split_once('/').unwrap();
    assert_eq!(prefix, "24");
    let host: u8 = address.rsplit('.').next().unwrap().parse().unwrap();
    assert!(
        address.starts_with("192.168.77.") && (100..=150).contains(&host),
        "not from Kea's pool: {address}"
    );
    let routes = container.routes(false);
    let default: Vec<&Value> = routes.iter().filter(|r| r["dst"] == "default").collect();
    assert_eq!(default.len(), 1, "{routes:?}");
    assert_eq!(default[0]["gateway"], Lan::GATEWAY);
    assert!(
        routes
            .iter()
            .any(|r| r["dst"] == "10.5.0.0/16" && r["gateway"] == Lan::GATEWAY),
        "option 121's route missing: {routes:?}"
    );
    assert!(
        container.ping(Lan::GATEWAY),
        "the container cannot reach its router"
    );
    // The journal tells the wait for the server from the hook's own time.
    let attached = lan.journal().pop().unwrap();
    let waited = attached["dhcp_wait_ms"].as_f64().expect("dhcp_wait_ms");
    let took = attached["duration_ms"].as_f64().unwrap();
    assert!(waited > 0.0 && waited < took, "{attached}");

    // Kea's lease: the link's MAC, our client identifier, the OCI hostname.
    let lease = kea
        .lease(address)
        .expect("Kea holds no lease for the address");
    let eth0 = container.link("eth0").unwrap();
    assert_eq!(lease.hwaddr, eth0["address"].as_str().unwrap());
    // Kea keeps the name of option 81 (the client FQDN), completed with its own (empty)
    // qualifying suffix: its trailing dot says option 81 reached it, not option 12 alone.
    assert_eq!(lease.hostname, "web1.");
    let recorded = record(&lan, "c1");
    let dhcp = &recorded["endpoints"][0]["dhcp"];
    assert_eq!(dhcp["client_id"].as_str().unwrap(), lease.client_id);
    assert!(lease.client_id.starts_with("ff:"), "{}", lease.client_id);
    assert_eq!(dhcp["lease"]["server"], Lan::GATEWAY);
    assert_eq!(dhcp["lease"]["address"], address);

    // `inspect` shows the lease; `verify` is content.
    let inspect = lan.inspect(NET);
    assert_eq!(inspect[0]["IPAM"]["Driver"], "dhcp");
    let containers = inspect[0]["Containers"].as_object().unwrap();
    assert_eq!(containers.len(), 1, "{inspect}");
    let shown = &containers.values().next().unwrap()["DhcpLease"];
    assert_eq!(shown["Address"], format!("{address}/24"));
    assert_eq!(shown["Server"], Lan::GATEWAY);
    assert_eq!(shown["State"], "bound", "{shown}");
    for key in ["Obtained", "T1", "T2", "Expiry"] {
        assert!(shown[key].as_str().is_some(), "{key} missing: {shown}");
    }
    let verify = lan.cli(&["verify"], "");
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);

    // A hook run again for the live container keeps its lease: no exchange (not even a
    // RELEASE), the same address.
    assert_eq!(kea.received("DHCPREQUEST"), 1, "{}", kea.log());
    let releases = kea.received("DHCPRELEASE");
    let packets = kea.packets_received().len();
    lan.cli_ok(
        &["hook"],
        &state_with_hostname(&lan, "c1", &container, "creating", "web1"),
    );
    assert_eq!(container.addresses("eth0"), addresses);
    let rerun = lan.journal().pop().unwrap();
    assert_eq!(rerun["action"], "attach", "{rerun}");
    assert!(rerun.get("dhcp_wait_ms").is_none(), "no exchange: {rerun}");
    assert_eq!(
        kea.received("DHCPRELEASE"),
        releases,
        "the re-run released the lease"
    );
    assert_eq!(
        kea.packets_received().len(),
        packets,
        "the re-run talked to the server"
    );

    // Poststop: the RELEASE frees Kea's lease; nothing of ours is left.
    lan.cli_ok(
        &["hook"],
        &state_with_hostname(&lan, "c1", &container, "stopped", "web1"),
    );
    let start = Instant::now();
    while kea.lease(address).is_some() && start.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        kea.lease(address).is_none(),
        "Kea still holds {address} after poststop: {}",
        kea.log()
    );
    assert!(container.link("eth0").is_none());
    lan.assert_no_residue(&[NET], "after poststop");
}

#[privileged]
fn no_server_fails_in_its_timeout_naming_the_link_and_leaves_nothing() {
    let lan = Lan::new();
    create_dhcp_network(&lan, &["--ipam-opt", "dhcp_timeout=2s"]);
    let container = TestNetns::new("omt-ctr-");
    let start = Instant::now();
    let out = lan.cli(
        &["hook"],
        &state_with_hostname(&lan, "c1", &container, "creating", "web1"),
    );
    let took = start.elapsed();
    assert_ne!(out.code, 0, "attached without a server");
    assert!(
        took < Duration::from_secs(6),
        "the 2 s timeout took {took:?}"
    );
    let line = out.stderr.trim();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.contains("eth0") && line.contains("2s") && line.contains(NET),
        "{line}"
    );
    assert!(container.link("eth0").is_none(), "the link was left");
    // Nearly all of it was the wait for an answer, and the journal says so.
    let failed = lan.journal().pop().unwrap();
    assert_eq!(failed["outcome"], "error", "{failed}");
    let waited = failed["dhcp_wait_ms"].as_f64().expect("dhcp_wait_ms");
    assert!(
        (1900.0..=failed["duration_ms"].as_f64().unwrap()).contains(&waited),
        "{failed}"
    );
    lan.assert_no_residue(&[NET], "after a DHCP timeout");
}

#[privileged]
fn create_refuses_what_makes_no_sense_with_dhcp() {
    let lan = Lan::new();
    let parent = format!("parent={}", Lan::PARENT);
    let cases: &[(&[&str], &str)] = &[
        (
            &["--ip-range", "192.168.77.128/25", "--subnet", Lan::SUBNET],
            "--ip-range",
        ),
        (
            &["--aux-address", "r=192.168.77.2", "--subnet", Lan::SUBNET],
            "--aux-address",
        ),
        (&["-o", "ipv6_slaac=true"], "--ipv6"),
        (&["-o", "static_ips=any"], "static_ips"),
        (&["--ipam-opt", "dhcp_timeout=forever"], "dhcp_timeout"),
        (
            &["--ipam-opt", "etcd_endpoints=http://127.0.0.1:1"],
            "etcd_endpoints",
        ),
        (&["-d", "ipvlan", "-o", "ipvlan_mode=l3"], "l2"),
    ];
    for (extra, named) in cases {
        let mut args = vec!["network", "create", "--ipam-driver", "dhcp", "-o", &parent];
        args.extend_from_slice(extra);
        args.push(NET);
        let out = lan.cli(&args, "");
        assert_eq!(out.code, 3, "{extra:?}: {}", out.stderr);
        assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
        assert!(out.stderr.contains(named), "{extra:?}: {}", out.stderr);
    }
    // dhcp_timeout is the DHCP source's option only.
    let out = lan.cli(
        &[
            "network",
            "create",
            "--subnet",
            Lan::SUBNET,
            "-o",
            &parent,
            "--ipam-opt",
            "dhcp_timeout=2s",
            NET,
        ],
        "",
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("dhcp_timeout"), "{}", out.stderr);

    // A static address asked for on a DHCP network: refused at attach, naming it.
    create_dhcp_network(&lan, &[]);
    let container = TestNetns::new("omt-ctr-");
    let state = lan.fake_bundle(
        "c1",
        &[(ANN, NET), ("oci-macvlan.ip", "192.168.77.9")],
        &container.path(),
        "creating",
    );
    let out = lan.cli(&["hook"], &state);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("--ipam-driver dhcp"), "{}", out.stderr);
    lan.assert_no_residue(&[NET], "after a refused static address");
}

#[privileged]
fn a_failure_after_the_server_leased_gives_the_lease_back() {
    let lan = Lan::new();
    let kea = Kea::start(&lan.router, &kea_config());
    create_dhcp_network(&lan, &[]);
    let faulty = failpoints_binary();
    let env = "OCI_MACVLAN_FAILPOINTS";

    // The attach fails once the lease is applied: its undo sends the RELEASE, last.
    let container = TestNetns::new("omt-ctr-");
    let state = state_with_hostname(&lan, "c1", &container, "creating", "web1");
    let out = lan.cli_with(
        &faulty,
        &[(env, "attach:net:routed=error")],
        &["hook"],
        state.as_bytes(),
    );
    assert_ne!(out.code, 0, "the failpoint did not fail the attach");
    let address = last_leased(&kea);
    assert!(
        released(&kea, &address),
        "the failed attach kept Kea's lease of {address}"
    );
    assert!(container.link("eth0").is_none());
    lan.assert_no_residue(&[NET], "after a failed attach");

    // The hook killed there: the record holds the lease, poststop gives it back.
    let container = TestNetns::new("omt-ctr-");
    let state = state_with_hostname(&lan, "c2", &container, "creating", "web2");
    let out = lan.cli_with(
        &faulty,
        &[(env, "attach:net:routed=kill")],
        &["hook"],
        state.as_bytes(),
    );
    assert_eq!(out.code, -1, "not killed: {}", out.stderr);
    let address = last_leased(&kea);
    lan.cli_ok(
        &["hook"],
        &state_with_hostname(&lan, "c2", &container, "stopped", "web2"),
    );
    assert!(
        released(&kea, &address),
        "poststop after a killed attach kept Kea's lease of {address}"
    );
    lan.assert_no_residue(&[NET], "after poststop of a killed attach");
}

#[privileged]
fn verify_flags_an_address_the_lease_does_not_explain_and_a_lease_run_out() {
    let lan = Lan::new();
    let config = KeaConfig {
        valid_lifetime: 4,
        renew_timer: 2,
        rebind_timer: 3,
        ..kea_config()
    };
    let _kea = Kea::start(&lan.router, &config);
    create_dhcp_network(&lan, &[]);
    let container = TestNetns::new("omt-ctr-");
    lan.cli_ok(
        &["hook"],
        &state_with_hostname(&lan, "c1", &container, "creating", "web1"),
    );
    let verify = lan.cli(&["verify"], "");
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);

    container.ip(&["addr", "add", "192.168.77.200/24", "dev", "eth0"]);
    let verify = lan.cli(&["verify"], "");
    let said = format!("{}{}", verify.stdout, verify.stderr);
    assert_ne!(verify.code, 0, "{said}");
    assert!(
        said.contains("192.168.77.200") && said.contains("does not explain"),
        "{said}"
    );
    container.ip(&["addr", "del", "192.168.77.200/24", "dev", "eth0"]);

    // No renewer yet: the 4 s lease runs out.
    std::thread::sleep(Duration::from_secs(5));
    let verify = lan.cli(&["verify"], "");
    let said = format!("{}{}", verify.stdout, verify.stderr);
    assert_ne!(verify.code, 0, "{said}");
    assert!(said.contains("ran out"), "{said}");
    lan.cli_ok(
        &["hook"],
        &state_with_hostname(&lan, "c1", &container, "stopped", "web1"),
    );
}

#[privileged]
fn connect_and_disconnect_a_running_container() {
    let lan = Lan::new();
    let kea = Kea::start(&lan.router, &kea_config());
    create_dhcp_network(&lan, &[]);
    let process = ContainerProcess::start();
    let pid = process.pid().to_string();

    let out = lan.cli(
        &[
            "network",
            "connect",
            "--pid",
            &pid,
            "--ip",
            "192.168.77.9",
            NET,
            "web",
        ],
        "",
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("--ipam-driver dhcp"), "{}", out.stderr);

    lan.cli_ok(&["network", "connect", "--pid", &pid, NET, "web"], "");
    let address = last_leased(&kea);
    let lease = kea.lease(&address).expect("no lease after connect");
    assert_eq!(
        lease.client_id,
        record(&lan, "web")["endpoints"][0]["dhcp"]["client_id"]
    );

    lan.cli_ok(&["network", "disconnect", NET, "web"], "");
    assert!(released(&kea, &address), "disconnect kept Kea's lease");
    lan.assert_no_residue(&[NET], "after disconnect");
}

#[privileged]
fn a_lease_outside_the_networks_subnet_is_refused_and_nothing_is_applied() {
    let lan = Lan::new();
    let _kea = Kea::start(&lan.router, &kea_config());
    create_dhcp_network(
        &lan,
        &["--subnet", "10.9.0.0/24", "--ipam-opt", "dhcp_timeout=2s"],
    );
    let container = TestNetns::new("omt-ctr-");
    let out = lan.cli(
        &["hook"],
        &state_with_hostname(&lan, "c1", &container, "creating", "web1"),
    );
    assert_ne!(out.code, 0, "a lease outside --subnet was taken");
    assert!(
        out.stderr.contains("outside the subnet 10.9.0.0/24"),
        "{}",
        out.stderr
    );
    assert!(container.link("eth0").is_none(), "the link was left");
    lan.assert_no_residue(&[NET], "after a refused lease");
}
