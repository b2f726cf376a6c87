//! `network create --ipam-driver dhcp`: what a DHCP network's definition holds, and every
//! option that makes no sense with a server handing out the addresses, refused naming it.

#![allow(clippy::unwrap_used)]

mod common;

use common::spec;
use oci_macvlan_macvlan::{ErrorKind, Network};

fn validate(args: &[&str]) -> Result<Network, oci_macvlan_macvlan::Error> {
    spec(args).validate("d".repeat(64), "2026-12-05T00:00:00Z".into())
}

#[test]
fn a_dhcp_network_needs_no_subnet_and_keeps_its_timeout_and_subnet() {
    let net = validate(&["--ipam-driver dhcp", "-o parent=eth0"]).unwrap();
    let dhcp = net.dhcp.unwrap();
    assert!(net.pools.is_empty(), "a DHCP network has no pool");
    assert_eq!(dhcp.timeout_ms, 10_000);
    assert_eq!(dhcp.subnet, None);

    let net = validate(&[
        "--ipam-driver dhcp",
        "-o parent=eth0",
        "--subnet 192.168.1.0/24",
        "--ipam-opt dhcp_timeout=2500ms",
    ])
    .unwrap();
    let dhcp = net.dhcp.unwrap();
    assert!(net.pools.is_empty(), "--subnet is a check, not a pool");
    assert_eq!(dhcp.timeout_ms, 2500);
    assert_eq!(dhcp.subnet.unwrap().to_string(), "192.168.1.0/24");

    // The definition keeps it; one of our allocator says nothing of DHCP.
    let json = serde_json::to_string(&net).unwrap();
    let back: Network = serde_json::from_str(&json).unwrap();
    assert_eq!(back, net);
    let ours = validate(&["--subnet 10.0.0.0/24", "-o parent=eth0"]).unwrap();
    assert!(ours.dhcp.is_none());
    assert!(!serde_json::to_string(&ours).unwrap().contains("dhcp"));
    let explicit = validate(&[
        "--ipam-driver default",
        "--subnet 10.0.0.0/24",
        "-o parent=eth0",
    ]);
    assert!(explicit.unwrap().dhcp.is_none());
}

#[test]
fn what_makes_no_sense_with_dhcp_is_refused_naming_it() {
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "--ipam-driver dhcp",
                "--subnet 10.0.0.0/24",
                "--ip-range 10.0.0.128/25",
            ],
            "--ip-range",
        ),
        (
            &[
                "--ipam-driver dhcp",
                "--subnet 10.0.0.0/24",
                "--aux-address r=10.0.0.2",
            ],
            "--aux-address",
        ),
        (
            &[
                "--ipam-driver dhcp",
                "--subnet 10.0.0.0/24",
                "--gateway 10.0.0.1",
            ],
            "--gateway",
        ),
        (
            &[
                "--ipam-driver dhcp",
                "--ipv6",
                "--subnet fd00::/64",
                "--subnet fd01::/64",
            ],
            "at most one",
        ),
        (&["--ipam-driver dhcp", "-o ipv6_slaac=true"], "--ipv6"),
        (
            &["--ipam-driver dhcp", "--ipv6", "-o ipv6_slaac=yes"],
            "true or false",
        ),
        (
            &["--subnet 10.0.0.0/24", "--ipv6", "-o ipv6_slaac=true"],
            "ipv6_slaac",
        ),
        (
            &[
                "--ipam-driver dhcp",
                "--subnet 10.0.0.0/24",
                "--subnet 10.1.0.0/24",
            ],
            "at most one",
        ),
        (&["--ipam-driver dhcp", "-o static_ips=any"], "static_ips"),
        (
            &["--ipam-driver dhcp", "-o host_access=10.0.0.3"],
            "host_access",
        ),
        (&["--ipam-driver dhcp", "--internal"], "--internal"),
        (
            &["--ipam-driver dhcp", "--ipam-opt dhcp_timeout=0s"],
            "dhcp_timeout",
        ),
        (
            &["--ipam-driver dhcp", "--ipam-opt dhcp_timeout=3m"],
            "dhcp_timeout",
        ),
        (
            &["--ipam-driver dhcp", "--ipam-opt dhcp_timeout=soon"],
            "dhcp_timeout",
        ),
        (
            &[
                "--ipam-driver dhcp",
                "--ipam-opt etcd_endpoints=http://h:2379",
            ],
            "etcd_endpoints",
        ),
        (
            &["--ipam-driver dhcp", "-d ipvlan", "-o ipvlan_mode=l3"],
            "l2",
        ),
        (
            &["--ipam-driver dhcp", "-o macvlan_mode=passthru"],
            "passthru",
        ),
        (
            &["--ipam-driver bootp", "--subnet 10.0.0.0/24"],
            "--ipam-driver",
        ),
        (
            &["--subnet 10.0.0.0/24", "--ipam-opt dhcp_timeout=2s"],
            "dhcp_timeout",
        ),
    ];
    for (args, named) in cases {
        let mut args = args.to_vec();
        args.push("-o parent=eth0");
        let err = validate(&args).expect_err(&format!("{args:?} was accepted"));
        assert_eq!(err.kind(), ErrorKind::Invalid, "{args:?}: {err}");
        let text = err.to_string();
        assert!(text.contains(named), "{args:?}: {text}");
    }
    let err = validate(&["--ipam-driver dhcp"]).expect_err("no parent");
    assert!(err.to_string().contains("parent"), "{err}");
}

/// `--ipv6` is dual stack, as Docker's: a DHCPv6 lease beside the v4 one; a v6 `--subnet`
/// implies it and is kept as the v6 lease's check; `-o ipv6_slaac` is off unless given.
#[test]
fn ipv6_adds_a_dhcpv6_lease_with_its_subnet_and_slaac_setting() {
    let net = validate(&["--ipam-driver dhcp", "-o parent=eth0", "--ipv6"]).unwrap();
    let dhcp = net.dhcp.unwrap();
    assert!(dhcp.ipv6 && net.ipv6);
    assert!(!dhcp.slaac);
    assert_eq!(dhcp.subnet6, None);

    let net = validate(&[
        "--ipam-driver dhcp",
        "-o parent=eth0",
        "--subnet 192.168.1.0/24",
        "--subnet fd00:1::/64",
        "-o ipv6_slaac=true",
    ])
    .unwrap();
    let dhcp = net.dhcp.unwrap();
    assert!(dhcp.ipv6 && dhcp.slaac && net.ipv6);
    assert_eq!(dhcp.subnet.unwrap().to_string(), "192.168.1.0/24");
    assert_eq!(dhcp.subnet6.unwrap().to_string(), "fd00:1::/64");
    let back: Network = serde_json::from_str(&serde_json::to_string(&net).unwrap()).unwrap();
    assert_eq!(back, net);

    // An IPv4-only definition written before says nothing of v6, and loads as before.
    let v4 = validate(&["--ipam-driver dhcp", "-o parent=eth0"]).unwrap();
    let json = serde_json::to_string(&v4).unwrap();
    assert!(
        !json.contains("subnet6") && !json.contains("slaac"),
        "{json}"
    );
}
