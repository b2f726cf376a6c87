//! The kernel as one attach sees it: the host's namespace (where the parents are and the host
//! link of a network with host access) and the container's (where its links are made). Apply
//! and its undo talk to the kernel only through [`Kernel`]: `endpoint/real.rs` sends each
//! operation to the kernel over netlink (`oci_macvlan_netlink_core`), and a recording fake (`fake.rs`, in
//! tier-1 tests) keeps links, addresses and routes in memory, so what apply sent can be
//! compared with what the plan and [`crate::wire`] say, without root.
//!
//! The operations are those apply needs, named as netlink-core names them. Three of them are
//! whole steps of the host's side that only read the host and the LAN (or restore what is
//! the network's): finding or making the parents, the LAN check of static addresses, and the
//! network's host link; the fake answers them from its state.

use std::{net::IpAddr, time::Duration};

use oci_macvlan_ipam::LeaseStore;
use oci_macvlan_netlink_core::{ChildKind, Link, MacAddr, Netns, NetnsId, Sysctl};

use crate::{Network, Records, Result, wire::Route};

mod current;
#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
mod tests;

pub(crate) use current::CurrentHost;

/// A container link to make on a parent, straight into the container's namespace.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChildSpec<'a> {
    pub(crate) parent: &'a Link,
    pub(crate) name: &'a str,
    /// `None`: the kernel's (the parent's, for the kinds that take it).
    pub(crate) mac: Option<MacAddr>,
    pub(crate) mtu: Option<u32>,
    pub(crate) kind: ChildKind<'a>,
}

/// A netlink answer.
pub(crate) type Nl<T> = oci_macvlan_netlink_core::Result<T>;

/// What detach and disconnect ask of the host's namespace: the host's routes to a container's
/// addresses through a network's host link.
pub(crate) trait Host {
    /// A link of the host's namespace, by name.
    async fn host_link_by_name(&self, name: &str) -> Nl<Option<Link>>;

    /// Deletes the host route to `ip` through `link` (none there is not an error).
    async fn delete_host_route(&self, link: &Link, ip: IpAddr) -> Nl<()>;
}

/// What apply and its undo ask of the kernel.
pub(crate) trait Kernel: Host {
    // The host's side.

    /// The parents of `networks`, found or made (see `parents::resolve_parents`).
    async fn parents(&self, networks: &[&Network]) -> Result<Vec<Link>>;

    /// Refuses static addresses `ips` of `net` that the LAN holds (see
    /// `occupied::check_static`).
    async fn check_static(
        &self,
        store: &mut dyn LeaseStore,
        net: &Network,
        parent: &Link,
        ips: &[IpAddr],
    ) -> Result<()>;

    /// The network's host link, found or made again (see `host_access::link_for_attach`).
    async fn host_link(
        &self,
        net: &Network,
        parent: &Link,
        store: &mut dyn LeaseStore,
        records: &Records,
    ) -> Result<Link>;

    /// `ip route add IP/32 dev LINK` in the host's namespace.
    async fn add_host_route(&self, link: &Link, ip: IpAddr) -> Nl<()>;

    /// Makes a child of `spec.parent` straight in the container's namespace. `EEXIST` when the
    /// name is taken.
    async fn create_child(&self, spec: &ChildSpec<'_>) -> Nl<()>;

    // The container's side.

    /// The container's namespace.
    fn container_netns(&self) -> Nl<NetnsId>;

    /// The container's namespace as this attach opened it, if it is a real one: a source that
    /// runs on the link opens its sockets there without opening the namespace again.
    fn opened_netns(&self) -> Option<&Netns> {
        None
    }

    /// A link of the container's namespace, by name.
    async fn link_by_name(&self, name: &str) -> Nl<Option<Link>>;

    /// Renames a link of the container's namespace.
    async fn rename_link(&self, link: &Link, to: &str) -> Nl<()>;

    /// Deletes a link of the container's namespace (gone already is not an error).
    async fn delete_link(&self, link: &Link) -> Nl<()>;

    /// Adds an address to a link of the container's namespace; with `lifetime` (a lease's
    /// remaining time) the kernel takes it off when it runs out, and an address the link has
    /// already gets the new lifetime.
    async fn add_address(
        &self,
        link: &Link,
        ip: IpAddr,
        prefix: u8,
        lifetime: Option<Duration>,
    ) -> Nl<()>;

    /// Removes `ips` from `link` (one it has not is no error; the same address on another
    /// link stays): the addresses of a lease a new one replaced on an adopted link.
    async fn remove_addresses(&self, link: &Link, ips: &[IpAddr]) -> Nl<()>;

    /// Writes sysctls in the container's namespace.
    fn write_sysctls(&self, sysctls: &[Sysctl<'_>]) -> Nl<()>;

    /// Sets a link of the container's namespace up.
    async fn set_link_up(&self, link: &Link) -> Nl<()>;

    /// Sets the link named `name` up (the loopback).
    async fn set_link_up_by_name(&self, name: &str) -> Nl<()>;

    /// Adds a route on a link of the container's namespace.
    async fn add_route(&self, link: &Link, route: &Route) -> Nl<()>;
}
