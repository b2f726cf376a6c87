use oci_macvlan_ipam::{LeaseStore, Owner};
use oci_macvlan_netlink_core::Handle;

use crate::Records;

/// One step an attach took, recorded with what undoes it.
#[derive(Debug)]
pub(crate) enum Step {
    WroteRecord,
    Leased { network: String, owner: Owner },
    CreatedLink { ifname: String },
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
                Step::CreatedLink { ifname } => match container {
                    Some(handle) => match handle.link_by_name(&ifname).await {
                        Ok(Some(link)) => handle.delete_link(&link).await.is_ok(),
                        Ok(None) => true,
                        Err(_) => false,
                    },
                    None => false,
                },
                Step::Leased { network, owner } => store.release(&network, &owner).is_ok(),
                Step::WroteRecord => clean && records.remove(container_id).is_ok(),
            };
            clean &= undone;
        }
        clean
    }
}
