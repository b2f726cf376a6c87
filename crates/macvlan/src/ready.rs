//! Whether an attach to a network could be served now (CNI's STATUS): its definition reads,
//! its parent is there or an attach would make it, and its lease store answers. Read only:
//! nothing is made, no lease is taken.

use std::time::Duration;

use oci_macvlan_ipam::LeaseStoreExt;
use oci_macvlan_netlink_core::Handle;

use crate::{Access, Error, Networks, StorePolicy, parents::find_parent};

/// Why an attach to a network could not be served now.
#[derive(Debug)]
pub enum NotReady<E> {
    /// A `network create` or `rm` held the definitions past the wait: a passing condition.
    Busy,
    /// The definition cannot be read (it is missing, damaged or unreadable).
    Definition(Error),
    /// The parent is missing and an attach would not make it (a plain link, or an 802.1q
    /// link whose base is missing), or a same-named link is not what the network promises:
    /// the network's containers, whose links hang off it, may have lost it too.
    Parent(Error),
    /// The lease store did not answer in time, or could not be opened or read.
    Store(E),
}

/// Whether an attach to the network `name` could be served now (see [`NotReady`]). The wait
/// for a `network create`/`rm` is `wait`; a shared store's own deadline (its `etcd_timeout`)
/// bounds the one read it is asked for.
pub async fn attach_ready<P: StorePolicy>(
    stores: &P,
    networks: &Networks,
    name: &str,
    wait: Duration,
) -> Result<(), NotReady<P::Error>> {
    let Some(_hold) = networks.hold_within(wait).map_err(NotReady::Definition)? else {
        return Err(NotReady::Busy);
    };
    let network = networks.load(name).map_err(NotReady::Definition)?;
    let host = Handle::current()
        .map_err(Error::Netlink)
        .map_err(NotReady::Parent)?;
    find_parent(&host, &network)
        .await
        .map_err(NotReady::Parent)?;
    let mut store = stores
        .networks_store(&[&network], Access::Read, false)
        .map_err(NotReady::Store)?;
    // One read, of one key: the store answers, or does not in its deadline.
    if let Some(pool) = network.pools.first() {
        let probe = pool.subnet.ip();
        store
            .read(|view| view.lease_of(probe))
            .map_err(|err| NotReady::Store(Error::store(err).into()))?;
    }
    Ok(())
}
