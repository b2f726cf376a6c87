//! Address pools with Docker's IPAM semantics, and the lease store.
//!
//! No netlink, no OCI: this crate decides which address a container gets and remembers it.
//! The store is the single point of truth for "who holds which address"; every allocation runs in
//! one store transaction, so concurrent hooks never hand out an address twice.

mod addr;
mod allocator;
mod boot;
mod damage;
mod env;
mod error;
pub mod failpoint;
mod fault;
mod hash;
mod lmdb;
mod options;
mod pool;
mod runs;
mod store;
#[cfg(test)]
mod store_tests;
mod union;
mod usage;

pub use addr::{ip_of_key, to_key};
pub use allocator::{Request, allocate};
pub use damage::Damage;
pub use error::{Error, Result};
pub use hash::fnv1a64;
pub use lmdb::LmdbStore;
pub use options::{
    DEFAULT_ETCD_PREFIX, DEFAULT_ETCD_TIMEOUT, EtcdConfig, IPAM_OPTION_KEYS, StoreChoice,
    parse_ipam_options,
};
pub use pool::{Pool, Reserved};
pub use store::{Lease, LeaseStore, LeaseStoreExt, Owner, StoredLease, Txn, View};
pub use union::Union;
pub use usage::Usage;
