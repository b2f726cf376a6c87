//! Tier 1: apply against the fake kernel, without root. What apply sends is what the plan and
//! [`wire`] say, for each driver and for host access; a failure at each step it takes is undone
//! to nothing; detach and disconnect take back what it made (`take_back.rs`). Internal
//! networks' routes (`internal.rs`), each link's whole kind, MAC and MTU (`kinds.rs`),
//! `network connect`'s rule (`connect.rs`) and the undo of a failed re-attach (`reattach.rs`)
//! have files of their own. The store is a real LMDB store in a temporary directory.

#![allow(clippy::unwrap_used)]

use std::{net::IpAddr, path::Path};

use ipnetwork::IpNetwork;
use oci_macvlan_ipam::{LeaseSet, LmdbStore};

use super::fake::{Call, Fake, Kind, State};
use crate::{
    AttachRequest, Attachment, Error, Network, NetworkSpec, Networks, Record, Records,
    detach::take_back_with,
    endpoint::{Endpoint, apply},
    plan::{Plan, PlannedNetwork, plan},
    source::Acquired,
    wire::{DefaultRouted, Route, wire},
    wiring::Wiring,
};

fn network(name: &str, driver: &str, flags: &[&str]) -> Network {
    let mut spec = NetworkSpec {
        name: name.into(),
        driver: driver.into(),
        ..Default::default()
    };
    for arg in flags {
        let (flag, value) = arg.split_once(' ').unwrap_or((arg, ""));
        let value = value.to_owned();
        match flag {
            "--subnet" => spec.subnets.push(value),
            "--gateway" => spec.gateways.push(value),
            "-o" => spec.options.push(value),
            "--internal" => spec.internal = true,
            other => panic!("unknown flag {other}"),
        }
    }
    spec.validate(format!("{name:0>64}"), "2026-11-30T00:00:00Z".into())
        .unwrap()
}

/// The networks of every case: each driver, host access, an L3 network with two subnets (the
/// internal ones are `internal.rs`'s).
fn networks() -> Vec<Network> {
    vec![
        network(
            "lan",
            "macvlan",
            &[
                "--subnet 10.1.0.0/24",
                "--gateway 10.1.0.1",
                "-o parent=eth0",
            ],
        ),
        network(
            "l2",
            "ipvlan",
            &[
                "--subnet 10.2.0.0/24",
                "--gateway 10.2.0.1",
                "-o parent=eth1",
            ],
        ),
        network(
            "l3",
            "ipvlan",
            &[
                "--subnet 10.3.0.0/24",
                "--subnet 10.4.0.0/24",
                "-o parent=eth2",
                "-o ipvlan_mode=l3",
            ],
        ),
        network(
            "ha",
            "macvlan",
            &[
                "--subnet 10.5.0.0/24",
                "--gateway 10.5.0.1",
                "-o parent=eth3",
                "-o host_access=10.5.0.2",
            ],
        ),
    ]
}

fn parents() -> Fake {
    Fake::with_parents(&[
        ("eth0", "02:00:00:00:00:10"),
        ("eth1", "02:00:00:00:00:11"),
        ("eth2", "02:00:00:00:00:12"),
        ("eth3", "02:00:00:00:00:13"),
    ])
}

/// A state dir (records, leases) and the definitions dir.
struct World {
    _dir: tempfile::TempDir,
    records: Records,
    store: LmdbStore,
    definitions: Networks,
    state: std::path::PathBuf,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    World {
        records: Records::new(&state),
        store: LmdbStore::open(&state).unwrap(),
        definitions: Networks::new(&dir.path().join("config")),
        state,
        _dir: dir,
    }
}

fn request<'a>(
    nets: &'a [Network],
    ips: &[Option<&str>],
    definitions: &'a Networks,
) -> AttachRequest<'a> {
    AttachRequest {
        container_id: &C1,
        name: None,
        netns: Path::new("/run/netns/c1"),
        persistent_netns: false,
        pid: None,
        attachments: nets
            .iter()
            .zip(ips)
            .enumerate()
            .map(|(i, (network, ip))| Attachment {
                network,
                ifname: format!("eth{i}"),
                static_ips: ip.iter().map(|ip| ip.parse().unwrap()).collect(),
                mac: None,
            })
            .collect(),
        definitions,
        connect: false,
        cni: false,
        hostname: None,
        on_lease: None,
    }
}

static C1: std::sync::LazyLock<crate::ContainerId> =
    std::sync::LazyLock::new(|| crate::ContainerId::parse("c1").unwrap());

