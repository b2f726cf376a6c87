//! Creating the links a macvlan sits on: 802.1q VLANs and dummies (parents we own), and veth
//! pairs (a probe parent in a scratch namespace).

use rtnetlink::{LinkDummy, LinkUnspec, LinkVeth, LinkVlan};

use crate::{Error, Handle, Link, Result};

/// An 802.1q link `name` with `vid` on `base`, in this handle's namespace.
#[derive(Debug)]
pub struct NewVlan<'a> {
    /// The link the VLAN sits on.
    pub base: &'a Link,
    /// The new link's name (`base.vid` by convention).
    pub name: &'a str,
    /// The VLAN id, 1–4094.
    pub vid: u16,
}

impl Handle {
    /// Creates an 802.1q link. `EEXIST` when the name is taken, `EOPNOTSUPP` when the kernel
    /// has no 802.1q support.
    pub async fn create_vlan(&self, spec: &NewVlan<'_>) -> Result<()> {
        let builder = LinkVlan::new(spec.name, spec.base.index, spec.vid);
        self.add(builder.build(), "vlan", spec.name).await
    }

    /// Creates a dummy link (a parent that leads nowhere: macvlans on it reach only each other).
    pub async fn create_dummy(&self, name: &str) -> Result<()> {
        self.add(LinkDummy::new(name).build(), "dummy", name).await
    }

    /// Sets a link's alias (`IFLA_IFALIAS`). The kernel ignores an alias in the request that
    /// creates a link, so it is always set afterwards.
    pub async fn set_alias(&self, link: &Link, alias: &str) -> Result<()> {
        let msg = LinkUnspec::new_with_index(link.index).alias(alias).build();
        self.inner
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(|err| Error::SetAlias {
                name: link.name.clone(),
                source: err.into(),
            })
    }

    /// Creates a veth pair, both ends in this handle's namespace.
    pub async fn create_veth(&self, name: &str, peer: &str) -> Result<()> {
        self.add(LinkVeth::new(name, peer).build(), "veth", name)
            .await
    }

    async fn add(
        &self,
        msg: rtnetlink::packet_route::link::LinkMessage,
        kind: &'static str,
        name: &str,
    ) -> Result<()> {
        self.inner
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(|err| Error::CreateLink {
                kind,
                name: name.to_owned(),
                source: err.into(),
            })
    }
}
