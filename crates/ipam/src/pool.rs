use std::{
    collections::BTreeMap,
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};
use serde::{Deserialize, Serialize};

use crate::{
    Error, Result,
    addr::{bounds, from_key, max_prefix, to_key},
};

/// Address blocks no LAN can use, in the order a subnet overlapping several is told about.
const UNUSABLE: [(IpNetwork, &str); 8] = [
    (v4(0, 0, 0, 0, 8), "\"this network\", a source address only"),
    (v4(127, 0, 0, 0, 8), "loopback"),
    (v4(224, 0, 0, 0, 4), "multicast"),
    (
        v4(240, 0, 0, 0, 4),
        "reserved, with the limited broadcast address",
    ),
    (
        v6([0, 0, 0, 0, 0, 0, 0, 0], 96),
        "the unspecified, loopback and IPv4-compatible addresses",
    ),
    (
        v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96),
        "IPv4-mapped addresses",
    ),
    (
        v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
        "link-local: every interface has its own",
    ),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "multicast"),
];

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> IpNetwork {
    match Ipv4Network::new_checked(Ipv4Addr::new(a, b, c, d), prefix) {
        Some(net) => IpNetwork::V4(net),
        None => panic!("invalid IPv4 block"),
    }
}

const fn v6(s: [u16; 8], prefix: u8) -> IpNetwork {
    let addr = Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]);
    match Ipv6Network::new_checked(addr, prefix) {
        Some(net) => IpNetwork::V6(net),
        None => panic!("invalid IPv6 block"),
    }
}

/// The first block of [`UNUSABLE`] that `subnet` overlaps, with why no LAN can use it.
fn unusable_block(subnet: IpNetwork) -> Option<(IpNetwork, &'static str)> {
    UNUSABLE.iter().copied().find(|(block, _)| {
        block.is_ipv4() == subnet.is_ipv4()
            && (block.contains(subnet.network()) || subnet.contains(block.network()))
    })
}

/// One subnet of a network and the rules for handing out its addresses. Read from JSON through
/// [`Pool::new`]: a hand-edited definition gets `network create`'s checks and errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawPool")]
pub struct Pool {
    /// The subnet, canonical (no host bits).
    pub subnet: IpNetwork,
    /// The gateway containers route through, never handed out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// The part of the subnet dynamic addresses come from (`--ip-range`); the whole subnet
    /// when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<IpNetwork>,
    /// Named addresses of the subnet that are never handed out (`--aux-address`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aux_addresses: BTreeMap<String, IpAddr>,
}

/// A pool as JSON has it, before [`Pool::new`] checks it.
#[derive(Deserialize)]
struct RawPool {
    subnet: IpNetwork,
    #[serde(default)]
    gateway: Option<IpAddr>,
    #[serde(default)]
    ip_range: Option<IpNetwork>,
    #[serde(default)]
    aux_addresses: BTreeMap<String, IpAddr>,
}

impl TryFrom<RawPool> for Pool {
    type Error = Error;

    fn try_from(raw: RawPool) -> Result<Self> {
        Self::new(raw.subnet, raw.gateway, raw.ip_range, raw.aux_addresses)
    }
}

/// Why an address of a subnet is never handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserved {
    /// The subnet's first address (IPv4).
    NetworkAddress,
    /// IPv6's first address of a subnet (RFC 4291 2.6.1).
    SubnetRouterAnycast,
    /// The subnet's last address (IPv4).
    Broadcast,
    /// The pool's gateway.
    Gateway,
    /// An auxiliary address, by its name.
    Aux(String),
}

impl fmt::Display for Reserved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NetworkAddress => f.write_str("network address"),
            Self::SubnetRouterAnycast => f.write_str("subnet-router anycast address"),
            Self::Broadcast => f.write_str("broadcast address"),
            Self::Gateway => f.write_str("gateway"),
            Self::Aux(name) => write!(f, "auxiliary address {name}"),
        }
    }
}

