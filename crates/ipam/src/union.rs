use std::net::IpAddr;

use crate::{Error, Lease, LeaseStore, Owner, Result, Txn, View};

/// Several stores seen as one, for what works on a container or on every lease (detach,
/// `gc`, `verify`, `gc --forget-host`): each call goes to every member and the answers are put
/// together. A transaction needs one store: with more than one member, [`LeaseStore::run`] and
/// [`LeaseStore::view`] are refused (an attach opens the store of its networks alone).
pub struct Union {
    members: Vec<Box<dyn LeaseStore>>,
}

impl std::fmt::Debug for Union {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Union({} stores)", self.members.len())
    }
}

impl Union {
    pub fn new(members: Vec<Box<dyn LeaseStore>>) -> Self {
        Self { members }
    }

    fn only(&mut self) -> Result<&mut Box<dyn LeaseStore>> {
        let n = self.members.len();
        match self.members.as_mut_slice() {
            [one] => Ok(one),
            _ => Err(Error::Corrupt(format!(
                "a transaction over {n} lease stores at once"
            ))),
        }
    }

    fn each(
        &mut self,
        mut f: impl FnMut(&mut dyn LeaseStore) -> Result<Vec<Lease>>,
    ) -> Result<Vec<Lease>> {
        let mut out = Vec::new();
        for member in &mut self.members {
            out.extend(f(member.as_mut())?);
        }
        Ok(out)
    }
}

impl LeaseStore for Union {
    fn run(&mut self, f: &mut dyn FnMut(&mut dyn Txn) -> Result<()>) -> Result<()> {
        self.only()?.run(f)
    }

    fn view(&mut self, f: &mut dyn FnMut(&mut dyn View) -> Result<()>) -> Result<()> {
        self.only()?.view(f)
    }

    fn release_container(&mut self, container_id: &str) -> Result<Vec<Lease>> {
        self.each(|s| s.release_container(container_id))
    }

    fn release(&mut self, network: &str, owner: &Owner) -> Result<Vec<Lease>> {
        self.each(|s| s.release(network, owner))
    }

    fn release_ips(&mut self, owner: &Owner, ips: &[IpAddr]) -> Result<Vec<Lease>> {
        self.each(|s| s.release_ips(owner, ips))
    }

    fn container_leases(&mut self, container_id: &str) -> Result<Vec<Lease>> {
        self.each(|s| s.container_leases(container_id))
    }

    fn network_leases(&mut self, network: &str) -> Result<Vec<Lease>> {
        self.each(|s| s.network_leases(network))
    }

    fn all_leases(&mut self) -> Result<Vec<Lease>> {
        self.each(|s| s.all_leases())
    }

    fn read_ahead(&mut self) {
        for member in &mut self.members {
            member.read_ahead();
        }
    }

    fn is_ours(&self, lease: &Lease) -> bool {
        self.members.iter().any(|s| s.is_ours(lease))
    }

    fn integrity_problems(&mut self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for member in &mut self.members {
            out.extend(member.integrity_problems()?);
        }
        Ok(out)
    }

    fn maintain(&mut self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for member in &mut self.members {
            out.extend(member.maintain()?);
        }
        Ok(out)
    }

    fn forget_host(&mut self, host: &str) -> Result<Vec<Lease>> {
        self.each(|s| s.forget_host(host))
    }
}
