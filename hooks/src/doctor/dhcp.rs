//! Doctor's DHCP checks: does a DHCP server (and a DHCPv6 one) answer on the parent?
//!
//! From an anonymous network namespace of its own (never mounted, so the kernel frees it and the
//! link in it when the command ends, on any path, SIGKILL included), on a macvlan of the parent
//! made straight into it with a MAC derived from this host's identity and the parent (repeated
//! runs look like one client), one DISCOVER and one SOLICIT are sent at once and answered within
//! [`TIMEOUT`] each (`oci_macvlan_dhcp::probe`). The sockets are opened inside the namespace
//! (`Netns::open_inside`) and used from the caller's. No REQUEST is sent: nothing is leased. The
//! link is deleted before the namespace is let go; the parent's own addresses and links are only
//! looked at.

use std::{
    collections::hash_map::RandomState,
    hash::{BuildHasher, Hasher},
    io,
    time::Duration,
};

use oci_macvlan_dhcp::{
    ClientId, Config, OnLink, PacketLink, here,
    probe::{self, Heard, mac_of},
    v6::{self, OnLink6, UdpLink, probe::Heard as Heard6},
};
use oci_macvlan_netlink_core::{ChildKind, Handle, MacAddr, MacvlanMode, Netns, NewChild};

use super::{Check, Status};
use crate::{Context, error::one_line};

/// How long each probe waits for an answer by default (they run at once).
pub(super) const TIMEOUT: Duration = Duration::from_secs(3);
/// The probe link's name, inside the scratch namespace.
const LINK: &str = "dhcp0";
/// What a probe thread that panicked is reported as.
const PANICKED: &str = "the probe's thread panicked";
/// What the probe's identity is derived for (the "network" of `ClientId::derive`).
const WHO: &str = "oci-macvlan doctor";

/// The "dhcp" and "dhcpv6" checks of `parent` (a link of the caller's namespace).
pub(super) fn dhcp_checks(ctx: &Context, parent: &str, timeout: Duration) -> Vec<Check> {
    let not_probed = |status, detail: String| vec![Check::new("dhcp", status, detail)];
    let wifi = std::path::Path::new("/sys/class/net")
        .join(parent)
        .join("wireless")
        .exists();
    if wifi {
        return not_probed(
            Status::Warn,
            format!(
                "not probed: {parent} is a Wi-Fi link, which carries no frames for a macvlan's own MAC"
            ),
        );
    }
    let client_id = ClientId::derive(&secret(ctx), WHO, parent);
    let mac = mac_of(&client_id);
    let scratch = match Netns::new_anonymous() {
        Ok(netns) => Scratch { netns },
        Err(err) => return not_probed(Status::Warn, format!("not probed: {}", one_line(&err))),
    };
    let made = ctx
        .block_on(scratch.make_link(parent, mac))
        .map_err(|e| Unprobed::from(one_line(&e)))
        .and_then(|made| made);
    let checks = match made {
        Ok(()) => probe_both(&scratch, parent, client_id, mac, timeout),
        Err(Unprobed::Skip(status, why)) => not_probed(status, format!("not probed: {why}")),
        Err(Unprobed::Macvlan(err)) => vec![
            Check::new(
                "dhcp",
                Status::Warn,
                format!("not probed: a macvlan cannot be made on {parent}: {err}"),
            )
            .advice(
                "a parent that takes no macvlan (a tunnel, Wi-Fi, one with ipvlan networks) cannot be probed: the probe needs a link with a MAC of its own",
            ),
        ],
    };
    // The namespace's end would free the link too, but later and unseen: delete it first.
    let _ = ctx.block_on(scratch.delete_link());
    checks
}

/// Why the probes did not run.
enum Unprobed {
    /// The parent is missing or down: `status` and why.
    Skip(Status, String),
    /// The kernel refused a macvlan on the parent (an ipvlan-only parent).
    Macvlan(String),
}

impl From<String> for Unprobed {
    fn from(why: String) -> Self {
        Self::Skip(Status::Warn, why)
    }
}

/// The per-host input of the probe's identity: the key the DHCP address source derives its
/// clients from when this host has its identity file (never made here: doctor writes nothing),
/// else the host id; a fixed string when neither can be read.
fn secret(ctx: &Context) -> Vec<u8> {
    let stores = ctx.stores();
    match stores.identity(false) {
        Ok(identity) if identity.proof.is_some() => stores
            .source_secret()
            .unwrap_or_else(|_| identity.id.into_bytes()),
        Ok(identity) => identity.id.into_bytes(),
        Err(_) => WHO.as_bytes().to_vec(),
    }
}

