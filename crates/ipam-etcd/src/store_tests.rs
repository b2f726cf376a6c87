//! The store's own logic, without a cluster: attempts, what is not ours, claims.

#![allow(clippy::unwrap_used)]

use base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::json;

use super::*;

fn lease(ip: &str, host: &str, container: &str) -> Lease {
    Lease {
        ip: ip.parse().unwrap(),
        subnet: "10.0.0.0/24".parse().unwrap(),
        network: "n".into(),
        owner: Owner {
            container_id: container.into(),
            ifname: "eth0".into(),
        },
        host: Some(host.into()),
    }
}

fn key(ip: &str) -> u128 {
    to_key(ip.parse().unwrap())
}

fn store(proof: Option<&str>) -> EtcdStore {
    let config = match oci_macvlan_ipam::Backends(&[&BACKEND])
        .parse_options(&[
            "etcd_endpoints=http://127.0.0.1:9".to_owned(),
            "etcd_prefix=/p".to_owned(),
        ])
        .unwrap()
    {
        oci_macvlan_ipam::StoreChoice::Shared(locator) => {
            EtcdConfig::from_locator(&locator).unwrap()
        }
        other => panic!("{other:?}"),
    };
    let host = HostIdentity {
        id: "hostA".into(),
        proof: proof.map(str::to_owned),
        kept_in: "/etc/oci-macvlan/host-identity".into(),
    };
    EtcdStore::open(&config, &host).unwrap()
}

fn kv(key: &str, value: &str) -> client::Kv {
    client::Kv {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        mod_revision: 3,
    }
}

fn claim(host: &str, proof: &str, seen_unix: u64) -> String {
    json!({ "host": host, "proof": proof, "seen_unix": seen_unix }).to_string()
}

