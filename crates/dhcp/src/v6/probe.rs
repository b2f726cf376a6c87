//! One SOLICIT and the ADVERTISEs it brings, and nothing more: the DHCPv6 side of `doctor`'s
//! question. No REQUEST is ever built and the SOLICIT asks for no rapid commit, so no server
//! commits an address to the probe. The schedule and its loop are v4's ([`crate::probe::Schedule`]): sent
//! again every second while nothing answers, a short linger after the first answer for other
//! servers, never past the deadline. Every answer goes through [`answer::check`]; a refused one
//! is counted and its reason kept.

use std::{io, net::Ipv6Addr, time::Duration};

use crate::{
    probe::{Ask, MAX_ANSWERS, listen},
    v6::{
        Config, Error, Refused, Result, UdpLink,
        answer::{self, Expect, IaAddress, MAX_MESSAGE, Status},
        machine::{Outgoing, To},
        message::{self, Ids},
        wire,
    },
};

/// One server's ADVERTISE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert {
    /// The server's DUID.
    pub server_id: Vec<u8>,
    /// Its preference (0 when not given).
    pub preference: u8,
    /// The addresses offered in our IA_NA (valid ones only).
    pub addresses: Vec<IaAddress>,
    /// Why it offers none: the message's or the IA's status when not Success (NoAddrsAvail).
    pub status: Option<Status>,
    /// Name servers (option 23).
    pub dns: Vec<Ipv6Addr>,
}

/// What a probe heard.
#[derive(Debug, Default)]
pub struct Heard {
    /// Each server's first ADVERTISE, in the order they came.
    pub adverts: Vec<Advert>,
    /// Answers refused (not ours, malformed, hostile, a REPLY with rapid commit).
    pub refused: u32,
    /// The last refusal's reason.
    pub last: Option<Refused>,
    /// How many SOLICITs were sent.
    pub sent: u32,
}

/// A SOLICIT's transaction and what came back for it.
#[derive(Debug)]
pub struct Probe {
    config: Config,
    xid: u32,
    heard: Heard,
}

impl Probe {
    /// A probe as the client `config` in transaction `xid` (random; 24 bits are used).
    pub fn new(config: Config, xid: u32) -> Self {
        Self {
            config,
            xid: xid & 0x00ff_ffff,
            heard: Heard::default(),
        }
    }

    /// The SOLICIT to all servers, `elapsed` into the exchange (each send the same
    /// transaction, RFC 8415, 15).
    pub fn solicit(&self, elapsed: Duration) -> Result<Outgoing> {
        let ids = Ids {
            duid: self.config.client_id.duid(),
            iaid: self.config.client_id.iaid(),
            hostname: self.config.hostname.as_deref(),
        };
        let hundredths = u16::try_from(elapsed.as_millis() / 10).unwrap_or(u16::MAX);
        Ok(Outgoing {
            bytes: message::build(wire::SOLICIT, &ids, self.xid, hundredths, None, None)?,
            to: To::AllServers,
        })
    }

    /// `bytes` (a DHCPv6 message) came: `true` when it is a server's first ADVERTISE. An answer
    /// that [`answer::check`] refuses is counted.
    pub fn receive(&mut self, bytes: &[u8]) -> bool {
        let expect = Expect {
            xid: self.xid,
            kind: wire::ADVERTISE,
            duid: self.config.client_id.duid(),
            iaid: self.config.client_id.iaid(),
            server: None,
            subnet: self.config.subnet,
        };
        let answer = match answer::check(bytes, &expect) {
            Ok(answer) => answer,
            Err(why) => {
                self.heard.refused = self.heard.refused.saturating_add(1);
                self.heard.last = Some(why);
                return false;
            }
        };
        let seen = self
            .heard
            .adverts
            .iter()
            .any(|a| a.server_id == answer.server_id);
        if seen || self.heard.adverts.len() >= MAX_ANSWERS {
            return false;
        }
        let ia_status = answer.ia.as_ref().map_or(Status::Success, |ia| ia.status);
        let status = [answer.status.0, ia_status]
            .into_iter()
            .find(|s| *s != Status::Success);
        let addresses = match (&answer.ia, status) {
            (Some(ia), None) => ia
                .addresses
                .iter()
                .filter(|a| a.valid > 0)
                .copied()
                .collect(),
            _ => Vec::new(),
        };
        self.heard.adverts.push(Advert {
            server_id: answer.server_id,
            preference: answer.preference,
            addresses,
            // An IA without an address says nothing of why: NoAddrsAvail (RFC 8415, 18.3.9).
            status: status.or(answer.ia.is_none().then_some(Status::NoAddrsAvail)),
            dns: answer.dns,
        });
        true
    }

    /// What was heard.
    pub fn heard(self) -> Heard {
        self.heard
    }
}

