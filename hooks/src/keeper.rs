//! The DHCP lease's renewer, as this binary's hidden `dhcp-keeper` command: started beside a
//! DHCP attach (the hook's, the CNI plugin's, `network connect`'s), never waited for. The duty is the core's
//! (`macvlan::DhcpRenewal`), the keeper's life `oci_macvlan_keeper`'s; this file starts
//! one, and turns the command line into them.

use std::{ffi::OsString, path::PathBuf, process::Command, sync::Mutex};

use oci_macvlan_keeper::{Container, Ended, Ready, Slot};
use oci_macvlan_macvlan::{
    AttachRequest, ContainerId, DhcpRenewal, Endpoint, LeaseStep, Networks, OnLease, Records,
    Renewed, Start,
};

use crate::{Context, error::Result, journal::Invocation};

/// What the runtime may leave in the environment that the global options, given on a keeper's
/// command line, must not be overridden by.
const GLOBAL_VARS: [&str; 3] = [
    "OCI_MACVLAN_CONFIG_DIR",
    "OCI_MACVLAN_STATE_DIR",
    "OCI_MACVLAN_HOST_ID",
];

/// The program and arguments that run a keeper of `container`'s lease on `network`, with this
/// run's dirs.
fn invocation(ctx: &Context, container: &str, network: &str) -> Result<(PathBuf, Vec<OsString>)> {
    let exe = std::env::current_exe().map_err(crate::error::Error::Keeper)?;
    let mut args: Vec<OsString> = vec![
        "--config-dir".into(),
        ctx.config_dir.clone().into(),
        "--state-dir".into(),
        ctx.state_dir.clone().into(),
    ];
    if let Some(host_id) = &ctx.host_id {
        args.extend(["--host-id".into(), host_id.into()]);
    }
    args.extend(
        [
            "dhcp-keeper",
            "--container",
            container,
            "--network",
            network,
        ]
        .map(OsString::from),
    );
    Ok((exe, args))
}

/// The command that runs a keeper of `container`'s lease on `network` (see [`invocation`]).
fn command(ctx: &Context, container: &str, network: &str) -> Result<Command> {
    let (exe, args) = invocation(ctx, container, network)?;
    let mut command = Command::new(exe);
    command.args(args);
    for var in GLOBAL_VARS {
        command.env_remove(var);
    }
    Ok(command)
}

/// The keeper of [`invocation`], made ready to start without waiting for it.
fn ready(ctx: &Context, container: &str, network: &str) -> Result<Ready> {
    let (exe, args) = invocation(ctx, container, network)?;
    let env = std::env::vars_os().filter(|(key, _)| !GLOBAL_VARS.iter().any(|var| key == var));
    let failed = format!(
        "oci-macvlan: warning: no renewer for the DHCP lease of container {container} on {network}: {} could not be started",
        exe.display()
    );
    Ready::new(&exe, &args, env, &failed)
        .map_err(|e| crate::error::Error::Keeper(std::io::Error::other(e)))
}

/// The core's attach of `request` (`crate::hook::attach_now`), the hook's, the CNI plugin's and
/// `network connect`'s: with `keepers`, the renewer of each of `leased` (the attach's DHCP
/// networks) is started beside it ([`Beside`]).
pub fn attach_keeping(
    ctx: &Context,
    records: &Records,
    request: AttachRequest<'_>,
    leased: &[&str],
    keepers: bool,
) -> Result<Vec<Endpoint>> {
    let beside = Beside::new(ctx, request.container_id.as_str());
    let tell = |network: &str, step| beside.tell(network, step);
    let request = AttachRequest {
        on_lease: keepers.then_some(OnLease(&tell)),
        ..request
    };
    let endpoints = crate::hook::attach_now(ctx, records, &request)?;
    // Those whose lease took no exchange (kept from an earlier run): now.
    if keepers {
        beside.rest(leased);
    }
    Ok(endpoints)
}