/// A random number for the transactions.
fn random() -> u32 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish() as u32
}

/// The scratch namespace.
struct Scratch {
    netns: Netns,
}

impl Scratch {
    /// The probe link: a macvlan of `parent` made straight into the namespace with `mac`, DAD
    /// off (its link-local address usable at once), up.
    async fn make_link(&self, parent: &str, mac: [u8; 6]) -> Result<(), Unprobed> {
        let host = Handle::current().map_err(|e| one_line(&e))?;
        let link = host
            .link_by_name(parent)
            .await
            .map_err(|e| one_line(&e))?
            .ok_or_else(|| Unprobed::Skip(Status::Info, format!("{parent} does not exist")))?;
        if !link.up {
            return Err(Unprobed::Skip(Status::Info, format!("{parent} is down")));
        }
        host.create_child(&NewChild {
            parent: &link,
            name: LINK,
            mac: Some(MacAddr(mac)),
            mtu: None,
            target: &self.netns,
            kind: ChildKind::Macvlan {
                mode: MacvlanMode::Bridge,
                source_macs: &[],
            },
        })
        .await
        .map_err(|e| Unprobed::Macvlan(one_line(&e)))?;
        self.netns
            .open_inside("accept_dad of the probe's link", || v6::prepare_link(LINK))
            .map_err(|e| one_line(&e))?;
        let inside = Handle::open(&self.netns).map_err(|e| one_line(&e))?;
        inside
            .set_link_up_by_name(LINK)
            .await
            .map_err(|e| one_line(&e))?;
        Ok(())
    }

    /// Deletes the probe link, if it was made.
    async fn delete_link(&self) -> oci_macvlan_netlink_core::Result<()> {
        let inside = Handle::open(&self.netns)?;
        if let Some(link) = inside.link_by_name(LINK).await? {
            inside.delete_link(&link).await?;
        }
        Ok(())
    }
}

/// Both probes at once, each on a thread of its own, over sockets opened inside the namespace.
fn probe_both(
    scratch: &Scratch,
    parent: &str,
    client_id: ClientId,
    mac: [u8; 6],
    timeout: Duration,
) -> Vec<Check> {
    let config = Config {
        mac,
        client_id: client_id.clone(),
        hostname: None,
        broadcast: false,
        subnet: None,
        retry_floor: Duration::from_secs(1),
    };
    let config6 = v6::Config {
        client_id,
        hostname: None,
        subnet: None,
    };
    let netns = &scratch.netns;
    let v4_socket = netns
        .open_inside("the DHCP socket", || {
            let index = nix::net::if_::if_nametoindex(LINK)?;
            let link = OnLink {
                name: LINK.into(),
                index,
                mac,
            };
            PacketLink::open(&link, None)
        })
        .map_err(|e| one_line(&e));
    // The link-local address is there as soon as the link is up (DAD is off): a short wait.
    let v6_socket = netns
        .open_inside("the DHCPv6 socket", || {
            let link = OnLink6::named(LINK)?;
            UdpLink::open(&link, Duration::from_millis(500)).map_err(io::Error::other)
        })
        .map_err(|e| one_line(&e));
    // Both at once, from this namespace: the sockets keep theirs.
    let (v4, v6) = std::thread::scope(|scope| {
        let v4 = scope.spawn(|| {
            probe::probe(config, random(), &v4_socket?, timeout).map_err(|e| one_line(&e))
        });
        let v6 = scope.spawn(|| {
            v6::probe::probe(config6, random(), &v6_socket?, timeout).map_err(|e| one_line(&e))
        });
        (
            v4.join().unwrap_or_else(|_| Err(PANICKED.to_owned())),
            v6.join().unwrap_or_else(|_| Err(PANICKED.to_owned())),
        )
    });
    let sent = Sent {
        parent,
        from: MacAddr(mac),
        timeout,
    };
    vec![v4_check(&sent, v4), v6_check(&sent, v6)]
}

/// "N answers refused, the last: …" (`other`: beside offers), or `None`.
fn refused_note(refused: u32, last: Option<&dyn std::fmt::Display>, other: bool) -> Option<String> {
    let why = last.filter(|_| refused > 0)?;
    let other = if other { "other " } else { "" };
    let s = if refused == 1 { "" } else { "s" };
    Some(format!(
        "{refused} {other}answer{s} refused, the last: {why}"
    ))
}

/// What was sent, for the checks' lines.
struct Sent<'a> {
    parent: &'a str,
    from: MacAddr,
    timeout: Duration,
}

