//! The parsing and wording of a definition's flags, shared by `NetworkSpec::validate`.

use std::net::IpAddr;

use ipnetwork::IpNetwork;

use crate::{DefinitionError, Error, Result};

/// Docker's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`. A name becomes a file name and part of
/// annotation keys, so nothing else is allowed.
pub fn check_network_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > 64 {
        Some("it is longer than 64 characters")
    } else if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        Some("it must start with a letter or digit")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        Some("only letters, digits, '_', '.' and '-' are allowed")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(DefinitionError::InvalidNetworkName {
            name: name.to_owned(),
            reason,
        }
        .into()),
        None => Ok(()),
    }
}

pub(crate) use crate::error::invalid;

pub(super) fn duplicate(what: &'static str, subnet: IpNetwork) -> Error {
    DefinitionError::Duplicate {
        what,
        subnet: subnet.to_string(),
    }
    .into()
}

pub(super) fn parse_cidr(flag: &'static str, value: &str) -> Result<IpNetwork> {
    if !value.contains('/') {
        return Err(invalid(
            flag,
            value,
            "expected an address with a prefix length, e.g. 192.168.50.0/24",
        ));
    }
    value
        .parse()
        .map_err(|_: ipnetwork::IpNetworkError| invalid(flag, value, "not a valid CIDR address"))
}

pub(super) fn parse_ip(flag: &'static str, value: &str) -> Result<IpAddr> {
    value
        .parse()
        .map_err(|_| invalid(flag, value, "not an IPv4 or IPv6 address"))
}

/// Which subnet an address-like flag belongs to: the first that contains it; with a single subnet
/// of that family, that one (so the pool reports Docker's "parent subnet doesn't contain" error).
pub(super) fn assign(
    subnets: &[IpNetwork],
    ip: IpAddr,
    what: &'static str,
    value: &str,
) -> Result<usize> {
    if let Some(at) = subnets.iter().position(|s| s.contains(ip)) {
        return Ok(at);
    }
    let same_family: Vec<usize> = (0..subnets.len())
        .filter(|&i| subnets[i].is_ipv4() == ip.is_ipv4())
        .collect();
    match same_family.as_slice() {
        [only] => Ok(*only),
        _ => Err(DefinitionError::NoSubnetFor {
            what,
            value: value.to_owned(),
        }
        .into()),
    }
}
