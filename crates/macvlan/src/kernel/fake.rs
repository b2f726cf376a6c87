//! A recording fake of [`Kernel`], for tier-1 tests: the host's links (parents, host links),
//! the container's links with their addresses and routes, the host's routes and the sysctls
//! written, all in memory; every call recorded as a [`Call`]; and a failure injected at the
//! N-th call that changes something, to test the undo of each step.

use std::{cell::RefCell, net::IpAddr, time::Duration};

use ipnetwork::IpNetwork;
use oci_macvlan_ipam::LeaseStore;
use oci_macvlan_netlink_core::{
    ChildKind, Errno, IpvlanFlag, IpvlanMode, KernelError, Link, MacAddr, MacvlanMode, NetnsId,
    Sysctl,
};

use super::{ChildSpec, Host, Kernel, Nl};
use crate::{Error, Network, Records, Result, wire::Route};

/// One request apply sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    Parents(Vec<String>),
    CheckStatic {
        network: String,
        ips: Vec<IpAddr>,
    },
    HostLink {
        network: String,
    },
    AddHostRoute {
        link: String,
        ip: IpAddr,
    },
    DeleteHostRoute {
        link: String,
        ip: IpAddr,
    },
    CreateChild {
        parent: String,
        name: String,
        mac: Option<MacAddr>,
        mtu: Option<u32>,
        kind: Kind,
    },
    Rename {
        from: String,
        to: String,
    },
    Delete {
        name: String,
    },
    AddAddress {
        link: String,
        address: IpNetwork,
        lifetime: Option<Duration>,
    },
    RemoveAddresses(Vec<IpAddr>),
    Sysctls(Vec<String>),
    Up {
        link: String,
    },
    UpByName {
        name: String,
    },
    AddRoute {
        link: String,
        route: Route,
    },
}

/// The whole kernel kind of a child asked for: [`ChildKind`] with its settings, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Macvlan {
        mode: MacvlanMode,
        source_macs: Vec<MacAddr>,
    },
    Ipvlan {
        mode: IpvlanMode,
        flag: IpvlanFlag,
    },
}

impl From<&ChildKind<'_>> for Kind {
    fn from(kind: &ChildKind<'_>) -> Self {
        match *kind {
            ChildKind::Macvlan { mode, source_macs } => Self::Macvlan {
                mode,
                source_macs: source_macs.to_vec(),
            },
            ChildKind::Ipvlan { mode, flag } => Self::Ipvlan { mode, flag },
        }
    }
}

impl Call {
    /// Whether the call changes the kernel (a lookup does not).
    fn changes(&self) -> bool {
        !matches!(self, Self::Parents(_) | Self::CheckStatic { .. })
    }
}

/// The fake kernel's state.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct State {
    /// Links of the host's namespace.
    pub(crate) host: Vec<Link>,
    /// Links of the container's namespace.
    pub(crate) container: Vec<Link>,
    /// Addresses in the container's namespace, by link name.
    pub(crate) addresses: Vec<(String, IpNetwork)>,
    /// Routes in the container's namespace, by link name.
    pub(crate) routes: Vec<(String, Route)>,
    /// Host routes, by host link name.
    pub(crate) host_routes: Vec<(String, IpAddr)>,
    /// Sysctls written, as `key=value`.
    pub(crate) sysctls: Vec<String>,
}

/// The fake kernel.
#[derive(Debug, Default)]
pub(crate) struct Fake {
    pub(crate) state: RefCell<State>,
    pub(crate) calls: RefCell<Vec<Call>>,
    /// The changing call (counted from 0) that fails with `EIO`, once.
    pub(crate) fail_at: RefCell<Option<usize>>,
    changes: RefCell<usize>,
    next_index: RefCell<u32>,
}

fn eio(name: &str) -> oci_macvlan_netlink_core::Error {
    oci_macvlan_netlink_core::Error::GetLink {
        name: name.to_owned(),
        source: KernelError::Errno(Errno::EIO),
    }
}

fn errno(name: &str, errno: Errno) -> oci_macvlan_netlink_core::Error {
    oci_macvlan_netlink_core::Error::GetLink {
        name: name.to_owned(),
        source: KernelError::Errno(errno),
    }
}

impl Fake {
    /// A fake with host links `parents` (name, MAC).
    pub(crate) fn with_parents(parents: &[(&str, &str)]) -> Self {
        let fake = Self::default();
        for (name, mac) in parents {
            let link = fake.link(name, mac.parse().ok(), None, None);
            fake.state.borrow_mut().host.push(link);
        }
        fake
    }

