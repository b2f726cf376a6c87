//! DHCP on one link of the caller's namespace. Broadcasts (every message before an address is
//! held, and REBINDING's) go out as whole frames over an `AF_PACKET` socket bound to the link,
//! with the link's own MAC as source; unicasts to a server (RENEWING's REQUEST, RELEASE) go over
//! a UDP socket bound to the leased address and the link, so that the kernel finds the server's
//! MAC. Answers are read from the packet socket, whichever way they come.

use std::{
    ffi::OsString,
    io,
    net::{Ipv4Addr, SocketAddrV4, UdpSocket},
    os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use nix::{
    poll::{PollFd, PollFlags, PollTimeout, poll},
    sys::socket::{
        AddressFamily, LinkAddr, MsgFlags, SockFlag, SockType, SockaddrIn, bind, recvfrom, send,
        setsockopt, socket, sockopt,
    },
};

use oci_macvlan_child::Closer;

use crate::{
    frame::{self, BROADCAST_MAC, CLIENT_PORT, ETH_P_IP, SERVER_PORT},
    machine::{Outgoing, To},
};

/// The kernel's `PACKET_OUTGOING`: a frame this host sent, looped back to the socket.
const PACKET_OUTGOING: u8 = 4;
/// The most bytes read of one frame: a full Ethernet frame; a longer one is cut and dropped.
pub const MAX_FRAME: usize = 1514;

/// The link an exchange runs on: a link of the caller's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnLink {
    /// Its name (for errors and `SO_BINDTODEVICE`).
    pub name: String,
    /// Its index.
    pub index: u32,
    /// Its MAC.
    pub mac: [u8; 6],
}

/// The sockets of an exchange on one link: a packet socket bound to the link for IPv4 frames,
/// and, when the client holds a lease, a UDP socket from its address for unicasts. Both are
/// opened by [`open`](Self::open) in the caller's namespace and keep it: a caller that must not
/// leave its own thread in the container's namespace opens them there (netlink-core's
/// `Netns::run_inside`) and drives the exchange from anywhere.
#[derive(Debug)]
pub struct PacketLink {
    fd: OwnedFd,
    udp: Option<UdpSocket>,
    link: OnLink,
    /// See [`Self::waited`].
    waited: AtomicU64,
}

impl PacketLink {
    /// Opens and binds the sockets; `leased`, the address the client holds, if any (its
    /// unicasts go from it).
    pub fn open(link: &OnLink, leased: Option<Ipv4Addr>) -> io::Result<Self> {
        let fd = oci_macvlan_netlink_core::packet_socket(link.index, ETH_P_IP)?;
        let udp = leased.map(|from| udp_on(link, from)).transpose()?;
        Ok(Self {
            fd,
            udp,
            link: link.clone(),
            waited: AtomicU64::new(0),
        })
    }

    /// Closes the sockets without waiting for the packet socket's release, an RCU grace period
    /// of the kernel (milliseconds): for a process about to end (a hook), see netlink-core's
    /// `close_later`. A drop closes them here and waits.
    pub fn close_later(self) {
        self.close_with(None);
    }

    /// The child that [`Self::close_with`] hands the packet socket to, made now: while the
    /// socket waits for an answer, not after it. With `then`, the child starts that program
    /// once it has closed the socket (see `oci_macvlan_child::Closer::ready`).
    pub fn closer(&self, then: Option<oci_macvlan_child::Start>) -> Option<Closer> {
        Closer::ready(self.fd.as_fd(), then)
    }

    /// [`Self::close_later`], with the child made ahead by [`Self::closer`] (made now if none
    /// was).
    pub fn close_with(self, closer: Option<Closer>) {
        drop(self.udp);
        match closer {
            Some(closer) => closer.close(self.fd),
            None => oci_macvlan_child::close_later(self.fd),
        }
    }

    /// The link.
    pub fn link(&self) -> &OnLink {
        &self.link
    }

    /// Sends `out`: a broadcast as a frame of its own, a unicast over the UDP socket bound to
    /// the leased address on the link (opened with the lease `out` is from).
    pub fn send(&self, out: &Outgoing) -> io::Result<()> {
        match out.to {
            To::Broadcast => {
                let frame = frame::build(
                    self.link.mac,
                    BROADCAST_MAC,
                    out.from,
                    Ipv4Addr::BROADCAST,
                    &out.bytes,
                );
                sending(&self.waited, || {
                    send(self.fd.as_raw_fd(), &frame, MsgFlags::empty())
                })?;
                Ok(())
            }
            To::Server(server) => {
                let udp = self
                    .udp
                    .as_ref()
                    .filter(|udp| {
                        udp.local_addr()
                            .is_ok_and(|at| at.ip() == std::net::IpAddr::V4(out.from))
                    })
                    .ok_or_else(|| {
                        io::Error::new(
                            io::ErrorKind::AddrNotAvailable,
                            format!("no socket from {} to unicast with", out.from),
                        )
                    })?;
                sending(&self.waited, || {
                    udp.send_to(&out.bytes, SocketAddrV4::new(server, SERVER_PORT))
                })?;
                Ok(())
            }
        }
    }

