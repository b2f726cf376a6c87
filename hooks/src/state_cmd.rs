//! Operator tools over the state dir: `verify` (read-only) and `gc`.

use oci_macvlan_ipam::LeaseSet;
use oci_macvlan_macvlan::{self as macvlan, Networks, Records, Unreachable};
use oci_macvlan_stores::check_host_id;

use crate::{
    Context,
    error::{Error, Result},
    network_cmd::{confirm, print},
};

/// `oci-macvlan verify`: each problem on a line of stdout; exit 6 when there is any. A cluster
/// that does not answer is a line, and what needs it is not checked: exit 1 then (a system
/// failure, as for an attach), whatever else was found, for the check is not whole.
pub fn verify(ctx: &Context) -> Result<()> {
    let networks = Networks::new(&ctx.config_dir);
    let records = Records::new(&ctx.state_dir);
    let report = ctx.block_on(macvlan::verify(&ctx.stores(), &networks, &records))??;
    let unreachable = &report.unreachable;
    for problem in &report.problems {
        print(format_args!("{problem}\n"))?;
    }
    print(format_args!("{}", unreached_lines(unreachable)))?;
    if !unreachable.is_empty() {
        Err(Error::Unreached {
            command: "verify",
            count: unreachable.len(),
        })
    } else if report.problems.is_empty() {
        print(format_args!(
            "ok: {} leases, {} endpoint records, no problems\n",
            report.leases, report.records
        ))
    } else {
        Err(Error::Inconsistent(report.problems.len()))
    }
}

/// One line per cluster that did not answer.
fn unreached_lines(unreachable: &[Unreachable]) -> String {
    unreachable
        .iter()
        .map(|u| format!("not reached: {}\n", u.error))
        .collect()
}

/// `oci-macvlan gc`: one line per container taken back or left undecided, then a summary. A
/// cluster that does not answer is a line, and so is each gone container whose record names
/// it (kept for the next gc); the rest is done, and the exit is 1. So is a network whose host
/// access could not be repaired. A live container's DHCP renewer whose keepers were all killed
/// is started again, a line each.
pub fn gc(ctx: &Context) -> Result<()> {
    let records = Records::new(&ctx.state_dir);
    let networks = Networks::new(&ctx.config_dir);
    let report = ctx.block_on(macvlan::gc(&ctx.stores(), &records, &networks))??;
    let unreachable = &report.unreachable;
    let mut out = String::new();
    if report.temps_removed > 0 {
        out.push_str(&format!(
            "removed {} temporary files of writers killed half-way\n",
            report.temps_removed
        ));
    }
    let alive: Vec<String> = report.alive.iter().map(|(id, _)| id.clone()).collect();
    for line in crate::keeper::restart_unkept(ctx, &records, &alive) {
        out.push_str(&line);
        out.push('\n');
    }
    if report.keeper_slots_removed > 0 {
        out.push_str(&format!(
            "removed {} keeper slots of leases no longer held\n",
            report.keeper_slots_removed
        ));
    }
    for line in &report.maintenance {
        out.push_str(line);
        out.push('\n');
    }
    for line in report
        .host_access
        .lines
        .iter()
        .chain(&report.host_access.failed)
    {
        out.push_str(line);
        out.push('\n');
    }
    let mut leases = 0;
    for (id, why, released) in &report.released {
        if released.is_empty() {
            out.push_str(&format!(
                "released container {id}, which held no lease ({why})\n"
            ));
        }
        for lease in released {
            out.push_str(&format!(
                "released {} on {} (container {id}: {why})\n",
                lease.ip, lease.network
            ));
        }
        leases += released.len();
    }
    for (id, why) in &report.undecided {
        out.push_str(&format!(
            "kept container {id}: cannot tell whether it is gone: {why}\n"
        ));
    }
    for (id, why) in &report.unreached {
        out.push_str(&format!(
            "kept container {id}: it is gone, but its lease store did not answer: {why}\n"
        ));
    }
    for id in &report.busy {
        out.push_str(&format!(
            "skipped container {id}: an attach or detach holds it; run gc again\n"
        ));
    }
    for id in &report.unrecorded {
        out.push_str(&format!(
            "kept the leases of container {id}: it has no endpoint record to judge it by\n"
        ));
    }
    for line in &report.removed {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&unreached_lines(unreachable));
    out.push_str(&format!(
        "gc: released {leases} leases of {} gone containers; {} still run; {} undecided; {} busy",
        report.released.len(),
        report.alive.len(),
        report.undecided.len() + report.unrecorded.len(),
        report.busy.len()
    ));
    // A cluster that stopped answering during gc counts too.
    let unreached = if report.unreached.is_empty() && report.removed_unreached == 0 {
        unreachable.len()
    } else {
        unreachable.len().max(1)
    };
    if unreached > 0 {
        out.push_str(&format!(
            "; {} kept for lease stores that did not answer",
            report.unreached.len()
        ));
    }
    out.push('\n');
    print(format_args!("{out}"))?;
    if unreached > 0 {
        return Err(Error::Unreached {
            command: "gc",
            count: unreached,
        });
    }
    match report.host_access.failed.len() {
        0 => Ok(()),
        count => Err(Error::HostAccessUnrepaired(count)),
    }
}

/// `oci-macvlan gc --forget-host ID`: releases every lease host ID holds in the shared stores
/// of the networks defined here, and its claim of the id (an operator's decision for a host
/// gone for good); one line per lease, then a summary. Refused, before anything is asked or
/// released: an ID that is not a host id, this host's own id (its containers are `gc`'s to
/// judge), and a host alive in any of the stores (its claim refreshed within the last hour:
/// `oci_macvlan_ipam_etcd::ALIVE_SECS`; checked again in the transaction that releases). Asks
/// for confirmation unless `force`, as `network prune` does.
pub fn forget_host(ctx: &Context, host: &str, force: bool) -> Result<()> {
    check_host_id(host, "--forget-host")?;
    let stores = ctx.stores();
    if stores.host_id()? == host {
        return Err(Error::ForgetSelf {
            host: host.to_owned(),
        });
    }
    let networks = Networks::new(&ctx.config_dir);
    let records = Records::new(&ctx.state_dir);
    let mut store = stores.every_store(&networks, &records)?;
    store.check_forgettable(host).map_err(forget_error)?;
    let question = format!(
        "WARNING! This will release every address host {host} holds on the shared networks \
         defined here, even those its running containers use.\n\
         Are you sure you want to continue? [y/N] "
    );
    if !force && !confirm(&question)? {
        return Ok(());
    }
    let released = store.forget_host(host).map_err(forget_error)?;
    let mut out = String::new();
    for lease in &released {
        out.push_str(&format!(
            "released {} on {} (container {} of host {host})\n",
            lease.ip, lease.network, lease.owner.container_id
        ));
    }
    out.push_str(&format!(
        "gc: released {} leases of host {host}\n",
        released.len()
    ));
    print(format_args!("{out}"))
}

/// A store's error in `gc --forget-host`: a host alive is a conflict (exit 5); any other
/// failure of a store is the store's (exit 1).
fn forget_error(err: oci_macvlan_ipam::Error) -> Error {
    match err.kind() {
        oci_macvlan_ipam::ErrorKind::Conflict => Error::HostAlive(Box::new(err)),
        oci_macvlan_ipam::ErrorKind::Invalid | oci_macvlan_ipam::ErrorKind::System => {
            macvlan::Error::store(err).into()
        }
    }
}