    fn link(
        &self,
        name: &str,
        mac: Option<MacAddr>,
        kind: Option<&str>,
        lower: Option<u32>,
    ) -> Link {
        let mut next = self.next_index.borrow_mut();
        *next += 1;
        Link {
            index: *next + 1,
            name: name.to_owned(),
            mac,
            mtu: None,
            up: false,
            loopback: false,
            kind: kind.map(str::to_owned),
            alias: None,
            lower,
            vlan_id: None,
            promiscuity: 0,
            carrier: None,
            mode: None,
        }
    }

    /// Records `call`; `Err` if it is the one to fail.
    fn record(&self, call: Call) -> Nl<()> {
        let changes = call.changes();
        self.calls.borrow_mut().push(call);
        if !changes {
            return Ok(());
        }
        let mut n = self.changes.borrow_mut();
        let this = *n;
        *n += 1;
        let mut fail_at = self.fail_at.borrow_mut();
        if *fail_at == Some(this) {
            *fail_at = None;
            return Err(eio("injected"));
        }
        Ok(())
    }

    /// The calls recorded so far, taken.
    pub(crate) fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut self.calls.borrow_mut())
    }

    /// How many changing calls were made.
    pub(crate) fn changes(&self) -> usize {
        *self.changes.borrow()
    }
}

impl Host for Fake {
    async fn host_link_by_name(&self, name: &str) -> Nl<Option<Link>> {
        Ok(self
            .state
            .borrow()
            .host
            .iter()
            .find(|l| l.name == name)
            .cloned())
    }

    async fn delete_host_route(&self, link: &Link, ip: IpAddr) -> Nl<()> {
        self.record(Call::DeleteHostRoute {
            link: link.name.clone(),
            ip,
        })?;
        self.state
            .borrow_mut()
            .host_routes
            .retain(|r| r != &(link.name.clone(), ip));
        Ok(())
    }
}

impl Kernel for Fake {
    async fn parents(&self, networks: &[&Network]) -> Result<Vec<Link>> {
        let names: Vec<String> = networks.iter().map(|n| n.parent.to_string()).collect();
        self.record(Call::Parents(names.clone()))
            .map_err(Error::Netlink)?;
        let state = self.state.borrow();
        names
            .iter()
            .map(|name| {
                state
                    .host
                    .iter()
                    .find(|l| &l.name == name)
                    .cloned()
                    .ok_or_else(|| Error::Netlink(errno(name, Errno::ENODEV)))
            })
            .collect()
    }

    async fn check_static(
        &self,
        _store: &mut dyn LeaseStore,
        net: &Network,
        _parent: &Link,
        ips: &[IpAddr],
    ) -> Result<()> {
        self.record(Call::CheckStatic {
            network: net.name.clone(),
            ips: ips.to_vec(),
        })
        .map_err(Error::Netlink)
    }

    async fn host_link(
        &self,
        net: &Network,
        parent: &Link,
        _store: &mut dyn LeaseStore,
        _records: &Records,
    ) -> Result<Link> {
        self.record(Call::HostLink {
            network: net.name.clone(),
        })
        .map_err(Error::Netlink)?;
        let name = net.host_link().unwrap_or_default();
        if let Some(link) = self.state.borrow().host.iter().find(|l| l.name == name) {
            return Ok(link.clone());
        }
        let kind = net.driver().host_child()?.name();
        let mut link = self.link(&name, parent.mac, Some(kind), Some(parent.index));
        link.up = true;
        link.alias = Some(oci_macvlan_vlan::OWNER_ALIAS.to_owned());
        self.state.borrow_mut().host.push(link.clone());
        Ok(link)
    }

    async fn add_host_route(&self, link: &Link, ip: IpAddr) -> Nl<()> {
        self.record(Call::AddHostRoute {
            link: link.name.clone(),
            ip,
        })?;
        let mut state = self.state.borrow_mut();
        let route = (link.name.clone(), ip);
        if state.host_routes.contains(&route) {
            return Err(errno(&link.name, Errno::EEXIST));
        }
        state.host_routes.push(route);
        Ok(())
    }