impl Ask for Probe {
    type Out = Outgoing;
    type Error = Error;
    fn ask(&self, elapsed: Duration) -> Result<Outgoing> {
        self.solicit(elapsed)
    }
    fn hear(&mut self, message: &[u8], len: usize) -> bool {
        if len > MAX_MESSAGE {
            self.heard.refused = self.heard.refused.saturating_add(1);
            self.heard.last = Some(Refused::TooLarge {
                len,
                max: MAX_MESSAGE,
            });
            return false;
        }
        self.receive(message)
    }
    fn socket_error(link: &str, source: io::Error) -> Error {
        Error::Socket {
            link: link.to_owned(),
            source,
        }
    }
}

/// Sends a SOLICIT as `config` on `socket`'s link (transaction `xid`) and listens `timeout` at
/// most: the ADVERTISEs, and the answers refused. Never sends anything else.
pub fn probe(config: Config, xid: u32, socket: &UdpLink, timeout: Duration) -> Result<Heard> {
    let mut probe = Probe::new(config, xid);
    let sent = listen(&mut probe, socket, timeout)?;
    let mut heard = probe.heard();
    heard.sent = sent;
    Ok(heard)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        ClientId,
        v6::fake::{self, OFFERED, SERVER_DUID, Spec},
    };

    fn config() -> Config {
        Config {
            client_id: ClientId::derive(b"k", "oci-macvlan doctor", "lan0"),
            hostname: None,
            subnet: None,
        }
    }

    #[test]
    fn the_solicit_asks_no_rapid_commit_and_names_no_server() {
        let probe = Probe::new(config(), 0xab_cdef);
        let out = probe.solicit(Duration::from_millis(1230)).unwrap();
        assert_eq!(out.to, To::AllServers);
        assert_eq!(&out.bytes[..4], &[wire::SOLICIT, 0xab, 0xcd, 0xef]);
        let opts = wire::options(&out.bytes[4..], &mut 32).unwrap();
        let codes: Vec<u16> = opts.iter().map(|(c, _)| *c).collect();
        assert!(!codes.contains(&wire::OPT_RAPID_COMMIT));
        assert!(!codes.contains(&wire::OPT_SERVERID));
        let elapsed = opts.iter().find(|(c, _)| *c == wire::OPT_ELAPSED_TIME);
        assert_eq!(elapsed.unwrap().1, &123u16.to_be_bytes());
        // A long probe's elapsed time stays at its ceiling.
        let late = probe.solicit(Duration::from_secs(10_000)).unwrap();
        let opts = wire::options(&late.bytes[4..], &mut 32).unwrap();
        let elapsed = opts.iter().find(|(c, _)| *c == wire::OPT_ELAPSED_TIME);
        assert_eq!(elapsed.unwrap().1, &[0xff, 0xff]);
    }

    #[test]
    fn adverts_are_kept_once_per_server_and_the_rest_counted() {
        let mut probe = Probe::new(config(), 0x42);
        let solicit = probe.solicit(Duration::ZERO).unwrap().bytes;
        let advert = Spec::new(wire::ADVERTISE);
        assert!(probe.receive(&fake::answer(&solicit, &advert)));
        assert!(!probe.receive(&fake::answer(&solicit, &advert)));
        // Another server with no address for us.
        let none = Spec {
            server_id: vec![0, 1, 0, 1, 9, 9, 9, 9, 2, 0, 0, 0, 0, 1],
            address: None,
            ia_status: Some(2),
            ..Spec::new(wire::ADVERTISE)
        };
        assert!(probe.receive(&fake::answer(&solicit, &none)));
        // A REPLY (rapid commit), another transaction: refused.
        assert!(!probe.receive(&fake::answer(&solicit, &Spec::new(wire::REPLY))));
        let other = Spec {
            xid: Some(0x43),
            ..Spec::new(wire::ADVERTISE)
        };
        assert!(!probe.receive(&fake::answer(&solicit, &other)));
        let heard = probe.heard();
        assert_eq!(heard.refused, 2);
        assert!(matches!(heard.last, Some(Refused::Xid { .. })));
        assert_eq!(heard.adverts.len(), 2);
        assert_eq!(heard.adverts[0].server_id, SERVER_DUID);
        assert_eq!(heard.adverts[0].addresses[0].address, OFFERED);
        assert_eq!(heard.adverts[0].addresses[0].valid, 100);
        assert_eq!(heard.adverts[0].status, None);
        assert!(heard.adverts[1].addresses.is_empty());
        assert_eq!(heard.adverts[1].status, Some(Status::NoAddrsAvail));
    }

    #[test]
    fn an_advert_outside_the_subnet_is_refused() {
        let config = Config {
            subnet: Some(("fd00::".parse().unwrap(), 64)),
            ..config()
        };
        let mut probe = Probe::new(config, 0x42);
        let solicit = probe.solicit(Duration::ZERO).unwrap().bytes;
        assert!(!probe.receive(&fake::answer(&solicit, &Spec::new(wire::ADVERTISE))));
        let heard = probe.heard();
        assert!(heard.adverts.is_empty());
        assert!(matches!(heard.last, Some(Refused::OutsideSubnet { .. })));
    }
}
