//! The per-link sysctls a container's link (`crate::wire`) and a host link
//! (`crate::host_access`) are given.

use oci_macvlan_netlink_core::Sysctl;

/// A link with IPv6 addresses: no router advertisements, no SLAAC, unsolicited neighbour
/// advertisements on link-up (the IPv6 counterpart of `arp_notify`, which makes the kernel
/// send a gratuitous ARP when the link comes up, as CNI and Docker v28 do). Without: IPv6 off
/// on the link (no link-local address, no RA, no SLAAC).
pub(crate) fn ipv6_sysctls(ifname: &str, ipv6: bool) -> Vec<Sysctl<'_>> {
    if ipv6 {
        vec![
            conf(ifname, "ipv6", "accept_ra", "0", false),
            conf(ifname, "ipv6", "autoconf", "0", false),
            conf(ifname, "ipv6", "ndisc_notify", "1", false),
        ]
    } else {
        // A kernel without IPv6 has nothing to turn off.
        vec![conf(ifname, "ipv6", "disable_ipv6", "1", true)]
    }
}

/// A DHCP network's link with a DHCPv6 lease (`--ipam-driver dhcp --ipv6`), written before
/// it comes up: no duplicate address detection (its link-local address, which the exchange
/// sends from, is usable at once), router advertisements accepted as on any host (they decide
/// the default route; `2`: whether or not the namespace forwards, the same as `1` when it does
/// not), SLAAC addresses only with `-o ipv6_slaac=true`, unsolicited neighbour advertisements
/// on link-up. A link that shares its parent's MAC (`shared_mac`: an ipvlan) gets a random
/// link-local address (`addr_gen_mode = 3`), not the MAC's, which its siblings would share.
pub(crate) fn dhcp6_sysctls(ifname: &str, slaac: bool, shared_mac: bool) -> Vec<Sysctl<'_>> {
    let mut sysctls = vec![
        conf(ifname, "ipv6", "disable_ipv6", "0", false),
        conf(ifname, "ipv6", "accept_dad", "0", false),
        conf(ifname, "ipv6", "accept_ra", "2", false),
        conf(
            ifname,
            "ipv6",
            "autoconf",
            if slaac { "1" } else { "0" },
            false,
        ),
        conf(ifname, "ipv6", "ndisc_notify", "1", false),
    ];
    if shared_mac {
        // A kernel without it keeps the MAC's.
        sysctls.push(conf(ifname, "ipv6", "addr_gen_mode", "3", true));
    }
    sysctls
}

/// `net.FAMILY.conf.IFNAME.KEY = VALUE`.
pub(crate) fn conf<'a>(
    ifname: &'a str,
    family: &'a str,
    key: &'a str,
    value: &'a str,
    missing_ok: bool,
) -> Sysctl<'a> {
    Sysctl {
        key: vec!["net", family, "conf", ifname, key],
        value,
        missing_ok,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(sysctls: &[Sysctl<'_>]) -> Vec<String> {
        sysctls
            .iter()
            .map(|s| format!("{}={}", s.key.join("."), s.value))
            .collect()
    }

    #[test]
    fn a_dhcpv6_link_takes_router_advertisements_and_slaac_only_when_asked() {
        let macvlan = text(&dhcp6_sysctls("eth0", false, false));
        for want in [
            "net.ipv6.conf.eth0.accept_dad=0",
            "net.ipv6.conf.eth0.accept_ra=2",
            "net.ipv6.conf.eth0.autoconf=0",
        ] {
            assert!(macvlan.iter().any(|s| s == want), "{want}: {macvlan:?}");
        }
        assert!(!macvlan.iter().any(|s| s.contains("addr_gen_mode")));
        let slaac = text(&dhcp6_sysctls("eth0", true, false));
        assert!(slaac.iter().any(|s| s == "net.ipv6.conf.eth0.autoconf=1"));
        // An ipvlan shares its parent's MAC: a random link-local address.
        let ipvlan = text(&dhcp6_sysctls("eth0", false, true));
        assert!(
            ipvlan
                .iter()
                .any(|s| s == "net.ipv6.conf.eth0.addr_gen_mode=3")
        );
    }
}
