//! What an act changes on the link and in the store: a new lease applied (the store first,
//! then the address and, for v4, its routes), an old one taken off, a lease's address given
//! its new lifetime. Both families' acts use it (`super::v6` for DHCPv6).

use std::{net::IpAddr, time::Duration, time::SystemTime};

use ipnetwork::IpNetwork;
use oci_macvlan_dhcp::Lease as DhcpLease;
use oci_macvlan_ipam::{Lease, LeaseStore, LeaseStoreExt, Owner};
use oci_macvlan_netlink_core::{Errno, Handle, Link, Netns};

use super::DhcpRenewal;
use crate::{
    Access, Error, Result, StorePolicy,
    endpoint::real::Real,
    kernel::Kernel,
    record::RecordedEndpoint,
    source::dhcp::acquired,
    wire::{Route, source_routes_among},
};

impl<P: StorePolicy> DhcpRenewal<P> {
    fn owner(&self, endpoint: &RecordedEndpoint) -> Owner {
        Owner {
            container_id: self.container_id.to_string(),
            ifname: endpoint.ifname.clone(),
        }
    }

    fn store(&self) -> Result<Box<dyn LeaseStore>> {
        let network = self.networks.load(&self.network)?;
        self.stores
            .networks_store(&[&network], Access::Write, false)
            .map_err(|e| self.failed(format!("its lease store: {e}")))
    }

    /// The address `old` off `link` (a v4 one's routes go with it: the kernel drops the
    /// routes of a link's last IPv4 address) and out of the store; the same address on another
    /// link of the container (another network's) stays. An address the kernel took off already
    /// (its lifetime ran out) is not an error.
    pub(super) async fn unbind(
        &self,
        container: &Handle,
        link: &Link,
        endpoint: &RecordedEndpoint,
        old: IpAddr,
    ) -> Result<()> {
        container
            .remove_addresses_on(link, &[old])
            .await
            .map_err(Error::Netlink)?;
        self.store()?
            .release_ips(&self.owner(endpoint), &[old])
            .map_err(Error::store)?;
        Ok(())
    }

    /// The address of ours of the family `v4` (else v6) the link still has, if any: one the
    /// store holds for the endpoint on this network (an act puts a lease in the store before
    /// its address on the link), never one someone else put there.
    pub(super) async fn ours_on_link(
        &self,
        container: &Handle,
        link: &Link,
        endpoint: &RecordedEndpoint,
        v4: bool,
    ) -> Result<Option<IpAddr>> {
        let on_link = container
            .global_addresses(link)
            .await
            .map_err(Error::Netlink)?;
        let family = |ip: &IpAddr| ip.is_ipv4() == v4;
        if !on_link.iter().any(family) {
            return Ok(None);
        }
        let owner = self.owner(endpoint);
        let held = self
            .store()?
            .read(|view| view.owner_leases(&self.network, &owner))
            .map_err(Error::store)?;
        Ok(on_link
            .into_iter()
            .find(|ip| family(ip) && held.iter().any(|lease| lease.ip == *ip)))
    }

    /// The link's address `ip/prefix` (the same as before) given the lease's new `lifetime`,
    /// so that the kernel keeps it until the new expiry and no longer.
    pub(super) async fn extend(
        &self,
        container: &Handle,
        link: &Link,
        (ip, prefix): (IpAddr, u8),
        lifetime: Duration,
    ) -> Result<()> {
        container
            .add_address_for(link, ip, prefix, Some(lifetime))
            .await
            .map_err(|source| self.configure(link, source))
    }

    fn configure(&self, link: &Link, source: oci_macvlan_netlink_core::Error) -> Error {
        Error::Configure {
            network: self.network.clone(),
            ifname: link.name.clone(),
            source,
        }
    }

    /// A move from `old` that failed (`err`): when the new address was refused as someone
    /// else's (a refusal that changed nothing), the old one, which the server put it in the
    /// place of, leaves the link and the store too, and the renewal to record says so
    /// ([`withdrawn`]); any other failure is the act's error, the old address kept.
    pub(super) async fn drop_withdrawn(
        &self,
        container: &Handle,
        link: &Link,
        endpoint: &RecordedEndpoint,
        old: IpAddr,
        err: Error,
    ) -> Result<crate::record::Renewal> {
        if !crate::source::dhcp_decline::someone_elses(&err) {
            return Err(err);
        }
        self.unbind(container, link, endpoint, old).await?;
        Ok(withdrawn(&err))
    }

