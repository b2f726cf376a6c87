use std::{fs::File, io::Read, time::SystemTime};

use oci_macvlan_ipam::LeaseStore;
use oci_macvlan_netlink_core::{Handle, Link};
use oci_macvlan_vlan::{self as vlan, Parent};

use crate::{
    Error, Network, NetworkSpec, Networks, ParentLink, Result, StateError, address_space,
    host_access,
};

/// `network create`: validates `spec`; checks the parent may be shared with the networks already
/// on it (another driver's, or a passthru one, may not: [`check_parent`]); finds
/// the parent in the host namespace or creates the one the network asks for (an 802.1q
/// `base.vid`, or the dummy of a network without parent); checks the MTU; makes the host link
/// of a network with `-o host_access` (refusing addresses the host or a container has already,
/// `store` says which are leased); stores the definition. A parent or host link this call
/// created is deleted again if anything after it fails. The host's own addresses that the
/// network could hand out are reserved (`occupied::reserve_host_addresses`): the second value
/// is the warning line that says so, if any.
pub async fn create_network(
    host: &Handle,
    networks: &Networks,
    store: &mut dyn LeaseStore,
    spec: &NetworkSpec,
) -> Result<(Network, Option<String>)> {
    let created = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let mut network = spec.validate(random_id()?, created)?;
    let _lock = networks.lock()?;
    if networks.exists(&network.name)? {
        return Err(Error::NetworkExists(network.name));
    }
    let others = networks.list()?;
    check_parent(&network, &others)?;
    address_space::check_create(spec.backends, &network, &others, &networks.removed()?)?;
    let parent = network.parent();
    let ensured = vlan::ensure(
        host,
        &parent,
        matches!(parent, Parent::Vlan { .. } | Parent::Dummy(_)),
    )
    .await
    .map_err(|err| crate::parents::parent_error(&network, err))?;
    // An alternative name finds the link too, but every check by parent (drivers sharing it,
    // the host link's reserved MAC) compares names: the definition names the link itself.
    if ensured.link.name != network.parent.as_str() {
        return Err(Error::ParentAltName {
            given: network.parent.as_str().to_owned(),
            name: ensured.link.name.clone(),
        });
    }
    if network.parent_link == ParentLink::Existing && ensured.ours {
        network.parent_link = ParentLink::Owned;
    }
    let mut host_link = None;
    let mut stored = check_mtu(&network, &ensured.link);
    let mut warning = None;
    if stored.is_ok() {
        stored = crate::occupied::reserve_host_addresses(host, &mut network)
            .await
            .map(|said| warning = said);
    }
    // A shared network's host access addresses are leased before the link announces them.
    let mut taken = false;
    if stored.is_ok() {
        stored = host_access::shared::take(store, &network).map(|()| taken = true);
    }
    if stored.is_ok() {
        stored = host_access::check_taken(host, &network, &others, store).await;
    }
    if stored.is_ok() {
        stored = crate::occupied::check_host_access(host, &network, &ensured.link).await;
    }
    if stored.is_ok() {
        stored = host_access::create(host, &network, &ensured.link)
            .await
            .map(|made| host_link = made);
    }
    let stored = stored.and_then(|()| networks.create(&network));
    if let Err(err) = stored {
        if let Some(link) = host_link {
            let _ = host.delete_link(&link).await;
        }
        if taken {
            let _ = host_access::shared::release(store.as_set(), &network);
        }
        if ensured.created {
            // Nothing half-done: the link this call made goes with the failed definition. A
            // failure to delete it changes nothing for the caller, whose create failed anyway.
            let _ = vlan::remove(host, &parent).await;
        }
        return Err(err);
    }
    Ok((network, warning))
}

fn check_mtu(network: &Network, parent: &Link) -> Result<()> {
    match (network.mtu, parent.mtu) {
        (Some(mtu), Some(parent_mtu)) if mtu > parent_mtu => Err(Error::MtuAboveParent {
            mtu,
            parent: parent.name.clone(),
            parent_mtu,
        }),
        _ => Ok(()),
    }
}

