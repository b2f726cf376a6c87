//! Operator tools over the state dir: `verify` (read-only) and `gc`.

use oci_macvlan_ipam::LmdbStore;
use oci_macvlan_macvlan::{self as macvlan, Networks, Records};

use crate::{
    Context,
    error::{Error, Result},
    network_cmd::print,
};

/// `oci-macvlan verify`: each problem on a line of stdout; exit 6 when there is any.
pub fn verify(ctx: &Context) -> Result<()> {
    let networks = Networks::new(&ctx.config_dir);
    let records = Records::new(&ctx.state_dir);
    let mut store = LmdbStore::open_thorough(&ctx.state_dir).map_err(macvlan::Error::store)?;
    let mut report = macvlan::verify(&networks, &mut store, &records)?;
    report
        .problems
        .extend(ctx.block_on(macvlan::host_access::verify(
            &networks, &mut store, &records,
        ))??);
    for problem in &report.problems {
        print(format_args!("{problem}\n"))?;
    }
    if report.problems.is_empty() {
        print(format_args!(
            "ok: {} leases, {} endpoint records, no problems\n",
            report.leases, report.records
        ))
    } else {
        Err(Error::Inconsistent(report.problems.len()))
    }
}

/// `oci-macvlan gc`: one line per container taken back or left undecided, then a summary.
pub fn gc(ctx: &Context) -> Result<()> {
    let records = Records::new(&ctx.state_dir);
    let networks = Networks::new(&ctx.config_dir);
    let mut store = LmdbStore::open_thorough(&ctx.state_dir).map_err(macvlan::Error::store)?;
    let report = ctx.block_on(macvlan::gc(&mut store, &records, &networks))??;
    let mut out = String::new();
    if report.temps_removed > 0 {
        out.push_str(&format!(
            "removed {} temporary files of writers killed half-way\n",
            report.temps_removed
        ));
    }
    if report.index_rebuilt {
        out.push_str("rebuilt the lease store's indexes from the leases\n");
    }
    let stale = store.clear_stale_readers().map_err(macvlan::Error::store)?;
    if stale > 0 {
        out.push_str(&format!(
            "cleared {stale} read transactions of killed processes from the lease store\n"
        ));
    }
    for line in &report.host_access {
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
    out.push_str(&format!(
        "gc: released {leases} leases of {} gone containers; {} still run; {} undecided; {} busy\n",
        report.released.len(),
        report.alive.len(),
        report.undecided.len() + report.unrecorded.len(),
        report.busy.len()
    ));
    print(format_args!("{out}"))
}
