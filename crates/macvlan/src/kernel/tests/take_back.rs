//! Tier 1, after apply: detach, disconnect and connect against the fake.

#![allow(clippy::unwrap_used)]

use super::*;

/// Detach (after an attach whose namespace dies with the container) takes back the host's
/// routes through the fake's host side, the leases and the record.
#[test]
fn detach_takes_back_what_apply_made() {
    let nets = networks();
    let w = world();
    let req = request(&nets, &STATIC, &w.definitions);
    let plan = plan(&req).unwrap();
    let mut record = plan.record();
    let fake = parents();
    let mut store = w.store;
    block_on(apply(
        &fake,
        &mut store,
        &w.records,
        &req,
        &plan,
        &mut record,
        None,
    ))
    .unwrap();
    assert!(!fake.state.borrow().host_routes.is_empty());
    fake.take_calls();
    let written = w.records.read("c1").unwrap().unwrap();
    let released = block_on(take_back_with(&fake, &mut store, &w.records, &C1, &written)).unwrap();
    assert_eq!(released.len(), 4);
    assert!(fake.state.borrow().host_routes.is_empty());
    assert_eq!(
        fake.take_calls(),
        vec![Call::DeleteHostRoute {
            link: plan.networks[3].host_link.clone().unwrap(),
            ip: "10.5.0.5".parse().unwrap(),
        }]
    );
    assert!(store.container_leases("c1").unwrap().is_empty());
    assert!(w.records.read("c1").unwrap().is_none());
}

/// Disconnect from the network with host access: its host route, its lease and its place in
/// the record go; the other networks' stay.
#[test]
fn disconnect_takes_back_one_network() {
    let nets = networks();
    let w = world();
    let req = request(&nets, &STATIC, &w.definitions);
    let plan = plan(&req).unwrap();
    let mut record = plan.record();
    let fake = parents();
    let mut store = w.store;
    block_on(apply(
        &fake,
        &mut store,
        &w.records,
        &req,
        &plan,
        &mut record,
        None,
    ))
    .unwrap();
    fake.take_calls();
    drop(store);
    let policy = crate::stores::LocalPolicy(w.state.clone());
    let released = block_on(crate::disconnect::disconnect_with(
        &fake, &policy, &w.records, &C1, "ha",
    ))
    .unwrap();
    assert_eq!(released.len(), 1);
    assert_eq!(released[0].ip, "10.5.0.5".parse::<IpAddr>().unwrap());
    assert!(fake.state.borrow().host_routes.is_empty());
    assert_eq!(
        fake.take_calls(),
        vec![Call::DeleteHostRoute {
            link: plan.networks[3].host_link.clone().unwrap(),
            ip: "10.5.0.5".parse().unwrap(),
        }]
    );
    let left = w.records.read("c1").unwrap().unwrap();
    let names: Vec<&str> = left.endpoints.iter().map(|e| e.network.as_str()).collect();
    assert_eq!(names, ["lan", "l2", "l3"]);
}

/// Connect: a second apply for a container already on record (its record is `previous`) sends
/// only the new network's link, keeps the first on record, and refuses a network the container
/// is on already under another name before anything is sent or written.
#[test]
fn connect_adds_one_network_and_refuses_one_already_joined() {
    let nets = networks();
    let w = world();
    let mut store = w.store;
    let fake = parents();
    let first = vec![nets[0].clone()];
    let req = request(&first, &[STATIC[0]], &w.definitions);
    let plan1 = plan(&req).unwrap();
    let mut record = plan1.record();
    block_on(apply(
        &fake,
        &mut store,
        &w.records,
        &req,
        &plan1,
        &mut record,
        None,
    ))
    .unwrap();
    fake.take_calls();
    let previous = w.records.read(&*C1).unwrap().unwrap();

    // `network connect c1 l3`, as eth1.
    let second = vec![nets[2].clone()];
    let mut req = request(&second, &[STATIC[2]], &w.definitions);
    req.attachments[0].ifname = "eth1".into();
    let plan2 = plan(&req).unwrap();
    let mut record = plan2.record();
    block_on(apply(
        &fake,
        &mut store,
        &w.records,
        &req,
        &plan2,
        &mut record,
        Some(&previous),
    ))
    .unwrap();
    // Wired as the plan's first network (a connect's plan has one): its default route is
    // asked for, and a kernel that has one of the family already answers `EEXIST`, which
    // counts as done, so the container keeps the route it had.
    assert_eq!(
        fake.take_calls(),
        expected_calls(&plan2, &[static_acquired()[2].clone()])
    );
    let names: Vec<String> = w
        .records
        .read(&*C1)
        .unwrap()
        .unwrap()
        .endpoints
        .iter()
        .map(|e| e.network.clone())
        .collect();
    assert_eq!(names, ["l3", "lan"]);

    // `network connect c1 lan` again, as eth2: refused, nothing sent, the record as it was.
    let before = w.records.read(&*C1).unwrap();
    let mut req = request(&first, &[None], &w.definitions);
    req.attachments[0].ifname = "eth2".into();
    let plan3 = plan(&req).unwrap();
    let mut record = plan3.record();
    let previous = before.clone().unwrap();
    let err = block_on(apply(
        &fake,
        &mut store,
        &w.records,
        &req,
        &plan3,
        &mut record,
        Some(&previous),
    ))
    .unwrap_err();
    assert!(matches!(err, Error::AlreadyConnected { .. }), "{err}");
    assert!(fake.take_calls().is_empty());
    assert_eq!(w.records.read(&*C1).unwrap(), before);
}
