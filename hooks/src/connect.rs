//! `oci-macvlan network connect | disconnect`: a running container joins or leaves a network.
//! Both go through the hook's own core calls (`attach`, `disconnect`): the same leases, records,
//! locks and rollback, and a line in the journal. A connected network is on the container's
//! record, so its poststop (or `gc`) takes it back with the rest. Where the container runs is
//! the core's to find (`macvlan::locate`), and whether it is on the network already the core's
//! to refuse, under the container's lock.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use oci_macvlan_macvlan::{
    self as macvlan, AttachRequest, Attachment, MacAddr, Networks, Records,
    locate::{Hints, locate, next_ifname},
};

use crate::{
    Context,
    cli::{ConnectArgs, DisconnectArgs, Runtime},
    error::{Error, Result},
    journal::Invocation,
    log,
    network_cmd::print,
};

pub fn connect(
    ctx: &Context,
    networks: &Networks,
    args: &ConnectArgs,
    inv: &mut Invocation,
) -> Result<()> {
    inv.set_container(&args.container);
    inv.action = Some("connect");
    inv.networks = vec![args.network.clone()];
    let id = macvlan::ContainerId::parse(&args.container)?;
    let static_ips = static_ips(args)?;
    let mac = args
        .mac
        .as_deref()
        .map(|mac| {
            mac.parse::<MacAddr>().map_err(|_| Error::Flag {
                flag: "--mac",
                value: mac.to_owned(),
                reason: "not a MAC address (expected six hex octets separated by ':')",
            })
        })
        .transpose()?;
    let records = Records::new(&ctx.state_dir);
    let record = records.read(&id)?;
    let hints = Hints {
        pid: args.locate.pid,
        netns: args.locate.netns.as_deref(),
        runtime: args.locate.runtime.map(|runtime| {
            let program = match runtime {
                Runtime::Runc => "runc",
                Runtime::Crun => "crun",
            };
            (program, args.root.as_deref())
        }),
    };
    let located = locate(&id, &hints, record.as_ref()).map_err(macvlan::Error::from)?;
    let ifname = args
        .ifname
        .clone()
        .unwrap_or_else(|| next_ifname(record.as_ref()));
    // Held until the attach is done: `network rm` waits for it, then sees the lease.
    let _hold = networks.hold()?;
    let network = networks.load(&args.network)?;
    let request = AttachRequest {
        container_id: &id,
        name: None,
        netns: &located.netns,
        persistent_netns: located.persistent,
        pid: located.pid,
        attachments: vec![Attachment {
            network: &network,
            ifname,
            static_ips,
            mac,
        }],
        definitions: networks,
        connect: true,
        cni: false,
        hostname: None,
        on_lease: None,
    };
    // A DHCP lease of a container with a process gets its renewer, as the hook's does.
    let keep = network.dhcp.is_some() && request.pid.is_some();
    let endpoints =
        crate::keeper::attach_keeping(ctx, &records, request, &[network.name.as_str()], keep)?;
    for ep in endpoints {
        let addresses: Vec<String> = ep.addresses.iter().map(ToString::to_string).collect();
        print(format_args!(
            "{} {} {} {}\n",
            ep.ifname,
            ep.network,
            ep.mac,
            addresses.join(" ")
        ))?;
    }
    Ok(())
}

pub fn disconnect(ctx: &Context, args: &DisconnectArgs, inv: &mut Invocation) -> Result<()> {
    inv.set_container(&args.container);
    inv.action = Some("disconnect");
    inv.networks = vec![args.network.clone()];
    let id = macvlan::ContainerId::parse(&args.container)?;
    let records = Records::new(&ctx.state_dir);
    let released = ctx.block_on(macvlan::disconnect(
        &ctx.stores(),
        &records,
        &id,
        &args.network,
    ))??;
    log::released(ctx, &args.container, &released);
    Ok(())
}

fn static_ips(args: &ConnectArgs) -> Result<Vec<IpAddr>> {
    let mut ips = Vec::new();
    if let Some(ip) = &args.ip {
        let v4: Ipv4Addr = ip.parse().map_err(|_| Error::Flag {
            flag: "--ip",
            value: ip.clone(),
            reason: "not an IPv4 address",
        })?;
        ips.push(IpAddr::V4(v4));
    }
    if let Some(ip) = &args.ip6 {
        let v6: Ipv6Addr = ip.parse().map_err(|_| Error::Flag {
            flag: "--ip6",
            value: ip.clone(),
            reason: "not an IPv6 address",
        })?;
        ips.push(IpAddr::V6(v6));
    }
    Ok(ips)
}