    /// Moves the link from `old` (if it still has it) to `address` with `lifetime`: the new
    /// address checked as at attach (not the host's, a router's or a neighbour's), the store
    /// first (refused when another container holds it here), then the link's address.
    pub(super) async fn move_to(
        &self,
        container: &Handle,
        link: &Link,
        endpoint: &RecordedEndpoint,
        old: Option<IpAddr>,
        (address, lifetime): (IpNetwork, Duration),
    ) -> Result<()> {
        let ip = address.ip();
        let owner = self.owner(endpoint);
        let host = Handle::current().map_err(Error::Netlink)?;
        let network = self.networks.load(&self.network)?;
        crate::occupied::check_leased(&host, &network, None, &[ip]).await?;
        let stored = Lease {
            ip,
            subnet: IpNetwork::new(address.network(), address.prefix()).unwrap_or(address),
            network: self.network.clone(),
            owner: owner.clone(),
            host: None,
        };
        let mut store = self.store()?;
        let held = store
            .transaction(|txn| {
                match txn.lease_of(ip)? {
                    Some(other) if other.network != stored.network || other.owner != owner => {
                        return Ok(Some(other));
                    }
                    Some(_) => {}
                    None => txn.insert(&stored)?,
                }
                Ok(None)
            })
            .map_err(Error::store)?;
        if let Some(other) = held {
            return Err(Error::Dhcp(crate::DhcpError::AddressHeld {
                network: self.network.clone(),
                ip,
                holder: format!("{} ({})", other.owner.container_id, other.network),
            }));
        }
        if let Some(old) = old.filter(|old| *old != ip) {
            store.release_ips(&owner, &[old]).map_err(Error::store)?;
        }
        if let Some(old) = old {
            container
                .remove_addresses_on(link, &[old])
                .await
                .map_err(Error::Netlink)?;
        }
        exists_ok(
            container
                .add_address_for(link, ip, address.prefix(), Some(lifetime))
                .await,
        )
        .map_err(|source| self.configure(link, source))
    }

    /// Moves the link from `old` (if it still has it) to the v4 `lease`: [`Self::move_to`],
    /// then its routes.
    pub(super) async fn apply(
        &self,
        netns: &Netns,
        container: &Handle,
        link: &Link,
        endpoint: &RecordedEndpoint,
        old: Option<IpAddr>,
        (lease, others): (&DhcpLease, &[IpNetwork]),
    ) -> Result<()> {
        let ip = IpAddr::V4(lease.address);
        let address = IpNetwork::new(ip, lease.prefix)
            .map_err(|_| self.failed(format!("prefix {} of {ip}", lease.prefix)))?;
        let lifetime = lease.left(SystemTime::now());
        self.move_to(container, link, endpoint, old, (address, lifetime))
            .await?;
        let host = Handle::current().map_err(Error::Netlink)?;
        let kernel = Real {
            host: &host,
            container,
            netns,
        };
        let got = acquired(lease, address);
        // The link's routes went with its old address; a default route another network of
        // the container holds stays its own (the kernel says EEXIST: the first one wins), and
        // then the lease's routes take no short cut past it, nor into another endpoint's subnet
        // (`wire::source_routes_among`, as at attach).
        let mut holds_default = false;
        if let Some(gateway) = got.gateway {
            match kernel.add_route(link, &Route::DefaultVia(gateway)).await {
                Ok(()) => holds_default = true,
                Err(err) if err.errno() == Some(Errno::EEXIST) => {}
                Err(err) => return Err(self.configure(link, err)),
            }
        }
        for route in source_routes_among(&got.routes, holds_default, others) {
            exists_ok(kernel.add_route(link, &route).await)
                .map_err(|err| self.configure(link, err))?;
        }
        Ok(())
    }
}

fn exists_ok(result: oci_macvlan_netlink_core::Result<()>) -> oci_macvlan_netlink_core::Result<()> {
    match result {
        Err(err) if err.errno() == Some(Errno::EEXIST) => Ok(()),
        other => other,
    }
}

/// A lease whose server put another address in its place that the renewer did not take
/// (`err`): nothing held, discovery again no sooner than [`crate::source::dhcp::RETRY_FLOOR`]
/// (the same answer, a refused address, may come again).
pub(super) fn withdrawn(err: &Error) -> crate::record::Renewal {
    crate::record::Renewal {
        unbound: true,
        failures: 1,
        retry_at: Some(SystemTime::now() + crate::source::dhcp::RETRY_FLOOR),
        last_error: Some(crate::one_line(err)),
        ..crate::record::Renewal::default()
    }
}
