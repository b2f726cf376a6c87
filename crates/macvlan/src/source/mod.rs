//! The seam between an attach and where a container's addresses come from. An address source
//! is asked for a link's addresses ([`Source::acquire`]) and returns, per family, the address
//! and its prefix, the gateway, routes and an optional lifetime ([`Acquired`]); it is told what
//! to give back ([`Source::release`]). The gateway and routes a container gets are what its
//! source returned: [`crate::wire`] makes them routes.
//!
//! A source says when it runs ([`Runs`]): our own allocator ([`allocator`]) decides nothing
//! about the link and runs before it is made (a lease refused leaves no link to undo, and a
//! link is never announced on the LAN without its address); a source that talks on the link
//! (a DHCP client) runs after it is made, in the container's namespace ([`LinkAt`]).
//!
//! Every source keeps what it hands out in the lease store, in a transaction that may be run
//! again and has no outside effect: whatever talks to the outside (a server's exchange) happens
//! in the source's own code around that transaction, never inside its closure.
//!
//! This file is the registry: [`Source::of`] picks a network's source.

use std::{net::IpAddr, path::Path, time::Duration};

use ipnetwork::IpNetwork;
use oci_macvlan_ipam::{Lease, LeaseSet, LeaseStore, Owner};
use oci_macvlan_netlink_core::{ChildKind, MacAddr, Netns};
use serde::Serialize;

use crate::{Error, Network, RecordedEndpoint, Records};

pub(crate) mod allocator;
pub mod dhcp;
pub(crate) mod dhcp6;
mod dhcp6_hint;
pub(crate) mod dhcp_decline;

/// The DHCPv6 source's hints, under the state dir (see `dhcp6_hint`).
pub(crate) const HINTS_DIR: &str = dhcp6_hint::DIR;
mod dhcp_early;
pub(crate) mod dhcp_links;
mod dhcp_notes;
mod dhcp_release;
mod unheld;

pub use dhcp::{Dhcp6Record, DhcpRecord};

/// One address a source gave a link, with what comes with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Acquired {
    /// The address and its prefix.
    pub address: IpNetwork,
    /// The gateway of its family (a DHCP router option; a subnet's `--gateway`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// Further routes of its family (a DHCP classless static route).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<SourceRoute>,
    /// How long the address is the container's without a renewal; `None`: as long as it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifetime: Option<Duration>,
}

/// A route an address source gives with an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SourceRoute {
    /// Where it leads.
    pub destination: IpNetwork,
    /// Through whom; `None`: straight onto the link.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<IpAddr>,
}

/// When a source is asked, relative to the link it gives addresses to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runs {
    /// Before the link is made: the source needs nothing of it.
    BeforeLink,
    /// Once the link is made, in the container's namespace (its MAC is the client's).
    AfterLink,
}

/// The container's link, for a source that runs on it.
#[derive(Debug, Clone, Copy)]
pub struct LinkAt<'a> {
    /// The container's network namespace.
    pub netns: &'a Path,
    /// That namespace, as the attach opened it (none: opened again from `netns`).
    pub opened: Option<&'a Netns>,
    /// The link's name there.
    pub ifname: &'a str,
    /// Its index there.
    pub index: u32,
    /// Its MAC, as the kernel has it (a DHCP client's `chaddr`).
    pub mac: Option<MacAddr>,
}

