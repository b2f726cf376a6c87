//! A host's claim of its id in the cluster: `PREFIX/hosts/<id>`, `{"host","proof","seen_unix"}`,
//! where the proof is a hash of a secret only that machine holds (see the crate's docs). Every
//! write of the host carries it; `gc --forget-host` removes it, unless the host is alive.
//!
//! **One host id, one machine** (`claim.rs`). A host's id is `hooks/src/identity.rs`'s: `<config-dir>/host-identity`,
//! `{"id","secret"}`, mode 0600, linked into place once (`link(2)`: the first writer wins) by the
//! first attach or detach on a shared store (or `gc` given `--host-id`: `stores::Access` says
//! which commands may make it; a `gc` without either writes nothing to a cluster), and read by
//! every command; `--host-id` and
//! `OCI_MACVLAN_HOST_ID` only override it when they agree. `EtcdStore::open` takes a
//! `HostIdentity`: the id, and the proof, a SHA-256 of the secret bound to the id (computed in
//! `hooks/`; the secret never reaches etcd). Every write of the host (`run`, each release, `gc`'s
//! `maintain`, `forget_host`) carries its claim in the same transaction: absent → compare
//! `create_revision(PREFIX/hosts/<id>) == 0` and put it; present with this proof → compare its
//! `mod_revision` unchanged (and put it again with a new `seen_unix` when that is older than
//! `REFRESH_SECS`, or at `gc`); present with another proof → `Error::HostClaimed` before the
//! closure runs, nothing written. So two machines under one id cannot both write: whichever
//! claimed first is the id's, the other is refused by its first write, and a claim deleted or
//! replaced between read and write fails the compare. No extra round trip: the claim is in the
//! read and the transaction a change makes anyway. `gc --forget-host` deletes the host's claim
//! with its leases, in one transaction, unless the claim is *alive* (`seen_unix` within
//! `ALIVE_SECS`, an hour: its gc timer refreshes it every 15 minutes); it compares the claim's
//! revision, so a host that refreshes meanwhile is not forgotten. Beside the claim, the core never
//! adopts a lease it has no record of: an attach whose container's previous record does not list
//! the network and interface runs the allocator through `endpoint/unheld.rs`, in which its owner
//! holds nothing, so a lease of that owner is someone else's (taken, or a static request refused).

use serde_json::{Value, json};

use oci_macvlan_ipam::{Error, Result};

use crate::{
    EtcdStore, Snapshot,
    client::{absent, put, unchanged},
    now_unix,
};

/// A host refreshes its claim's `seen_unix` with a write when it is older than this (and at
/// each `gc`, through `LeaseStore::maintain`): at most one claim write per host this often.
pub const REFRESH_SECS: u64 = 5 * 60;
/// A host whose claim was refreshed less than this long ago is alive: `gc --forget-host`
/// refuses it. Four runs of the packaged gc timer (every 15 minutes).
pub const ALIVE_SECS: u64 = 60 * 60;

/// A host's claim, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The claimant's proof: a hash of its secret.
    pub proof: String,
    /// When the claimant last wrote its claim, in seconds since the epoch.
    pub seen_unix: u64,
}

/// A host id as `--host-id` takes it: 1 to 64 letters, digits, '.', '-' or '_'.
pub fn valid_host_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

impl EtcdStore {
    pub(crate) fn claim_key(&self, host: &str) -> Vec<u8> {
        let mut key = self.hosts.clone();
        key.extend_from_slice(host.as_bytes());
        key
    }

    /// What a write of this host adds to its transaction so that it is made only while the
    /// host id is this machine's: the compare, and the claim written (absent, or due for a
    /// refresh, or `refresh`). An error when another machine holds the claim.
    pub(crate) fn claim_ops(
        &self,
        snapshot: &Snapshot,
        refresh: bool,
    ) -> Result<(Vec<Value>, Vec<Value>)> {
        let key = self.claim_key(&self.host.id);
        let Some(proof) = &self.host.proof else {
            return Err(Error::Unavailable {
                store: self.describe.clone(),
                what: format!(
                    "this host has no identity yet to write with: {} is made by the first \
                     attach or detach on a shared network, or by gc given --host-id",
                    self.host.kept_in
                ),
                maybe_written: false,
                source: None,
            });
        };
        let write = || {
            let value = json!({ "host": self.host.id, "proof": proof, "seen_unix": now_unix() });
            put(&key, value.to_string().as_bytes())
        };
        match snapshot.claims.get(&self.host.id) {
            None => Ok((vec![absent(&key)], vec![write()])),
            Some((Some(claim), revision)) if claim.proof == *proof => {
                let due = now_unix().saturating_sub(claim.seen_unix) >= REFRESH_SECS;
                let ops = if refresh || due {
                    vec![write()]
                } else {
                    Vec::new()
                };
                Ok((vec![unchanged(&key, *revision)], ops))
            }
            Some(_) => Err(Error::HostClaimed {
                host: self.host.id.clone(),
                store: self.describe.clone(),
                key: String::from_utf8_lossy(&key).into_owned(),
                kept_in: self.host.kept_in.clone(),
            }),
        }
    }

    pub(crate) fn refuse_if_alive(&self, host: &str, claim: Option<&Claim>) -> Result<()> {
        let Some(claim) = claim else {
            return Ok(()); // not a claim: nothing says the host lives
        };
        let ago = now_unix().saturating_sub(claim.seen_unix);
        if ago < ALIVE_SECS {
            return Err(Error::HostAlive {
                host: host.to_owned(),
                store: self.describe.clone(),
                key: String::from_utf8_lossy(&self.claim_key(host)).into_owned(),
                ago_secs: ago,
                alive_secs: ALIVE_SECS,
            });
        }
        Ok(())
    }

    /// The claim of `host`, if there is one that reads as a claim (`gc --forget-host` asks
    /// before it asks the operator).
    pub fn claim_of(&mut self, host: &str) -> Result<Option<Claim>> {
        Ok(self
            .snapshot()?
            .claims
            .remove(host)
            .and_then(|(claim, _)| claim))
    }

    /// An error when `host` is alive in this store (see [`ALIVE_SECS`]).
    pub(crate) fn forgettable(&mut self, host: &str) -> Result<()> {
        let claim = self.claim_of(host)?;
        self.refuse_if_alive(host, claim.as_ref())
    }
}

/// The claim `value` of `host`, if it is one (its own `host` field agrees).
pub(crate) fn decode_claim(host: &str, value: &[u8]) -> Option<Claim> {
    let value: Value = serde_json::from_slice(value).ok()?;
    if value.get("host").and_then(Value::as_str) != Some(host) {
        return None;
    }
    Some(Claim {
        proof: value.get("proof")?.as_str()?.to_owned(),
        seen_unix: value.get("seen_unix")?.as_u64()?,
    })
}