/// Runs `test` with a [`Wiring`] of the one link of a network `lan` (`10.1.0.0/24` on `eth0`,
/// `10.1.0.5` asked for) on a fake kernel, the link's name and the plan's network.
fn on_one_link(test: impl FnOnce(&Fake, &Wiring<'_, Fake>, &PlannedNetwork<'_>)) {
    let nets = vec![network(
        "lan",
        "macvlan",
        &["--subnet 10.1.0.0/24", "-o parent=eth0"],
    )];
    let w = world();
    let req = request(&nets, &[Some("10.1.0.5")], &w.definitions);
    let plan = plan(&req).unwrap();
    let planned = &plan.networks[0];
    let fake = parents();
    let parent = fake.state.borrow().host[0].clone();
    let mut link = parent.clone();
    link.index = 40;
    link.name.clone_from(&planned.link.name);
    let wiring = Wiring {
        kernel: &fake,
        link: &link,
        parent: &parent,
        planned,
    };
    test(&fake, &wiring, planned);
}

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Applies `plan` (of `req`) against `fake`, `previous` being the container's earlier record.
fn run(
    fake: &Fake,
    store: &mut LmdbStore,
    records: &Records,
    req: &AttachRequest<'_>,
    plan: &Plan<'_>,
    previous: Option<&Record>,
) -> crate::Result<Vec<Endpoint>> {
    let mut record = plan.record();
    block_on(apply(
        fake,
        store,
        records,
        req,
        plan,
        &mut record,
        previous,
    ))
}

/// What apply must send for `plan`, given the addresses each network gets: the plan's link,
/// and what [`wire`] says the link carries.
fn expected_calls(plan: &Plan<'_>, acquired: &[Vec<Acquired>]) -> Vec<Call> {
    let mut calls = vec![Call::Parents(
        plan.networks
            .iter()
            .map(|p| p.parent.name.clone())
            .collect(),
    )];
    for planned in &plan.networks {
        calls.push(Call::CheckStatic {
            network: planned.network.clone(),
            ips: planned.addresses.static_ips.clone(),
        });
    }
    let mut routed = DefaultRouted::default();
    for (planned, got) in plan.networks.iter().zip(acquired) {
        let link = planned.link.name.clone();
        calls.push(Call::CreateChild {
            parent: planned.parent.name.clone(),
            name: link.clone(),
            mac: planned.link.mac.own(),
            mtu: planned.link.mtu,
            kind: Kind::from(&planned.link.kind),
        });
        let wired = wire(planned, got, routed);
        routed = wired.default_routed;
        calls.extend(wired.addresses.iter().map(|a| Call::AddAddress {
            link: link.clone(),
            address: *a,
            lifetime: wired.lifetime_of(a),
        }));
        calls.push(Call::Sysctls(
            wired
                .sysctls
                .iter()
                .map(|c| format!("{}={}", c.key.join("."), c.value))
                .collect(),
        ));
        calls.push(Call::Up { link: link.clone() });
        calls.extend(wired.routes.iter().map(|r| Call::AddRoute {
            link: link.clone(),
            route: *r,
        }));
        if let Some(host_link) = &planned.host_link {
            calls.push(Call::HostLink {
                network: planned.network.clone(),
            });
            calls.extend(wired.host_routes.iter().map(|ip| Call::AddHostRoute {
                link: host_link.clone(),
                ip: *ip,
            }));
        }
    }
    calls.push(Call::UpByName { name: "lo".into() });
    calls
}

fn acquired(address: &str, gateway: Option<&str>) -> Vec<Acquired> {
    vec![Acquired {
        address: address.parse().unwrap(),
        gateway: gateway.map(|g| g.parse().unwrap()),
        routes: Vec::new(),
        lifetime: None,
    }]
}

/// Static addresses, so what each network gets is known before apply runs.
const STATIC: [Option<&str>; 4] = [
    Some("10.1.0.5"),
    Some("10.2.0.5"),
    Some("10.3.0.5"),
    Some("10.5.0.5"),
];

fn static_acquired() -> Vec<Vec<Acquired>> {
    vec![
        acquired("10.1.0.5/24", Some("10.1.0.1")),
        acquired("10.2.0.5/24", Some("10.2.0.1")),
        acquired("10.3.0.5/24", None),
        acquired("10.5.0.5/24", Some("10.5.0.1")),
    ]
}

#[test]
fn apply_sends_what_the_plan_and_wire_say_for_each_driver_and_host_access() {
    let nets = networks();
    // Each network alone (each is the container's first, so gets its default route), then all
    // of them at once (the first network of a family wins).
    let mut cases: Vec<Vec<usize>> = (0..nets.len()).map(|i| vec![i]).collect();
    cases.push((0..nets.len()).collect());
    for case in cases {
        let w = world();
        let chosen: Vec<Network> = case.iter().map(|&i| nets[i].clone()).collect();
        let ips: Vec<Option<&str>> = case.iter().map(|&i| STATIC[i]).collect();
        let got: Vec<Vec<Acquired>> = case.iter().map(|&i| static_acquired()[i].clone()).collect();
        let req = request(&chosen, &ips, &w.definitions);
        let plan = plan(&req).unwrap();
        let mut record = plan.record();
        let fake = parents();
        let mut store = w.store;
        let endpoints = block_on(apply(
            &fake,
            &mut store,
            &w.records,
            &req,
            &plan,
            &mut record,
            None,
        ))
        .unwrap();
        assert_eq!(
            fake.take_calls(),
            expected_calls(&plan, &got),
            "case {case:?}"
        );
        // What the container got is what was wired.
        let mut routed = DefaultRouted::default();
        for ((ep, planned), got) in endpoints.iter().zip(&plan.networks).zip(&got) {
            let wired = wire(planned, got, routed);
            routed = wired.default_routed;
            assert_eq!(ep.addresses, wired.addresses);
            assert_eq!(ep.gateways, wired.gateways);
            assert_eq!(ep.mac, planned.link.mac);
        }
        // The record is the plan's, with each parent's index.
        let written = w.records.read("c1").unwrap().unwrap();
        assert_eq!(written.endpoints.len(), case.len());
        for (recorded, planned) in written.endpoints.iter().zip(&plan.networks) {
            assert_eq!(recorded.kind.as_deref(), Some(planned.link.kind.name()));
            let state = fake.state.borrow();
            let link = state
                .container
                .iter()
                .find(|l| l.name == planned.link.name)
                .unwrap();
            assert!(recorded.is(link), "the record knows its link");
        }
    }
}

