use std::fmt;

use futures_util::TryStreamExt;
use rtnetlink::{
    LinkIpVlan, LinkMacVlan, LinkMessageBuilder, LinkUnspec,
    packet_route::link::{
        InfoData, InfoIpVlan, InfoKind, InfoMacVlan, InfoVlan, IpVlanFlags,
        IpVlanMode as NlIpvlanMode, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
        MacVlanMacAddressMode, MacVlanMode as NlMode,
    },
};

use crate::{Errno, Error, Handle, KernelError, Netns, Result};

pub use crate::mac::{MacAddr, ParseMacError};

/// The macvlan modes of `ip link add … type macvlan mode …`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacvlanMode {
    /// `bridge`: a parent's macvlans reach each other inside the host.
    Bridge,
    /// `private`: they do not reach each other at all.
    Private,
    /// `vepa`: they reach each other through the LAN's switch (hairpin).
    Vepa,
    /// `passthru`: one macvlan takes the parent over.
    Passthru,
    /// `source`: the link receives only frames from a list of source MACs.
    Source,
}

impl MacvlanMode {
    fn from_netlink(mode: &NlMode) -> Option<Self> {
        Some(match mode {
            NlMode::Bridge => Self::Bridge,
            NlMode::Private => Self::Private,
            NlMode::Vepa => Self::Vepa,
            NlMode::Passthrough => Self::Passthru,
            NlMode::Source => Self::Source,
            _ => return None,
        })
    }

    fn to_netlink(self) -> NlMode {
        match self {
            Self::Bridge => NlMode::Bridge,
            Self::Private => NlMode::Private,
            Self::Vepa => NlMode::Vepa,
            Self::Passthru => NlMode::Passthrough,
            Self::Source => NlMode::Source,
        }
    }
}

/// The ipvlan modes of `ip link add … type ipvlan mode …` (`IFLA_IPVLAN_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpvlanMode {
    /// `l2`: the children answer ARP and NDP on the LAN themselves.
    L2,
    /// `l3`: the parent routes for its children; no ARP on the LAN.
    L3,
    /// L3 with netfilter on the host side (`l3s`).
    L3s,
}

impl IpvlanMode {
    fn from_netlink(mode: &NlIpvlanMode) -> Option<Self> {
        Some(match mode {
            NlIpvlanMode::L2 => Self::L2,
            NlIpvlanMode::L3 => Self::L3,
            NlIpvlanMode::L3S => Self::L3s,
            _ => return None,
        })
    }

    fn to_netlink(self) -> NlIpvlanMode {
        match self {
            Self::L2 => NlIpvlanMode::L2,
            Self::L3 => NlIpvlanMode::L3,
            Self::L3s => NlIpvlanMode::L3S,
        }
    }
}

/// The ipvlan flags of `ip link add … type ipvlan mode … bridge|private|vepa`
/// (`IFLA_IPVLAN_FLAGS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpvlanFlag {
    /// Children of one parent reach each other inside the kernel (no flag bit).
    Bridge,
    /// Children of one parent do not reach each other (`IPVLAN_F_PRIVATE`).
    Private,
    /// Traffic between children goes out to the parent's switch (`IPVLAN_F_VEPA`).
    Vepa,
}

impl IpvlanFlag {
    fn from_netlink(flags: IpVlanFlags) -> Option<Self> {
        if flags.is_empty() {
            Some(Self::Bridge)
        } else if flags == IpVlanFlags::Private {
            Some(Self::Private)
        } else if flags == IpVlanFlags::Vepa {
            Some(Self::Vepa)
        } else {
            None
        }
    }

    fn to_netlink(self) -> IpVlanFlags {
        match self {
            Self::Bridge => IpVlanFlags::empty(),
            Self::Private => IpVlanFlags::Private,
            Self::Vepa => IpVlanFlags::Vepa,
        }
    }
}

/// The mode a macvlan or ipvlan link reports (`IFLA_INFO_DATA`): what [`ChildKind::mode`]
/// asked for when it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildMode {
    /// A macvlan's mode.
    Macvlan(MacvlanMode),
    /// An ipvlan's mode and flag (its parent's: the kernel keeps one for all children).
    Ipvlan(IpvlanMode, IpvlanFlag),
}

