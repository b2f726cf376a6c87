//! `oci-macvlan` as a CNI plugin: the binary run with `CNI_COMMAND` set and no arguments.
//! Parses the environment and the config (crates/cni), calls the core as the hook does (the
//! same stores, records, locks and rollback), prints the result or the error as CNI wants it,
//! and exits non-zero on failure.
//!
//! A CNI attachment is the container's record (keyed by `CNI_CONTAINERID`) with one endpoint
//! per interface (`CNI_IFNAME`), in a namespace the runtime made and keeps (`CNI_NETNS`): its
//! links are deleted by DEL, and `gc` judges it by that namespace.

mod check;
mod gc;

use std::{
    io::{self, Write},
    net::IpAddr,
    process::ExitCode,
    time::Duration,
};

use oci_macvlan_cni::{
    self as cni, Command, Env, ErrorReply, NetConf, Version, code, peek_version, read_bounded,
};
use oci_macvlan_macvlan::{
    self as macvlan, AttachRequest, Attachment, ErrorKind, MacAddr, Networks, NotReady, Records,
    StorePolicy,
};

use crate::{
    Context,
    cli::{CONFIG_DIR, LogLevel, STATE_DIR},
    error::Error,
    journal::Invocation,
};

/// Why an invocation failed: the protocol refused it, the core failed, or CHECK found a
/// difference.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Cni(#[from] cni::Error),
    #[error(transparent)]
    Run(Box<Error>),
    #[error("{0}")]
    Differs(String),
    #[error("network {network} cannot serve an ADD")]
    Unavailable {
        network: String,
        /// Its containers may have lost connectivity too (code 51, not 50).
        limited: bool,
        #[source]
        source: Box<Error>,
    },
    #[error("{0}")]
    Busy(String),
    #[error("GC could not take back every stale attachment: {0}")]
    Incomplete(String),
}

impl From<Error> for Failure {
    fn from(err: Error) -> Self {
        Self::Run(Box::new(err))
    }
}

impl From<macvlan::Error> for Failure {
    fn from(err: macvlan::Error) -> Self {
        Error::from(err).into()
    }
}

impl Failure {
    /// The CNI code: the protocol's own, or the core's error kind as the spec's nearest.
    fn code(&self) -> u32 {
        match self {
            Self::Cni(err) => err.code(),
            Self::Differs(_) => code::CHECK_FAILED,
            Self::Unavailable { limited: true, .. } => code::LIMITED_CONNECTIVITY,
            Self::Unavailable { .. } => code::NOT_AVAILABLE,
            Self::Incomplete(_) => code::FAILED,
            Self::Busy(_) => code::TRY_AGAIN_LATER,
            Self::Run(err) => run_code(err),
        }
    }
}

/// The core's and the binary's errors as the spec's nearest codes.
fn run_code(err: &Error) -> u32 {
    match err {
        Error::Stores(err) if oci_macvlan_stores::HostStores::is_unavailable(err) => {
            code::TRY_AGAIN_LATER
        }
        Error::Macvlan(macvlan::Error::Store(err)) if err.is_unavailable() => code::TRY_AGAIN_LATER,
        Error::Macvlan(macvlan::Error::NetworkNotFound(_)) => code::INVALID_CONFIG,
        Error::Macvlan(err) => kind_code(err.kind()),
        Error::Stores(err) => kind_code(err.kind()),
        _ => code::FAILED,
    }
}

fn kind_code(kind: ErrorKind) -> u32 {
    match kind {
        ErrorKind::Invalid => code::INVALID_CONFIG,
        // What the request names is gone: its namespace.
        ErrorKind::NotFound => code::UNKNOWN_CONTAINER,
        ErrorKind::Conflict => code::CONFLICT,
        ErrorKind::System => code::FAILED,
    }
}

