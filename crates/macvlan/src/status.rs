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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::PathBuf;

    use oci_macvlan_ipam::{LmdbStore, Owner, StoreSet};

    use super::*;
    use crate::{NetworkSpec, Networks, RecordedEndpoint, Unreachable};

    /// A policy of one local store, or of one that never answers: what a front door passes.
    struct Policy {
        dir: PathBuf,
        silent: bool,
    }

    impl StorePolicy for Policy {
        type Error = Error;

        fn source_secret(&self) -> Result<Vec<u8>, Error> {
            Ok(b"tier-1 host".to_vec())
        }

        fn is_unavailable(err: &Error) -> bool {
            matches!(err, Error::Store(store) if store.is_unavailable())
        }

        fn networks_store(
            &self,
            _networks: &[&Network],
            _access: Access,
            _thorough: bool,
        ) -> Result<Box<dyn oci_macvlan_ipam::LeaseStore>, Error> {
            if self.silent {
                return Err(Error::store(oci_macvlan_ipam::Error::Unavailable {
                    store: "a cluster".into(),
                    what: "no answer in 2 s".into(),
                    maybe_written: false,
                    source: None,
                }));
            }
            Ok(Box::new(LmdbStore::open(&self.dir).map_err(Error::store)?))
        }

        fn endpoints_stores(
            &self,
            _endpoints: &[RecordedEndpoint],
            _access: Access,
        ) -> Result<StoreSet, Error> {
            unreachable!("a status opens no record's stores")
        }

        fn answering(
            &self,
            _networks: &Networks,
            _records: &Records,
            _access: Access,
        ) -> Result<(StoreSet, Vec<Unreachable>), Error> {
            unreachable!("a status opens no other store")
        }
    }

    /// The leases and the usage come from the one store the policy gives, read together; a
    /// store that does not answer is a state, never an error nor "no leases".
    #[test]
    fn a_status_reads_leases_and_usage_together_and_says_when_its_store_is_silent() {
        let dir = tempfile::tempdir().unwrap();
        let network = NetworkSpec {
            name: "lan".into(),
            driver: "macvlan".into(),
            subnets: vec!["10.0.0.0/29".into()],
            options: vec!["parent=eth0".into()],
            ..Default::default()
        }
        .validate("a".repeat(64), "now".into())
        .unwrap();
        let mut store = LmdbStore::open(dir.path()).unwrap();
        let owner = Owner {
            container_id: "c1".into(),
            ifname: "eth0".into(),
        };
        store
            .transaction(|txn| {
                let request = oci_macvlan_ipam::Request {
                    network: "lan",
                    owner: &owner,
                    pools: &network.pools,
                    static_ips: &[],
                    ipv6: false,
                    undeclared_router: network.undeclared_router(),
                };
                oci_macvlan_ipam::allocate(txn, &request)
            })
            .unwrap();
        drop(store);
        let records = Records::new(dir.path());
        let policy = Policy {
            dir: dir.path().to_path_buf(),
            silent: false,
        };
        let status = network_status(&policy, &network, &records).unwrap();
        assert_eq!(status.store, StoreState::Ok);
        let ips: Vec<String> = status.leases.iter().map(|l| l.ip.to_string()).collect();
        assert_eq!(ips, ["10.0.0.2"]);
        // A /29: eight addresses, less its network, broadcast, first host (no gateway: kept for
        // a router) and the one leased.
        assert_eq!(status.usage[0].dynamic_total, 8);
        assert_eq!(status.usage[0].dynamic_available, 4);

        let silent = Policy {
            dir: dir.path().to_path_buf(),
            silent: true,
        };
        let status = network_status(&silent, &network, &records).unwrap();
        assert!(
            matches!(&status.store, StoreState::Unreachable(why) if why.contains("no answer")),
            "{:?}",
            status.store
        );
        assert!(status.leases.is_empty() && status.usage.is_empty());
    }
}