impl fmt::Display for ChildMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Macvlan(mode) => write!(f, "macvlan mode {}", format!("{mode:?}").to_lowercase()),
            Self::Ipvlan(mode, flag) => write!(
                f,
                "ipvlan mode {} {}",
                format!("{mode:?}").to_lowercase(),
                format!("{flag:?}").to_lowercase()
            ),
        }
    }
}

/// What the kernel says about one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The link's index in its namespace.
    pub index: u32,
    /// The link's name.
    pub name: String,
    /// Its MAC (`IFLA_ADDRESS`), when it has an Ethernet one.
    pub mac: Option<MacAddr>,
    /// Its MTU.
    pub mtu: Option<u32>,
    /// Whether it is administratively up (`IFF_UP`).
    pub up: bool,
    /// Whether it is a loopback device (`IFF_LOOPBACK`).
    pub loopback: bool,
    /// `IFLA_INFO_KIND`, e.g. `macvlan`, `veth`, `vlan`; `None` for physical devices.
    pub kind: Option<String>,
    /// `IFLA_IFALIAS` (`ip link set … alias …`).
    pub alias: Option<String>,
    /// The lower device's index (`IFLA_LINK`): a VLAN's base, a macvlan's parent.
    pub lower: Option<u32>,
    /// An 802.1q link's VLAN id.
    pub vlan_id: Option<u16>,
    /// The promiscuity count (`IFLA_PROMISCUITY`): non-zero while anything holds the link in
    /// promiscuous mode.
    pub promiscuity: u32,
    /// `IFLA_CARRIER`: the link has a carrier (cable, peer).
    pub carrier: Option<bool>,
    /// A macvlan's or ipvlan's mode, as the kernel reports it; `None` for other kinds (and a
    /// mode this crate has no name for).
    pub mode: Option<ChildMode>,
}

