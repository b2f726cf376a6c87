//! What the kernel takes as a link's name, checked before it is asked, so that an error names the
//! bad input. The rules are the kernel's; who the name is for (a parent, a container's
//! interface) is the caller's to say.

/// `IFNAMSIZ` minus the terminating NUL.
pub const MAX_IFNAME_LEN: usize = 15;

/// Why `name` cannot be a Linux interface name, if it cannot: besides what the kernel refuses
/// itself, a name the kernel would reinterpret (`eth%d` becomes `eth0`) or that names its
/// per-protocol settings (`all`, `default`) rather than a link, and anything but printable ASCII.
pub fn ifname_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_IFNAME_LEN {
        Some("it is longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("'.' and '..' are not interface names")
    } else if name == "all" || name == "default" {
        Some("'all' and 'default' name the kernel's settings for every interface")
    } else if name.contains('%') {
        Some("'%' makes the kernel pick a name of its own (eth%d becomes eth0)")
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        Some("it contains '/', ':' or whitespace")
    } else if !name.bytes().all(|b| b.is_ascii_graphic()) {
        Some("only printable ASCII is allowed: no control or non-ASCII characters")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifname_problem_accepts_what_links_are_called() {
        for name in [
            "eth0",
            "eth0.50",
            "enp3s0f1",
            "wlp2s0",
            "br-lan_1",
            "fifteen-bytes-x",
            "alle",
            "defaults",
            "x.all",
        ] {
            assert_eq!(ifname_problem(name), None, "{name}");
        }
    }
}
