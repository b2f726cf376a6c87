//! Apply's half of [`crate::wire`]: sends what one link is to carry to the kernel, in order
//! (addresses, sysctls, link up, routes), deciding nothing. Idempotent: what a previous,
//! interrupted attach already did (`EEXIST`) counts as done.

use std::time::{Duration, Instant};

use oci_macvlan_netlink_core::{Errno, Link, Sysctl};

use crate::{
    Error, Result, failpoint, kernel::Kernel, mac::Mac, plan::PlannedNetwork, wire::Wired,
};

/// One link in the container's namespace and what it is to carry.
pub(crate) struct Wiring<'a, K> {
    pub(crate) kernel: &'a K,
    pub(crate) link: &'a Link,
    pub(crate) parent: &'a Link,
    pub(crate) planned: &'a PlannedNetwork<'a>,
}

impl<K: Kernel> Wiring<'_, K> {
    /// Sends `wired` to the kernel. On a link that [`Self::up_for_source`] set up with
    /// `before`'s settings (when given), those settings are not written again, nor is the link
    /// set up again.
    pub(crate) async fn apply(&self, wired: &Wired<'_>, before: Option<&Wired<'_>>) -> Result<()> {
        let link = self.link;
        let configure = |source| Error::Configure {
            network: self.planned.network.clone(),
            ifname: link.name.clone(),
            source,
        };
        for address in &wired.addresses {
            exists_ok(
                self.kernel
                    .add_address(
                        link,
                        address.ip(),
                        address.prefix(),
                        wired.lifetime_of(address),
                    )
                    .await,
            )
            .map_err(configure)?;
        }
        failpoint::hit("attach:net:addressed")?;
        let written = |c: &Sysctl<'_>| {
            before.is_some_and(|b| {
                b.sysctls
                    .iter()
                    .any(|d| d.key == c.key && d.value == c.value)
            })
        };
        let sysctls: Vec<Sysctl<'_>> = wired
            .sysctls
            .iter()
            .filter(|c| !written(c))
            .cloned()
            .collect();
        if !sysctls.is_empty() {
            self.kernel.write_sysctls(&sysctls).map_err(configure)?;
        }
        failpoint::hit("attach:net:configured")?;
        if before.is_none() {
            self.up().await?;
        }
        failpoint::hit("attach:net:up")?;
        for route in &wired.routes {
            exists_ok(self.kernel.add_route(link, route).await).map_err(configure)?;
        }
        failpoint::hit("attach:net:routed")
    }

    /// Before a source that talks on the link runs (a DHCP client): the link's settings
    /// (`wired`: what [`crate::wire`] gives for no address yet) and the link up, without an
    /// address. Nothing waits for IPv6's duplicate address detection.
    pub(crate) async fn up_for_source(&self, wired: &Wired<'_>) -> Result<()> {
        self.kernel
            .write_sysctls(&wired.sysctls)
            .map_err(|source| Error::Configure {
                network: self.planned.network.clone(),
                ifname: self.link.name.clone(),
                source,
            })?;
        self.up().await
    }

    /// The link up, its errors said.
    async fn up(&self) -> Result<()> {
        self.link_up().await.map_err(|err| {
            // The kernel refuses, at link-up, a MAC that its parent or a sibling macvlan already
            // has; its EADDRINUSE alone does not say which address.
            match (err.errno(), self.planned.link.mac) {
                (Some(Errno::EADDRINUSE), Mac::Own(mac)) => Error::MacInUse {
                    mac: mac.to_string(),
                    network: self.planned.network.clone(),
                    parent: self.parent.name.clone(),
                },
                _ => Error::Configure {
                    network: self.planned.network.clone(),
                    ifname: self.link.name.clone(),
                    source: err,
                },
            }
        })
    }

    /// Sets the link up. A MAC still held by the macvlan of a namespace the kernel is tearing
    /// down (a container restarted at once keeps its MAC) is `EADDRINUSE` until the kernel's
    /// cleanup work gets to it, tens of milliseconds later: retried for [`MAC_SETTLE`].
    async fn link_up(&self) -> oci_macvlan_netlink_core::Result<()> {
        let deadline = Instant::now() + MAC_SETTLE;
        let mut pause = Duration::from_millis(1);
        loop {
            match self.kernel.set_link_up(self.link).await {
                Err(err) if err.errno() == Some(Errno::EADDRINUSE) && Instant::now() < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }
}

/// How long a MAC conflict at link-up is retried before it is an error.
const MAC_SETTLE: Duration = Duration::from_secs(1);

fn exists_ok(result: oci_macvlan_netlink_core::Result<()>) -> oci_macvlan_netlink_core::Result<()> {
    match result {
        Err(err) if err.errno() == Some(Errno::EEXIST) => Ok(()),
        other => other,
    }
}