fn no_answer(sent: &Sent<'_>, v6: bool, refused: Option<String>) -> Check {
    let refused = refused.map_or(String::new(), |note| format!("; {note}"));
    let (name, family, message) = if v6 {
        ("dhcpv6", "DHCPv6", "SOLICIT")
    } else {
        ("dhcp", "DHCP", "DISCOVER")
    };
    let check = Check::new(
        name,
        Status::Warn,
        format!(
            "no {family} server answered on {} within {} ({message} from {}{refused}); nothing was leased",
            sent.parent,
            humantime::format_duration(sent.timeout),
            sent.from
        ),
    );
    let port = if v6 {
        here::V6_SERVER_PORT
    } else {
        here::V4_SERVER_PORT
    };
    if here::udp_port_bound(port) {
        // The likeliest cause, and one no LAN-side fix cures (netavark#690's scar).
        check.advice(format!(
            "a {family} server or relay listens on this host (UDP port {port}): if it is the one meant to serve this LAN, a macvlan container cannot reach its own host (the kernel passes no frame between a macvlan and its parent's host), so serve the containers of {} from another machine on the LAN",
            sent.parent
        ))
    } else if v6 {
        check.advice(
            "DHCPv6 needs a server on this LAN; many LANs give IPv6 by router advertisements alone",
        )
    } else {
        check.advice(format!(
            "a network with --ipam-driver dhcp on {} would get no address: without a DHCP server on this LAN, give the network a --subnet (the built-in allocator)",
            sent.parent
        ))
    }
}

/// What doctor says of the DHCPv4 probe.
fn v4_check(sent: &Sent<'_>, heard: Result<Heard, String>) -> Check {
    let heard = match heard {
        Ok(heard) => heard,
        Err(err) => return Check::new("dhcp", Status::Warn, format!("not probed: {err}")),
    };
    let last = heard.last.as_ref().map(|e| e as &dyn std::fmt::Display);
    if heard.offers.is_empty() {
        return no_answer(sent, false, refused_note(heard.refused, last, false));
    }
    let offers: Vec<String> = heard
        .offers
        .iter()
        .map(|offer| {
            let mut line = format!(
                "server {} offers {}/{}",
                offer.server, offer.address, offer.prefix
            );
            if let Some(router) = offer.router {
                line += &format!(", router {router}");
            }
            if let Some(lease) = offer.lease {
                line += &format!(", lease {}", humantime::format_duration(lease));
            }
            line
        })
        .collect();
    Check::new(
        "dhcp",
        Status::Ok,
        format!(
            "{}; nothing was leased (a DISCOVER only, from {}){}",
            offers.join("; "),
            sent.from,
            refused_note(heard.refused, last, true).map_or(String::new(), |n| format!("; {n}"))
        ),
    )
}

fn hex(bytes: &[u8]) -> String {
    let parts: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(":")
}

/// What doctor says of the DHCPv6 probe.
fn v6_check(sent: &Sent<'_>, heard: Result<Heard6, String>) -> Check {
    let heard = match heard {
        Ok(heard) => heard,
        Err(err) => return Check::new("dhcpv6", Status::Warn, format!("not probed: {err}")),
    };
    let last = heard.last.as_ref().map(|e| e as &dyn std::fmt::Display);
    if heard.adverts.is_empty() {
        return no_answer(sent, true, refused_note(heard.refused, last, false));
    }
    let offering = heard.adverts.iter().any(|a| !a.addresses.is_empty());
    let adverts: Vec<String> = heard
        .adverts
        .iter()
        .map(|advert| {
            let server = format!("server {}", hex(&advert.server_id));
            match advert.addresses.first() {
                Some(address) => format!(
                    "{server} offers {} (valid {}s)",
                    address.address, address.valid
                ),
                None => format!(
                    "{server} answers with no address ({:?})",
                    advert.status.unwrap_or(v6::answer::Status::NoAddrsAvail)
                ),
            }
        })
        .collect();
    let check = Check::new(
        "dhcpv6",
        if offering { Status::Ok } else { Status::Warn },
        format!(
            "{}; nothing was leased (a SOLICIT only, from {}){}",
            adverts.join("; "),
            sent.from,
            refused_note(heard.refused, last, true).map_or(String::new(), |n| format!("; {n}"))
        ),
    );
    if offering {
        check
    } else {
        check.advice(
            "the server has no address for this client: see its pools for this link's prefix",
        )
    }
}

#[cfg(test)]
mod tests {
    use std::{net::Ipv4Addr, time::Duration};

    use oci_macvlan_dhcp::{
        Refused,
        probe::Offer,
        v6::{
            answer::{IaAddress, Status as V6Status},
            probe::Advert,
        },
    };

