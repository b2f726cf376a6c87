//! DHCPv6 on one link of the caller's namespace: a UDP socket bound to the link's link-local
//! address, port 546, and to the link; messages go to `ff02::1:2` port 547 with the link's
//! scope (or to the server's address when it allowed unicast), answers come back to it.
//!
//! Nothing here waits for duplicate address detection. [`prepare_link`] turns it off on the
//! link (`accept_dad = 0`): called before the link is up, its link-local address is usable at
//! once, and the leased address is added `nodad` by the caller anyway. When the link-local
//! address is still tentative (the link came up first), the socket binds it all the same
//! (`IP_FREEBIND`), and the exchange's retransmissions carry it past DAD within its deadline.

use std::{
    ffi::OsString,
    io,
    net::{Ipv6Addr, SocketAddrV6, UdpSocket},
    os::fd::{AsFd, AsRawFd},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockType, SockaddrIn6, bind, recv, setsockopt, socket,
    sockopt,
};

use crate::v6::{Error, Result, answer::MAX_MESSAGE, machine::Outgoing, machine::To};

/// The client's port.
pub const CLIENT_PORT: u16 = 546;
/// The servers' (and relays') port.
pub const SERVER_PORT: u16 = 547;
/// All DHCP relay agents and servers, link scope.
pub const ALL_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);

/// Turns duplicate address detection off on the link `name` of the caller's namespace, as
/// the caller must before the exchange (best before the link is up): no DHCPv6 step waits for
/// DAD.
pub fn prepare_link(name: &str) -> io::Result<()> {
    if name.is_empty() || name.len() > 15 || name.contains('/') || name == "." || name == ".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is no link name"),
        ));
    }
    std::fs::write(format!("/proc/sys/net/ipv6/conf/{name}/accept_dad"), "0")
}

/// The link-local address of the link `name`, if it has one.
pub fn link_local(name: &str) -> io::Result<Option<Ipv6Addr>> {
    let found = nix::ifaddrs::getifaddrs()?.find_map(|ifa| {
        let ip = ifa.address?.as_sockaddr_in6()?.ip();
        (ifa.interface_name == name && ip.segments()[0] & 0xffc0 == 0xfe80).then_some(ip)
    });
    Ok(found)
}

/// The link a DHCPv6 exchange runs on: its name and index, in the caller's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnLink6 {
    /// Its name (for errors and `SO_BINDTODEVICE`).
    pub name: String,
    /// Its index (the link-local addresses' scope).
    pub index: u32,
}

impl OnLink6 {
    /// The link `name` of the caller's namespace.
    pub fn named(name: &str) -> io::Result<Self> {
        let index = nix::net::if_::if_nametoindex(name)?;
        Ok(Self {
            name: name.to_owned(),
            index,
        })
    }
}

/// The socket of an exchange on one link, opened in the caller's namespace and keeping it: a
/// caller that must not leave its own thread in the container's namespace opens it there and
/// drives the exchange from anywhere.
#[derive(Debug)]
pub struct UdpLink {
    udp: UdpSocket,
    link: OnLink6,
    from: Ipv6Addr,
    /// See [`Self::waited`].
    waited: AtomicU64,
}

impl UdpLink {
    /// Opens the socket on `link`, from its link-local address, waiting `wait` at most for
    /// the link to have one (a link just made gets it when it comes up).
    pub fn open(link: &OnLink6, wait: Duration) -> Result<Self> {
        let failed = |source: io::Error| Error::Socket {
            link: link.name.clone(),
            source,
        };
        let end = Instant::now() + wait;
        let from = loop {
            if let Some(ip) = link_local(&link.name).map_err(failed)? {
                break ip;
            }
            if Instant::now() >= end {
                return Err(Error::NoLinkLocal(link.name.clone()));
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let open = || -> io::Result<UdpSocket> {
            let fd = socket(
                AddressFamily::Inet6,
                SockType::Datagram,
                SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
                None,
            )?;
            setsockopt(&fd, sockopt::BindToDevice, &OsString::from(&link.name))?;
            // A tentative link-local address (DAD still running) can be bound all the same.
            setsockopt(&fd, sockopt::IpFreebind, &true)?;
            let at = SocketAddrV6::new(from, CLIENT_PORT, 0, link.index);
            bind(fd.as_raw_fd(), &SockaddrIn6::from(at))?;
            Ok(UdpSocket::from(fd))
        };
        Ok(Self {
            udp: open().map_err(failed)?,
            link: link.clone(),
            from,
            waited: AtomicU64::new(0),
        })
    }

    /// The link.
    pub fn link(&self) -> &OnLink6 {
        &self.link
    }

    /// The link-local address messages go from.
    pub fn from(&self) -> Ipv6Addr {
        self.from
    }

    /// Sends `out`. A unicast the link cannot carry (no route to the server's address: the
    /// leased address was added as a /128 and no router advertised the prefix) goes to all
    /// servers instead, which RFC 8415 always allows.
    pub fn send(&self, out: &Outgoing) -> io::Result<()> {
        crate::socket::sending(&self.waited, || self.send_now(out))
    }

    fn send_now(&self, out: &Outgoing) -> io::Result<()> {
        let all = SocketAddrV6::new(ALL_SERVERS, SERVER_PORT, 0, self.link.index);
        match out.to {
            To::AllServers => self.udp.send_to(&out.bytes, all).map(drop),
            To::Server(server) => {
                let scope = if server.segments()[0] & 0xffc0 == 0xfe80 {
                    self.link.index
                } else {
                    0
                };
                let to = SocketAddrV6::new(server, SERVER_PORT, 0, scope);
                match self.udp.send_to(&out.bytes, to) {
                    Ok(_) => Ok(()),
                    Err(e) if e.raw_os_error() == Some(nix::libc::ENETUNREACH) => {
                        self.udp.send_to(&out.bytes, all).map(drop)
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// The next message queued for the client, if any: its bytes in `buf`, and its whole
    /// length (larger than `buf` when it was cut: the caller refuses it as too large).
    pub fn next<'b>(
        &self,
        buf: &'b mut [u8; MAX_MESSAGE + 1],
    ) -> io::Result<Option<(&'b [u8], usize)>> {
        loop {
            // MSG_TRUNC: the datagram's real length, even when it did not fit.
            return match recv(self.udp.as_raw_fd(), &mut buf[..], MsgFlags::MSG_TRUNC) {
                Ok(len) => Ok(Some((&buf[..len.min(MAX_MESSAGE + 1)], len))),
                Err(nix::errno::Errno::EAGAIN) => Ok(None),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(errno) => Err(errno.into()),
            };
        }
    }

    /// Waits until a message is queued or `until` passes.
    pub fn wait(&self, until: Instant) -> io::Result<()> {
        crate::socket::wait_readable(self.udp.as_fd(), until, &self.waited)
    }

    /// How long the exchange on this socket has waited for its servers, all calls together
    /// (as `PacketLink::waited`: [`Self::wait`]'s time, and a send's time off the CPU).
    pub fn waited(&self) -> Duration {
        Duration::from_nanos(self.waited.load(Ordering::Relaxed))
    }
}
