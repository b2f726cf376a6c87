//! Finding, creating and deleting a network's parent link in the host namespace.
//!
//! oci-macvlan creates a parent only when the network asks for one that can be made: an 802.1q
//! `base.vid` on an existing base, or a dummy for a network without a parent. A link it created
//! carries [`OWNER_ALIAS`] as its alias, so ownership is visible (`ip link` shows it) and a link of
//! the same name that someone else made is never taken for ours, nor deleted.

use oci_macvlan_netlink_core::{self as netlink, Errno, Handle, Link, NewVlan};

use crate::{Error as NameError, Parent};

/// The result of finding, making or removing a parent link.
pub type Result<T, E = LinkError> = std::result::Result<T, E>;

/// Why a parent link cannot be found, made or removed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The parent (a plain link, which is never made) is not there.
    #[error("parent interface {0} not found")]
    NotFound(String),
    /// A VLAN parent cannot be made: its base link is not there.
    #[error("parent interface {name} cannot be created: its base interface {base} not found")]
    BaseNotFound {
        /// The parent's name.
        name: String,
        /// The base link's name.
        base: String,
    },
    /// A link of the parent's name is there but is not what the name promises.
    #[error(
        "parent interface {name} exists but is {found}, not {expected}: oci-macvlan will not use it"
    )]
    Conflict {
        /// The parent's name.
        name: String,
        /// What the name promises ([`Parent::describe`]).
        expected: String,
        /// What the link is.
        found: String,
    },
    /// The kernel cannot make this kind of parent (its module is missing).
    #[error(
        "cannot create parent interface {name}: the kernel does not support it (modprobe {module})"
    )]
    Unsupported {
        /// The parent's name.
        name: String,
        /// The kernel module that provides the kind.
        module: &'static str,
    },
    /// The parent's name is not valid.
    #[error(transparent)]
    Name(NameError),
    /// The kernel refused a request.
    #[error("kernel request failed")]
    Kernel(#[source] netlink::Error),
}

impl LinkError {
    /// The parent or its base is missing (not a conflict or a kernel failure).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound(_) | Self::BaseNotFound { .. })
    }
}

/// The alias of every link oci-macvlan created.
pub const OWNER_ALIAS: &str = "created by oci-macvlan";

/// A parent link as found or made.
#[derive(Debug, Clone)]
pub struct Ensured {
    /// The parent link.
    pub link: Link,
    /// The link carries [`OWNER_ALIAS`]: oci-macvlan made it (now, or for another network).
    pub ours: bool,
    /// This call created it (the caller undoes that if what follows fails).
    pub created: bool,
}

/// Finds `parent`, or creates it when `may_create` and it is a kind oci-macvlan can make.
///
/// A link with the parent's name that is not what the name promises (a VLAN `d0.50` that is
/// another kind, on another base, or with another id; a dummy parent that is not a dummy we made)
/// is a conflict, never used. Concurrent callers that need the same missing parent all succeed:
/// the kernel creates it once (`EEXIST` for the others), and the losers take the winner's link.
pub async fn ensure(host: &Handle, parent: &Parent, may_create: bool) -> Result<Ensured> {
    if let Some(link) = lookup(host, parent.name()).await? {
        return found(host, parent, link).await;
    }
    if !may_create {
        return Err(LinkError::NotFound(parent.name().to_owned()));
    }
    let created = match parent {
        Parent::Plain(name) => return Err(LinkError::NotFound(name.clone())),
        Parent::Vlan { name, base, vid } => {
            let Some(base_link) = lookup(host, base).await? else {
                return Err(LinkError::BaseNotFound {
                    name: name.clone(),
                    base: base.clone(),
                });
            };
            if base_link.loopback {
                return Err(LinkError::Name(NameError::Loopback));
            }
            host.create_vlan(&NewVlan {
                base: &base_link,
                name,
                vid: *vid,
            })
            .await
        }
        Parent::Dummy(name) => host.create_dummy(name).await,
    };
    let created = match created {
        Ok(()) => true,
        // Another caller made it between our lookup and our request: theirs is as good.
        Err(err) if err.errno() == Some(Errno::EEXIST) => false,
        Err(err) => return Err(create_failed(parent, err)),
    };
    let link = if created {
        // The kernel takes no alias at creation: the creator tags the link right after.
        let link = lookup(host, parent.name())
            .await?
            .ok_or_else(|| LinkError::NotFound(parent.name().to_owned()))?;
        host.set_alias(&link, OWNER_ALIAS)
            .await
            .map_err(LinkError::Kernel)?;
        lookup(host, parent.name())
            .await?
            .ok_or_else(|| LinkError::NotFound(parent.name().to_owned()))?
    } else {
        tagged_by_winner(host, parent.name()).await?
    };
    let mut ensured = found(host, parent, link).await?;
    ensured.created = created;
    Ok(ensured)
}