/// The static source's order holds: the lease is taken before the link is made, and a lease
/// refused makes no link.
#[test]
fn the_allocators_lease_comes_before_the_link() {
    let nets = networks();
    let w = world();
    let chosen = vec![nets[0].clone()];
    // Outside every subnet: the allocator refuses it.
    let req = request(&chosen, &[Some("10.9.0.5")], &w.definitions);
    let plan = plan(&req).unwrap();
    let mut record = plan.record();
    let fake = parents();
    let mut store = w.store;
    let err = block_on(apply(
        &fake,
        &mut store,
        &w.records,
        &req,
        &plan,
        &mut record,
        None,
    ))
    .unwrap_err();
    assert!(matches!(err, Error::Lease { .. }), "{err}");
    assert!(
        !fake
            .take_calls()
            .iter()
            .any(|c| matches!(c, Call::CreateChild { .. })),
        "no link for a refused lease"
    );
    assert!(w.records.read("c1").unwrap().is_none());
}

/// Dynamic addresses: what the allocator gave is what the link carries and the host routes to.
#[test]
fn dynamic_addresses_are_wired_as_leased() {
    let nets = networks();
    let w = world();
    let chosen = vec![nets[3].clone()];
    let req = request(&chosen, &[None], &w.definitions);
    let plan = plan(&req).unwrap();
    let mut record = plan.record();
    let fake = parents();
    let mut store = w.store;
    let endpoints = block_on(apply(
        &fake,
        &mut store,
        &w.records,
        &req,
        &plan,
        &mut record,
        None,
    ))
    .unwrap();
    let leased: Vec<IpAddr> = store
        .container_leases("c1")
        .unwrap()
        .iter()
        .map(|l| l.ip)
        .collect();
    let got: Vec<IpAddr> = endpoints[0].addresses.iter().map(IpNetwork::ip).collect();
    assert_eq!(got, leased);
    let state = fake.state.borrow();
    assert_eq!(
        state.host_routes,
        vec![(plan.networks[0].host_link.clone().unwrap(), leased[0])]
    );
    assert_eq!(
        state.routes,
        vec![(
            "eth0".to_owned(),
            Route::DefaultVia("10.5.0.1".parse().unwrap())
        )]
    );
}

/// A failure at each step apply takes that changes the kernel (made to fail in turn) is undone
/// to nothing: no container link, address, route or host route, no lease, no record.
#[test]
fn a_failure_at_each_step_is_undone_to_nothing() {
    let nets = networks();
    let steps = {
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
        fake.changes()
    };
    assert!(steps >= 20, "{steps} steps");
    for step in 0..steps {
        let w = world();
        let req = request(&nets, &STATIC, &w.definitions);
        let plan = plan(&req).unwrap();
        let mut record = plan.record();
        let fake = parents();
        *fake.fail_at.borrow_mut() = Some(step);
        let before: State = fake.state.borrow().clone();
        let mut store = w.store;
        let err = block_on(apply(
            &fake,
            &mut store,
            &w.records,
            &req,
            &plan,
            &mut record,
            None,
        ))
        .unwrap_err();
        assert!(
            !matches!(err, Error::RollbackIncomplete { .. }),
            "step {step}: {err}"
        );
        let after = fake.state.borrow();
        assert_eq!(after.container, before.container, "step {step}: links");
        assert!(after.addresses.is_empty(), "step {step}: addresses");
        assert!(after.routes.is_empty(), "step {step}: routes");
        assert!(after.sysctls.is_empty(), "step {step}: sysctls");
        assert!(after.host_routes.is_empty(), "step {step}: host routes");
        assert!(
            store.container_leases("c1").unwrap().is_empty(),
            "step {step}: leases"
        );
        assert!(
            w.records.read("c1").unwrap().is_none(),
            "step {step}: record"
        );
    }
}

mod after_source;
mod connect;
mod internal;
mod kinds;
mod lifetime;
mod reattach;
mod take_back;