    use super::*;
    use crate::doctor::table;

    const MAC: MacAddr = MacAddr([0x4a, 0xe5, 8, 0x10, 0x51, 0x50]);

    /// What doctor says of each outcome of the probes: offers (with refused answers beside
    /// them), silence, refusals alone, a server without an address for us, a probe that could
    /// not run.
    #[test]
    fn doctor_says_who_offers_what_and_that_nothing_was_leased() {
        let offer = |server: [u8; 4], address: [u8; 4]| Offer {
            server: Ipv4Addr::from(server),
            address: Ipv4Addr::from(address),
            prefix: 24,
            router: Some(Ipv4Addr::new(192, 168, 77, 1)),
            dns: Vec::new(),
            lease: Some(Duration::from_secs(3600)),
        };
        let two = Heard {
            offers: vec![
                offer([192, 168, 77, 1], [192, 168, 77, 50]),
                Offer {
                    router: None,
                    lease: None,
                    ..offer([192, 168, 77, 9], [192, 168, 77, 200])
                },
            ],
            refused: 1,
            last: Some(Refused::NoServerId),
            sent: 1,
        };
        let refused_only = Heard {
            refused: 3,
            last: Some(Refused::ClientId),
            sent: 3,
            ..Heard::default()
        };
        let advert = |id: Vec<u8>, addresses: Vec<IaAddress>, status| Advert {
            server_id: id,
            preference: 0,
            addresses,
            status,
            dns: Vec::new(),
        };
        let offered = Heard6 {
            adverts: vec![advert(
                vec![0, 1, 0, 1, 0x2e, 0x9f, 1, 2, 2, 0, 0, 0, 0, 9],
                vec![IaAddress {
                    address: "fd77::164".parse().unwrap(),
                    preferred: 3000,
                    valid: 4000,
                }],
                None,
            )],
            ..Heard6::default()
        };
        let none = Heard6 {
            adverts: vec![advert(
                vec![0, 3, 0, 1, 2, 0, 0, 0, 0, 9],
                Vec::new(),
                Some(V6Status::NoAddrsAvail),
            )],
            ..Heard6::default()
        };
        let sent = Sent {
            parent: "lan0",
            from: MAC,
            timeout: TIMEOUT,
        };
        let checks = [
            v4_check(&sent, Ok(two)),
            v4_check(&sent, Ok(Heard::default())),
            v4_check(&sent, Ok(refused_only)),
            v6_check(&sent, Ok(offered)),
            v6_check(&sent, Ok(none)),
            v6_check(&sent, Ok(Heard6::default())),
            v6_check(
                &sent,
                Err("no IPv6 link-local address on dhcp0 (IPv6 disabled on the link?)".into()),
            ),
        ];
        insta::assert_snapshot!(table(&checks), @r"
        CHECK   STATUS  DETAIL
        dhcp    ok      server 192.168.77.1 offers 192.168.77.50/24, router 192.168.77.1, lease 1h; server 192.168.77.9 offers 192.168.77.200/24; nothing was leased (a DISCOVER only, from 4a:e5:08:10:51:50); 1 other answer refused, the last: no server identifier
        dhcp    warn    no DHCP server answered on lan0 within 3s (DISCOVER from 4a:e5:08:10:51:50); nothing was leased
                        -> a network with --ipam-driver dhcp on lan0 would get no address: without a DHCP server on this LAN, give the network a --subnet (the built-in allocator)
        dhcp    warn    no DHCP server answered on lan0 within 3s (DISCOVER from 4a:e5:08:10:51:50; 3 answers refused, the last: for another client identifier); nothing was leased
                        -> a network with --ipam-driver dhcp on lan0 would get no address: without a DHCP server on this LAN, give the network a --subnet (the built-in allocator)
        dhcpv6  ok      server 00:01:00:01:2e:9f:01:02:02:00:00:00:00:09 offers fd77::164 (valid 4000s); nothing was leased (a SOLICIT only, from 4a:e5:08:10:51:50)
        dhcpv6  warn    server 00:03:00:01:02:00:00:00:00:09 answers with no address (NoAddrsAvail); nothing was leased (a SOLICIT only, from 4a:e5:08:10:51:50)
                        -> the server has no address for this client: see its pools for this link's prefix
        dhcpv6  warn    no DHCPv6 server answered on lan0 within 3s (SOLICIT from 4a:e5:08:10:51:50); nothing was leased
                        -> DHCPv6 needs a server on this LAN; many LANs give IPv6 by router advertisements alone
        dhcpv6  warn    not probed: no IPv6 link-local address on dhcp0 (IPv6 disabled on the link?)
        ");
    }
}