#[test]
fn what_is_not_ours_is_skipped_and_an_address_it_holds_is_taken() {
    let store = store(Some("p1"));
    let lease = r#"{"network":"n","subnet":"10.0.0.0/24","host":"hostA","container_id":"c","ifname":"eth0"}"#;
    let k = |ip: &str| format!("/p/leases/{:032x}", key(ip));
    let snapshot = store.classify(vec![
        kv("/p/hosts/a/b", "{}"),
        kv("/p/hosts/hostA", &claim("hostA", "p1", 1)),
        kv("/p/hosts/hostB", "junk"),
        kv(&k("10.0.0.2"), lease),
        kv(&k("10.0.0.3"), "not json"),
        kv(&k("10.0.0.4"), &lease.replace(r#""host":"hostA","#, "")),
        kv("/p/leases/zz", lease),
        kv(&format!("{}/leases/x", k("10.0.0.5")), lease),
    ]);
    assert_eq!(snapshot.leases.len(), 1);
    assert_eq!(
        snapshot.occupied.keys().copied().collect::<Vec<_>>(),
        [key("10.0.0.3"), key("10.0.0.4")]
    );
    assert_eq!(snapshot.foreign.len(), 6, "{:?}", snapshot.foreign);
    assert!(snapshot.foreign[0].starts_with("etcd key /p/hosts/a/b: "));
    assert_eq!(snapshot.claims["hostA"].0.as_ref().unwrap().proof, "p1");
    assert_eq!(snapshot.claims["hostB"].0, None);
    // The allocator passes what is taken; a static request meets a holder.
    let mut attempt = Attempt {
        snapshot: &snapshot,
        pending: BTreeMap::new(),
        host: "hostA",
    };
    assert_eq!(
        attempt
            .lowest_free(key("10.0.0.2"), key("10.0.0.9"), &[])
            .unwrap(),
        Some(key("10.0.0.5"))
    );
    assert!(
        attempt
            .lease_of("10.0.0.3".parse().unwrap())
            .unwrap()
            .is_some()
    );
    assert_eq!(
        attempt
            .count_leased(key("10.0.0.1"), key("10.0.0.9"))
            .unwrap(),
        3
    );
}

#[test]
fn a_write_carries_the_claim_and_another_machines_claim_refuses_it() {
    let now = now_unix();
    let store = store(Some("p1"));
    let with = |claims: &[(&str, &str)]| {
        store.classify(
            claims
                .iter()
                .map(|(k, v)| kv(&format!("/p/hosts/{k}"), v))
                .collect(),
        )
    };
    // Unclaimed: the claim is made, if nobody made it meanwhile.
    let (compare, success) = store.claim_ops(&with(&[]), false).unwrap();
    assert_eq!(compare[0]["target"], "CREATE");
    assert_eq!(success.len(), 1);
    let put = &success[0]["request_put"]["value"];
    let written = STANDARD.decode(put.as_str().unwrap()).unwrap();
    assert_eq!(
        decode_claim("hostA", &written).unwrap().proof,
        "p1",
        "the proof, never anything else"
    );
    // Ours and fresh: compared, not written; ours and old, or at gc: written again.
    let fresh = claim("hostA", "p1", now);
    let (compare, success) = store.claim_ops(&with(&[("hostA", &fresh)]), false).unwrap();
    assert_eq!(
        (compare[0]["target"].as_str(), success.len()),
        (Some("MOD"), 0)
    );
    let old = claim("hostA", "p1", now - REFRESH_SECS - 1);
    let (_, success) = store.claim_ops(&with(&[("hostA", &old)]), false).unwrap();
    assert_eq!(success.len(), 1);
    let (_, success) = store.claim_ops(&with(&[("hostA", &fresh)]), true).unwrap();
    assert_eq!(success.len(), 1);
    // Another machine's, or something that is no claim: refused.
    for other in [claim("hostA", "p2", now), "junk".to_owned()] {
        let err = store
            .claim_ops(&with(&[("hostA", &other)]), false)
            .unwrap_err();
        assert!(matches!(err, Error::HostClaimed { .. }), "{err}");
        assert!(err.to_string().contains("--host-id NEW-ID"), "{err}");
    }
    // A command that made no identity writes nothing.
    assert!(self::store(None).claim_ops(&with(&[]), false).is_err());
}

#[test]
fn a_host_seen_within_the_hour_is_alive() {
    let store = store(Some("p1"));
    let now = now_unix();
    let seen = |ago: u64| Claim {
        proof: "p2".into(),
        seen_unix: now - ago,
    };
    let err = store.refuse_if_alive("hostB", Some(&seen(60))).unwrap_err();
    assert!(matches!(err, Error::HostAlive { .. }), "{err}");
    assert!(
        store
            .refuse_if_alive("hostB", Some(&seen(ALIVE_SECS + 1)))
            .is_ok()
    );
    assert!(store.refuse_if_alive("hostB", None).is_ok());
}

#[test]
fn an_attempt_sees_the_snapshot_and_its_own_inserts() {
    let mut snapshot = Snapshot::default();
    for (ip, host, c) in [("10.0.0.2", "a", "c1"), ("10.0.0.3", "b", "c1")] {
        snapshot.leases.insert(key(ip), (lease(ip, host, c), 7));
    }
    let mut attempt = Attempt {
        snapshot: &snapshot,
        pending: BTreeMap::new(),
        host: "a",
    };
    let (lo, hi) = (key("10.0.0.1"), key("10.0.0.254"));
    // .1 reserved, .2 and .3 leased (by either host).
    assert_eq!(
        attempt.lowest_free(lo, hi, &[key("10.0.0.1")]).unwrap(),
        Some(key("10.0.0.4"))
    );
    attempt.insert(&lease("10.0.0.4", "ignored", "c2")).unwrap();
    assert_eq!(
        attempt.lowest_free(lo, hi, &[key("10.0.0.1")]).unwrap(),
        Some(key("10.0.0.5"))
    );
    assert_eq!(attempt.count_leased(lo, hi).unwrap(), 3);
    // The insert is this host's, whatever the caller said.
    let held = attempt
        .lease_of("10.0.0.4".parse().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(held.host.as_deref(), Some("a"));
    // Host b's c1 is not this host's c1.
    let owner = Owner {
        container_id: "c1".into(),
        ifname: "eth0".into(),
    };
    let mine = attempt.owner_leases("n", &owner).unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].ip.to_string(), "10.0.0.2");
    // A full range has nothing free.
    assert_eq!(
        attempt
            .lowest_free(key("10.0.0.2"), key("10.0.0.4"), &[])
            .unwrap(),
        None
    );
}