    /// The next DHCP message queued for the client (frames that are not are skipped), if any.
    pub fn next<'b>(&self, buf: &'b mut [u8; MAX_FRAME]) -> io::Result<Option<&'b [u8]>> {
        loop {
            let len = match recvfrom::<LinkAddr>(self.fd.as_raw_fd(), &mut buf[..]) {
                Ok((_, Some(from))) if from.pkttype() == PACKET_OUTGOING => continue,
                Ok((len, _)) => len,
                Err(nix::errno::Errno::EAGAIN) => return Ok(None),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(errno) => return Err(errno.into()),
            };
            // Re-borrow per frame: a skipped frame does not hold the buffer.
            if buf.get(..len).and_then(frame::parse).is_some() {
                return Ok(buf.get(..len).and_then(frame::parse));
            }
        }
    }

    /// Waits until a frame is queued or `until` passes.
    pub fn wait(&self, until: Instant) -> io::Result<()> {
        wait_readable(self.fd.as_fd(), until, &self.waited)
    }

    /// How long the exchange on these sockets has waited for its server, all calls together:
    /// [`Self::wait`]'s time, and the time a [`Self::send`] was not running on a CPU (see
    /// [`sending`]).
    pub fn waited(&self) -> Duration {
        Duration::from_nanos(self.waited.load(Ordering::Relaxed))
    }
}

/// Runs `send` (a send of this thread's) and adds to `waited` the time the thread was not
/// running meanwhile: its wall time less the CPU time the thread took. A frame sent wakes its
/// receiver (on a one-host LAN, the server) before the call returns, and the scheduler may run
/// that receiver on this thread's CPU at once: the server's handling of the message, and its
/// answer, are then inside the send, and a `poll` after it finds the answer there already. On
/// a 2-CPU VM with dnsmasq, 39 of 85 DISCOVERs' sends took ~260 µs so, each with an involuntary
/// switch of the thread, against ~60 µs. Any other task that takes the CPU then (another
/// thread of this process, the host's load) counts as well: the time is the thread's wait,
/// not its work. Where the thread's CPU time cannot be read, nothing is added.
pub(crate) fn sending<T>(waited: &AtomicU64, send: impl FnOnce() -> T) -> T {
    let (started, cpu) = (Instant::now(), thread_cpu());
    let sent = send();
    if let (Some(before), Some(after)) = (cpu, thread_cpu()) {
        let off = started
            .elapsed()
            .saturating_sub(after.saturating_sub(before));
        waited.fetch_add(nanos(off), Ordering::Relaxed);
    }
    sent
}

/// The CPU time this thread has taken.
fn thread_cpu() -> Option<Duration> {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .ok()
        .map(Duration::from)
}

fn nanos(time: Duration) -> u64 {
    u64::try_from(time.as_nanos()).unwrap_or(u64::MAX)
}

/// Waits until `fd` has something to read or `until` passes, and adds the time to `waited`.
pub(crate) fn wait_readable(
    fd: BorrowedFd<'_>,
    until: Instant,
    waited: &AtomicU64,
) -> io::Result<()> {
    let started = Instant::now();
    let left = until.saturating_duration_since(started);
    let timeout =
        PollTimeout::try_from(left.max(Duration::from_millis(1))).unwrap_or(PollTimeout::MAX);
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    let polled = poll(&mut fds, timeout);
    waited.fetch_add(nanos(started.elapsed()), Ordering::Relaxed);
    match polled {
        Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(()),
        Err(errno) => Err(errno.into()),
    }
}

/// A UDP socket from `from` (port 68, or any port when another client holds 68) on `link`.
fn udp_on(link: &OnLink, from: Ipv4Addr) -> io::Result<UdpSocket> {
    let fd = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    setsockopt(&fd, sockopt::BindToDevice, &OsString::from(&link.name))?;
    let at = |port| SockaddrIn::from(SocketAddrV4::new(from, port));
    if bind(fd.as_raw_fd(), &at(CLIENT_PORT)).is_err() {
        bind(fd.as_raw_fd(), &at(0))?;
    }
    Ok(UdpSocket::from(fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_send_adds_only_its_time_off_the_cpu() {
        let waited = AtomicU64::new(0);
        // Asleep: not running, all of it.
        sending(&waited, || std::thread::sleep(Duration::from_millis(30)));
        let asleep = Duration::from_nanos(waited.swap(0, Ordering::Relaxed));
        assert!(asleep >= Duration::from_millis(29), "{asleep:?}");
        // Running until the thread has taken 30 ms of CPU: at most its wall time less those
        // (however long other threads held the CPUs meanwhile).
        let started = Instant::now();
        let cpu = thread_cpu().expect("this thread's CPU time");
        sending(&waited, || {
            while thread_cpu().is_some_and(|now| now - cpu < Duration::from_millis(30)) {}
        });
        let wall = started.elapsed();
        let off = Duration::from_nanos(waited.load(Ordering::Relaxed));
        assert!(
            off + Duration::from_millis(29) <= wall,
            "{off:?} off the CPU in {wall:?}"
        );
    }
}
