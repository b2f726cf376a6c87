//! Classless static routes (option 121, RFC 3442), decoded from the option's raw bytes with every
//! length checked: `dhcproto` stops quietly at a bad prefix length, a client must refuse.

use std::net::Ipv4Addr;

use crate::{Refused, lease::Route};

/// The most routes one answer may carry (each takes at least five bytes, so an option of 255
/// bytes, or several concatenated by RFC 3396, holds about fifty).
pub const MAX_ROUTES: usize = 64;

/// The routes `raw` (the option's data, concatenated when it came in several parts) describes.
pub fn decode(raw: &[u8]) -> Result<Vec<Route>, Refused> {
    let bad = |why: String| Refused::Routes(why);
    let mut routes = Vec::new();
    let mut rest = raw;
    while let Some((&prefix, tail)) = rest.split_first() {
        if prefix > 32 {
            return Err(bad(format!("prefix length {prefix}")));
        }
        let significant = usize::from(prefix).div_ceil(8);
        let Some(dest) = tail.get(..significant) else {
            return Err(bad(format!("destination of /{prefix} cut short")));
        };
        let Some(gateway) = tail.get(significant..significant + 4) else {
            return Err(bad(format!("gateway of a /{prefix} route cut short")));
        };
        let mut octets = [0u8; 4];
        octets[..significant].copy_from_slice(dest);
        let destination = Ipv4Addr::from(octets);
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        if u32::from(destination) & !mask != 0 {
            return Err(bad(format!("{destination}/{prefix} has host bits set")));
        }
        if routes.len() == MAX_ROUTES {
            return Err(bad(format!("more than {MAX_ROUTES} routes")));
        }
        routes.push(Route {
            destination,
            prefix,
            gateway: Ipv4Addr::new(gateway[0], gateway[1], gateway[2], gateway[3]),
        });
        rest = &tail[significant + 4..];
    }
    Ok(routes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_3442_examples() {
        // 0/0 via 10.0.0.1; 10.17/16 via 10.0.0.2; 192.168.5.128/25 on link.
        let raw = [
            0, 10, 0, 0, 1, 16, 10, 17, 10, 0, 0, 2, 25, 192, 168, 5, 128, 0, 0, 0, 0,
        ];
        let routes = decode(&raw).expect("decodes");
        assert_eq!(routes.len(), 3);
        assert_eq!(routes[0].prefix, 0);
        assert_eq!(routes[0].gateway, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(routes[1].destination, Ipv4Addr::new(10, 17, 0, 0));
        assert_eq!(routes[2].destination, Ipv4Addr::new(192, 168, 5, 128));
        assert_eq!(routes[2].gateway, Ipv4Addr::UNSPECIFIED);
        assert_eq!(decode(&[]).expect("empty"), vec![]);
    }

    #[test]
    fn refuses_what_does_not_fit() {
        for raw in [
            &[33u8, 1, 2, 3, 4, 5, 1, 2, 3, 4][..],
            &[24, 10, 0][..],
            &[24, 10, 0, 0, 1, 2, 3][..],
            &[8, 10, 0, 0, 0][..],
            &[23, 10, 0, 1, 10, 0, 0, 1][..], // host bit in the third octet
        ] {
            assert!(decode(raw).is_err(), "{raw:?}");
        }
        let many: Vec<u8> = (0..=MAX_ROUTES).flat_map(|_| [0u8, 1, 2, 3, 4]).collect();
        assert!(decode(&many).is_err());
    }
}
