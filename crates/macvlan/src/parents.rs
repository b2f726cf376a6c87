//! A network's parent in the host namespace: found, or made where oci-macvlan owns it, before
//! any container link goes on it; and who holds a parent that takes one container alone.

use oci_macvlan_ipam::LeaseStore;
use oci_macvlan_netlink_core::{Handle, Link};
use oci_macvlan_vlan::Parent;

use crate::{Error, Network, ParentLink, Result};

/// The parents of `networks` in the host namespace, by name (never a dump of all links). All
/// are looked up before any is made: a parent oci-macvlan owns (an 802.1q link, a dummy) is
/// re-created when missing (after a reboot), so containers start without any boot-time step,
/// but only once every other parent is found or may be made too (an 802.1q link's base is
/// there): a parent missing for the second network makes nothing for the first.
pub(crate) async fn resolve_parents(host: &Handle, networks: &[&Network]) -> Result<Vec<Link>> {
    let mut found: Vec<Option<Link>> = Vec::with_capacity(networks.len());
    for net in networks {
        found.push(find_parent(host, net).await?);
    }
    let mut parents = Vec::with_capacity(networks.len());
    for (net, link) in networks.iter().zip(found) {
        let link = match link {
            Some(link) => link,
            None => {
                oci_macvlan_vlan::ensure(host, &net.parent(), true)
                    .await
                    .map_err(|err| parent_error(net, err))?
                    .link
            }
        };
        parents.push(link);
    }
    Ok(parents)
}

/// The parent of `net` as it is: `Some` link when it is there, `None` when it is missing but
/// an attach would make it (an 802.1q link whose base is there, a dummy), an error when it is
/// missing and may not be made, or is not what the network promises (makes nothing).
pub(crate) async fn find_parent(host: &Handle, net: &Network) -> Result<Option<Link>> {
    let parent = net.parent();
    match oci_macvlan_vlan::ensure(host, &parent, false).await {
        Ok(ensured) => Ok(Some(ensured.link)),
        Err(err) if err.is_not_found() && net.parent_link != ParentLink::Existing => {
            if let Parent::Vlan { name, base, .. } = &parent
                && host
                    .link_by_name(base)
                    .await
                    .map_err(Error::Netlink)?
                    .is_none()
            {
                return Err(Error::ParentLink(
                    oci_macvlan_vlan::LinkError::BaseNotFound {
                        name: name.clone(),
                        base: base.clone(),
                    },
                ));
            }
            Ok(None)
        }
        Err(err) => Err(Error::ParentLink(err)),
    }
}

/// A parent of `net` that could not be found or made: a network without `-o parent` whose
/// dummy link the kernel cannot make says so, and what the dummy is for.
pub(crate) fn parent_error(net: &Network, err: oci_macvlan_vlan::LinkError) -> Error {
    match err {
        oci_macvlan_vlan::LinkError::Unsupported { .. } if net.parent_link == ParentLink::Dummy => {
            Error::NoDummy {
                network: net.name.clone(),
                source: err,
            }
        }
        err => Error::ParentLink(err),
    }
}

/// A parent that takes one container link (macvlan's passthru): a second container is refused,
/// naming who has it, before the kernel answers a bare `EINVAL`.
pub(crate) fn check_parent_free(
    store: &mut dyn LeaseStore,
    net: &Network,
    mode: &'static str,
    container_id: &str,
) -> Result<()> {
    let holders = parent_holders(store, net, container_id)?;
    if holders.is_empty() {
        return Ok(());
    }
    Err(Error::ParentHeldAlone {
        network: net.name.clone(),
        parent: net.parent.to_string(),
        mode,
        holder: holders,
    })
}

/// The `EINVAL` the kernel gives a second link on a parent that takes one, said plainly.
pub(crate) fn parent_busy(
    store: &mut dyn LeaseStore,
    net: &Network,
    mode: &'static str,
    container_id: &str,
) -> Error {
    let holder = parent_holders(store, net, container_id)
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "a link that is not one of oci-macvlan's containers".to_owned());
    Error::ParentHeldAlone {
        network: net.name.clone(),
        parent: net.parent.to_string(),
        mode,
        holder,
    }
}

fn parent_holders(store: &mut dyn LeaseStore, net: &Network, container_id: &str) -> Result<String> {
    let mut holders: Vec<String> = store
        .network_leases(&net.name)
        .map_err(Error::store)?
        .into_iter()
        .filter(|l| l.owner.container_id != container_id)
        .map(|l| format!("container {}", l.owner.container_id))
        .collect();
    holders.dedup();
    Ok(holders.join(", "))
}