/// Renewers started during an attach (`AttachRequest::on_lease`, [`Self::tell`]): for each
/// network whose lease's REQUEST is out, its keeper's start is made ready then (on the core's
/// helper thread, while the server answers) and handed to the core, whose packet socket's
/// closer child starts it once it has closed the socket (no process is made for it on the
/// attach's thread). A keeper whose `execve` fails then is said nowhere (that child has no
/// stderr left: a runtime would wait for it); as with one that cannot start at all, the lease
/// runs until its expiry and a hook re-run starts one again. Where no closer could be made
/// (`carried` false), it is started here once the exchange is over. Once the attach is done,
/// [`Self::rest`] starts those of the DHCP networks not told of (a lease kept from an earlier
/// run). One made ready and never started (a panic between the two, unwinding in a debug
/// build; a release build aborts) is started when this is dropped: it reads the record, and
/// ends at once when no lease is recorded in full.
pub struct Beside<'a> {
    ctx: &'a Context,
    container: &'a str,
    told: Mutex<Vec<(String, Keeper)>>,
}

/// Where a told network's keeper is.
enum Keeper {
    /// Made ready (or why it could not be), not started.
    Ready(Result<Ready>),
    /// Started, or said why not.
    Started,
}

impl<'a> Beside<'a> {
    /// For `container`.
    pub fn new(ctx: &'a Context, container: &'a str) -> Self {
        Self {
            ctx,
            container,
            told: Mutex::new(Vec::new()),
        }
    }

    /// What the core tells of `network`'s lease (see [`LeaseStep`]); at the REQUEST, the
    /// keeper's start, for the core's closer child to make.
    pub fn tell(&self, network: &str, step: LeaseStep) -> Option<Start> {
        match step {
            LeaseStep::Requested => {
                let made = ready(self.ctx, self.container, network);
                let start = made.as_ref().ok().map(Ready::start_of);
                if let Ok(mut told) = self.told.lock() {
                    told.push((network.to_owned(), Keeper::Ready(made)));
                }
                start
            }
            LeaseStep::Exchanged { carried } => {
                let keeper = self.told.lock().ok().and_then(|mut told| {
                    let (_, keeper) = told.iter_mut().find(|(n, _)| n == network)?;
                    Some(std::mem::replace(keeper, Keeper::Started))
                });
                match keeper {
                    // The closer child starts it once it has closed its socket.
                    Some(Keeper::Ready(Ok(_))) if carried => {}
                    Some(Keeper::Ready(made)) => launch(self.container, network, made),
                    Some(Keeper::Started) => {}
                    // Not made ready (the core tells the REQUEST first): made now.
                    None => start(self.ctx, self.container, &[network]),
                }
                None
            }
        }
    }

    /// Starts the keepers of those of `leased` (the attach's DHCP networks) not told of.
    pub fn rest(&self, leased: &[&str]) {
        let told: Vec<String> = self
            .told
            .lock()
            .map(|told| told.iter().map(|(n, _)| n.clone()).collect())
            .unwrap_or_default();
        let rest: Vec<&str> = leased
            .iter()
            .copied()
            .filter(|n| !told.iter().any(|t| t == n))
            .collect();
        start(self.ctx, self.container, &rest);
    }
}

impl Drop for Beside<'_> {
    /// A keeper made ready is never left unstarted (see [`Beside`]).
    fn drop(&mut self) {
        let told = self.told.get_mut().map(std::mem::take).unwrap_or_default();
        for (network, keeper) in told {
            if let Keeper::Ready(made) = keeper {
                launch(self.container, &network, made);
            }
        }
    }
}

/// Starts a keeper for each of `networks` (those of a DHCP attach whose lease took no
/// exchange, or whose start was not made ready; `gc`'s restart of an unkept pair), and returns
/// at once. One that cannot start is said on stderr (by this process, or by the child whose
/// `execve` failed): the attach stands, its lease runs until its expiry, and a hook re-run
/// starts one again.
pub fn start(ctx: &Context, container: &str, networks: &[&str]) {
    for network in networks {
        launch(container, network, ready(ctx, container, network));
    }
}

/// Starts the keeper `made` ready for `container`'s lease on `network`; one that cannot start
/// is said on stderr (see [`start`]).
fn launch(container: &str, network: &str, made: Result<Ready>) {
    let started = made.and_then(|ready| {
        ready
            .start()
            .map_err(|e| crate::error::Error::Keeper(std::io::Error::other(e)))
    });
    if let Err(err) = started {
        eprintln!(
            "oci-macvlan: warning: no renewer for the DHCP lease of container {container} on {network}: {}",
            crate::error::line(&err)
        );
    }
}

