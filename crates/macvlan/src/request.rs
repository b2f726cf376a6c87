//! An attach as a front door (the hook, `network connect`) asks for it, before [`crate::plan`]
//! resolves it.

use std::{net::IpAddr, path::Path};

use oci_macvlan_netlink_core::MacAddr;

use crate::{ContainerId, ContainerName, Network, Networks};

/// One network a container joins, with its per-network requests.
#[derive(Debug)]
pub struct Attachment<'a> {
    /// The network's definition.
    pub network: &'a Network,
    /// The container's interface name on it.
    pub ifname: String,
    /// Static addresses (at most one per family).
    pub static_ips: Vec<IpAddr>,
    /// A MAC asked for (an annotation, `connect --mac`).
    pub mac: Option<MacAddr>,
}

/// An attach as a front door asks for it: the container, its namespace and its networks.
#[derive(Debug)]
pub struct AttachRequest<'a> {
    /// The container, its id checked where it came in.
    pub container_id: &'a ContainerId,
    /// The container's name, where the front door knows one (a CNI runtime's pod): recorded,
    /// and shown by `network inspect`.
    pub name: Option<ContainerName>,
    /// The container's network namespace.
    pub netns: &'a Path,
    /// The namespace outlives the container (a path from `config.json`), so detach must delete
    /// the links; otherwise the kernel deletes them with the namespace, for free.
    pub persistent_netns: bool,
    /// The container's process (from the OCI state): with its start time, it tells `gc` when
    /// the container is gone.
    pub pid: Option<i32>,
    /// The networks it joins, in order (the first with a default route of a family wins).
    pub attachments: Vec<Attachment<'a>>,
    /// The network definitions (which the caller holds, [`Networks::hold`]): a MAC asked for is
    /// checked against the host links of the networks with host access on its parent.
    pub definitions: &'a Networks,
    /// `network connect`: the container runs already and joins more networks, so a network
    /// its record holds is refused whatever interface it is on. Otherwise (a hook) a network
    /// on the record under the same interface is this very attach run again, and returns the
    /// same endpoints.
    pub connect: bool,
    /// Attached through the CNI plugin: recorded ([`crate::Record::cni`]), so that the
    /// plugin's GC judges this container and never one a hook attached.
    pub cni: bool,
    /// The container's hostname (OCI `hostname`), which a DHCP network's server is told
    /// (option 12) so that its lease table names the container.
    pub hostname: Option<&'a str>,
    /// Told of each network whose DHCP lease is being taken, the container's lock held: once
    /// its REQUEST is out ([`LeaseStep::Requested`], on a helper thread, while the server
    /// answers), then once the exchange is over ([`LeaseStep::Exchanged`], answered or not;
    /// always after the first, on the attach's thread). A front door that starts the lease's
    /// renewer makes it ready at the first and answers with it: the packet socket's closer
    /// child starts it once it has closed the socket, a child the attach makes anyway (see
    /// `source::dhcp_early`). The second says whether it will (`carried`); where it will not
    /// (no closer could be made), the front door starts it itself then. A lease that took no
    /// exchange (kept from an earlier run) is not told.
    pub on_lease: Option<OnLease<'a>>,
}

/// Where a network's DHCP lease is (see [`AttachRequest::on_lease`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseStep {
    /// Its REQUEST is out; the server answers. The answer: a program to start once the
    /// exchange is over (the lease's renewer), if any.
    Requested,
    /// The exchange is over; `carried`: the program given at [`LeaseStep::Requested`] is
    /// started by the packet socket's closer child (the front door does not start it). The
    /// answer is not read.
    Exchanged {
        /// Whether the closer child starts the program given at `Requested`.
        carried: bool,
    },
}

/// What [`AttachRequest::on_lease`] calls with a network's name (see [`LeaseStep`] for what it
/// answers).
#[derive(Clone, Copy)]
pub struct OnLease<'a>(
    pub &'a (dyn Fn(&str, LeaseStep) -> Option<oci_macvlan_child::Start> + Sync),
);

impl std::fmt::Debug for OnLease<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnLease")
    }
}