impl Pool {
    /// Checks a pool as `network create` receives it, with Docker's wording.
    pub fn new(
        subnet: IpNetwork,
        gateway: Option<IpAddr>,
        ip_range: Option<IpNetwork>,
        aux_addresses: BTreeMap<String, IpAddr>,
    ) -> Result<Self> {
        let canonical = canonical_of(subnet);
        if canonical.ip() != subnet.ip() {
            return Err(Error::SubnetNotCanonical {
                given: subnet,
                canonical,
            });
        }
        if let Some((block, why)) = unusable_block(subnet) {
            return Err(Error::SubnetUnusable { subnet, block, why });
        }
        if subnet.prefix() == max_prefix(subnet) {
            return Err(Error::SubnetTooSmall(subnet));
        }
        let pool = Self {
            subnet,
            gateway,
            ip_range,
            aux_addresses,
        };
        if let Some(range) = ip_range {
            let canonical = canonical_of(range);
            if canonical.ip() != range.ip() {
                return Err(Error::RangeNotCanonical {
                    given: range,
                    canonical,
                });
            }
            if range.is_ipv4() != subnet.is_ipv4() || !subnet.contains(range.network()) {
                if range.prefix() < subnet.prefix() && range.is_ipv4() == subnet.is_ipv4() {
                    return Err(Error::RangeTooBig { range, subnet });
                }
                return Err(Error::RangeOutsideSubnet { range, subnet });
            }
            if range.prefix() < subnet.prefix() {
                return Err(Error::RangeTooBig { range, subnet });
            }
        }
        if let Some(gateway) = gateway {
            if !pool.contains(gateway) {
                return Err(Error::GatewayOutsideSubnet { gateway, subnet });
            }
            match pool.structural_reservation(gateway) {
                Some(Reserved::NetworkAddress) => {
                    return Err(Error::GatewayReserved {
                        gateway,
                        what: "network address",
                        subnet,
                    });
                }
                Some(Reserved::SubnetRouterAnycast) => {
                    return Err(Error::GatewayReserved {
                        gateway,
                        what: "subnet-router anycast address",
                        subnet,
                    });
                }
                Some(Reserved::Broadcast) => {
                    return Err(Error::GatewayReserved {
                        gateway,
                        what: "broadcast address",
                        subnet,
                    });
                }
                _ => {}
            }
        }
        for (name, ip) in &pool.aux_addresses {
            if !pool.contains(*ip) {
                return Err(Error::AuxOutsideSubnet {
                    name: name.clone(),
                    ip: *ip,
                    subnet,
                });
            }
        }
        Ok(pool)
    }

    /// Whether the pool is an IPv4 subnet.
    pub fn is_ipv4(&self) -> bool {
        self.subnet.is_ipv4()
    }

    /// Whether `ip` is an address of the pool's subnet.
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.subnet.is_ipv4() && self.subnet.contains(ip)
    }

    /// Why `ip` may never be handed out, if it may not.
    pub fn reservation(&self, ip: IpAddr) -> Option<Reserved> {
        if let Some(why) = self.structural_reservation(ip) {
            return Some(why);
        }
        if self.gateway == Some(ip) {
            return Some(Reserved::Gateway);
        }
        self.aux_addresses
            .iter()
            .find(|(_, aux)| **aux == ip)
            .map(|(name, _)| Reserved::Aux(name.clone()))
    }

    /// The network address (also IPv6's subnet-router anycast address) and the IPv4 broadcast,
    /// except on /31 (RFC 3021) where both addresses are usable.
    fn structural_reservation(&self, ip: IpAddr) -> Option<Reserved> {
        let (first, last) = bounds(self.subnet);
        let key = to_key(ip);
        let point_to_point = self.is_ipv4() && self.subnet.prefix() == 31;
        if point_to_point {
            None
        } else if key == first && self.is_ipv4() {
            Some(Reserved::NetworkAddress)
        } else if key == first {
            Some(Reserved::SubnetRouterAnycast)
        } else if self.is_ipv4() && key == last {
            Some(Reserved::Broadcast)
        } else {
            None
        }
    }

    /// The subnet's first host address (`.1`, `::1`; on an IPv4 /31 its first address): where
    /// a LAN's router usually is.
    pub fn first_host(&self) -> IpAddr {
        let (first, _) = bounds(self.subnet);
        let point_to_point = self.is_ipv4() && self.subnet.prefix() == 31;
        // `Pool::new` refuses a /32 and a /128, so the subnet has an address after its first.
        from_key(
            if point_to_point { first } else { first + 1 },
            self.is_ipv4(),
        )
    }

    /// The address kept free for a router the network was not told about: the first host
    /// address of a pool without a gateway, when `undeclared_router` says the LAN may have one
    /// (see [`crate::Request::undeclared_router`]). Only dynamic allocation avoids it.
    pub fn kept_for_router(&self, undeclared_router: bool) -> Option<IpAddr> {
        (undeclared_router && self.gateway.is_none()).then(|| self.first_host())
    }

    /// Inclusive key bounds of the dynamic range (the ip-range, or the whole subnet).
    pub(crate) fn dynamic_bounds(&self) -> (u128, u128) {
        bounds(self.ip_range.unwrap_or(self.subnet))
    }

    /// Keys that dynamic allocation never hands out, sorted: the reserved addresses and the one
    /// [`Pool::kept_for_router`].
    pub(crate) fn reserved_keys(&self, undeclared_router: bool) -> Vec<u128> {
        let (first, last) = bounds(self.subnet);
        let mut keys: Vec<u128> = self
            .gateway
            .iter()
            .chain(self.aux_addresses.values())
            .chain(self.kept_for_router(undeclared_router).as_ref())
            .map(|ip| to_key(*ip))
            .collect();
        if !(self.is_ipv4() && self.subnet.prefix() == 31) {
            keys.push(first);
            if self.is_ipv4() {
                keys.push(last);
            }
        }
        keys.sort_unstable();
        keys.dedup();
        keys
    }
}

