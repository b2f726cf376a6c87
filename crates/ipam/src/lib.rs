//! Address pools with Docker's IPAM semantics, and the lease store.
//!
//! No netlink, no OCI: this crate decides which address a container gets and remembers it.
//! The store is the single point of truth for "who holds which address"; every allocation runs in
//! one store transaction, so concurrent hooks never hand out an address twice.

#![warn(missing_docs)]

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
pub mod locator;
mod pool;
mod runs;
mod store;
mod store_set;
#[cfg(test)]
mod store_tests;
mod usage;

pub use addr::{ip_of_key, to_key};
pub use allocator::{Request, allocate};
pub use boot::make_no_stores;
pub use damage::Damage;
pub use error::{Error, ErrorKind, Result};
pub use hash::fnv1a64;
pub use lmdb::LmdbStore;
pub use locator::{Backend, Backends, HostIdentity, Locator, StoreChoice};
pub use pool::{Pool, Reserved};
pub use store::{Lease, LeaseSet, LeaseStore, LeaseStoreExt, Owner, StoredLease, Txn, View};
pub use store_set::StoreSet;
pub use usage::Usage;