    async fn create_child(&self, spec: &ChildSpec<'_>) -> Nl<()> {
        self.record(Call::CreateChild {
            parent: spec.parent.name.clone(),
            name: spec.name.to_owned(),
            mac: spec.mac,
            mtu: spec.mtu,
            kind: Kind::from(&spec.kind),
        })?;
        if self
            .state
            .borrow()
            .container
            .iter()
            .any(|l| l.name == spec.name)
        {
            return Err(errno(spec.name, Errno::EEXIST));
        }
        let mac = spec.mac.or(spec.parent.mac);
        let mut link = self.link(
            spec.name,
            mac,
            Some(spec.kind.name()),
            Some(spec.parent.index),
        );
        link.mtu = spec.mtu;
        self.state.borrow_mut().container.push(link);
        Ok(())
    }

    fn container_netns(&self) -> Nl<NetnsId> {
        Ok(NetnsId {
            dev: 4,
            ino: 4026532000,
        })
    }

    async fn link_by_name(&self, name: &str) -> Nl<Option<Link>> {
        Ok(self
            .state
            .borrow()
            .container
            .iter()
            .find(|l| l.name == name)
            .cloned())
    }

    async fn rename_link(&self, link: &Link, to: &str) -> Nl<()> {
        self.record(Call::Rename {
            from: link.name.clone(),
            to: to.to_owned(),
        })?;
        let mut state = self.state.borrow_mut();
        if let Some(found) = state.container.iter_mut().find(|l| l.index == link.index) {
            found.name = to.to_owned();
        }
        Ok(())
    }

    async fn delete_link(&self, link: &Link) -> Nl<()> {
        self.record(Call::Delete {
            name: link.name.clone(),
        })?;
        let mut state = self.state.borrow_mut();
        state.container.retain(|l| l.index != link.index);
        // The kernel takes a link's addresses and routes with it.
        state.addresses.retain(|(name, _)| name != &link.name);
        state.routes.retain(|(name, _)| name != &link.name);
        let infix = format!(".{}.", link.name);
        state.sysctls.retain(|c| !c.contains(&infix));
        Ok(())
    }

    async fn remove_addresses(&self, link: &Link, ips: &[IpAddr]) -> Nl<()> {
        self.record(Call::RemoveAddresses(ips.to_vec()))?;
        self.state
            .borrow_mut()
            .addresses
            .retain(|(name, address)| name != &link.name || !ips.contains(&address.ip()));
        Ok(())
    }

    async fn add_address(
        &self,
        link: &Link,
        ip: IpAddr,
        prefix: u8,
        lifetime: Option<Duration>,
    ) -> Nl<()> {
        let address = IpNetwork::new(ip, prefix).map_err(|_| errno(&link.name, Errno::EINVAL))?;
        self.record(Call::AddAddress {
            link: link.name.clone(),
            address,
            lifetime,
        })?;
        // As the kernel: an address the link has already is `EEXIST`, unless a lifetime
        // replaces it.
        let mut state = self.state.borrow_mut();
        let entry = (link.name.clone(), address);
        if state.addresses.contains(&entry) {
            if lifetime.is_some() {
                return Ok(());
            }
            return Err(errno(&link.name, Errno::EEXIST));
        }
        state.addresses.push(entry);
        Ok(())
    }

    fn write_sysctls(&self, sysctls: &[Sysctl<'_>]) -> Nl<()> {
        let written: Vec<String> = sysctls
            .iter()
            .map(|c| format!("{}={}", c.key.join("."), c.value))
            .collect();
        self.record(Call::Sysctls(written.clone()))?;
        // A setting written again is one setting.
        let mut state = self.state.borrow_mut();
        for setting in written {
            if !state.sysctls.contains(&setting) {
                state.sysctls.push(setting);
            }
        }
        Ok(())
    }

    async fn set_link_up(&self, link: &Link) -> Nl<()> {
        self.record(Call::Up {
            link: link.name.clone(),
        })?;
        let mut state = self.state.borrow_mut();
        if let Some(found) = state.container.iter_mut().find(|l| l.index == link.index) {
            found.up = true;
        }
        Ok(())
    }

    async fn set_link_up_by_name(&self, name: &str) -> Nl<()> {
        self.record(Call::UpByName {
            name: name.to_owned(),
        })
    }

    async fn add_route(&self, link: &Link, route: &Route) -> Nl<()> {
        self.record(Call::AddRoute {
            link: link.name.clone(),
            route: *route,
        })?;
        // As the kernel: a route the link has already is `EEXIST`.
        let mut state = self.state.borrow_mut();
        let entry = (link.name.clone(), *route);
        if state.routes.contains(&entry) {
            return Err(errno(&link.name, Errno::EEXIST));
        }
        state.routes.push(entry);
        Ok(())
    }
}