/// Runs the plugin: prints the result (ADD, VERSION) or the error on stdout, the error line
/// on stderr too.
pub fn main() -> ExitCode {
    let mut version = Version::LATEST;
    let outcome = run(&mut version);
    let (json, ok) = match outcome {
        Ok(None) => return ExitCode::SUCCESS,
        Ok(Some(json)) => (json, true),
        Err(failure) => {
            let reply = ErrorReply::new(version.as_str(), failure.code(), &failure);
            eprintln!(
                "oci-macvlan: error: {}",
                crate::error::cut(&reply.msg, 1024)
            );
            (serde_json::to_value(&reply).unwrap_or_default(), false)
        }
    };
    let mut stdout = io::stdout().lock();
    let written = serde_json::to_writer(&mut stdout, &json)
        .map_err(io::Error::from)
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush());
    match (ok, written) {
        (true, Ok(())) => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

/// One invocation; `version` is set to the config's as soon as it is known, for the error.
fn run(version: &mut Version) -> Result<Option<serde_json::Value>, Failure> {
    let bytes = read_bounded(io::stdin().lock())?;
    if let Some(peeked) = peek_version(&bytes) {
        *version = peeked;
    }
    let env = Env::read(std::env::var_os)?;
    if env.command == Command::Version {
        return Ok(Some(cni::version_info()));
    }
    let conf = NetConf::parse(&bytes)?;
    let ctx = Context {
        config_dir: conf.config_dir_or(CONFIG_DIR.as_ref()).to_path_buf(),
        state_dir: conf.state_dir_or(STATE_DIR.as_ref()).to_path_buf(),
        log_level: LogLevel::Warn,
        host_id: None,
    };
    match env.command {
        Command::Check if !conf.version.has_check() => {
            return Err(not_in_version("CHECK", conf.version));
        }
        Command::Gc | Command::Status if !conf.version.has_gc_and_status() => {
            return Err(not_in_version(env.command.as_str(), conf.version));
        }
        _ => {}
    }
    ctx.check_dirs()?;
    let mut inv = Invocation::start(Some(&format!("cni:{}", env.command.as_str())));
    if let Some(id) = &env.container_id {
        inv.set_container(id);
    }
    inv.networks = vec![conf.network.clone()];
    let result = match env.command {
        Command::Add => {
            inv.action = Some("attach");
            add(&ctx, &env, &conf).map(Some)
        }
        Command::Del => {
            inv.action = Some("detach");
            del(&ctx, &env, &conf).map(|()| None)
        }
        Command::Check => check::check(&ctx, &env, &conf).map(|()| None),
        Command::Status => status(&conf, &ctx).map(|()| None),
        Command::Gc => {
            inv.action = Some("gc");
            gc::gc(&ctx, &conf).map(|()| None)
        }
        Command::Version => Ok(Some(cni::version_info())),
    };
    // The journal gets the line a hook's failure gets.
    match result {
        Err(Failure::Run(err)) => {
            let failed = Err(*err);
            inv.record(&ctx.state_dir, &failed);
            match failed {
                Err(err) => Err(err.into()),
                Ok(()) => Ok(None),
            }
        }
        other => {
            if other.is_ok() {
                inv.record(&ctx.state_dir, &Ok(()));
            }
            other
        }
    }
}

fn not_in_version(command: &'static str, version: Version) -> Failure {
    cni::Error::CommandNotInVersion {
        command,
        version: version.as_str(),
    }
    .into()
}

/// ADD: the core's attach of one network, as `network connect` does it (a network the
/// container is on already is refused), into the runtime's namespace, which outlives the
/// container's processes (DEL deletes the link).
fn add(ctx: &Context, env: &Env, conf: &NetConf) -> Result<serde_json::Value, Failure> {
    // A chained `prevResult` of the wrong shape is refused before anything is made.
    if let Some(prev) = &conf.prev_result {
        cni::chained(prev, serde_json::json!({}))?;
    }
    let id = env.container_id()?;
    let netns = env.netns()?;
    let static_ips = agree_ips(&env.args.ips, &conf.ips)?;
    let mac = agree_mac(env.args.mac, conf.mac)?;
    let networks = Networks::new(&ctx.config_dir);
    // Held until the attach is done: `network rm` waits for it, then sees the lease.
    let _hold = networks.hold()?;
    let network = networks.load(&conf.network)?;
    let ifname = env.ifname()?.to_owned();
    // A DHCP lease gets its renewer, watching the namespace (there is no process), started
    // beside the attach once its exchange is over: it ends when the namespace goes or DEL (or
    // GC) removes the record.
    let request = AttachRequest {
        container_id: id,
        name: env.args.name.clone(),
        netns,
        persistent_netns: true,
        pid: None,
        attachments: vec![Attachment {
            network: &network,
            ifname,
            static_ips,
            mac,
        }],
        definitions: &networks,
        connect: true,
        cni: true,
        // The pod's name as the DHCP hostname (option 12), if the source's check passes it.
        hostname: env.args.pod_name.as_deref(),
        on_lease: None,
    };
    let records = Records::new(&ctx.state_dir);
    let endpoints = crate::keeper::attach_keeping(
        ctx,
        &records,
        request,
        &[network.name.as_str()],
        network.dhcp.is_some(),
    )?;
    let ep = endpoints
        .into_iter()
        .next()
        .ok_or_else(|| Failure::Differs("the attach returned no endpoint".into()))?;
    let ours = cni::CniResult::attached(
        network.parent.as_str(),
        &ep.ifname,
        ep.link_mac().map(|mac| mac.to_string()).as_deref(),
        netns,
        &ep.addresses,
        &ep.gateways,
    )
    .to_json(conf.version);
    // In a chain, the earlier plugins' result passes through with ours added.
    Ok(match &conf.prev_result {
        Some(prev) => cni::chained(prev, ours)?,
        None => ours,
    })
}

/// `IP=` and `runtimeConfig.ips` together (podman may send both): one address per family,
/// and two that differ are refused.
fn agree_ips(args: &[IpAddr], runtime: &[IpAddr]) -> Result<Vec<IpAddr>, Failure> {
    let mut ips = runtime.to_vec();
    for ip in args {
        match ips.iter().find(|old| old.is_ipv4() == ip.is_ipv4()) {
            Some(old) if old != ip => {
                return Err(cni::Error::InvalidConfig {
                    field: "runtimeConfig.ips",
                    reason: format!("{old} differs from CNI_ARGS IP={ip}"),
                }
                .into());
            }
            Some(_) => {}
            None => ips.push(*ip),
        }
    }
    Ok(ips)
}

fn agree_mac(args: Option<MacAddr>, runtime: Option<MacAddr>) -> Result<Option<MacAddr>, Failure> {
    match (args, runtime) {
        (Some(a), Some(r)) if a != r => Err(cni::Error::InvalidConfig {
            field: "runtimeConfig.mac",
            reason: format!("{r} differs from CNI_ARGS MAC={a}"),
        }
        .into()),
        (a, r) => Ok(r.or(a)),
    }
}

/// DEL: the core's disconnect of the network, if the container's record has it under
/// `CNI_IFNAME`; nothing to do (and success) otherwise, however often it runs.
fn del(ctx: &Context, env: &Env, conf: &NetConf) -> Result<(), Failure> {
    let id = env.container_id()?;
    let ifname = env.ifname()?;
    let records = Records::new(&ctx.state_dir);
    // Only an attachment this plugin made: a hook-attached container of the same id (its
    // record not marked `cni`) is the hook's to take back, at its poststop or by `gc`.
    let Some(record) = records.read(id)? else {
        // An ADD killed before it wrote the record leaves its lock file alone.
        records.remove_unrecorded_lock(id)?;
        return Ok(());
    };
    let ours = record.cni
        && record
            .endpoints
            .iter()
            .any(|e| e.network == conf.network && e.ifname == ifname);
    if !ours {
        return Ok(());
    }
    match ctx.block_on(macvlan::disconnect(
        &ctx.stores(),
        &records,
        id,
        &conf.network,
    ))? {
        Ok(_released) => {
            // Its renewer ends now, not at its next look at the record: an ADD again for the
            // same id (a restart) starts a pair of its own at once.
            crate::keeper::stop(&records, id, &conf.network);
            Ok(())
        }
        // Another DEL took it back meanwhile.
        Err(oci_macvlan_stores::Error::Core(macvlan::Error::NotConnected { .. })) => Ok(()),
        Err(err) => Err(Error::from(err).into()),
    }
}

/// How long STATUS waits for a `network create` or `rm` that holds the definitions.
const STATUS_WAIT: Duration = Duration::from_secs(2);

/// STATUS: the core's answer whether an ADD could be served now ([`macvlan::attach_ready`]),
/// as the spec's codes: 11 while a `network create`/`rm` holds the definitions past the
/// wait, 51 when the parent is gone (the network's containers lost their links with it), 50
/// when the definition or the store cannot serve.
fn status(conf: &NetConf, ctx: &Context) -> Result<(), Failure> {
    let networks = Networks::new(&ctx.config_dir);
    let ready = ctx.block_on(macvlan::attach_ready(
        &ctx.stores(),
        &networks,
        &conf.network,
        STATUS_WAIT,
    ))?;
    let (limited, source) = match ready {
        Ok(()) => return Ok(()),
        Err(NotReady::Busy) => {
            return Err(Failure::Busy(format!(
                "network {} is being created or removed: try again later",
                conf.network
            )));
        }
        Err(NotReady::Definition(err)) => (false, Error::from(err)),
        Err(NotReady::Parent(err)) => (true, Error::from(err)),
        Err(NotReady::Store(err)) => (false, Error::from(err)),
    };
    Err(Failure::Unavailable {
        network: conf.network.clone(),
        limited,
        source: Box::new(source),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|ip| ip.parse().unwrap()).collect()
    }

    /// `IP=` and `runtimeConfig.ips` together: one address per family from either, the same
    /// address from both once, two different ones of a family refused as an invalid config.
    #[test]
    fn cni_args_and_runtime_config_must_agree() {
        let both = agree_ips(&ips(&["10.0.0.5", "fd00::5"]), &ips(&["10.0.0.5"])).unwrap();
        assert_eq!(both, ips(&["10.0.0.5", "fd00::5"]));
        assert_eq!(
            agree_ips(&[], &ips(&["10.0.0.6"])).unwrap(),
            ips(&["10.0.0.6"])
        );
        let err = agree_ips(&ips(&["10.0.0.5"]), &ips(&["10.0.0.6"])).unwrap_err();
        assert_eq!(err.code(), code::INVALID_CONFIG, "{err}");
        let a: MacAddr = "02:00:00:00:00:01".parse().unwrap();
        let b: MacAddr = "02:00:00:00:00:02".parse().unwrap();
        assert_eq!(agree_mac(Some(a), None).unwrap(), Some(a));
        assert_eq!(agree_mac(Some(a), Some(a)).unwrap(), Some(a));
        assert_eq!(
            agree_mac(Some(a), Some(b)).unwrap_err().code(),
            code::INVALID_CONFIG
        );
    }
}
