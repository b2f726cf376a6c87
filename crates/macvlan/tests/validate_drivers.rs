//! `network create` validation per driver, as in `validate.rs`: the ipvlan definitions, each
//! driver's answer to a static MAC, an L3 network's routes, and where host access is refused.

#![allow(clippy::unwrap_used)]

mod common;

use common::spec;
use oci_macvlan_macvlan::driver::{self, DefaultRoute, ipvlan};

/// The guide's ipvlan example (two subnets, each with its gateway), and each mode and flag: the
/// definition as stored, and what the driver makes of it.
#[test]
fn accepted_ipvlan_definitions() {
    let guide = spec(&[
        "-d ipvlan",
        "--subnet 192.168.210.0/24",
        "--subnet 192.168.212.0/24",
        "--gateway 192.168.210.254",
        "--gateway 192.168.212.254",
        "-o ipvlan_mode=l2",
        "-o parent=eth0",
    ])
    .validate("0123".into(), "2026-01-01T00:00:00Z".into())
    .unwrap();
    insta::assert_json_snapshot!(guide);
    assert_eq!(
        guide.gateway_for("192.168.212.9".parse().unwrap()),
        Some("192.168.212.254".parse().unwrap())
    );

    let mut table = Vec::new();
    for opts in [
        &[][..],
        &["-o ipvlan_mode=l3"],
        &["-o ipvlan_mode=l3s", "-o ipvlan_flag=private"],
        &["-o ipvlan_flag=vepa"],
        &["-o ipvlan_mode=l2", "-o ipvlan_flag=bridge"],
    ] {
        let mut args = vec!["-d ipvlan", "--subnet 10.0.0.0/24", "--gateway 10.0.0.1"];
        args.push("-o parent=eth0");
        args.extend_from_slice(opts);
        let network = spec(&args).validate("id".into(), "now".into()).unwrap();
        let driver = network.driver();
        table.push(format!(
            "{:<45} -> {} {:?} mode {} route {:?} gateway {:?} mac {:?}",
            opts.join(" "),
            driver.name(),
            driver.child(),
            driver.mode(),
            driver.default_route(),
            network.gateway_for("10.0.0.5".parse().unwrap()),
            driver.mac("n", "c1", None).unwrap(),
        ));
    }
    insta::assert_snapshot!(table.join("\n"));
}

/// Each driver's answer to a container's static MAC: macvlan takes a station address, passthru
/// and ipvlan (whose links have their parent's MAC) refuse any.
#[test]
fn a_static_mac_per_driver() {
    let mac = "02:00:00:00:00:10".parse().unwrap();
    let multicast = "01:00:5e:00:00:10".parse().unwrap();
    let mut table = Vec::new();
    for opts in [
        &["-o macvlan_mode=bridge"][..],
        &["-o macvlan_mode=passthru"],
        &["-d ipvlan"],
        &["-d ipvlan", "-o ipvlan_mode=l3"],
    ] {
        let mut args = vec!["--subnet 10.0.0.0/24", "-o parent=eth0"];
        args.extend_from_slice(opts);
        let network = spec(&args).validate("id".into(), "now".into()).unwrap();
        for requested in [None, Some(mac), Some(multicast)] {
            let answer = match network.driver().mac("lan50", "c1", requested) {
                Ok(mac) => format!("{mac:?}"),
                Err(err) => format!("{:?}: {}", err.kind(), oci_macvlan_macvlan::one_line(&err)),
            };
            table.push(format!("{:<40} {requested:?} -> {answer}", opts.join(" ")));
        }
    }
    insta::assert_snapshot!(table.join("\n"));
}

