//! The client's messages (RFC 8415, 18.2): SOLICIT, REQUEST, RENEW, REBIND, RELEASE. Each
//! carries the client identifier (our DUID), the elapsed time and one IA_NA of our IAID (with
//! the address held or offered, but SOLICIT's); all but RELEASE the option request (name
//! servers, domain search list) and the client FQDN (RFC 4704) with the container's hostname;
//! REQUEST, RENEW and RELEASE the server identifier. No rapid commit: see [`super::machine`].

use std::net::Ipv6Addr;

use crate::v6::{
    Error, Result,
    wire::{self, Builder},
};

/// What a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ids<'a> {
    /// Our DUID.
    pub duid: &'a [u8],
    /// Our IAID.
    pub iaid: u32,
    /// The hostname to send (option 39), if any.
    pub hostname: Option<&'a str>,
}

/// The client FQDN option's data for `name` (RFC 4704, 4.1): flags 0 (the client asks the
/// server for no DNS update of its own), then the name in DNS wire form; a name without a dot
/// is sent partial (no root label), for the server to qualify.
pub fn fqdn(name: &str) -> Result<Vec<u8>> {
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.is_empty() || name.len() > 253 {
        return Err(Error::Build(format!("{name:?} is no domain name")));
    }
    let mut out = vec![0u8];
    for label in trimmed.split('.') {
        let fine = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !fine {
            return Err(Error::Build(format!("{name:?}: label {label:?}")));
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    if trimmed.contains('.') {
        out.push(0);
    }
    Ok(out)
}

fn ia_na(iaid: u32, address: Option<Ipv6Addr>) -> Vec<u8> {
    let mut data = Vec::with_capacity(12 + 28);
    data.extend_from_slice(&iaid.to_be_bytes());
    // T1 and T2 0: the server's choice (RFC 8415, 21.4).
    data.extend_from_slice(&[0; 8]);
    if let Some(address) = address {
        let mut addr = address.octets().to_vec();
        addr.extend_from_slice(&[0; 8]);
        wire::put_option(&mut data, wire::OPT_IAADDR, &addr);
    }
    data
}

/// A message of type `kind` (one of the client's) in transaction `xid`, `elapsed` hundredths of
/// a second into its exchange, for `address` (in SOLICIT a hint, if any) to `server` (REQUEST,
/// RENEW, RELEASE).
pub fn build(
    kind: u8,
    ids: &Ids<'_>,
    xid: u32,
    elapsed: u16,
    address: Option<Ipv6Addr>,
    server: Option<&[u8]>,
) -> Result<Vec<u8>> {
    let mut msg = Builder::new(kind, xid);
    msg.option(wire::OPT_CLIENTID, ids.duid);
    if let Some(server) = server {
        msg.option(wire::OPT_SERVERID, server);
    }
    msg.option(wire::OPT_ELAPSED_TIME, &elapsed.to_be_bytes());
    msg.option(wire::OPT_IA_NA, &ia_na(ids.iaid, address));
    if kind != wire::RELEASE {
        let mut oro = Vec::new();
        for code in [wire::OPT_DNS_SERVERS, wire::OPT_DOMAIN_LIST] {
            oro.extend_from_slice(&code.to_be_bytes());
        }
        msg.option(wire::OPT_ORO, &oro);
        if let Some(name) = ids.hostname {
            msg.option(wire::OPT_CLIENT_FQDN, &fqdn(name)?);
        }
    }
    Ok(msg.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fqdn_partial_and_full() {
        assert_eq!(fqdn("web1").unwrap(), b"\0\x04web1");
        assert_eq!(fqdn("a.lan.").unwrap(), b"\0\x01a\x03lan\0");
        assert!(fqdn("").is_err());
        assert!(fqdn("a..b").is_err());
        assert!(fqdn(&"x".repeat(64)).is_err());
        assert!(fqdn("bad_name").is_err());
    }

    #[test]
    fn request_carries_server_ia_address_and_hostname() {
        let ids = Ids {
            duid: &[0, 4, 1, 2],
            iaid: 7,
            hostname: Some("web1"),
        };
        let addr: Ipv6Addr = "2001:db8::5".parse().unwrap();
        let bytes = build(
            wire::REQUEST,
            &ids,
            0xab_cdef,
            3,
            Some(addr),
            Some(&[0, 1, 9]),
        )
        .unwrap();
        assert_eq!(&bytes[..4], &[3, 0xab, 0xcd, 0xef]);
        let opts = wire::options(&bytes[4..], &mut 32).unwrap();
        let codes: Vec<u16> = opts.iter().map(|(c, _)| *c).collect();
        assert_eq!(codes, [1, 2, 8, 3, 6, 39]);
        let ia = opts[3].1;
        assert_eq!(wire::u32_at(ia, 0), 7);
        let inner = wire::options(&ia[12..], &mut 32).unwrap();
        assert_eq!(inner[0].0, wire::OPT_IAADDR);
        assert_eq!(&inner[0].1[..16], &addr.octets());
        // RELEASE: no ORO, no FQDN.
        let release = build(wire::RELEASE, &ids, 1, 0, Some(addr), Some(&[0, 1, 9])).unwrap();
        let codes: Vec<u16> = wire::options(&release[4..], &mut 32)
            .unwrap()
            .iter()
            .map(|(c, _)| *c)
            .collect();
        assert_eq!(codes, [1, 2, 8, 3]);
    }
}
