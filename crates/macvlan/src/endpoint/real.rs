//! [`Kernel`] over netlink: a handle on the host's namespace, one on the container's, and the
//! container's namespace itself (for its sysctls and as the target of a new link).

use std::{net::IpAddr, time::Duration};

use oci_macvlan_ipam::LeaseStore;
use oci_macvlan_netlink_core::{Handle, Link, Netns, NetnsId, NewChild, Sysctl};

use crate::{
    Network, Records, Result,
    kernel::{ChildSpec, Host, Kernel, Nl},
    wire::Route,
};

/// The real kernel, for one attach.
#[derive(Debug)]
pub(crate) struct Real<'a> {
    pub(crate) host: &'a Handle,
    pub(crate) container: &'a Handle,
    pub(crate) netns: &'a Netns,
}

impl Host for Real<'_> {
    async fn host_link_by_name(&self, name: &str) -> Nl<Option<Link>> {
        self.host.link_by_name(name).await
    }

    async fn delete_host_route(&self, link: &Link, ip: IpAddr) -> Nl<()> {
        self.host.delete_host_route(link, ip).await
    }
}

impl Kernel for Real<'_> {
    fn opened_netns(&self) -> Option<&Netns> {
        Some(self.netns)
    }

    async fn parents(&self, networks: &[&Network]) -> Result<Vec<Link>> {
        crate::parents::resolve_parents(self.host, networks).await
    }

    async fn check_static(
        &self,
        store: &mut dyn LeaseStore,
        net: &Network,
        parent: &Link,
        ips: &[IpAddr],
    ) -> Result<()> {
        crate::host_access::check_static(self.host, store, net, parent, ips).await
    }

    async fn host_link(
        &self,
        net: &Network,
        parent: &Link,
        store: &mut dyn LeaseStore,
        records: &Records,
    ) -> Result<Link> {
        crate::host_access::link_for_attach(self.host, net, parent, store, records).await
    }

    async fn add_host_route(&self, link: &Link, ip: IpAddr) -> Nl<()> {
        self.host.add_host_route(link, ip).await
    }

    async fn create_child(&self, spec: &ChildSpec<'_>) -> Nl<()> {
        self.host
            .create_child(&NewChild {
                parent: spec.parent,
                name: spec.name,
                mac: spec.mac,
                mtu: spec.mtu,
                target: self.netns,
                kind: spec.kind,
            })
            .await
    }

    fn container_netns(&self) -> Nl<NetnsId> {
        self.netns.identity()
    }

    async fn link_by_name(&self, name: &str) -> Nl<Option<Link>> {
        self.container.link_by_name(name).await
    }

    async fn rename_link(&self, link: &Link, to: &str) -> Nl<()> {
        self.container.rename_link(link, to).await
    }

    async fn delete_link(&self, link: &Link) -> Nl<()> {
        self.container.delete_link(link).await
    }

    async fn add_address(
        &self,
        link: &Link,
        ip: IpAddr,
        prefix: u8,
        lifetime: Option<Duration>,
    ) -> Nl<()> {
        self.container
            .add_address_for(link, ip, prefix, lifetime)
            .await
    }

    async fn remove_addresses(&self, link: &Link, ips: &[IpAddr]) -> Nl<()> {
        self.container
            .remove_addresses_on(link, ips)
            .await
            .map(drop)
    }

    fn write_sysctls(&self, sysctls: &[Sysctl<'_>]) -> Nl<()> {
        self.netns.write_sysctls(sysctls)
    }

    async fn set_link_up(&self, link: &Link) -> Nl<()> {
        self.container.set_link_up(link).await
    }

    async fn set_link_up_by_name(&self, name: &str) -> Nl<()> {
        self.container.set_link_up_by_name(name).await
    }

    async fn add_route(&self, link: &Link, route: &Route) -> Nl<()> {
        let container = self.container;
        match *route {
            Route::DefaultVia(gateway) => container.add_default_route(link, gateway).await,
            Route::DefaultOnLink { ipv6 } => container.add_default_route_on_link(link, ipv6).await,
            Route::OnLink(subnet) => {
                container
                    .add_route_on_link(link, subnet.network(), subnet.prefix())
                    .await
            }
            Route::Via {
                destination,
                gateway,
            } => {
                container
                    .add_route_via(link, destination.network(), destination.prefix(), gateway)
                    .await
            }
        }
    }
}
