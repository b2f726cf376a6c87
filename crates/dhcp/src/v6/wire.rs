//! The DHCPv6 message format (RFC 8415, 8 and 21): a message type, a 24-bit transaction id and
//! options, each a 16-bit code, a 16-bit length and its data; IA_NA and IAADDR nest options of
//! their own. Written here rather than taken from `dhcproto::v6`: that decoder subtracts from
//! lengths it has not checked (a status code or vendor class shorter than its fixed part
//! overflows, which panics in a debug build) and reads fixed widths where the length says
//! otherwise (preference, elapsed time, server unicast), so every option would have to be
//! walked and checked before it anyway — and a walk with checked lengths is the whole decoder.
//! It also has no client FQDN option (39), which the client sends.

use crate::v6::Refused;

/// SOLICIT.
pub const SOLICIT: u8 = 1;
/// ADVERTISE.
pub const ADVERTISE: u8 = 2;
/// REQUEST.
pub const REQUEST: u8 = 3;
/// RENEW.
pub const RENEW: u8 = 5;
/// REBIND.
pub const REBIND: u8 = 6;
/// REPLY.
pub const REPLY: u8 = 7;
/// RELEASE.
pub const RELEASE: u8 = 8;

/// Client identifier (a DUID).
pub const OPT_CLIENTID: u16 = 1;
/// Server identifier (a DUID).
pub const OPT_SERVERID: u16 = 2;
/// Identity association for non-temporary addresses.
pub const OPT_IA_NA: u16 = 3;
/// An address of an IA.
pub const OPT_IAADDR: u16 = 5;
/// Option request.
pub const OPT_ORO: u16 = 6;
/// Server preference.
pub const OPT_PREFERENCE: u16 = 7;
/// Elapsed time.
pub const OPT_ELAPSED_TIME: u16 = 8;
/// Server unicast: the server accepts messages unicast to this address.
pub const OPT_UNICAST: u16 = 12;
/// Status code.
pub const OPT_STATUS_CODE: u16 = 13;
/// Rapid commit.
pub const OPT_RAPID_COMMIT: u16 = 14;
/// Recursive name servers (RFC 3646).
pub const OPT_DNS_SERVERS: u16 = 23;
/// Domain search list (RFC 3646).
pub const OPT_DOMAIN_LIST: u16 = 24;
/// Client FQDN (RFC 4704).
pub const OPT_CLIENT_FQDN: u16 = 39;

/// The message type and transaction id, before the options.
pub const HEADER: usize = 4;

/// A message being built.
#[derive(Debug, Clone)]
pub struct Builder(Vec<u8>);

impl Builder {
    /// A message of type `kind` in transaction `xid` (its low 24 bits).
    pub fn new(kind: u8, xid: u32) -> Self {
        let id = xid.to_be_bytes();
        Self(vec![kind, id[1], id[2], id[3]])
    }

    /// Appends option `code` holding `data` (at most 65535 bytes: the callers' are bounded).
    pub fn option(&mut self, code: u16, data: &[u8]) -> &mut Self {
        put_option(&mut self.0, code, data);
        self
    }

    /// The message's bytes.
    pub fn finish(self) -> Vec<u8> {
        self.0
    }
}

/// Appends option `code` holding `data` to `out` (data past 65535 bytes is cut: never here).
pub fn put_option(out: &mut Vec<u8>, code: u16, data: &[u8]) {
    let data = &data[..data.len().min(usize::from(u16::MAX))];
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
}

/// The options of `bytes` (a message's options, or an option's nested ones), every length
/// checked; `budget` is what is left of the options a whole message may hold, counted down.
pub fn options<'a>(
    mut bytes: &'a [u8],
    budget: &mut usize,
) -> Result<Vec<(u16, &'a [u8])>, Refused> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (Some(code), Some(len)) = (bytes.get(..2), bytes.get(2..4)) else {
            return Err(Refused::Malformed("an option header cut short".into()));
        };
        let code = u16::from_be_bytes([code[0], code[1]]);
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let Some(data) = bytes.get(4..4 + len) else {
            return Err(Refused::Malformed(format!(
                "option {code} runs past the end"
            )));
        };
        if *budget == 0 {
            return Err(Refused::TooManyOptions);
        }
        *budget -= 1;
        out.push((code, data));
        bytes = &bytes[4 + len..];
    }
    Ok(out)
}

/// A big-endian u32 at `at` of `data` (callers check the length first; 0 past the end).
pub fn u32_at(data: &[u8], at: usize) -> u32 {
    data.get(at..at + 4)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_round_trip_and_lengths_are_checked() {
        let mut b = Builder::new(SOLICIT, 0x0012_3456);
        b.option(OPT_CLIENTID, &[1, 2, 3])
            .option(OPT_RAPID_COMMIT, &[]);
        let bytes = b.finish();
        assert_eq!(&bytes[..4], &[1, 0x12, 0x34, 0x56]);
        let mut budget = 8;
        let opts = options(&bytes[HEADER..], &mut budget).unwrap();
        assert_eq!(opts, vec![(1, &[1u8, 2, 3][..]), (14, &[][..])]);
        assert_eq!(budget, 6);
        // One byte short: refused, not read past.
        assert!(options(&bytes[HEADER..bytes.len() - 5], &mut 8).is_err());
        assert!(options(&[0, 1, 0], &mut 8).is_err());
        assert!(matches!(
            options(&bytes[HEADER..], &mut 1),
            Err(Refused::TooManyOptions)
        ));
    }
}
