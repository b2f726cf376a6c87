//! Every refusal of an attach that depends on more than the request (the plan's own are
//! [`crate::plan`]'s), decided in one place, under the container's lock and before its record
//! is written: nothing has been made when one refuses.

use oci_macvlan_ipam::LeaseStore;
use oci_macvlan_netlink_core::Link;

use crate::{
    AttachRequest, Error, Network, Result, failpoint, host_access, kernel::Kernel,
    parents::check_parent_free, plan::Plan, record::Record,
};

/// Refuses the attach of `plan` (from `req`) when
/// - a MAC asked for is the host link's of a network with host access on its parent;
/// - the container is on one of its networks already: under another interface name (two
///   `network connect`s racing), or under any name for a `network connect` (the one rule for
///   "already connected": never a second link and lease on one network);
/// - a parent that takes one container (passthru) is another container's;
/// - a static address asked for is on the LAN already (a router the host sends through, a
///   host's link, a neighbour), on a network the container was not on already;
///
/// and otherwise returns the parents, in the plan's order, found or made (see
/// `parents::resolve_parents`): every parent first, so a missing one changes nothing at all.
pub(crate) async fn admit(
    kernel: &impl Kernel,
    store: &mut dyn LeaseStore,
    req: &AttachRequest<'_>,
    plan: &Plan<'_>,
    previous: Option<&Record>,
) -> Result<Vec<Link>> {
    host_access::check_reserved_macs(req)?;
    let rejoined = |planned: &crate::PlannedNetwork<'_>| {
        previous.is_some_and(|p| {
            p.endpoints
                .iter()
                .any(|e| e.network == planned.network && e.ifname == planned.link.name)
        })
    };
    already_connected(req, plan, previous)?;
    for planned in &plan.networks {
        let net = planned.definition;
        if let Some(mode) = net.driver().exclusive_parent() {
            check_parent_free(store, net, mode, &plan.container_id)?;
        }
    }
    let networks: Vec<&Network> = plan.networks.iter().map(|p| p.definition).collect();
    let parents = kernel.parents(&networks).await?;
    for _ in &parents {
        failpoint::hit("attach:net:parent")?;
    }
    for (planned, parent) in plan.networks.iter().zip(&parents) {
        if !rejoined(planned) {
            kernel
                .check_static(
                    store,
                    planned.definition,
                    parent,
                    &planned.addresses.static_ips,
                )
                .await?;
        }
    }
    Ok(parents)
}

/// Refuses a network the container is on already: under another interface name (two `network
/// connect`s racing), or under any name for a `network connect` — the one rule for "already
/// connected": never a second link and lease on one network. `record` is the container's as
/// read under its lock: for a `network connect` at once (whether or not its process still
/// runs, as before anything else is looked at), for a hook once it is judged its own.
pub(crate) fn already_connected(
    req: &AttachRequest<'_>,
    plan: &Plan<'_>,
    record: Option<&Record>,
) -> Result<()> {
    let Some(record) = record else {
        return Ok(());
    };
    for planned in &plan.networks {
        if let Some(old) = record.endpoints.iter().find(|e| {
            e.network == planned.network && (req.connect || e.ifname != planned.link.name)
        }) {
            return Err(Error::AlreadyConnected {
                container_id: plan.container_id.to_string(),
                network: old.network.clone(),
                ifname: old.ifname.clone(),
            });
        }
    }
    Ok(())
}