#[test]
fn an_l3_network_routes_on_the_link_whatever_gateway_was_given() {
    let network = spec(&[
        "-d ipvlan",
        "--subnet 10.0.0.0/24",
        "--gateway 10.0.0.1",
        "--subnet fd00::/64",
        "--gateway fd00::1",
        "-o parent=eth0",
        "-o ipvlan_mode=l3",
    ])
    .validate("id".into(), "now".into())
    .unwrap();
    assert_eq!(network.driver().default_route(), DefaultRoute::OnLink);
    assert_eq!(network.gateway_for("10.0.0.5".parse().unwrap()), None);
    assert_eq!(network.gateway_for("fd00::5".parse().unwrap()), None);
    assert_eq!(
        network.driver,
        driver::Options::Ipvlan(ipvlan::Options {
            ipvlan_mode: ipvlan::Mode::L3,
            ipvlan_flag: ipvlan::Flag::Bridge,
        })
    );
}

/// `-o host_access`: refused where the kernel cannot pass frames between the host's link and
/// the containers' (macvlan modes but bridge, ipvlan's private flag) and for addresses the host
/// cannot take (outside the subnets, reserved, two of a family); accepted, the addresses are
/// reserved in their pools (never leased) and the link is named after the network id.
#[test]
fn host_access_is_refused_where_it_cannot_work() {
    let base = [
        "--subnet 192.168.50.0/24",
        "--gateway 192.168.50.1",
        "--aux-address router2=192.168.50.2",
        "--subnet fd00:50::/64",
        "-o parent=eth0",
    ];
    let cases: &[&[&str]] = &[
        &["-o host_access=192.168.50.3", "-o macvlan_mode=private"],
        &["-o host_access=192.168.50.3", "-o macvlan_mode=vepa"],
        &["-o host_access=192.168.50.3", "-o macvlan_mode=passthru"],
        &[
            "-o host_access=192.168.50.3",
            "-o macvlan_mode=source",
            "-o source_macs=02:00:00:00:00:01",
        ],
        &[
            "-d ipvlan",
            "-o host_access=192.168.50.3",
            "-o ipvlan_flag=private",
        ],
        &["-o host_access=10.0.0.3"],
        &["-o host_access=192.168.50.1"],
        &["-o host_access=192.168.50.2"],
        &["-o host_access=192.168.50.0"],
        &["-o host_access=192.168.50.255"],
        &["-o host_access=fd00:50::"],
        &["-o host_access=192.168.50.3,192.168.50.4"],
        &["-o host_access=banana"],
        &["-o host_access=192.168.50.3/24"],
        &["-o host_access="],
        &[
            "-o host_access=192.168.50.3",
            "--aux-address host_access=192.168.50.9",
        ],
    ];
    let mut report = Vec::new();
    for extra in cases {
        let mut args: Vec<&str> = base.to_vec();
        args.extend_from_slice(extra);
        let err = spec(&args)
            .validate("id".into(), "now".into())
            .expect_err(&format!("{extra:?} must be rejected"));
        report.push(format!(
            "{}\n  -> {:?}: {}",
            extra.join(" "),
            err.kind(),
            oci_macvlan_macvlan::one_line(&err)
        ));
    }
    insta::assert_snapshot!(report.join("\n"));

    let mut args: Vec<&str> = base.to_vec();
    args.push("-o host_access=192.168.50.3,fd00:50::3");
    let network = spec(&args)
        .validate("0123456789abcdef".into(), "now".into())
        .unwrap();
    assert_eq!(
        network.host_access,
        [
            "192.168.50.3".parse::<std::net::IpAddr>().unwrap(),
            "fd00:50::3".parse().unwrap()
        ]
    );
    assert_eq!(network.host_link().as_deref(), Some("ha-0123456789ab"));
    for (pool, ip) in network.pools.iter().zip(&network.host_access) {
        assert_eq!(
            pool.reservation(*ip).map(|r| r.to_string()).as_deref(),
            Some("auxiliary address host_access")
        );
    }
    let mut ipvlan: Vec<&str> = base.to_vec();
    ipvlan.extend([
        "-d ipvlan",
        "-o ipvlan_mode=l3",
        "-o host_access=192.168.50.3",
    ]);
    assert!(spec(&ipvlan).validate("id".into(), "now".into()).is_ok());
    assert_eq!(
        spec(&base)
            .validate("id".into(), "now".into())
            .unwrap()
            .host_link(),
        None
    );
}
