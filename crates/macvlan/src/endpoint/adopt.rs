//! The container's link of an attach: created straight into its namespace (under a temporary
//! name when the kernel finds the name taken in the parent's namespace), or adopted when this
//! container's own earlier run made it.

use std::time::{SystemTime, UNIX_EPOCH};

use oci_macvlan_netlink_core::{Errno, Link};

use super::Apply;
use crate::{
    Error, Result,
    kernel::{ChildSpec, Kernel},
    record::RecordedEndpoint,
};

impl<K: Kernel> Apply<'_, K> {
    /// The container's macvlan for `spec`: created (`true`), or adopted (`false`) when the
    /// container already has a link of that name that this container's own earlier run made —
    /// its record lists it, its kind, parent and MAC match, and no other container's record
    /// claims that name in this namespace — so configuring it again completes what is missing.
    /// Any other link of that name is someone else's: never adopted. The name is looked up only
    /// when the kernel reports it taken: the usual attach makes one request fewer.
    pub(super) async fn create_or_adopt(
        &self,
        spec: &ChildSpec<'_>,
        planned: &RecordedEndpoint,
    ) -> Result<(Link, bool), Created> {
        let container = self.kernel;
        match container.create_child(spec).await {
            Ok(()) => {}
            Err(err) if err.errno() == Some(Errno::EEXIST) => {
                match container.link_by_name(spec.name).await? {
                    Some(link) if self.adoptable(&link, planned)? => return Ok((link, false)),
                    Some(_) => return Err(Created::NameTaken),
                    // Taken in the parent's namespace, not in the container's.
                    None => create_renamed(container, spec).await?,
                }
            }
            Err(err) => return Err(err.into()),
        }
        let link = container
            .link_by_name(spec.name)
            .await?
            .ok_or_else(|| oci_macvlan_netlink_core::Error::missing_link(spec.name))?;
        Ok((link, true))
    }

    fn adoptable(&self, link: &Link, planned: &RecordedEndpoint) -> Result<bool, Created> {
        let recorded = self.previous.and_then(|previous| {
            previous
                .endpoints
                .iter()
                .find(|e| e.network == planned.network && e.ifname == planned.ifname)
        });
        let Some(recorded) = recorded else {
            return Ok(false);
        };
        if !recorded.is(link) || !planned.is(link) {
            return Ok(false);
        }
        let netns = self.kernel.container_netns().map_err(Created::Netlink)?;
        let others = self
            .records
            .claims_of_others(
                self.req.container_id,
                netns,
                link,
                recorded.index == Some(link.index),
            )
            .map_err(|err| Created::Other(Box::new(err)))?;
        Ok(others.is_empty())
    }
}

/// Why [`Apply::create_or_adopt`] has no link for the container.
pub(super) enum Created {
    /// The container has a link of that name that is not ours.
    NameTaken,
    Netlink(oci_macvlan_netlink_core::Error),
    Other(Box<Error>),
}

impl From<oci_macvlan_netlink_core::Error> for Created {
    fn from(err: oci_macvlan_netlink_core::Error) -> Self {
        Self::Netlink(err)
    }
}

/// Creates the macvlan whose name the kernel found taken in the parent's namespace (it may check
/// there too) under a temporary name, then renames it inside the container, as CNI and netavark
/// do.
async fn create_renamed(
    container: &impl Kernel,
    spec: &ChildSpec<'_>,
) -> oci_macvlan_netlink_core::Result<()> {
    let temporary = temporary_name();
    container
        .create_child(&ChildSpec {
            name: &temporary,
            ..*spec
        })
        .await?;
    let link = container
        .link_by_name(&temporary)
        .await?
        .ok_or_else(|| oci_macvlan_netlink_core::Error::missing_link(&temporary))?;
    if let Err(err) = container.rename_link(&link, spec.name).await {
        let _ = container.delete_link(&link).await;
        return Err(err);
    }
    Ok(())
}

fn temporary_name() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("omv{:08x}", nanos ^ std::process::id().rotate_left(16))
}
