//! Tier 1, `network connect`'s rule (`admit.rs`): a network the container is on already is
//! refused under any interface name, its own included, before anything is sent, leased or
//! written.

#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn a_connect_to_a_network_on_record_is_refused_under_any_name() {
    let nets = networks();
    let w = world();
    let mut store = w.store;
    let fake = parents();
    let lan = vec![nets[0].clone()];
    let req = request(&lan, &[STATIC[0]], &w.definitions);
    let first = plan(&req).unwrap();
    run(&fake, &mut store, &w.records, &req, &first, None).unwrap();
    fake.take_calls();
    let previous = w.records.read(&*C1).unwrap().unwrap();
    let leases = store.container_leases("c1").unwrap();
    assert_eq!(leases.len(), 1);

    // `network connect c1 lan`, as eth1 and as eth0 (its name on record), a dynamic address:
    // one that got past the rule would lease one.
    for ifname in ["eth1", "eth0"] {
        let mut req = request(&lan, &[None], &w.definitions);
        req.connect = true;
        req.attachments[0].ifname = ifname.into();
        let plan = plan(&req).unwrap();
        let err = run(&fake, &mut store, &w.records, &req, &plan, Some(&previous)).unwrap_err();
        assert!(
            matches!(
                &err,
                Error::AlreadyConnected { network, ifname, .. }
                    if network == "lan" && ifname == "eth0"
            ),
            "{ifname}: {err}"
        );
        assert_eq!(fake.take_calls(), [], "{ifname}: nothing sent");
        assert_eq!(
            store.container_leases("c1").unwrap(),
            leases,
            "{ifname}: no lease"
        );
        assert_eq!(
            w.records.read(&*C1).unwrap().as_ref(),
            Some(&previous),
            "{ifname}: the record as it was"
        );
    }
}
