use std::{fs::File, io::Read, time::SystemTime};

use oci_macvlan_ipam::LeaseStore;
use oci_macvlan_netlink_core::Handle;

use crate::{Error, Network, NetworkSpec, Networks, Result, endpoint::resolve_parent};

/// `network create`: validates `spec`, checks the parent in the host namespace (it exists, is not
/// loopback, its MTU allows the network's), and stores the definition.
pub async fn create_network(
    host: &Handle,
    networks: &Networks,
    spec: &NetworkSpec,
) -> Result<Network> {
    let created = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let network = spec.validate(random_id()?, created)?;
    let parent = resolve_parent(host, &network).await?;
    if let (Some(mtu), Some(parent_mtu)) = (network.mtu, parent.mtu) {
        if mtu > parent_mtu {
            return Err(Error::MtuAboveParent {
                mtu,
                parent: parent.name,
                parent_mtu,
            });
        }
    }
    networks.create(&network)?;
    Ok(network)
}

/// `network rm`: refuses while any container holds an address on the network.
pub fn remove_network(networks: &Networks, store: &mut impl LeaseStore, name: &str) -> Result<()> {
    networks.load(name)?;
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
    networks.remove(name)
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