/// `oci-macvlan dhcp-keeper`: keeps the lease of `container` on `network` until the container
/// ends or the lease is given back. Its standard streams are `/dev/null`: what it does goes to
/// the hook journal. It makes no dir (`main` has turned dir making off for it).
pub fn run(ctx: &Context, container: &str, network: &str) -> Result<()> {
    oci_macvlan_keeper::detach()
        .map_err(|e| crate::error::Error::Keeper(std::io::Error::other(e)))?;
    let id = ContainerId::parse(container)?;
    let records = Records::new(&ctx.state_dir);
    // Started as the lease's exchange ends (by the packet socket's closer child, or by the
    // attach), the keeper reads what the attach wrote once the attach is over.
    records.wait_unlocked(&id)?;
    // The container as the attach recorded it: its process; or, with none (a CNI container,
    // whose namespace outlives any process), the path of its namespace, which must still name
    // the recorded one. Gone, or neither recorded: nothing to keep. Nor is there when the
    // record holds no lease on the network, or only an attach's offer whose ACK it never
    // recorded (an attach that failed or died after its keeper was started): a take-back gives
    // that back. A renewer's offer is the lease being discovered again: kept.
    let Some(watched) = records
        .read(&id)?
        .filter(|record| holds_lease(record, network))
        .and_then(|record| watched(&record))
    else {
        return Ok(());
    };
    let slot = Slot::new(records.keeper_dir(&id, network));
    let state_dir = ctx.state_dir.clone();
    let (journal_id, journal_net) = (container.to_owned(), network.to_owned());
    let mut last_renewed = None;
    let report = move |result: &oci_macvlan_macvlan::Result<Renewed>| {
        if matches!(result, Ok(Renewed::Extended { .. }))
            && !journaled(&mut last_renewed, std::time::Instant::now())
        {
            return;
        }
        let mut inv = Invocation::start(Some("dhcp-keeper"));
        inv.set_container(&journal_id);
        inv.networks = vec![journal_net.clone()];
        inv.action = Some(match result {
            Ok(Renewed::Extended { .. }) => "renewed",
            Ok(Renewed::Moved { .. }) => "leased",
            Ok(Renewed::Refused(_)) => "refused",
            Ok(Renewed::Expired(_)) => "expired",
            Err(_) => "renew",
        });
        let result = match result {
            Ok(_) => Ok(()),
            Err(err) => Err(crate::error::Error::Renewal(oci_macvlan_macvlan::one_line(
                err,
            ))),
        };
        inv.record_kept(&state_dir, &result);
    };
    let mut duty = DhcpRenewal::new(
        ctx.stores(),
        Networks::new(&ctx.config_dir),
        records,
        id,
        network.to_owned(),
        Box::new(report),
    );
    let ended = oci_macvlan_keeper::run(&slot, &watched, &mut duty, &mut || {
        oci_macvlan_keeper::spawn(command(ctx, container, network).map_err(|e| {
            oci_macvlan_keeper::Error::Spawn {
                program: "oci-macvlan".into(),
                source: std::io::Error::other(e.to_string()),
            }
        })?)
    })
    .map_err(|e| crate::error::Error::Keeper(std::io::Error::other(e)))?;
    // A slot removed under the pair (`stop`) is no longer theirs: what is there now is a new
    // pair's.
    if !matches!(ended, Ended::Taken | Ended::SlotGone) {
        remove_slot(&slot);
    }
    Ok(())
}

/// How often a keeper journals the renewals of a lease that is renewed more often: a server
/// that hands out leases of seconds would otherwise push the journal's history out (it keeps
/// 4 MiB) with a line a second for each of its containers. A lease moved, refused or run out,
/// and every failure, always get their line.
const RENEWED_LINE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Whether a renewal at `now` gets its journal line (`last`: when the last one did): the
/// first does, then one each [`RENEWED_LINE_EVERY`].
fn journaled(last: &mut Option<std::time::Instant>, now: std::time::Instant) -> bool {
    if last.is_some_and(|at| now.saturating_duration_since(at) < RENEWED_LINE_EVERY) {
        return false;
    }
    *last = Some(now);
    true
}