fn canonical_of(net: IpNetwork) -> IpNetwork {
    // The prefix is taken from a valid network, so it is valid for its own network address.
    IpNetwork::new(net.network(), net.prefix()).unwrap_or(net)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(
        subnet: &str,
        gw: Option<&str>,
        range: Option<&str>,
        aux: &[(&str, &str)],
    ) -> Result<Pool> {
        Pool::new(
            subnet.parse().unwrap(),
            gw.map(|g| g.parse().unwrap()),
            range.map(|r| r.parse().unwrap()),
            aux.iter()
                .map(|(n, ip)| (n.to_string(), ip.parse().unwrap()))
                .collect(),
        )
    }

    #[test]
    fn validation_errors_use_dockers_wording() {
        // (subnet, gateway, ip-range, aux addresses)
        type Case<'a> = (
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            &'a [(&'a str, &'a str)],
        );
        let cases: &[Case<'_>] = &[
            ("10.0.0.1/24", None, None, &[]),
            ("10.0.0.0/32", None, None, &[]),
            ("2001:db8::1/128", None, None, &[]),
            ("10.0.0.0/24", None, Some("10.0.0.0/16"), &[]),
            ("10.0.0.0/24", None, Some("10.1.0.0/25"), &[]),
            ("10.0.0.0/24", None, Some("10.0.0.5/25"), &[]),
            ("10.0.0.0/24", Some("10.1.0.1"), None, &[]),
            ("10.0.0.0/24", Some("10.0.0.0"), None, &[]),
            ("10.0.0.0/24", Some("10.0.0.255"), None, &[]),
            ("10.0.0.0/24", None, None, &[("router2", "10.9.0.2")]),
        ];
        let report: Vec<String> = cases
            .iter()
            .map(|(s, g, r, a)| {
                let err = pool(s, *g, *r, a).expect_err("case must be rejected");
                format!("{s} gw={g:?} range={r:?} aux={a:?}\n  -> {err}")
            })
            .collect();
        insta::assert_snapshot!(report.join("\n"));
    }

    #[test]
    fn subnets_no_lan_can_use_are_refused_naming_the_block() {
        let refused = [
            "::ffff:10.1.0.0/120",
            "::/0",
            "0.0.0.0/0",
            "127.0.0.0/8",
            "224.0.0.0/24",
            "0.0.0.0/8",
            "0.1.2.0/24",
            "127.0.0.0/30",
            "192.0.0.0/2",
            "239.255.255.0/24",
            "240.0.0.0/4",
            "255.255.255.254/31",
            "::/128",
            "::1/128",
            "::/64",
            "::a01:200/120",
            "::ffff:0:0/96",
            "fe80::/64",
            "febf:ffff::/32",
            "fe00::/7",
            "ff02::/16",
            "ff00::/8",
        ];
        let report: Vec<String> = refused
            .iter()
            .map(|s| {
                let err = pool(s, None, None, &[]).expect_err("must be refused");
                assert!(err.is_invalid_input(), "{s}: {err}");
                format!("{s} -> {err}")
            })
            .collect();
        insta::assert_snapshot!(report.join("\n"));
        // Their neighbours are fine.
        for s in [
            "1.0.0.0/8",
            "126.255.255.0/24",
            "128.0.0.0/8",
            "223.255.255.0/24",
            "::1:0:0/96",
            "::1:0:0:0/96",
            "fc00::/7",
            "fec0::/10",
            "2001:db8::/64",
        ] {
            assert!(pool(s, None, None, &[]).is_ok(), "{s}");
        }
    }

    #[test]
    fn a_definition_on_disk_gets_the_same_subnet_check() {
        for (json, block) in [
            (r#"{"subnet":"127.0.0.0/8"}"#, "127.0.0.0/8 (loopback)"),
            (
                r#"{"subnet":"::ffff:10.1.0.0/120","gateway":"::ffff:10.1.0.1"}"#,
                "::ffff:0.0.0.0/96 (IPv4-mapped addresses)",
            ),
            (r#"{"subnet":"fe80::/64"}"#, "fe80::/10 (link-local"),
        ] {
            let err = serde_json::from_str::<Pool>(json).unwrap_err().to_string();
            assert!(err.contains(block), "{json}: {err}");
        }
    }

    #[test]
    fn the_first_host_is_kept_only_without_gateway_on_a_lan() {
        // (subnet, gateway, first host, kept on a LAN)
        let cases = [
            ("10.0.0.0/24", None, "10.0.0.1", Some("10.0.0.1")),
            ("10.0.0.0/24", Some("10.0.0.254"), "10.0.0.1", None),
            ("10.0.0.0/31", None, "10.0.0.0", Some("10.0.0.0")),
            ("10.0.0.0/30", None, "10.0.0.1", Some("10.0.0.1")),
            ("2001:db8::/64", None, "2001:db8::1", Some("2001:db8::1")),
            ("2001:db8::/127", None, "2001:db8::1", Some("2001:db8::1")),
            ("2001:db8::/64", Some("2001:db8::1"), "2001:db8::1", None),
        ];
        for (subnet, gateway, first, kept) in cases {
            let p = pool(subnet, gateway, None, &[]).unwrap();
            let ip = |s: &str| s.parse::<IpAddr>().unwrap();
            assert_eq!(p.first_host(), ip(first), "{subnet}");
            assert_eq!(p.kept_for_router(true), kept.map(ip), "{subnet}");
            assert_eq!(p.kept_for_router(false), None, "{subnet}: no LAN router");
            // Only dynamic allocation avoids it: a static request may take it.
            assert_eq!(p.reservation(ip(first)).is_some(), gateway == Some(first));
        }
    }

    #[test]
    fn reservations() {
        let p = pool("10.0.0.0/24", Some("10.0.0.1"), None, &[("r2", "10.0.0.2")]).unwrap();
        let r = |ip: &str| p.reservation(ip.parse().unwrap());
        assert_eq!(r("10.0.0.0"), Some(Reserved::NetworkAddress));
        assert_eq!(r("10.0.0.255"), Some(Reserved::Broadcast));
        assert_eq!(r("10.0.0.1"), Some(Reserved::Gateway));
        assert_eq!(r("10.0.0.2"), Some(Reserved::Aux("r2".into())));
        assert_eq!(r("10.0.0.3"), None);

        let p2p = pool("10.0.0.0/31", None, None, &[]).unwrap();
        assert_eq!(p2p.reservation("10.0.0.0".parse().unwrap()), None);
        assert_eq!(p2p.reservation("10.0.0.1".parse().unwrap()), None);

        let v6 = pool("2001:db8::/64", None, None, &[]).unwrap();
        assert_eq!(
            v6.reservation("2001:db8::".parse().unwrap()),
            Some(Reserved::SubnetRouterAnycast)
        );
        assert_eq!(
            v6.reservation("2001:db8::ffff:ffff:ffff:ffff".parse().unwrap()),
            None
        );
    }
}
