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
/// on link-up.
pub(crate) fn dhcp6_sysctls(ifname: &str, slaac: bool) -> Vec<Sysctl<'_>> {
    vec![
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
    ]
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
