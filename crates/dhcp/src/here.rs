//! Whether a DHCP server (or relay) listens in the caller's own network namespace: on the host,
//! the one place a macvlan container's client can never reach. The kernel passes no frame
//! between a macvlan and its parent's own stack, so a server on the container's host hears
//! nothing and the exchange times out (netavark's dhcp-proxy has this scar: netavark#690).
//! A timeout says so when it may be the cause, and `doctor` warns of it. The socket table does
//! not say which link a server serves (libvirt's dnsmasq on its own bridge looks the same), so
//! the note says "if it is the one meant to serve this LAN".
//!
//! The answer is read from `/proc/thread-self/net/udp` (and `udp6`): the calling thread's
//! namespace, which is the host's wherever this crate builds an error (the sockets of an
//! exchange are opened inside the container's namespace, the loop runs at home).

use std::{fs::File, io::Read, path::Path};

/// The port a DHCPv4 server (or relay) listens on.
pub const V4_SERVER_PORT: u16 = 67;
/// The port a DHCPv6 server (or relay) listens on.
pub const V6_SERVER_PORT: u16 = 547;
/// How much of a socket table is read at most (a host with very many sockets is read in part:
/// a server's socket is usually bound early, and a missed one only loses a hint).
const READ_AT_MOST: u64 = 4 << 20;

/// Whether a UDP socket of the calling thread's namespace is bound to local `port` (IPv4 or
/// IPv6, any address). A table that cannot be read counts as "no".
pub fn udp_port_bound(port: u16) -> bool {
    ["/proc/thread-self/net/udp", "/proc/thread-self/net/udp6"]
        .iter()
        .any(|table| table_binds(Path::new(table), port))
}

/// The note a timeout on `family`'s exchange ("DHCP" or "DHCPv6") carries when a server or a
/// relay listens on this host: empty when none does.
pub(crate) fn timeout_note(port: u16) -> &'static str {
    if !udp_port_bound(port) {
        return "";
    }
    if port == V6_SERVER_PORT {
        "; a DHCPv6 server or relay listens on this host (UDP port 547): if it is the one meant to serve this LAN, a macvlan container cannot reach its own host, so serve it from another machine on the LAN"
    } else {
        "; a DHCP server or relay listens on this host (UDP port 67): if it is the one meant to serve this LAN, a macvlan container cannot reach its own host, so serve it from another machine on the LAN"
    }
}

fn table_binds(table: &Path, port: u16) -> bool {
    let mut text = String::new();
    let read = File::open(table).and_then(|file| file.take(READ_AT_MOST).read_to_string(&mut text));
    read.is_ok() && binds(&text, port)
}

/// Whether the socket table `text` (the kernel's `/proc/net/udp` format: a header line, then
/// `sl local_address rem_address st …`, addresses as `HEXADDR:HEXPORT`) has a socket bound to
/// local `port`.
fn binds(text: &str, port: u16) -> bool {
    text.lines().skip(1).any(|line| {
        line.split_whitespace()
            .nth(1)
            .and_then(|local| local.rsplit_once(':'))
            .and_then(|(_, hex)| u16::from_str_radix(hex, 16).ok())
            == Some(port)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  112: 00000000:0043 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 20871 2 0000000000000000 0
  500: 0100007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 20870 2 0000000000000000 0
";

    #[test]
    fn a_bound_port_is_found_and_an_unbound_one_is_not() {
        assert!(binds(TABLE, 67));
        assert!(binds(TABLE, 53));
        assert!(!binds(TABLE, 68));
        assert!(!binds(TABLE, 547));
    }

    #[test]
    fn the_header_and_garbage_lines_bind_nothing() {
        assert!(!binds("   sl  local_address\n", 0));
        assert!(!binds("header\n  1: nonsense\n  2: 0000:zzzz 0:0\n\n", 67));
        // The header's own second column ("local_address") is never read as a socket.
        assert!(!binds("sl 0:0043\n", 67));
    }

    #[test]
    fn this_threads_table_is_read() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("a UDP socket");
        let port = socket.local_addr().expect("its address").port();
        assert!(udp_port_bound(port), "port {port} bound but not found");
        drop(socket);
        assert!(!udp_port_bound(port), "port {port} closed but found");
    }
}
