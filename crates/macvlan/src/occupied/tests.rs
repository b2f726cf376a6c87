use ipnetwork::IpNetwork;

use super::*;
use crate::StaticIps;

fn subnets() -> Vec<IpNetwork> {
    vec![
        "192.168.77.0/24".parse().unwrap(),
        "fd00:77::/64".parse().unwrap(),
    ]
}

#[test]
fn static_ips_are_parsed_and_checked_against_the_subnets() {
    let ok: &[(&str, StaticIps)] = &[
        ("any", StaticIps::Any),
        ("none", StaticIps::None),
        (
            "192.168.77.128/25, fd00:77::100/120",
            StaticIps::Ranges(vec![
                "192.168.77.128/25".parse().unwrap(),
                "fd00:77::100/120".parse().unwrap(),
            ]),
        ),
        (
            "192.168.77.0/24",
            StaticIps::Ranges(vec!["192.168.77.0/24".parse().unwrap()]),
        ),
    ];
    for (value, expected) in ok {
        assert_eq!(
            &StaticIps::parse(value, &subnets()).unwrap(),
            expected,
            "{value}"
        );
    }
    let refused: &[(&str, &str)] = &[
        ("", "expected any, none"),
        ("some", "expected any, none"),
        ("192.168.77.129/25", "host bits set"),
        ("192.168.76.0/25", "outside every --subnet"),
        ("192.168.0.0/16", "outside every --subnet"),
        ("fd00:78::/120", "outside every --subnet"),
        ("192.168.77.0/25,", "expected any, none"),
    ];
    for (value, says) in refused {
        let err = StaticIps::parse(value, &subnets()).unwrap_err().to_string();
        assert!(err.contains(says), "{value}: {err}");
        assert!(err.contains("-o static_ips"), "{value}: {err}");
    }
}

#[test]
fn what_static_ips_allows() {
    let ranges = StaticIps::parse("192.168.77.128/25", &subnets()).unwrap();
    let table: &[(&StaticIps, &str, bool)] = &[
        (&StaticIps::Any, "192.168.77.5", true),
        (&StaticIps::Any, "fd00:77::5", true),
        (&StaticIps::None, "192.168.77.200", false),
        (&ranges, "192.168.77.200", true),
        (&ranges, "192.168.77.128", true),
        (&ranges, "192.168.77.127", false),
        // A family no range names is closed.
        (&ranges, "fd00:77::5", false),
    ];
    for (policy, ip, allowed) in table {
        assert_eq!(
            policy.allows(ip.parse().unwrap()),
            *allowed,
            "{policy} {ip}"
        );
    }
    assert_eq!(ranges.to_string(), "192.168.77.128/25");
}

#[test]
fn a_holder_is_named_in_a_few_words() {
    let mac: MacAddr = "02:00:00:00:00:42".parse().unwrap();
    let table: &[(Holder, &str)] = &[
        (Holder::HostLink("eth1".into()), "the host's link eth1"),
        (
            Holder::Router {
                destination: None,
                link: Some("lan0".into()),
            },
            "the router of the host's default route on lan0",
        ),
        (
            Holder::Router {
                destination: Some(("10.8.0.0".parse().unwrap(), 24)),
                link: None,
            },
            "a router of the host's route to 10.8.0.0/24",
        ),
        (
            Holder::Neighbour {
                mac: Some(mac),
                link: "lan0".into(),
            },
            "a neighbour 02:00:00:00:00:42 on lan0 (the host's neighbour table)",
        ),
        (
            Holder::ArpProbe(mac),
            "02:00:00:00:00:42 answered the ARP probe for it",
        ),
        (
            Holder::NsProbe(mac),
            "02:00:00:00:00:42 answered the neighbour solicitation for it",
        ),
    ];
    for (holder, says) in table {
        assert_eq!(holder.to_string(), *says);
    }
}
