//! What `inspect` adds for a network of the DHCP source (`--ipam-driver dhcp`): the IPAM
//! driver and its options, the `--subnet` check, and per container the lease its record keeps
//! (`DhcpLease`: address, server, router, routes, name servers, domain, obtained, T1, T2,
//! expiry, client identifier; its state, and the renewer's last failure). Additive: the keys of
//! Docker's shape stay as they are.

use std::time::SystemTime;

use oci_macvlan_ipam::{Lease, Owner};
use oci_macvlan_macvlan::{
    EndpointFacts, Network, Records,
    source::{Dhcp6Record, DhcpRecord, dhcp::Renewal},
};
use serde_json::{Map, Value, json};

fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Where a lease is, as `inspect` says it (`State`): `unbound` (ended or refused: its address
/// is off the link, nothing is held at the server, discovery comes at the renewer's next act;
/// also a pending offer whose REQUEST was NAKed), `pending` (an offer taken, its REQUEST out
/// or about to be, no ACK recorded: the attach's or the renewer's discovery; a take-back
/// releases it), `expired` (past its expiry with nothing recorded since: `verify` flags it),
/// else `bound`.
fn state(renewal: &Renewal, expiry: SystemTime, now: SystemTime) -> &'static str {
    if renewal.unbound {
        "unbound"
    } else if renewal.pending {
        "pending"
    } else if expiry <= now {
        "expired"
    } else {
        "bound"
    }
}

/// The renewer's part of a lease's view: its state and, after a failed act, how many failed in
/// a row, the last one's error and when the next try is.
fn renewal_view(view: &mut Value, renewal: &Renewal, expiry: SystemTime, now: SystemTime) {
    view["State"] = json!(state(renewal, expiry, now));
    if renewal.failures > 0 {
        view["Failures"] = json!(renewal.failures);
    }
    if let Some(error) = &renewal.last_error {
        view["LastError"] = json!(error);
    }
    if let Some(at) = renewal.retry_at {
        view["RetryAt"] = json!(time(at));
    }
}

/// The lease as `inspect` shows it at `now`.
pub fn lease_view(record: &DhcpRecord, now: SystemTime) -> Value {
    let lease = &record.lease;
    let routes: Vec<String> = lease
        .routes
        .iter()
        .map(|r| format!("{}/{} via {}", r.destination, r.prefix, r.gateway))
        .collect();
    let dns: Vec<String> = lease.dns.iter().map(ToString::to_string).collect();
    let mut view = json!({
        "Address": format!("{}/{}", lease.address, lease.prefix),
        "Server": lease.server.to_string(),
        "Router": lease.router.map(|r| r.to_string()),
        "Routes": routes,
        "Dns": dns,
        "Domain": lease.domain,
        "Obtained": time(lease.obtained),
        "T1": time(lease.t1),
        "T2": time(lease.t2),
        "Expiry": time(lease.expiry),
        "ClientId": record.client_id,
        "Hostname": record.hostname,
        "V6": record.v6.as_ref().map(|v6| lease6_view(v6, now)),
    });
    renewal_view(&mut view, &record.renewal, lease.expiry, now);
    view
}

/// The DHCPv6 lease beside it (`--ipv6`), as `inspect` shows it.
fn lease6_view(record: &Dhcp6Record, now: SystemTime) -> Value {
    let lease = &record.lease;
    let server: Vec<String> = lease.server_id.iter().map(|b| format!("{b:02x}")).collect();
    let dns: Vec<String> = lease.dns.iter().map(ToString::to_string).collect();
    let mut view = json!({
        "Address": format!("{}/{}", lease.address, record.prefix),
        "ServerId": server.join(":"),
        "Unicast": lease.unicast.map(|u| u.to_string()),
        "Dns": dns,
        "Obtained": time(lease.obtained),
        "T1": time(lease.t1),
        "T2": time(lease.t2),
        "PreferredUntil": time(lease.preferred_until),
        "Expiry": time(lease.expiry),
        "Duid": record.duid,
        "Iaid": record.iaid,
    });
    renewal_view(&mut view, &record.renewal, lease.expiry, now);
    view
}

