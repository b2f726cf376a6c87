//! [`Host`] over netlink, in the caller's own namespace.

use std::{cell::RefCell, net::IpAddr};

use oci_macvlan_netlink_core::{Handle, Link};

use super::{Host, Nl};

/// The caller's own namespace (the host's, for a detach), its netlink handle opened at the
/// first request: a detach without host access opens none.
#[derive(Debug, Default)]
pub(crate) struct CurrentHost {
    handle: RefCell<Option<Handle>>,
}

impl CurrentHost {
    fn handle(&self) -> Nl<Handle> {
        if let Some(handle) = self.handle.borrow().as_ref() {
            return Ok(handle.clone());
        }
        let handle = Handle::current()?;
        *self.handle.borrow_mut() = Some(handle.clone());
        Ok(handle)
    }
}

impl Host for CurrentHost {
    async fn host_link_by_name(&self, name: &str) -> Nl<Option<Link>> {
        self.handle()?.link_by_name(name).await
    }

    async fn delete_host_route(&self, link: &Link, ip: IpAddr) -> Nl<()> {
        self.handle()?.delete_host_route(link, ip).await
    }
}
