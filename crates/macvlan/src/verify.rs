//! `verify`: a read-only check of what must always hold between the lease store, the network
//! definitions and the endpoint records.

use std::collections::{BTreeMap, BTreeSet};

use oci_macvlan_ipam::LeaseSet;

use crate::{
    Access, Error, Networks, Records, Result, StorePolicy,
    host_access::shared,
    reach::{Unreachable, unreachable_for},
    source::Source,
};

/// What `verify` looked at and what it found wrong.
#[derive(Debug, Default)]
pub struct Report {
    /// How many leases the stores that answered hold.
    pub leases: usize,
    /// How many endpoint records there are.
    pub records: usize,
    /// Each problem found, as one line.
    pub problems: Vec<String>,
    /// The clusters that did not answer, each with why: what needs them was not checked, so
    /// the check is not whole.
    pub unreachable: Vec<Unreachable>,
}

/// `verify`, whole: every store `stores` finds answering ([`StorePolicy::answering`], read
/// only), the definitions, the records ([`check`]) and the networks' host access on this host
/// (`host_access::verify`). A cluster that does not answer is in the report, and what needs it
/// is not checked.
pub async fn verify<P: StorePolicy>(
    stores: &P,
    networks: &Networks,
    records: &Records,
) -> std::result::Result<Report, P::Error> {
    let (mut store, unreachable) = stores.answering(networks, records, Access::Read)?;
    let mut report = check(networks, &mut store, &unreachable, records)?;
    report
        .problems
        .extend(crate::host_access::verify(networks, &mut store, &unreachable, records).await?);
    // What a source that talks to a server finds on the links themselves (DHCP).
    for id in records.list()? {
        if let Ok(Some(record)) = records.read(id.as_str()) {
            report
                .problems
                .extend(crate::source::dhcp_links::problems(&record).await);
        }
    }
    report.unreachable = unreachable;
    Ok(report)
}

/// Checks: the store's own integrity; no address leased in two stores; the host access
/// leases of shared networks ([`shared`]); every lease is on a defined network, in one of its
/// subnets, not a reserved address of that subnet; one lease per interface, network and address
/// family; every record's container holds a lease and every lease has a record. `store` is
/// every store that answered, as one; a record that names a cluster among `unreachable` is not
/// checked for a lease (the silence of its cluster says nothing of it).
fn check(
    networks: &Networks,
    store: &mut dyn LeaseSet,
    unreachable: &[Unreachable],
    records: &Records,
) -> Result<Report> {
    let mut report = Report::default();
    for problem in store.integrity_problems().map_err(Error::store)? {
        report.problems.push(format!("lease store: {problem}"));
    }
    let leases = store.all_leases().map_err(Error::store)?;
    report.leases = leases.len();
    let mut definitions = BTreeMap::new();
    let mut per_interface = BTreeMap::new();
    report
        .problems
        .extend(crate::address_space::leased_twice(&leases));
    report
        .problems
        .extend(shared::problems(store, networks, &leases, unreachable)?);
    for lease in &leases {
        // This host's host access leases are judged by `shared::problems`; another host's are
        // checked as any lease (one on an address this host's definition reserves is wrong).
        if shared::is_host_access(lease) && store.is_ours(lease) {
            continue;
        }
        let host = match &lease.host {
            Some(host) => format!(" of host {host}"),
            None => String::new(),
        };
        let who = format!(
            "lease {} ({} {}{host} on {})",
            lease.ip, lease.owner.container_id, lease.owner.ifname, lease.network
        );
        let key = (
            &lease.host,
            &lease.owner,
            &lease.network,
            lease.ip.is_ipv4(),
        );
        if let Some(other) = per_interface.insert(key, lease.ip) {
            report.problems.push(format!(
                "{who}: the interface also holds {other} of the same family"
            ));
        }
        if !definitions.contains_key(&lease.network) {
            let loaded = match networks.load(&lease.network) {
                Ok(network) => Some(network),
                Err(Error::NetworkNotFound(_)) => None,
                Err(err) => return Err(err),
            };
            definitions.insert(lease.network.clone(), loaded);
        }
        let Some(Some(network)) = definitions.get(&lease.network) else {
            report
                .problems
                .push(format!("{who}: network {} is not defined", lease.network));
            continue;
        };
        // Whether the lease fits the network is its address source's to say.
        if let Some(problem) = Source::of(network).lease_problem(network, lease, records) {
            report.problems.push(format!("{who}: {problem}"));
        }
    }
    // Records are this host's: another host's leases are checked against its own.
    let holders: BTreeSet<&str> = leases
        .iter()
        .filter(|l| store.is_ours(l) && !shared::is_host_access(l))
        .map(|l| l.owner.container_id.as_str())
        .collect();
    let recorded = records.list()?;
    report.records = recorded.len();
    let unreached = |id: &str| {
        let record = records.read(id).ok().flatten();
        record.is_some_and(|r| unreachable_for(unreachable, &r.endpoints, networks).is_some())
    };
    for id in &recorded {
        if !holders.contains(id.as_str()) && !unreached(id) {
            report
                .problems
                .push(format!("record of container {id}: it holds no lease"));
        }
    }
    for id in holders {
        if !recorded.iter().any(|r| r == id) {
            report.problems.push(format!(
                "container {id} holds leases but has no endpoint record"
            ));
        }
    }
    Ok(report)
}