/// Adds the DHCP source's part to `view`, the network's `inspect` output, whose containers
/// are those of `leases` (the store's): each one's lease from its record, found by the
/// container's id (a container's `Name` may be the name its front door recorded instead).
pub fn add(network: &Network, leases: &[Lease], records: &Records, view: &mut Value) {
    let Some(dhcp) = network.dhcp else {
        return;
    };
    view["IPAM"]["Driver"] = json!("dhcp");
    view["IPAM"]["Options"] = json!({
        "dhcp_timeout": humantime::format_duration(dhcp.timeout()).to_string(),
    });
    let subnets: Vec<Value> = dhcp
        .subnet
        .map(|s| s.to_string())
        .into_iter()
        .chain(dhcp.subnet6.map(|s| s.to_string()))
        .map(|s| json!({ "Subnet": s }))
        .collect();
    if !subnets.is_empty() {
        view["IPAM"]["Config"] = json!(subnets);
    }
    if dhcp.ipv6 {
        view["IPAM"]["Options"]["ipv6_slaac"] = json!(dhcp.slaac.to_string());
    }
    let Some(containers) = view["Containers"].as_object_mut() else {
        return;
    };
    let now = SystemTime::now();
    for owner in leases.iter().map(|l| (l.host.as_deref(), &l.owner)) {
        let key = super::endpoint_id(&network.id, owner.0, owner.1);
        let Some(entry) = containers
            .get_mut(&key)
            .filter(|e| e.get("DhcpLease").is_none())
        else {
            continue;
        };
        let Ok(Some(record)) = records.read(&owner.1.container_id) else {
            continue;
        };
        if let Some(lease) = record
            .endpoints
            .iter()
            .find(|e| e.network == network.name && e.ifname == owner.1.ifname)
            .and_then(|e| e.dhcp.as_ref())
        {
            entry["DhcpLease"] = lease_view(lease, now);
        }
    }
}

/// Adds to `view` (after [`add`], from a store that answered) each container of this host
/// whose record keeps a lease on `network` that the store holds none of (ended or refused,
/// `unbound`, while the renewer discovers again; or an offer still `pending`): listed without
/// an address, its lease's state and last failure shown. A DHCP network's store is this
/// host's own (`network create` refuses a shared one for it): its leases name no host.
pub fn add_leaseless(network: &Network, records: &Records, view: &mut Value) {
    if network.dhcp.is_none() {
        return;
    }
    let Some(containers) = view["Containers"].as_object_mut() else {
        return;
    };
    match leaseless(network, records, containers, SystemTime::now()) {
        Ok(found) => containers.extend(found),
        Err(err) => eprintln!(
            "oci-macvlan: warning: containers on {} whose DHCP lease ended are not shown: {}",
            network.name,
            oci_macvlan_macvlan::one_line(&err)
        ),
    }
}

