//! One ordering for both families: an address is a `u128`, IPv4 mapped into `::ffff:0:0/96`.
//! The store keeps the same value as a 16-byte big-endian blob, whose byte order is this order.

use std::net::{IpAddr, Ipv6Addr};

use ipnetwork::IpNetwork;

/// An address as one number of one order for both families (IPv4 mapped into ::ffff:0:0/96).
pub fn to_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

pub(crate) fn from_key(key: u128, v4: bool) -> IpAddr {
    let v6 = Ipv6Addr::from(key);
    match v6.to_ipv4_mapped() {
        Some(v4addr) if v4 => IpAddr::V4(v4addr),
        _ => IpAddr::V6(v6),
    }
}

pub(crate) fn to_blob(ip: IpAddr) -> [u8; 16] {
    to_key(ip).to_be_bytes()
}

pub(crate) fn from_blob(blob: &[u8]) -> Option<IpAddr> {
    let bytes: [u8; 16] = blob.try_into().ok()?;
    Some(ip_of_key(u128::from_be_bytes(bytes)))
}

/// The address [`to_key`] made `key` of (a mapped IPv4 address is IPv4).
pub fn ip_of_key(key: u128) -> IpAddr {
    let v6 = Ipv6Addr::from(key);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

/// First and last address of a network, as keys.
pub(crate) fn bounds(net: IpNetwork) -> (u128, u128) {
    let first = to_key(net.network());
    let host_bits = u32::from(max_prefix(net) - net.prefix());
    let last = if host_bits >= 128 {
        u128::MAX
    } else {
        first | ((1u128 << host_bits) - 1)
    };
    (first, last)
}

pub(crate) fn max_prefix(net: IpNetwork) -> u8 {
    if net.is_ipv4() { 32 } else { 128 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_order() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let c: IpAddr = "2001:db8::1".parse().unwrap();
        assert!(to_key(a) < to_key(b));
        assert!(to_blob(a) < to_blob(b));
        for ip in [a, b, c] {
            assert_eq!(from_blob(&to_blob(ip)), Some(ip));
            assert_eq!(from_key(to_key(ip), ip.is_ipv4()), ip);
        }
        let net: IpNetwork = "10.0.0.0/30".parse().unwrap();
        let (lo, hi) = bounds(net);
        assert_eq!(from_key(lo, true), "10.0.0.0".parse::<IpAddr>().unwrap());
        assert_eq!(from_key(hi, true), "10.0.0.3".parse::<IpAddr>().unwrap());
    }
}
