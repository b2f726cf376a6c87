use std::{fs::File, io::Read, time::SystemTime};

use oci_macvlan_ipam::LeaseStore;
use oci_macvlan_netlink_core::{Handle, Link};
use oci_macvlan_vlan::{self as vlan, Parent};

use crate::{Error, Mode, Network, NetworkSpec, Networks, ParentLink, Result};

/// `network create`: validates `spec`; checks that no passthru network shares the parent; finds
/// the parent in the host namespace or creates the one the network asks for (an 802.1q
/// `base.vid`, or the dummy of a network without parent); checks the MTU; stores the definition.
/// A parent this call created is deleted again if anything after it fails.
pub async fn create_network(
    host: &Handle,
    networks: &Networks,
    spec: &NetworkSpec,
) -> Result<Network> {
    let created = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let mut network = spec.validate(random_id()?, created)?;
    let _lock = networks.lock()?;
    if networks.exists(&network.name)? {
        return Err(Error::NetworkExists(network.name));
    }
    check_passthru(&network, &networks.list()?)?;
    let parent = network.parent()?;
    let ensured = vlan::ensure(
        host,
        &parent,
        matches!(parent, Parent::Vlan { .. } | Parent::Dummy(_)),
    )
    .await
    .map_err(Error::ParentLink)?;
    if network.parent_link == ParentLink::Existing && ensured.ours {
        network.parent_link = ParentLink::Owned;
    }
    let stored = check_mtu(&network, &ensured.link).and_then(|()| networks.create(&network));
    if let Err(err) = stored {
        if ensured.created {
            // Nothing half-done: the link this call made goes with the failed definition. A
            // failure to delete it changes nothing for the caller, whose create failed anyway.
            let _ = vlan::remove(host, &parent).await;
        }
        return Err(err);
    }
    Ok(network)
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

/// A passthru network has its parent to itself (Docker's rule and wording, both ways).
fn check_passthru(network: &Network, others: &[Network]) -> Result<()> {
    let Some(other) = others.iter().find(|o| o.parent == network.parent) else {
        return Ok(());
    };
    if network.mode == Mode::Passthru {
        return Err(Error::PassthruTaken {
            network: other.name.clone(),
            parent: network.parent.clone(),
        });
    }
    if let Some(passthru) = others
        .iter()
        .find(|o| o.parent == network.parent && o.mode == Mode::Passthru)
    {
        return Err(Error::ParentInPassthru {
            network: passthru.name.clone(),
            parent: network.parent.clone(),
        });
    }
    Ok(())
}

/// `network rm`: refuses while any container holds an address on the network. Then deletes the
/// parent if oci-macvlan owns it and no other network is defined on it: the kernel deletes every
/// macvlan of a link that goes, so a shared parent stays. Returns whether a parent was deleted.
pub async fn remove_network(
    host: &Handle,
    networks: &Networks,
    store: &mut impl LeaseStore,
    name: &str,
) -> Result<bool> {
    let _lock = networks.lock()?;
    let network = networks.load(name)?;
    let leases = store.network_leases(name).map_err(Error::store)?;
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
    networks.remove(name)?;
    if network.parent_link == ParentLink::Existing
        || networks.list()?.iter().any(|o| o.parent == network.parent)
    {
        return Ok(false);
    }
    vlan::remove(host, &network.parent()?)
        .await
        .map_err(Error::ParentLink)
}

/// A 64-hex-digit id, as Docker's network ids look.
fn random_id() -> Result<String> {
    let mut bytes = [0u8; 32];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|source| Error::ReadNetwork {
            path: "/dev/urandom".into(),
            source,
        })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
