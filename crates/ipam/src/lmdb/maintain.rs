//! The lease store's derived indexes checked against its leases (`verify`, `doctor`) and
//! rebuilt from them (`gc`).

use super::{LmdbStore, decode, owner_key};
use crate::{Result, addr::to_key, runs};

impl LmdbStore {
    /// What disagrees in the store: a lease that does not decode, one missing from the index of
    /// owners, entries of that index without a lease, an index of free addresses that is not the
    /// one the leases make.
    pub(super) fn problems(&self) -> Result<Vec<String>> {
        let rtxn = self.env.read_txn()?;
        let mut problems = Vec::new();
        let mut keys = Vec::new();
        for row in self.dbs.leases.iter(&rtxn)? {
            let (key, value) = row?;
            match decode(key, value) {
                Ok(lease) => {
                    let key = to_key(lease.ip);
                    keys.push(key);
                    let indexed = owner_key(&lease.owner.container_id, key);
                    if self.dbs.owners.get(&rtxn, &indexed)?.is_none() {
                        problems.push(format!(
                            "lease {} of container {} is missing from the index of owners; \
                             `oci-macvlan gc` rebuilds it",
                            lease.ip, lease.owner.container_id
                        ));
                    }
                }
                Err(err) => problems.push(err.to_string()),
            }
        }
        let dangling = self
            .dbs
            .owners
            .len(&rtxn)?
            .saturating_sub(keys.len() as u64);
        if dangling > 0 {
            problems.push(format!(
                "the index of owners has {dangling} entries without a lease; `oci-macvlan gc` \
                 rebuilds it"
            ));
        }
        let (stored, expected) = (runs::stored(self.dbs.runs, &rtxn)?, runs::expected(keys));
        if stored != expected {
            problems.push(format!(
                "the index of free addresses disagrees with the leases ({} runs stored, {} \
                 expected); `oci-macvlan gc` rebuilds it",
                stored.len(),
                expected.len()
            ));
        }
        Ok(problems)
    }

    /// Rebuilds derived indexes that disagree with the leases (after a hand edit of the store);
    /// returns whether anything was rebuilt. The leases themselves are never changed.
    pub fn repair_index(&mut self) -> Result<bool> {
        let dbs = self.dbs;
        self.write(|wtxn| {
            let mut leases = Vec::new();
            for row in dbs.leases.iter(wtxn)? {
                let (key, value) = row?;
                leases.push(decode(key, value)?);
            }
            let mut owners: Vec<[u8; 24]> = leases
                .iter()
                .map(|l| owner_key(&l.owner.container_id, to_key(l.ip)))
                .collect();
            owners.sort_unstable();
            let mut stored_owners = Vec::new();
            for entry in dbs.owners.iter(wtxn)? {
                stored_owners.push(entry?.0.to_vec());
            }
            let wanted_runs = runs::expected(leases.iter().map(|l| to_key(l.ip)));
            let owners_ok = stored_owners
                .iter()
                .map(Vec::as_slice)
                .eq(owners.iter().map(|k| &k[..]));
            let runs_ok = runs::stored(dbs.runs, wtxn)? == wanted_runs;
            if !owners_ok {
                dbs.owners.clear(wtxn)?;
                for key in &owners {
                    dbs.owners.put(wtxn, key, &())?;
                }
            }
            if !runs_ok {
                runs::rebuild(dbs.runs, wtxn, &wanted_runs)?;
            }
            Ok(!(owners_ok && runs_ok))
        })
    }
}
