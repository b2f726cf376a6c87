//! GC (1.1.0): takes back every attachment to the config's network that the CNI plugin made
//! and the runtime no longer lists as valid. Records a hook made are never looked at; an
//! attachment that fails to go is named, and the others go on.

use oci_macvlan_cni::{self as cni, NetConf};
use oci_macvlan_macvlan::{self as macvlan, ContainerId, Records};

use super::Failure;
use crate::{Context, error::Error};

pub(super) fn gc(ctx: &Context, conf: &NetConf) -> Result<(), Failure> {
    let valid = conf
        .valid_attachments
        .as_ref()
        .ok_or(cni::Error::InvalidConfig {
            field: "cni.dev/valid-attachments",
            reason: "missing: GC keeps only the attachments it lists".into(),
        })?;
    let records = Records::new(&ctx.state_dir);
    let stores = ctx.stores();
    let mut failed = Vec::new();
    for id in records.list()? {
        let Ok(id) = ContainerId::parse(&id) else {
            continue;
        };
        let Some(record) = records.read(&id)? else {
            continue;
        };
        let stale = record.cni
            && record.endpoints.iter().any(|e| {
                e.network == conf.network
                    && !valid
                        .iter()
                        .any(|(c, i)| c == id.as_str() && *i == e.ifname)
            });
        if !stale {
            continue;
        }
        match ctx.block_on(macvlan::disconnect(&stores, &records, &id, &conf.network))? {
            Ok(_) | Err(oci_macvlan_stores::Error::Core(macvlan::Error::NotConnected { .. })) => {}
            Err(err) => failed.push(format!("{id}: {}", crate::error::line(&Error::from(err)))),
        }
    }
    // What an ADD killed before it wrote its record leaves: a lock file alone.
    records.remove_unrecorded_locks()?;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::Incomplete(failed.join("; ")))
    }
}
