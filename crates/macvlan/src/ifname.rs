//! A container's interface name (`eth<n>`, or `oci-macvlan.<network>.ifname`): checked in the
//! plan, before anything is made, against the kernel's rules for a link's name (netlink-core's,
//! which parents are checked against too).

/// Why `name` cannot be a container's interface name, if it cannot.
pub fn ifname_problem(name: &str) -> Option<&'static str> {
    oci_macvlan_netlink_core::ifname_problem(name)
}

#[cfg(test)]
mod tests {
    use super::ifname_problem;

    /// The names a container's legs get by default, and the kinds a user may ask for, pass;
    /// what the kernel would refuse or rename does not.
    #[test]
    fn a_container_interface_name_is_one_the_kernel_takes_as_it_is() {
        for name in [
            "eth0",
            "eth1",
            "eth15",
            "lan50",
            "net-a_1",
            "fifteen-bytes-x",
        ] {
            assert_eq!(ifname_problem(name), None, "{name}");
        }
        for (name, reason) in [
            ("", "it is empty"),
            ("sixteen-bytes-xx", "it is longer than 15 bytes"),
            (
                "eth%d",
                "'%' makes the kernel pick a name of its own (eth%d becomes eth0)",
            ),
            (
                "all",
                "'all' and 'default' name the kernel's settings for every interface",
            ),
            ("..", "'.' and '..' are not interface names"),
            ("a/b", "it contains '/', ':' or whitespace"),
            (
                "eth\u{e9}",
                "only printable ASCII is allowed: no control or non-ASCII characters",
            ),
        ] {
            assert_eq!(ifname_problem(name), Some(reason), "{name:?}");
        }
    }
}
