//! A network's state as `inspect` shows it: the leases on it, what its pools have left and the
//! MACs its containers' records keep, with its store's leases and usage read in one snapshot.

use std::collections::BTreeMap;

use oci_macvlan_ipam::{Lease, LeaseStoreExt, Usage};

use crate::{Access, Error, Network, Records, StorePolicy};

/// What a network holds now (see [`network_status`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkStatus {
    /// Every lease on the network, of every host, in address order.
    pub leases: Vec<Lease>,
    /// Per pool, in the network's order: how much of its dynamic range is left.
    pub usage: Vec<Usage>,
    /// The MAC of each endpoint whose record names one, keyed by (container id, interface).
    pub macs: BTreeMap<(String, String), String>,
    /// Whether the store answered.
    pub store: StoreState,
}

/// Whether a network's store could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreState {
    /// It answered: the leases and usage are its.
    Ok,
    /// It did not answer in time (an etcd cluster down, say), with why as one line: the
    /// status has no leases and no usage, never "none".
    Unreachable(String),
}

/// The status of `network`: its leases and its pools' usage from one read-only snapshot of the
/// store `stores` gives it (read thoroughly: `inspect` reads every lease), and the MACs on
/// record. A store that does not answer is a [`StoreState::Unreachable`], not an error: the
/// definition is still shown.
pub fn network_status<P: StorePolicy>(
    stores: &P,
    network: &Network,
    records: &Records,
) -> Result<NetworkStatus, P::Error> {
    let read = stores
        .networks_store(&[network], Access::Read, true)
        .and_then(|mut store| {
            let router = network.undeclared_router();
            store
                .read(|view| {
                    let leases = view.network_leases(&network.name)?;
                    let usage = (network.pools.iter())
                        .map(|p| p.usage(view, router))
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok((leases, usage))
                })
                .map_err(|err| Error::store(err).into())
        });
    let (leases, usage) = match read {
        Ok(read) => read,
        Err(err) if P::is_unavailable(&err) => {
            return Ok(NetworkStatus {
                leases: Vec::new(),
                usage: Vec::new(),
                macs: BTreeMap::new(),
                store: StoreState::Unreachable(crate::one_line(&err)),
            });
        }
        Err(err) => return Err(err),
    };
    Ok(NetworkStatus {
        macs: recorded_macs(records, &leases),
        leases,
        usage,
        store: StoreState::Ok,
    })
}

/// The MAC each endpoint of `leases` was given, from its container's record: keyed by
/// (container id, interface). An endpoint whose record is gone or unreadable has none (its
/// lease still shows).
fn recorded_macs(records: &Records, leases: &[Lease]) -> BTreeMap<(String, String), String> {
    let mut macs = BTreeMap::new();
    let mut ids: Vec<&str> = leases
        .iter()
        .map(|l| l.owner.container_id.as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        let Ok(Some(record)) = records.read(id) else {
            continue;
        };
        for ep in record.endpoints {
            if let Some(mac) = ep.mac {
                macs.insert((id.to_owned(), ep.ifname), mac.to_string());
            }
        }
    }
    macs
}
