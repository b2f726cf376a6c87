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
mod fault;
mod lmdb;
mod pool;
mod runs;
mod store;
#[cfg(test)]
mod store_tests;
mod usage;

pub use allocator::{Request, allocate};
pub use damage::Damage;
pub use error::{Error, Result};
pub use lmdb::LmdbStore;
pub use pool::{Pool, Reserved};
pub use store::{Lease, LeaseStore, Owner, Txn};
pub use usage::Usage;
