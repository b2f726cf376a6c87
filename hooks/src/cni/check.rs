//! CHECK: the live link compared with ADD's result (`prevResult`) and the container's record;
//! every difference is named.

use std::net::IpAddr;

use oci_macvlan_cni::{self as cni, Env, NetConf, PrevResult};
use oci_macvlan_macvlan::Records;
use oci_macvlan_netlink_core::{Handle, Netns};

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
    let prev = PrevResult::parse(prev)?;
    let (index, prev_link) =
        prev.container_interface(ifname)
            .ok_or_else(|| cni::Error::InvalidConfig {
                field: "prevResult",
                reason: format!("no interface {ifname} in a sandbox"),
            })?;
    let records = Records::new(&ctx.state_dir);
    let record = records.read(id)?;
    let Some(endpoint) = record.as_ref().and_then(|r| {
        r.endpoints
            .iter()
            .find(|e| e.network == conf.network && e.ifname == ifname)
    }) else {
        return Err(Failure::Differs(format!(
            "container {id} has no attachment {ifname} on network {}",
            conf.network
        )));
    };
    let (link, addresses) = ctx
        .block_on(async {
            let ns = Netns::open(netns).map_err(Error::HostNetlink)?;
            let handle = Handle::open(&ns).map_err(Error::HostNetlink)?;
            let Some(link) = handle
                .link_by_name(ifname)
                .await
                .map_err(Error::HostNetlink)?
            else {
                return Ok::<_, Error>(None);
            };
            let addresses = handle
                .global_addresses(&link)
                .await
                .map_err(Error::HostNetlink)?;
            Ok(Some((link, addresses)))
        })??
        .ok_or_else(|| {
            Failure::Differs(format!(
                "interface {ifname} is missing from {}",
                netns.display()
            ))
        })?;
    let mut problems = Vec::new();
    let kind = endpoint.kind.as_deref().unwrap_or("macvlan");
    if link.kind.as_deref() != Some(kind) {
        problems.push(format!(
            "its kind is {}, not {kind}",
            link.kind.as_deref().unwrap_or("none")
        ));
    }
    let live_mac = link.mac.map(|m| m.to_string());
    if let Some(mac) = endpoint.mac
        && live_mac.as_deref() != Some(mac.to_string().as_str())
    {
        problems.push(format!(
            "its MAC is {}, not {mac} as recorded",
            live_mac.as_deref().unwrap_or("none")
        ));
    } else if let Some(mac) = &prev_link.mac
        && !live_mac
            .as_deref()
            .is_some_and(|live| live.eq_ignore_ascii_case(mac))
    {
        problems.push(format!(
            "its MAC is {}, not {mac} as ADD's result says",
            live_mac.as_deref().unwrap_or("none")
        ));
    }
    if endpoint.index.is_some_and(|i| i != link.index) {
        problems.push("it is another link than the one ADD made (its index differs)".into());
    }
    for address in prev.addresses_of(index) {
        if !addresses.contains(&address.ip()) {
            problems.push(format!("address {address} is missing"));
        }
    }
    let expected: Vec<IpAddr> = prev.addresses_of(index).iter().map(|a| a.ip()).collect();
    for live in &addresses {
        if !expected.contains(live) {
            problems.push(format!("it has address {live}, which ADD did not give it"));
        }
    }
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