/// The link a concurrent creator made, once it carries our alias (set by the creator right after
/// creation); after a short wait, the link as it is, for [`found`] to judge.
async fn tagged_by_winner(host: &Handle, name: &str) -> Result<Link> {
    for _ in 0..50 {
        let link = lookup(host, name)
            .await?
            .ok_or_else(|| LinkError::NotFound(name.to_owned()))?;
        if link.alias.as_deref() == Some(OWNER_ALIAS) {
            return Ok(link);
        }
        // A blocking pause: the runtime's only other task is this handle's netlink connection,
        // which has no request in flight between two lookups, and nothing else is scheduled
        // (the hook's runtime has timers, for the MAC retry at link-up, but none is armed here).
        std::thread::sleep(std::time::Duration::from_millis(4));
    }
    lookup(host, name)
        .await?
        .ok_or_else(|| LinkError::NotFound(name.to_owned()))
}

/// Deletes `parent` if oci-macvlan made it and it is still what its name promises. Returns
/// whether a link was deleted. The caller decides that no other network uses it: deleting a
/// parent deletes every child link (macvlan, ipvlan) on it.
pub async fn remove(host: &Handle, parent: &Parent) -> Result<bool> {
    let Some(link) = lookup(host, parent.name()).await? else {
        return Ok(false);
    };
    if link.alias.as_deref() != Some(OWNER_ALIAS) || mismatch(host, parent, &link).await?.is_some()
    {
        return Ok(false);
    }
    host.delete_link(&link).await.map_err(LinkError::Kernel)?;
    Ok(true)
}

async fn lookup(host: &Handle, name: &str) -> Result<Option<Link>> {
    host.link_by_name(name).await.map_err(LinkError::Kernel)
}

/// Checks an existing link against what `parent` promises and brings a link of ours up.
async fn found(host: &Handle, parent: &Parent, link: Link) -> Result<Ensured> {
    if link.loopback {
        return Err(LinkError::Name(NameError::Loopback));
    }
    if let Some(found) = mismatch(host, parent, &link).await? {
        return Err(LinkError::Conflict {
            name: parent.name().to_owned(),
            expected: parent.describe(),
            found,
        });
    }
    let ours = link.alias.as_deref() == Some(OWNER_ALIAS);
    // A parent of ours is ours to bring up (after creation, or if someone set it down); a link
    // the host owns is used as it is.
    let link = if ours && !link.up {
        host.set_link_up(&link).await.map_err(LinkError::Kernel)?;
        lookup(host, parent.name())
            .await?
            .ok_or_else(|| LinkError::NotFound(parent.name().to_owned()))?
    } else {
        // The hot path of every attach: one lookup, no second request.
        link
    };
    Ok(Ensured {
        link,
        ours,
        created: false,
    })
}

/// What `link` is instead of what `parent` promises, if it differs.
async fn mismatch(host: &Handle, parent: &Parent, link: &Link) -> Result<Option<String>> {
    let kind = link.kind.as_deref().unwrap_or("device");
    Ok(match parent {
        Parent::Plain(_) => None,
        Parent::Vlan { base, vid, .. } => {
            let base_index = lookup(host, base).await?.map(|b| b.index);
            if link.kind.as_deref() != Some("vlan") {
                Some(format!("a {kind} link"))
            } else if link.vlan_id != Some(*vid) {
                Some(format!("VLAN {}", link.vlan_id.unwrap_or(0)))
            } else if link.lower.is_none() || link.lower != base_index {
                Some(format!(
                    "VLAN {vid} on another link (index {:?})",
                    link.lower
                ))
            } else {
                None
            }
        }
        Parent::Dummy(_) => {
            if link.kind.as_deref() != Some("dummy") {
                Some(format!("a {kind} link"))
            } else if link.alias.as_deref() != Some(OWNER_ALIAS) {
                Some("a dummy link oci-macvlan did not create".to_owned())
            } else {
                None
            }
        }
    })
}

fn create_failed(parent: &Parent, err: netlink::Error) -> LinkError {
    if err.errno() == Some(Errno::EOPNOTSUPP) {
        let module = match parent {
            Parent::Dummy(_) => "dummy",
            _ => "8021q",
        };
        return LinkError::Unsupported {
            name: parent.name().to_owned(),
            module,
        };
    }
    LinkError::Kernel(err)
}