impl Link {
    pub(crate) fn from_message(msg: LinkMessage) -> Self {
        let mut link = Link {
            index: msg.header.index,
            name: String::new(),
            mac: None,
            mtu: None,
            up: msg.header.flags.contains(LinkFlags::Up),
            loopback: msg.header.flags.contains(LinkFlags::Loopback),
            kind: None,
            alias: None,
            lower: None,
            vlan_id: None,
            promiscuity: 0,
            carrier: None,
            mode: None,
        };
        for attr in msg.attributes {
            match attr {
                LinkAttribute::IfName(name) => link.name = name,
                LinkAttribute::Mtu(mtu) => link.mtu = Some(mtu),
                LinkAttribute::Address(bytes) => {
                    link.mac = <[u8; 6]>::try_from(bytes.as_slice()).ok().map(MacAddr);
                }
                LinkAttribute::IfAlias(alias) => link.alias = Some(alias),
                LinkAttribute::Link(index) => link.lower = Some(index),
                LinkAttribute::Promiscuity(count) => link.promiscuity = count,
                LinkAttribute::Carrier(carrier) => link.carrier = Some(carrier != 0),
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        match info {
                            LinkInfo::Kind(InfoKind::Other(kind)) => link.kind = Some(kind),
                            LinkInfo::Kind(kind) => link.kind = Some(kind.to_string()),
                            LinkInfo::Data(InfoData::MacVlan(data)) => {
                                link.mode = data.iter().find_map(|d| match d {
                                    InfoMacVlan::Mode(mode) => {
                                        MacvlanMode::from_netlink(mode).map(ChildMode::Macvlan)
                                    }
                                    _ => None,
                                });
                            }
                            LinkInfo::Data(InfoData::IpVlan(data)) => {
                                let mode = data.iter().find_map(|d| match d {
                                    InfoIpVlan::Mode(mode) => IpvlanMode::from_netlink(mode),
                                    _ => None,
                                });
                                // No flags attribute: no flag bit, the default (bridge).
                                let flag = data
                                    .iter()
                                    .find_map(|d| match d {
                                        InfoIpVlan::Flags(flags) => Some(*flags),
                                        _ => None,
                                    })
                                    .map_or(Some(IpvlanFlag::Bridge), IpvlanFlag::from_netlink);
                                link.mode = mode.zip(flag).map(|(m, f)| ChildMode::Ipvlan(m, f));
                            }
                            LinkInfo::Data(InfoData::Vlan(data)) => {
                                link.vlan_id = data.into_iter().find_map(|d| match d {
                                    InfoVlan::Id(id) => Some(id),
                                    _ => None,
                                });
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        link
    }
}

/// A child link to create on a parent (its lower device) in this handle's namespace, straight
/// into `target`: a macvlan or an ipvlan.
#[derive(Debug)]
pub struct NewChild<'a> {
    /// The lower device, in this handle's namespace.
    pub parent: &'a Link,
    /// The name the link gets.
    pub name: &'a str,
    /// `None`: the kernel's choice (a random MAC for a macvlan; an ipvlan always has its
    /// parent's).
    pub mac: Option<MacAddr>,
    /// `None`: the parent's MTU.
    pub mtu: Option<u32>,
    /// The namespace the link is created in (`IFLA_NET_NS_FD`).
    pub target: &'a Netns,
    /// Macvlan or ipvlan, with its settings.
    pub kind: ChildKind<'a>,
}

/// The kind of a [`NewChild`] and its kind's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildKind<'a> {
    /// A macvlan in `mode`.
    Macvlan {
        /// The macvlan mode.
        mode: MacvlanMode,
        /// For [`MacvlanMode::Source`]: the only source MACs whose frames the link receives
        /// (`IFLA_MACVLAN_MACADDR_DATA`, set as a whole with `MACVLAN_MACADDR_SET`).
        source_macs: &'a [MacAddr],
    },
    /// An ipvlan in `mode`, with `flag`.
    Ipvlan {
        /// The ipvlan mode (per parent: the kernel keeps one for all children).
        mode: IpvlanMode,
        /// The ipvlan flag (per parent too).
        flag: IpvlanFlag,
    },
}

impl ChildKind<'_> {
    /// The mode the link this makes reports ([`Link::mode`]).
    pub fn mode(&self) -> ChildMode {
        match *self {
            Self::Macvlan { mode, .. } => ChildMode::Macvlan(mode),
            Self::Ipvlan { mode, flag } => ChildMode::Ipvlan(mode, flag),
        }
    }

    /// `IFLA_INFO_KIND` of the link this makes.
    pub fn name(&self) -> &'static str {
        self.tag().name()
    }

    fn tag(&self) -> ChildTag {
        match self {
            Self::Macvlan { .. } => ChildTag::Macvlan,
            Self::Ipvlan { .. } => ChildTag::Ipvlan,
        }
    }
}

/// The kind of a child link alone, as an error names it (one byte: errors stay small).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildTag {
    /// A macvlan.
    Macvlan,
    /// An ipvlan.
    Ipvlan,
}

impl ChildTag {
    /// `IFLA_INFO_KIND` of this kind.
    pub fn name(self) -> &'static str {
        match self {
            Self::Macvlan => "macvlan",
            Self::Ipvlan => "ipvlan",
        }
    }
}

impl fmt::Display for ChildTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The attributes every child takes, whatever its kind.
fn common<T>(mut builder: LinkMessageBuilder<T>, spec: &NewChild<'_>) -> LinkMessageBuilder<T> {
    builder = builder.setns_by_fd(spec.target.raw_fd());
    if let Some(mac) = spec.mac {
        builder = builder.address(mac.0.to_vec());
    }
    if let Some(mtu) = spec.mtu {
        builder = builder.mtu(mtu);
    }
    builder
}

impl Handle {
    /// Every link of this handle's namespace (one dump): for messages and checks a person asked
    /// for, never on a hook's path.
    pub async fn links(&self) -> Result<Vec<Link>> {
        let list = |err: rtnetlink::Error| Error::ListLinks { source: err.into() };
        let mut dump = self.inner.link().get().execute();
        let mut links = Vec::new();
        while let Some(msg) = dump.try_next().await.map_err(list)? {
            links.push(Link::from_message(msg));
        }
        Ok(links)
    }

