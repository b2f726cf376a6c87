//! The renewer's schedule and backoff.

use std::net::Ipv4Addr;

use oci_macvlan_dhcp::Lease as DhcpLease;

use super::*;

/// A bound v4 lease from `t0`: T1 50 s, T2 85 s, expiry 100 s.
pub(super) fn record(t0: SystemTime) -> DhcpRecord {
    DhcpRecord {
        client_id: "ff".into(),
        mac: None,
        hostname: None,
        broadcast: false,
        ipvlan_flag: None,
        subnet: None,
        v6: None,
        lease: DhcpLease {
            address: Ipv4Addr::new(192, 168, 1, 50),
            prefix: 24,
            router: None,
            routes: Vec::new(),
            dns: Vec::new(),
            domain: None,
            server: Ipv4Addr::new(192, 168, 1, 1),
            obtained: t0,
            t1: t0 + Duration::from_secs(50),
            t2: t0 + Duration::from_secs(85),
            expiry: t0 + Duration::from_secs(100),
        },
        renewal: Renewal::default(),
    }
}

#[test]
fn acts_come_at_t1_then_at_once_or_at_the_retry_never_past_the_next_timer() {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let s = Duration::from_secs;
    let mut dhcp = record(t0);
    assert_eq!(schedule(&dhcp, t0), t0 + s(50));
    assert_eq!(schedule(&dhcp, t0 + s(60)), t0 + s(60));
    dhcp.renewal.retry_at = Some(t0 + s(70));
    assert_eq!(schedule(&dhcp, t0 + s(60)), t0 + s(70));
    // A retry past T2 comes at T2 (rebinding), past expiry at expiry.
    dhcp.renewal.retry_at = Some(t0 + s(200));
    assert_eq!(schedule(&dhcp, t0 + s(60)), t0 + s(85));
    assert_eq!(schedule(&dhcp, t0 + s(90)), t0 + s(100));
    assert_eq!(schedule(&dhcp, t0 + s(120)), t0 + s(100));
    // Before T1 a stale retry does not count.
    assert_eq!(schedule(&dhcp, t0), t0 + s(50));
    dhcp.renewal.unbound = true;
    assert_eq!(schedule(&dhcp, t0), t0 + s(200));
    dhcp.renewal.retry_at = None;
    assert_eq!(schedule(&dhcp, t0 + s(7)), t0 + s(7));
}

#[test]
fn a_pending_lease_is_discovered_again_at_once_or_at_its_retry() {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let s = Duration::from_secs;
    let mut dhcp = record(t0);
    // A REQUEST out and no ACK recorded (an act or the attach ended between the two): not a
    // bound lease to renew at T1, an offer to discover again.
    dhcp.renewal.pending = true;
    assert_eq!(schedule(&dhcp, t0), t0);
    dhcp.renewal.retry_at = Some(t0 + s(4));
    assert_eq!(schedule(&dhcp, t0), t0 + s(4));
}

#[test]
fn a_v6_lease_is_due_on_its_own_timers_and_renewal() {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let s = Duration::from_secs;
    let mut dhcp = record(t0);
    assert_eq!(Family::V6.due(&dhcp, t0), None, "no v6 lease");
    dhcp.v6 = Some(Dhcp6Record {
        duid: "00:04".into(),
        iaid: 1,
        prefix: 128,
        subnet: None,
        slaac: false,
        lease: oci_macvlan_dhcp::v6::Lease {
            address: "2001:db8::5".parse().unwrap(),
            server_id: vec![0, 1, 2],
            unicast: None,
            dns: Vec::new(),
            obtained: t0,
            t1: t0 + s(10),
            t2: t0 + s(16),
            preferred_until: t0 + s(20),
            expiry: t0 + s(30),
        },
        renewal: Renewal::default(),
    });
    assert_eq!(Family::V6.due(&dhcp, t0), Some(t0 + s(10)));
    assert_eq!(Family::V4.due(&dhcp, t0), Some(t0 + s(50)));
    let v6 = dhcp.v6.as_mut().unwrap();
    v6.renewal.retry_at = Some(t0 + s(40));
    assert_eq!(schedule6(v6, t0 + s(12)), t0 + s(16));
    assert_eq!(schedule6(v6, t0 + s(20)), t0 + s(30));
    v6.renewal.unbound = true;
    assert_eq!(schedule6(v6, t0 + s(20)), t0 + s(40));
    // A failure is recorded on the family's own renewal.
    Family::V6.renewal(&mut dhcp).unwrap().failures = 3;
    assert_eq!(dhcp.renewal.failures, 0);
}

#[test]
fn the_backoff_grows_and_is_bounded() {
    assert_eq!(backoff(0), Duration::from_secs(2));
    assert_eq!(backoff(1), Duration::from_secs(2));
    assert_eq!(backoff(2), Duration::from_secs(4));
    assert_eq!(backoff(40), MAX_BACKOFF);
}
