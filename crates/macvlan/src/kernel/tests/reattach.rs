//! Tier 1, the undo of a re-attach: a second attach of a container on record (its record is
//! `previous`) that fails at any step it takes that changes the kernel gives back only what it
//! made — the first attach's record is restored exactly, and its link, addresses, routes and
//! leases stay.

#![allow(clippy::unwrap_used)]

use super::*;

/// The first attach (`lan` as eth0), and what it left: the record, the leases, the fake's
/// state, and how many changing calls it made.
struct First {
    _dir: tempfile::TempDir,
    records: Records,
    definitions: Networks,
    store: LmdbStore,
    fake: Fake,
    record: Record,
    leases: Vec<oci_macvlan_ipam::Lease>,
    state: State,
    changes: usize,
}

fn first(nets: &[Network]) -> First {
    let World {
        _dir,
        records,
        mut store,
        definitions,
        ..
    } = world();
    let fake = parents();
    let lan = vec![nets[0].clone()];
    let req = request(&lan, &[STATIC[0]], &definitions);
    let plan = plan(&req).unwrap();
    run(&fake, &mut store, &records, &req, &plan, None).unwrap();
    fake.take_calls();
    let state = fake.state.borrow().clone();
    First {
        record: records.read(&*C1).unwrap().unwrap(),
        leases: store.container_leases("c1").unwrap(),
        state,
        changes: fake.changes(),
        _dir,
        records,
        definitions,
        store,
        fake,
    }
}

/// The second attach: `lan` again as eth0 (adopted), and `ha` (host access, a dynamic address)
/// as eth1.
fn second<'a>(nets: &'a [Network], definitions: &'a Networks) -> AttachRequest<'a> {
    request(nets, &[STATIC[0], None], definitions)
}

#[test]
fn a_failed_reattach_restores_the_first_record_and_keeps_what_it_had() {
    let all = networks();
    let nets = vec![all[0].clone(), all[3].clone()];
    let steps = {
        let mut f = first(&nets);
        let req = second(&nets, &f.definitions);
        let plan = plan(&req).unwrap();
        run(
            &f.fake,
            &mut f.store,
            &f.records,
            &req,
            &plan,
            Some(&f.record),
        )
        .unwrap();
        let names: Vec<String> = f
            .records
            .read(&*C1)
            .unwrap()
            .unwrap()
            .endpoints
            .iter()
            .map(|e| e.network.clone())
            .collect();
        assert_eq!(names, ["lan", "ha"]);
        f.fake.changes() - f.changes
    };
    assert!(steps >= 8, "{steps} steps");
    for step in 0..steps {
        let mut f = first(&nets);
        assert!(!f.state.addresses.is_empty() && !f.state.routes.is_empty());
        let req = second(&nets, &f.definitions);
        let plan = plan(&req).unwrap();
        *f.fake.fail_at.borrow_mut() = Some(f.changes + step);
        let err = run(
            &f.fake,
            &mut f.store,
            &f.records,
            &req,
            &plan,
            Some(&f.record),
        )
        .unwrap_err();
        assert!(
            !matches!(err, Error::RollbackIncomplete { .. }),
            "step {step}: {err}"
        );
        assert_eq!(
            f.records.read(&*C1).unwrap().as_ref(),
            Some(&f.record),
            "step {step}: the first record"
        );
        assert_eq!(
            f.store.container_leases("c1").unwrap(),
            f.leases,
            "step {step}: leases"
        );
        let after = f.fake.state.borrow();
        assert_eq!(after.container, f.state.container, "step {step}: links");
        assert_eq!(after.addresses, f.state.addresses, "step {step}: addresses");
        assert_eq!(after.routes, f.state.routes, "step {step}: routes");
        assert_eq!(after.sysctls, f.state.sysctls, "step {step}: sysctls");
        assert_eq!(
            after.host_routes, f.state.host_routes,
            "step {step}: host routes"
        );
    }
}