/// Whether `network` may use its parent beside the networks already on it. The kernel gives a
/// parent's children one receive handler, so the networks of drivers with different ones (a
/// macvlan and an ipvlan) are refused here, naming them, rather than failing the first container
/// with `EBUSY`. Among networks of one handler, the driver decides (macvlan's passthru).
fn check_parent(network: &Network, others: &[Network]) -> Result<()> {
    let driver = network.driver();
    let (same, other): (Vec<&Network>, Vec<&Network>) = others
        .iter()
        .filter(|o| o.parent == network.parent)
        .partition(|o| o.driver().parent_handler() == driver.parent_handler());
    if let Some(first) = other.first() {
        return Err(Error::ParentOfOtherDriver {
            parent: network.parent.to_string(),
            driver: driver.name(),
            other_driver: first.driver().name(),
            networks: other
                .iter()
                .map(|o| o.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let same: Vec<crate::driver::Sharer<'_>> = same
        .iter()
        .map(|o| crate::driver::Sharer {
            network: &o.name,
            options: &o.driver,
        })
        .collect();
    driver.check_shared_parent(&network.parent.to_string(), &same)
}

/// What `network rm` did beyond removing the definition.
#[derive(Debug, Default)]
pub struct Removed {
    /// Whether the network's parent (ours, and used by no other network) was deleted.
    pub parent_deleted: bool,
    /// With `force`: the network's store did not answer (its error, one line), so what it
    /// holds of the network was left there: its containers' leases (which `gc` takes back
    /// through their records) and this host's host access leases (which `gc` releases).
    pub unreached: Option<String>,
}

/// `network rm`: refuses while any container of this host holds an address on the network
/// (a host's own host access lease is not a container's: it is released). Then deletes the
/// parent if oci-macvlan owns it and no other network is defined on it: the kernel deletes
/// every macvlan of a link that goes, so a shared parent stays.
///
/// With `force` (`rm -f`), a store that does not answer does not stop it: the definition and
/// the host link go, and what the store holds stays, said in [`Removed::unreached`]. The
/// definition is kept among the removed ones then ([`Networks::removed`]), which `network
/// create` does not overlap and `gc` forgets once nothing of the network is left.
pub async fn remove_network(
    host: &Handle,
    networks: &Networks,
    store: &mut dyn LeaseStore,
    name: &str,
    force: bool,
) -> Result<Removed> {
    let _lock = networks.lock()?;
    let network = networks.load(name)?;
    let mut removed = Removed::default();
    let unreached = |err: oci_macvlan_ipam::Error| {
        if force && err.is_unavailable() {
            Ok(crate::one_line(&err))
        } else {
            Err(Error::store(err))
        }
    };
    match store.network_leases(name) {
        Ok(mut leases) => {
            // Another host's containers on a shared store keep that host's definition in use,
            // not this.
            leases.retain(|l| store.is_ours(l) && !host_access::shared::is_host_access(l));
            if !leases.is_empty() {
                let endpoints = leases
                    .iter()
                    .map(|l| format!("{} {} {}", l.owner.container_id, l.owner.ifname, l.ip))
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(Error::NetworkInUse {
                    name: name.to_owned(),
                    endpoints,
                });
            }
        }
        Err(err) => removed.unreached = Some(unreached(err)?),
    }
    // The link first: an address is released once nothing here answers for it.
    host_access::remove(host, &network).await?;
    if removed.unreached.is_none()
        && let Err(err) = host_access::shared::release(store.as_set(), &network)
    {
        match err {
            Error::Store(err) => removed.unreached = Some(unreached(*err)?),
            err => return Err(err),
        }
    }
    // What a store that did not answer holds of the network keeps its subnets and name taken
    // until `gc` finds nothing of it left: kept before the definition goes, so that a create
    // (which waits for this lock) always sees one or the other.
    if removed.unreached.is_some() {
        networks.keep_removed(&network)?;
    }
    networks.remove(name)?;
    if network.parent_link == ParentLink::Existing
        || networks.list()?.iter().any(|o| o.parent == network.parent)
    {
        return Ok(removed);
    }
    removed.parent_deleted = vlan::remove(host, &network.parent())
        .await
        .map_err(Error::ParentLink)?;
    Ok(removed)
}

/// A 64-hex-digit id, as Docker's network ids look.
fn random_id() -> Result<String> {
    let mut bytes = [0u8; 32];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(StateError::Random)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network(name: &str, args: &[&str]) -> Network {
        let mut spec = NetworkSpec {
            name: name.to_owned(),
            driver: "macvlan".to_owned(),
            subnets: vec!["10.0.0.0/24".to_owned()],
            ..Default::default()
        };
        for arg in args {
            match arg.strip_prefix("-d ") {
                Some(driver) => spec.driver = driver.to_owned(),
                None => spec.options.push((*arg).to_owned()),
            }
        }
        spec.validate(name.to_owned(), "now".to_owned())
            .expect("a valid spec")
    }

    /// Who may join a parent that other networks use: each case is the networks already on
    /// `eth0` (or elsewhere), then the one created, and the answer with its exit class.
    #[test]
    fn a_parent_is_shared_only_by_networks_that_can_share_it() {
        let bridge = &["parent=eth0"][..];
        let passthru = &["parent=eth0", "macvlan_mode=passthru"][..];
        let ipvlan = &["-d ipvlan", "parent=eth0"][..];
        let ipvlan_l3 = &["-d ipvlan", "parent=eth0", "ipvlan_mode=l3"][..];
        let elsewhere = &["-d ipvlan", "parent=eth1"][..];
        let cases: &[(&[&[&str]], &[&str])] = &[
            (&[bridge], bridge),
            (&[bridge], passthru),
            (&[passthru], bridge),
            (&[bridge], ipvlan),
            (&[bridge, bridge], ipvlan_l3),
            (&[ipvlan], bridge),
            (&[ipvlan], passthru),
            (&[ipvlan], ipvlan_l3),
            (&[ipvlan], ipvlan),
            (
                &[ipvlan],
                &["-d ipvlan", "parent=eth0", "ipvlan_flag=private"],
            ),
            (&[elsewhere], bridge),
        ];
        let mut report = Vec::new();
        for (existing, new) in cases {
            let others: Vec<Network> = existing
                .iter()
                .enumerate()
                .map(|(i, args)| network(&format!("old{i}"), args))
                .collect();
            let answer = match check_parent(&network("new", new), &others) {
                Ok(()) => "ok".to_owned(),
                Err(err) => format!("{:?}: {}", err.kind(), crate::one_line(&err)),
            };
            report.push(format!("{existing:?} + {new:?}\n  -> {answer}"));
        }
        insta::assert_snapshot!(report.join("\n"));
    }
}
