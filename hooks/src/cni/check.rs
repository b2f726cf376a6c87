//! CHECK: the core's check of the attachment ([`macvlan::check`]) against ADD's result
//! (`prevResult`), the container's record, the network's definition and its store; every
//! difference is named.

use oci_macvlan_cni::{self as cni, Env, NetConf, PrevResult};
use oci_macvlan_macvlan::{self as macvlan, Networks, Records};

use super::Failure;
use crate::{Context, error::Error};

pub(super) fn check(ctx: &Context, env: &Env, conf: &NetConf) -> Result<(), Failure> {
    let id = env.container_id()?;
    let ifname = env.ifname()?;
    let netns = env.netns()?;
    let prev = conf.prev_result.as_ref().ok_or(cni::Error::InvalidConfig {
        field: "prevResult",
        reason: "missing: CHECK compares the attachment with ADD's result".into(),
    })?;
    let expected =
        PrevResult::parse(prev)?
            .expected(ifname)?
            .ok_or_else(|| cni::Error::InvalidConfig {
                field: "prevResult",
                reason: format!("no interface {ifname} in a sandbox"),
            })?;
    let networks = Networks::new(&ctx.config_dir);
    let network = networks.load(&conf.network)?;
    let records = Records::new(&ctx.state_dir);
    let problems = ctx
        .block_on(macvlan::check::attachment_problems(
            &ctx.stores(),
            &records,
            &network,
            id,
            ifname,
            netns,
            &expected,
        ))?
        .map_err(Error::from)?;
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Failure::Differs(format!(
            "interface {ifname} in {}: {}",
            netns.display(),
            problems.join("; ")
        )))
    }
}
