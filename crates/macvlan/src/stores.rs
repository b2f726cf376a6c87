//! The seam between the core and store policy: which lease store serves a network, a record's
//! endpoints, or every cluster this host uses. The core decides none of it: a library
//! (`oci-macvlan-stores`) implements [`StorePolicy`], and every front door (the hook, the CLI,
//! a CNI plugin) passes that value to [`crate::attach`], [`crate::detach`],
//! [`crate::disconnect`], [`crate::gc`], [`crate::verify`] and [`crate::network_status`].

use oci_macvlan_ipam::{LeaseStore, StoreSet};

use crate::{Error, Network, Networks, RecordedEndpoint, Records, Unreachable};

/// What a command does with a shared store, and so whether the policy may make this host's
/// identity (the proof of its claim in a shared store) when there is none yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Only reads: makes nothing.
    Read,
    /// Writes (an attach, a detach, a disconnect): makes the identity if it is missing.
    Write,
    /// Writes as upkeep (`gc`, `gc --forget-host`, run by a timer or an operator, often
    /// without the hooks' `--host-id`): makes the identity only when the operator named this
    /// host; otherwise a store writes nothing of this host's.
    Upkeep,
}

/// Which lease store serves what: the one decision the core leaves to its caller, taken as a
/// value (never a callback into a binary). Each method opens stores; none is called twice for
/// one record, and the core calls the endpoint ones under the container's lock with the
/// record it read there.
pub trait StorePolicy {
    /// The policy's errors: the core's, and its own (an identity file, networks of two stores).
    type Error: From<Error> + std::error::Error;

    /// Whether `err` says that a store did not answer in time (rather than that it is damaged,
    /// refused, or could not be opened for another reason).
    fn is_unavailable(err: &Self::Error) -> bool;

    /// This host's key for address sources (see `oci_macvlan_stores`' identity): a DHCP
    /// network's client identifier and default MAC derive from it, the network and the
    /// container. Asked only by an attach to a network of such a source.
    fn source_secret(&self) -> Result<Vec<u8>, Self::Error>;

    /// The one store of `networks` (an attach's, `inspect`'s, `network rm`'s): they must
    /// agree on it. `thorough`: the local store is checked page by page as it opens (for a
    /// command that reads every lease).
    fn networks_store(
        &self,
        networks: &[&Network],
        access: Access,
        thorough: bool,
    ) -> Result<Box<dyn LeaseStore>, Self::Error>;

    /// The stores that may hold the leases of recorded `endpoints` (a detach, a disconnect, a
    /// take-back): the record says where each endpoint's leases are, so no definition is read
    /// but for an endpoint an earlier build recorded without its store.
    fn endpoints_stores(
        &self,
        endpoints: &[RecordedEndpoint],
        access: Access,
    ) -> Result<StoreSet, Self::Error>;

    /// Every store the definitions and the records use that answers (`gc`, `verify`), each
    /// once, and each that does not, with why: a silent store is never read as "no leases".
    fn answering(
        &self,
        networks: &Networks,
        records: &Records,
        access: Access,
    ) -> Result<(StoreSet, Vec<Unreachable>), Self::Error>;
}

/// A policy for tier-1 tests: every store is the LMDB store of one directory.
#[cfg(test)]
pub(crate) struct LocalPolicy(pub(crate) std::path::PathBuf);

#[cfg(test)]
impl LocalPolicy {
    fn open(&self) -> Result<oci_macvlan_ipam::LmdbStore, Error> {
        oci_macvlan_ipam::LmdbStore::open(&self.0).map_err(Error::store)
    }
}

#[cfg(test)]
impl StorePolicy for LocalPolicy {
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
    ) -> Result<Box<dyn LeaseStore>, Error> {
        Ok(Box::new(self.open()?))
    }

    fn endpoints_stores(
        &self,
        _endpoints: &[RecordedEndpoint],
        _access: Access,
    ) -> Result<StoreSet, Error> {
        Ok(StoreSet::new(vec![Box::new(self.open()?)]))
    }

    fn answering(
        &self,
        _networks: &Networks,
        _records: &Records,
        _access: Access,
    ) -> Result<(StoreSet, Vec<Unreachable>), Error> {
        Ok((StoreSet::new(vec![Box::new(self.open()?)]), Vec::new()))
    }
}
