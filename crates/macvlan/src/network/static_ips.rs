//! `-o static_ips`: which static addresses a container may ask for on a network (checked
//! against the LAN by `occupied.rs`).

use std::{fmt, net::IpAddr, str::FromStr};

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use crate::Result;

/// Which static addresses a container may ask for on a network (`-o static_ips`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StaticIps {
    /// Any address of the network's subnets (Docker's behaviour).
    #[default]
    Any,
    /// None: every address comes from the network's own allocator.
    None,
    /// Only addresses inside these ranges (each inside a subnet of the network).
    Ranges(Vec<IpNetwork>),
}

impl StaticIps {
    /// Whether any address of the network's subnets may be asked for (the default).
    pub fn is_any(&self) -> bool {
        *self == Self::Any
    }

    /// Parses `-o static_ips=any|none|CIDR[,CIDR…]`; each range must lie inside one of
    /// `subnets`.
    pub(crate) fn parse(value: &str, subnets: &[IpNetwork]) -> Result<Self> {
        let invalid = |reason: &str| super::invalid("-o static_ips", value, reason);
        match value {
            "any" => return Ok(Self::Any),
            "none" => return Ok(Self::None),
            _ => {}
        }
        let mut ranges = Vec::new();
        for part in value.split(',') {
            let range = IpNetwork::from_str(part.trim()).map_err(|_| {
                invalid("expected any, none, or a comma-separated list of CIDR ranges")
            })?;
            if range.network() != range.ip() {
                return Err(invalid(&format!(
                    "{range} has host bits set (did you mean {}/{}?)",
                    range.network(),
                    range.prefix()
                )));
            }
            let inside = subnets.iter().any(|subnet| {
                subnet.is_ipv4() == range.is_ipv4()
                    && subnet.prefix() <= range.prefix()
                    && subnet.contains(range.network())
            });
            if !inside {
                return Err(invalid(&format!("{range} is outside every --subnet")));
            }
            ranges.push(range);
        }
        Ok(Self::Ranges(ranges))
    }

    /// Whether a container may ask for `ip`.
    pub fn allows(&self, ip: IpAddr) -> bool {
        match self {
            Self::Any => true,
            Self::None => false,
            Self::Ranges(ranges) => ranges.iter().any(|range| range.contains(ip)),
        }
    }
}

impl fmt::Display for StaticIps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any"),
            Self::None => f.write_str("none"),
            Self::Ranges(ranges) => {
                let list: Vec<String> = ranges.iter().map(ToString::to_string).collect();
                f.write_str(&list.join(","))
            }
        }
    }
}
