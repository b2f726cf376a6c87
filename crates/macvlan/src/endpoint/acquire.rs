//! One link's addresses asked of its source, with the undo steps that give back what it took.

use oci_macvlan_ipam::LeaseStore;

use crate::{
    Result,
    record::RecordedEndpoint,
    source::{Ask, Refused, Source, Taken},
    undo::{Step, Undo},
};

/// Asks `source` for the addresses of `ask`, pushing onto `undo` what gives back what it took.
pub(super) async fn acquire(
    source: Source,
    store: &mut dyn LeaseStore,
    ask: &Ask<'_>,
    recorded: &RecordedEndpoint,
    undo: &mut Undo,
) -> Result<Taken> {
    match source.acquire(store, ask).await {
        Ok(taken) => {
            // Only what this run took is this run's to give back.
            if !taken.new.is_empty() {
                undo.push(Step::Leased {
                    source,
                    owner: ask.owner.clone(),
                    ips: taken.new.clone(),
                });
            }
            Ok(taken)
        }
        Err(Refused {
            error,
            maybe_taken,
            server_lease,
        }) => {
            if let Some(lease) = server_lease {
                undo.push(Step::ServerLease {
                    endpoint: Box::new(RecordedEndpoint {
                        dhcp: Some(*lease),
                        ..recorded.clone()
                    }),
                });
            }
            // A take whose outcome is unknown: undone as if it was taken, unless the owner held
            // something there already (then its record keeps it owned).
            if maybe_taken && !ask.held_before {
                undo.push(Step::MaybeLeased {
                    source,
                    network: ask.network.name.clone(),
                    owner: ask.owner.clone(),
                });
            }
            Err(*error)
        }
    }
}
