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
