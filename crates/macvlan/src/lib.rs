//! Networks on the host's LAN and their endpoints: the core, and the drivers ([`driver`]:
//! macvlan, ipvlan) behind one trait.
//!
//! A [`Network`] is a validated definition (`network create`), kept as JSON in the config dir
//! by [`Networks`]. [`attach`] gives a container its legs (links of the network's driver) and
//! [`detach`] takes them back; a failed attach undoes every step it took, so it leaves no link,
//! no lease, no record.

#![warn(missing_docs)]

mod address_space;
mod admit;
mod boot;
pub mod check;
mod detach;
mod disconnect;
pub mod driver;
mod endpoint;
mod error;
pub mod failpoint;
mod files;
mod gc;
mod gc_keepers;
pub mod host_access;
mod id;
mod id_in_use;
mod ifname;
mod kernel;
mod lifecycle;
mod liveness;
pub mod locate;
mod lock;
mod mac;
mod name;
mod network;
mod networks;
mod occupied;
mod ownership;
mod parents;
mod plan;
mod reach;
mod ready;
mod record;
mod renew;
mod request;
pub mod source;
mod status;
mod stores;
mod sysctl;
mod undo;
mod verify;
pub mod wire;
mod wiring;

pub use detach::detach;
pub use disconnect::disconnect;
pub use endpoint::{Endpoint, attach};
pub use error::{DefinitionError, DhcpError, Error, ErrorKind, Result, StateError, cut, one_line};
pub use files::{Durability, Put, check_private_dir, make_no_dirs, open_own, write_atomic};
pub use gc::{GcReport, gc};
pub use id::{ContainerId, IdRef, check_container_id};
pub use ifname::ifname_problem;
pub use lifecycle::{Removed, create_network, remove_network};
pub use liveness::{Liveness, Process, Verdict};
pub use mac::{Mac, default_mac};
pub use name::{ContainerName, MAX_NAME_PART};
pub use network::{
    DhcpIpam, IPAM_DRIVERS, LanRoute, Network, NetworkSpec, ParentLink, ParentName, StaticIps,
    check_network_name,
};
pub use networks::{Networks, NetworksHold};
pub use occupied::Holder;
pub use oci_macvlan_child::Start;
pub use oci_macvlan_netlink_core::MacAddr;
pub use plan::{AddressRequest, LinkSpec, ParentSpec, Plan, PlannedNetwork, Routes, plan};
pub use reach::{Unreachable, store_of};
pub use ready::{NotReady, attach_ready};
pub use record::{Record, RecordedEndpoint, Records};
pub use renew::{DhcpRenewal, Renewed, Report as RenewalReport};
pub use request::{AttachRequest, Attachment, LeaseStep, OnLease};
pub use status::{EndpointFacts, NetworkStatus, StoreState, network_status};
pub use stores::{Access, StorePolicy};
pub use verify::{Report, verify};