/// What one link asks its source for.
#[derive(Debug)]
pub(crate) struct Ask<'a> {
    pub(crate) network: &'a Network,
    /// Who the addresses are for (container id and interface name).
    pub(crate) owner: &'a Owner,
    /// Static addresses asked for.
    pub(crate) static_ips: &'a [IpAddr],
    /// Whether this container's own earlier run recorded the link: what its owner holds is its
    /// own to get back. Otherwise what the owner holds is someone else's, never adopted.
    pub(crate) held_before: bool,
    /// The link, for a source that runs after it is made.
    pub(crate) link: Option<LinkAt<'a>>,
    /// The link's kind (an ipvlan shares its parent's MAC: a DHCP client asks for broadcast
    /// answers).
    pub(crate) kind: ChildKind<'a>,
    /// This host's key for address sources ([`crate::StorePolicy::source_secret`]), for a
    /// network whose source derives identities from it.
    pub(crate) secret: Option<&'a [u8]>,
    /// The container's hostname (OCI `hostname`), for a source that tells a server.
    pub(crate) hostname: Option<&'a str>,
    /// This endpoint as this container's earlier run recorded it.
    pub(crate) previous: Option<&'a RecordedEndpoint>,
    /// Where a source that talks to a server notes a lease in flight, if anywhere.
    pub(crate) note: Option<Note<'a>>,
    /// Where the DHCPv6 source keeps the address each identity was last given
    /// (`<state-dir>/dhcp6-hints`), if anywhere.
    pub(crate) hints: Option<&'a Path>,
    /// The network's parent link, as the attach found it (a source that checks what a server
    /// gave against the LAN needs it), if known.
    pub(crate) parent: Option<&'a oci_macvlan_netlink_core::Link>,
    /// Told of the network once its lease's REQUEST is out ([`crate::AttachRequest::on_lease`]).
    pub(crate) on_lease: Option<crate::OnLease<'a>>,
}

/// Where a source that talks to a server writes down what the server may commit before it
/// says so (a DHCP offer, before its REQUEST goes out): the endpoint's record with it, so that a
/// take-back (poststop, `gc`) gives it back even if the attach dies before its full record.
#[derive(Clone, Copy)]
pub(crate) struct Note<'a>(pub(crate) &'a (dyn Fn(&DhcpRecord) -> crate::Result<()> + Sync));

impl std::fmt::Debug for Note<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Note")
    }
}

/// What a source gave one link.
#[derive(Debug)]
pub(crate) struct Taken {
    /// Every address the link is to have.
    pub(crate) acquired: Vec<Acquired>,
    /// Those this run took (not those the owner held already): what an undo gives back.
    pub(crate) new: Vec<IpAddr>,
    /// A DHCP lease, for the endpoint's record.
    pub(crate) dhcp: Option<DhcpRecord>,
    /// Addresses of the link's earlier lease that this one replaced: an adopted link still has
    /// them, and loses them before it gets the new ones.
    pub(crate) stale: Vec<IpAddr>,
    /// An address of `new` checked against the host and the LAN while the server answered,
    /// and what the check found (see `dhcp_early`): not checked again.
    pub(crate) checked: Option<(IpAddr, crate::Result<()>)>,
}

/// Why a source gave nothing.
#[derive(Debug)]
pub(crate) struct Refused {
    /// Boxed: results stay small.
    pub(crate) error: Box<Error>,
    /// The source may have taken something all the same (a write to a networked store whose
    /// outcome is unknown): an undo gives back whatever the owner holds on the network.
    pub(crate) maybe_taken: bool,
    /// A lease a server gave before the refusal (a DHCPv4 lease when the DHCPv6 exchange
    /// failed): an undo gives it back to the server once the link is gone.
    pub(crate) server_lease: Option<Box<DhcpRecord>>,
}

/// A network's address source (the registry of sources: one variant per source).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// The network's pools, allocated in the lease store ([`allocator`]).
    Allocator,
    /// The LAN's DHCP server ([`dhcp`]).
    Dhcp,
}

impl Source {
    /// The source of `network`'s addresses.
    pub(crate) fn of(network: &Network) -> Self {
        if network.dhcp.is_some() {
            Self::Dhcp
        } else {
            Self::Allocator
        }
    }

    /// What is wrong with `lease` on `network`, as `verify` judges it: for our allocator, a
    /// lease must be inside one of the network's subnets and not a reserved address of it; for
    /// DHCP, the lease on the holder's record must explain it and not have run out.
    pub(crate) fn lease_problem(
        self,
        network: &Network,
        lease: &Lease,
        records: &Records,
    ) -> Option<String> {
        match self {
            Self::Allocator => allocator::lease_problem(network, lease),
            Self::Dhcp => dhcp::lease_problem(network, lease, records),
        }
    }

    /// The source of a recorded endpoint's addresses: detach and disconnect work from the
    /// record alone (a source that needs it to be known records it on the endpoint; a record
    /// that says nothing is our allocator's, as every record written so far).
    pub(crate) fn recorded(endpoint: &RecordedEndpoint) -> Self {
        if endpoint.dhcp.is_some() {
            Self::Dhcp
        } else {
            Self::Allocator
        }
    }