/// The entries of this host's containers whose record keeps a DHCP lease on `network` and
/// that `containers` (the store's) lacks. Records that cannot be listed are an error; a record
/// that cannot be read is named in a warning and the others are shown.
fn leaseless(
    network: &Network,
    records: &Records,
    containers: &Map<String, Value>,
    now: SystemTime,
) -> oci_macvlan_macvlan::Result<Vec<(String, Value)>> {
    let mut found = Vec::new();
    for id in records.list()? {
        let record = match records.read(&id) {
            Ok(Some(record)) => record,
            // Removed since it was listed: a detach.
            Ok(None) => continue,
            Err(err) => {
                eprintln!(
                    "oci-macvlan: warning: the record of container {id} is not shown: {}",
                    oci_macvlan_macvlan::one_line(&err)
                );
                continue;
            }
        };
        for endpoint in record
            .endpoints
            .iter()
            .filter(|e| e.network == network.name)
        {
            // A lease ended, refused or in flight (a bound one the store lacks is a detach
            // or an attach under way: the store's view is shown).
            let Some(lease) = endpoint.dhcp.as_ref().filter(|d| {
                let unheld = |r: &Renewal| r.unbound || r.pending;
                unheld(&d.renewal) || d.v6.as_ref().is_some_and(|v6| unheld(&v6.renewal))
            }) else {
                continue;
            };
            let owner = Owner {
                container_id: id.clone(),
                ifname: endpoint.ifname.clone(),
            };
            let key = super::endpoint_id(&network.id, None, &owner);
            if containers.contains_key(&key) {
                continue;
            }
            let facts = EndpointFacts {
                mac: endpoint.mac.map(|mac| mac.to_string()),
                name: record.name.clone(),
                cni: record.cni,
            };
            let mut entry = super::container_entry(key.clone(), &owner, None, Some(&facts));
            entry["DhcpLease"] = lease_view(lease, now);
            found.push((key, entry));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn record(expiry: SystemTime, renewal: Renewal) -> DhcpRecord {
        let obtained = expiry - Duration::from_secs(100);
        DhcpRecord {
            client_id: "ff:01".into(),
            mac: None,
            hostname: None,
            broadcast: false,
            ipvlan_flag: None,
            subnet: None,
            lease: oci_macvlan_dhcp::Lease {
                address: "10.1.0.5".parse().unwrap(),
                prefix: 24,
                router: None,
                routes: Vec::new(),
                dns: Vec::new(),
                domain: None,
                server: "10.1.0.1".parse().unwrap(),
                obtained,
                t1: obtained + Duration::from_secs(50),
                t2: obtained + Duration::from_secs(87),
                expiry,
            },
            v6: None,
            renewal,
        }
    }

    /// A lease's state is shown: bound, pending (an offer noted, no ACK), unbound (ended,
    /// its address off the link), expired (past its expiry, nothing since); a failed act's
    /// count, error and next try with it.
    #[test]
    fn inspect_says_where_each_lease_is() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let later = now + Duration::from_secs(60);
        let shown = |expiry, renewal| lease_view(&record(expiry, renewal), now);
        let bound = shown(later, Renewal::default());
        assert_eq!(bound["State"], "bound", "{bound}");
        assert!(bound.get("LastError").is_none() && bound.get("Failures").is_none());
        let pending = Renewal {
            pending: true,
            ..Renewal::default()
        };
        assert_eq!(shown(later, pending.clone())["State"], "pending");
        // An offer NAKed stays on the record, unbound: nothing to release.
        let naked = Renewal {
            unbound: true,
            ..pending
        };
        assert_eq!(shown(later, naked)["State"], "unbound");
        let unbound = Renewal {
            unbound: true,
            failures: 2,
            retry_at: Some(later),
            last_error: Some("no DHCP server answered".into()),
            ..Renewal::default()
        };
        let view = shown(now, unbound);
        assert_eq!(view["State"], "unbound", "{view}");
        assert_eq!(view["Failures"], 2);
        assert_eq!(view["LastError"], "no DHCP server answered");
        assert_eq!(view["RetryAt"], time(later));
        assert_eq!(shown(now, Renewal::default())["State"], "expired");
    }

    #[test]
    fn records_that_cannot_be_listed_are_an_error_not_an_empty_list() {
        let dir = tempfile::tempdir().unwrap();
        let records = Records::new(dir.path());
        let network = oci_macvlan_macvlan::NetworkSpec {
            name: "lan".into(),
            driver: "macvlan".into(),
            options: vec!["parent=eth0".into()],
            ipam_driver: "dhcp".into(),
            ..Default::default()
        }
        .validate("f".repeat(64), "2026-11-23T00:00:00Z".into())
        .unwrap();
        let now = SystemTime::now();
        assert!(
            leaseless(&network, &records, &Map::new(), now)
                .unwrap()
                .is_empty()
        );
        // Where the records go, a file: they cannot be listed.
        std::fs::write(dir.path().join("endpoints"), b"").unwrap();
        let err = leaseless(&network, &records, &Map::new(), now).unwrap_err();
        assert!(
            oci_macvlan_macvlan::one_line(&err).contains("Not a directory"),
            "{err}"
        );
    }
}
