use std::net::IpAddr;

use oci_macvlan_ipam::{LeaseStore, Owner};
use oci_macvlan_netlink_core::Handle;

use crate::{Record, Records};

/// One step an attach took, recorded with what undoes it. Only what this run made is here: a
/// lease or link an earlier run of the container made (and this one adopted) is not, so a
/// failed re-run never takes away what the container already had.
#[derive(Debug)]
pub(crate) enum Step {
    /// The record was written over `previous` (this container's record of an earlier run).
    WroteRecord { previous: Option<Record> },
    /// Addresses this run leased (not those the owner held already).
    Leased { owner: Owner, ips: Vec<IpAddr> },
    /// A link this run created, by name and index (a link that has taken its name since is not
    /// this one).
    CreatedLink { ifname: String, index: u32 },
}

/// The undo log of one attach: steps are pushed as they are taken and, on failure, undone in
/// reverse. `Drop` is no substitute: a hook may be SIGKILLed, which is why the record is written
/// first and detach works from it.
#[derive(Debug, Default)]
pub(crate) struct Undo {
    steps: Vec<Step>,
}

impl Undo {
    pub(crate) fn push(&mut self, step: Step) {
        self.steps.push(step);
    }

    /// Undoes every step, newest first. If a step cannot be undone the record is kept, so that
    /// poststop or `gc` can finish the job; returns whether everything was undone.
    pub(crate) async fn run(
        self,
        container_id: &str,
        container: Option<&Handle>,
        store: &mut impl LeaseStore,
        records: &Records,
    ) -> bool {
        let mut clean = true;
        for step in self.steps.into_iter().rev() {
            if crate::failpoint::hit("undo:step").is_err() {
                clean = false;
                continue;
            }
            let undone = match step {
                Step::CreatedLink { ifname, index } => match container {
                    Some(handle) => match handle.link_by_name(&ifname).await {
                        Ok(Some(link)) if link.index == index => {
                            handle.delete_link(&link).await.is_ok()
                        }
                        Ok(_) => true,
                        Err(_) => false,
                    },
                    None => false,
                },
                Step::Leased { owner, ips } => store.release_ips(&owner, &ips).is_ok(),
                Step::WroteRecord { previous } => {
                    clean
                        && match previous {
                            Some(previous) => records.write(&previous).is_ok(),
                            None => records.remove(container_id).is_ok(),
                        }
                }
            };
            clean &= undone;
        }
        clean
    }
}