    /// When it runs.
    pub(crate) fn runs(self) -> Runs {
        match self {
            Self::Allocator => Runs::BeforeLink,
            Self::Dhcp => Runs::AfterLink,
        }
    }

    /// The addresses of one link.
    pub(crate) async fn acquire(
        self,
        store: &mut dyn LeaseStore,
        ask: &Ask<'_>,
    ) -> Result<Taken, Refused> {
        match self {
            Self::Allocator => allocator::acquire(store, ask),
            Self::Dhcp => {
                let mut taken = dhcp::acquire(store, ask)?;
                if taken.new.is_empty() {
                    return Ok(taken);
                }
                // What the server gave is checked as a named address is, before the link
                // gets it; refused, the store's copy and the server's lease are given back.
                // The offer's address was checked while the server answered: not again.
                let (early, rest) = dhcp_early::still_to_check(&taken.new, taken.checked.take());
                let probe = dhcp_decline::probes(ask.network);
                let checked = match early {
                    Err(error) => Err(error),
                    Ok(()) if rest.is_empty() => Ok(()),
                    Ok(()) => match oci_macvlan_netlink_core::Handle::current() {
                        Ok(host) => {
                            crate::occupied::check_leased_probing(
                                &host,
                                ask.network,
                                ask.parent,
                                &rest,
                                probe,
                            )
                            .await
                        }
                        Err(source) => Err(Error::CheckAddresses {
                            network: ask.network.name.clone(),
                            source,
                        }),
                    },
                };
                match checked {
                    Ok(()) => Ok(taken),
                    Err(error) => {
                        let mut server_lease = taken.dhcp.map(Box::new);
                        if let (Error::AddressOnLan { ip, .. }, Some(lease)) =
                            (&error, server_lease.as_deref_mut())
                        {
                            dhcp_decline::decline_held(ask, lease, *ip);
                        }
                        Err(Refused {
                            error: Box::new(error),
                            maybe_taken: true,
                            server_lease,
                        })
                    }
                }
            }
        }
    }

    /// Gives back `ips` of `owner` (what an attach took before it failed).
    pub(crate) async fn release(
        self,
        store: &mut dyn LeaseSet,
        owner: &Owner,
        ips: &[IpAddr],
    ) -> oci_macvlan_ipam::Result<()> {
        match self {
            Self::Allocator | Self::Dhcp => store.release_ips(owner, ips).map(drop),
        }
    }

    /// Told that the container of `endpoint` goes (detach, `gc`, an earlier container's record
    /// taken back), before its leases are released from the store all at once: a source that
    /// holds something outside the store (a server's lease) gives it back here. Our allocator
    /// holds nothing outside the store; a DHCP lease is released to its server, as far as the
    /// server can be reached in a bounded wait (its lease runs out on its own otherwise: a
    /// server out of reach never keeps a dead container's record).
    pub(crate) async fn container_gone(self, endpoint: &RecordedEndpoint) -> crate::Result<()> {
        match self {
            Self::Allocator => Ok(()),
            Self::Dhcp => {
                // Given up, not failed: see above.
                let _ = dhcp_release::release(endpoint).await;
                Ok(())
            }
        }
    }

    /// [`Self::container_gone`] for each of `endpoints`, one container's take-back (detach,
    /// `gc`, a failed attach's undo): what they hold outside the store is given back all at
    /// once, under one deadline for all of them (a DHCP lease's RELEASE, given up at that
    /// deadline: see [`Self::container_gone`]).
    pub(crate) async fn all_gone(endpoints: &[&RecordedEndpoint]) {
        let dhcp: Vec<&RecordedEndpoint> = endpoints
            .iter()
            .copied()
            .filter(|e| Self::recorded(e) == Self::Dhcp)
            .collect();
        let _ = dhcp_release::release_all(&dhcp).await;
    }

    /// Gives back whatever `owner` holds on `network` (a take whose outcome is unknown, a
    /// disconnect).
    pub(crate) async fn release_all(
        self,
        store: &mut dyn LeaseSet,
        network: &str,
        owner: &Owner,
    ) -> oci_macvlan_ipam::Result<Vec<Lease>> {
        match self {
            Self::Allocator | Self::Dhcp => store.release(network, owner),
        }
    }
}
