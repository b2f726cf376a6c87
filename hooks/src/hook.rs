//! `oci-macvlan hook`: attach at createRuntime/prestart, detach at poststop.

use std::io;

use oci_macvlan_macvlan::{
    self as macvlan, AttachRequest, Attachment, ContainerId, Endpoint, Networks, Records,
};
use oci_macvlan_netlink_core::Handle;

use crate::{
    Context, annotations,
    error::{Error, Result},
    journal::Invocation,
    log,
    oci::{Config, State},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Attach,
    Detach,
}

impl Stage {
    fn from_arg(arg: &str) -> Result<Self> {
        match arg {
            "createRuntime" | "prestart" => Ok(Self::Attach),
            "poststop" => Ok(Self::Detach),
            other => Err(Error::UnsupportedStage(other.to_owned())),
        }
    }

    fn from_status(status: &str) -> Result<Self> {
        match status {
            "creating" | "created" => Ok(Self::Attach),
            "stopped" => Ok(Self::Detach),
            other => Err(Error::UnknownStatus {
                status: other.to_owned(),
            }),
        }
    }
}

/// Runs the hook, telling `inv` (the journal's record) what it learns as it goes.
pub fn run(ctx: &Context, stage: Option<&str>, inv: &mut Invocation) -> Result<()> {
    let state = State::read(io::stdin().lock())?;
    inv.set_container(&state.id);
    // Checked once, here: the core takes the id as a type.
    let id = ContainerId::parse(&state.id)?;
    let stage = match stage {
        Some(arg) => Stage::from_arg(arg)?,
        None => Stage::from_status(&state.status)?,
    };
    match stage {
        Stage::Attach => {
            inv.action = Some("attach");
            attach(ctx, &state, &id, inv)
        }
        Stage::Detach => {
            inv.action = Some("detach");
            detach(ctx, &state, &id)
        }
    }
}

fn attach(ctx: &Context, state: &State, id: &ContainerId, inv: &mut Invocation) -> Result<()> {
    let mut not_ours = || {
        inv.skipped = true;
        let key = annotations::NETWORKS;
        log::debug(
            ctx,
            format_args!("container {}: no {key} annotation", state.id),
        );
        Ok(())
    };
    // The state usually carries the config's annotations: a container that is not ours is left
    // alone without reading its config.
    if !state.annotations.is_empty() && !state.annotations.contains_key(annotations::NETWORKS) {
        return not_ours();
    }
    let config = Config::load(&state.config_path()?)?;
    let mut merged = config.annotations.clone();
    merged.extend(state.annotations.clone());
    let Some(requests) = annotations::parse(&merged)? else {
        return not_ours();
    };
    inv.networks = requests.iter().map(|r| r.network.clone()).collect();
    let networks = Networks::new(&ctx.config_dir);
    // Held until the attach is done: `network rm` waits for it, then sees the leases.
    let _hold = networks.hold()?;
    let definitions = requests
        .iter()
        .map(|r| networks.load(&r.network))
        .collect::<Result<Vec<_>, _>>()?;
    let (netns, persistent_netns) = config.netns(state)?;
    let pid = state.pid().and_then(|pid| i32::try_from(pid).ok());
    let attachments = requests
        .iter()
        .zip(&definitions)
        .map(|(r, network)| Attachment {
            network,
            ifname: r.ifname.clone(),
            static_ips: r.static_ips.clone(),
            mac: r.mac,
        })
        .collect();
    // Each DHCP lease gets its renewer, started beside the attach once its exchange is over;
    // a container with no process (a namespace that outlives any) has none here. A re-run
    // starts them again: the slot keeps one pair.
    let leased: Vec<&str> = definitions
        .iter()
        .filter(|n| n.dhcp.is_some())
        .map(|n| n.name.as_str())
        .collect();
    let request = AttachRequest {
        container_id: id,
        name: None,
        netns: &netns,
        persistent_netns,
        pid,
        attachments,
        definitions: &networks,
        connect: false,
        cni: false,
        hostname: config.hostname.as_deref(),
        on_lease: None,
    };
    let records = Records::new(&ctx.state_dir);
    let endpoints = crate::keeper::attach_keeping(ctx, &records, request, &leased, pid.is_some())?;
    for ep in endpoints {
        let addresses: Vec<String> = ep.addresses.iter().map(ToString::to_string).collect();
        log::info(
            ctx,
            format_args!(
                "container {}: {} on {} mac {} {}",
                state.id,
                ep.ifname,
                ep.network,
                ep.mac,
                addresses.join(" ")
            ),
        );
    }
    Ok(())
}

/// The core's attach of `request`, with this host's store policy: the hook's, and `network
/// connect`'s.
pub(crate) fn attach_now(
    ctx: &Context,
    records: &Records,
    request: &AttachRequest<'_>,
) -> Result<Vec<Endpoint>> {
    let stores = ctx.stores();
    ctx.block_on(async {
        let host = Handle::current().map_err(Error::HostNetlink)?;
        Ok(macvlan::attach(&host, &stores, records, request).await?)
    })?
}

fn detach(ctx: &Context, state: &State, id: &ContainerId) -> Result<()> {
    let records = Records::new(&ctx.state_dir);
    let released = ctx.block_on(macvlan::detach(&ctx.stores(), &records, id))??;
    log::released(ctx, &state.id, &released);
    Ok(())
}