/// Starts the keeper pair again for each DHCP endpoint of `containers` (ones `gc` found alive)
/// whose slot is there but no keeper holds it (both were killed together): a running
/// container's hook does not run again to start them. One line per pair started.
pub fn restart_unkept(ctx: &Context, records: &Records, containers: &[String]) -> Vec<String> {
    let mut lines = Vec::new();
    for id in containers {
        let Ok(Some(record)) = records.read(id) else {
            continue;
        };
        if watched(&record).is_none() {
            continue;
        }
        for endpoint in record.endpoints.iter().filter(|e| e.dhcp.is_some()) {
            let slot = Slot::new(records.keeper_dir(&record.container_id, &endpoint.network));
            // A slot is made by the first keeper: none there, none was ever started (a hook
            // given no pid starts none).
            if slot.dir().is_dir() && slot.unheld().unwrap_or(false) {
                start(
                    ctx,
                    record.container_id.as_str(),
                    &[endpoint.network.as_str()],
                );
                lines.push(format!(
                    "started the renewer of container {id} on {} (no keeper held it)",
                    endpoint.network
                ));
            }
        }
    }
    lines
}

/// Ends the keeper pair of `container`'s lease on `network` (its endpoint just detached):
/// removes their slot, which each notices at its next look (`Ended::SlotGone`; a second at
/// most for a pair watching a namespace). A pair started meanwhile for a new attach of the same
/// id makes a new slot, never held by the old pair.
pub fn stop(records: &Records, container: &ContainerId, network: &str) {
    let _ = std::fs::remove_dir_all(records.keeper_dir(container, network));
}

/// Whether `record` holds a lease on `network` that an attach recorded in full, or that a
/// renewer is discovering again (not an attach's offer still pending its ACK).
fn holds_lease(record: &oci_macvlan_macvlan::Record, network: &str) -> bool {
    record
        .endpoints
        .iter()
        .filter(|e| e.network == network)
        .filter_map(|e| e.dhcp.as_ref())
        .any(|dhcp| !dhcp.renewal.pending || dhcp.renewal.rediscovery)
}

/// What tells that `record`'s container still lives, if it does.
fn watched(record: &oci_macvlan_macvlan::Record) -> Option<Container> {
    let liveness = record.liveness.as_ref()?;
    match (liveness.process, &record.netns) {
        (Some(process), _) => Container::open(process.pid, process.start).ok(),
        // A namespace made since at the path (the old one's inode, another cookie) is not the
        // container's: a keeper started for it ends at once, as its standby would.
        (None, Some(path)) if liveness.is_at(path).unwrap_or(false) => {
            Container::by_netns(path, liveness.netns_dev, liveness.netns_ino).ok()
        }
        (None, _) => None,
    }
}

/// Removes a slot nobody holds any more (the standby ends with the container too; a slot it
/// still holds is left for the next keeper of the same name). Both keepers of a pair end at
/// once with their container and each tries: the one holding the active role waits a moment
/// for the other's brief hold of the standby's to go (the other, without the active role,
/// leaves at once), so that one of them removes it.
fn remove_slot(slot: &Slot) {
    let Ok(oci_macvlan_keeper::Role::Active(active)) = slot.claim() else {
        return;
    };
    for _ in 0..REMOVE_TRIES {
        match slot.claim() {
            Ok(oci_macvlan_keeper::Role::Standby(standby)) => {
                let _ = std::fs::remove_dir_all(slot.dir());
                drop(standby);
                break;
            }
            Ok(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            Err(_) => break,
        }
    }
    drop(active);
}

/// How often [`remove_slot`] tries the standby's role (20 ms apart).
const REMOVE_TRIES: u32 = 25;

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn a_renewal_gets_a_journal_line_then_one_a_minute() {
        let start = Instant::now();
        let mut last = None;
        let at = |secs| start + Duration::from_secs(secs);
        assert!(journaled(&mut last, at(0)));
        assert!(!journaled(&mut last, at(1)));
        assert!(!journaled(&mut last, at(59)));
        assert!(journaled(&mut last, at(60)));
        assert!(!journaled(&mut last, at(100)));
        assert!(journaled(&mut last, at(121)));
    }
}