    /// Looks a link up by name (one `RTM_GETLINK`, never a dump). A missing link is `Ok(None)`.
    pub async fn link_by_name(&self, name: &str) -> Result<Option<Link>> {
        let request = self.inner.link().get().match_name(name.to_owned());
        match request.execute().try_next().await {
            Ok(msg) => Ok(msg.map(Link::from_message)),
            Err(err) => match KernelError::from(err) {
                KernelError::Errno(Errno::ENODEV) => Ok(None),
                source => Err(Error::GetLink {
                    name: name.to_owned(),
                    source,
                }),
            },
        }
    }

    /// Creates a child link on `spec.parent` directly inside `spec.target` (`IFLA_NET_NS_FD`):
    /// the link never lives in this handle's namespace, and there is nothing to move afterwards.
    ///
    /// Returns `EEXIST` (as [`Error::CreateChild`]) when the name is taken, which the caller
    /// resolves by creating under a temporary name and renaming inside the target.
    pub async fn create_child(&self, spec: &NewChild<'_>) -> Result<()> {
        let message = match spec.kind {
            ChildKind::Macvlan { mode, source_macs } => {
                let mut builder = common(
                    LinkMacVlan::new(spec.name, spec.parent.index, mode.to_netlink()),
                    spec,
                );
                if !source_macs.is_empty() {
                    let list = source_macs.iter().map(|m| InfoMacVlan::MacAddr(m.0));
                    builder = builder
                        .append_info_data(InfoMacVlan::MacAddrMode(MacVlanMacAddressMode::Set))
                        .append_info_data(InfoMacVlan::MacAddrData(list.collect()));
                }
                builder.build()
            }
            ChildKind::Ipvlan { mode, flag } => common(
                LinkIpVlan::new(spec.name, spec.parent.index, mode.to_netlink())
                    .flag(flag.to_netlink()),
                spec,
            )
            .build(),
        };
        self.inner
            .link()
            .add(message)
            .execute()
            .await
            .map_err(|err| Error::CreateChild {
                kind: spec.kind.tag(),
                name: spec.name.to_owned(),
                parent: spec.parent.name.clone(),
                source: err.into(),
            })
    }

    /// Renames `link` to `to`.
    pub async fn rename_link(&self, link: &Link, to: &str) -> Result<()> {
        let msg = LinkUnspec::new_with_index(link.index)
            .name(to.to_owned())
            .build();
        self.inner
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(|err| Error::RenameLink {
                from: link.name.clone(),
                to: to.to_owned(),
                source: err.into(),
            })
    }

    /// Sets `link` up.
    pub async fn set_link_up(&self, link: &Link) -> Result<()> {
        self.set_up(
            LinkUnspec::new_with_index(link.index).up().build(),
            &link.name,
        )
        .await
    }

    /// Sets the link named `name` up, in one request: the kernel finds it by name (no lookup,
    /// and no error if it is up already).
    pub async fn set_link_up_by_name(&self, name: &str) -> Result<()> {
        self.set_up(LinkUnspec::new_with_name(name).up().build(), name)
            .await
    }

    async fn set_up(&self, msg: LinkMessage, name: &str) -> Result<()> {
        self.inner
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(|err| Error::SetLinkUp {
                name: name.to_owned(),
                source: err.into(),
            })
    }

    /// The link `name`, which must be there (one this process has just made): a missing one is
    /// [`Error::GetLink`] with `ENODEV`, as the kernel says of a link it does not have.
    pub async fn existing_link(&self, name: &str) -> Result<Link> {
        self.link_by_name(name)
            .await?
            .ok_or_else(|| Error::missing_link(name))
    }

    /// Deletes a link. A link that is already gone is not an error (teardown is idempotent).
    pub async fn delete_link(&self, link: &Link) -> Result<()> {
        match self.inner.link().del(link.index).execute().await {
            Ok(()) => Ok(()),
            Err(err) => match KernelError::from(err) {
                KernelError::Errno(Errno::ENODEV) => Ok(()),
                source => Err(Error::DeleteLink {
                    name: link.name.clone(),
                    source,
                }),
            },
        }
    }
}
