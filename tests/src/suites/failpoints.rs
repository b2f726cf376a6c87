//! Fault injection. The hook, built with the `failpoints` feature, dies (SIGKILL) or fails at
//! each named step of an attach, of its undo, and of a detach; then each way a runtime or an
//! operator carries on — poststop, the same attach again, `gc` once the container is gone —
//! must leave no lease, no record, no lock, no link outside the container, and a store that
//! `verify` passes. A step that fails (rather than dies) must leave that state at once: a
//! failed attach undoes everything.
//!
//! Each test takes the networks' driver and a [`Scope`]: `tests/tests/failpoints.rs` runs every
//! scenario for macvlan, the VM tier a sample for ipvlan. Every failpoint a scope names is
//! exercised, and the test proves each was reached: a killed hook shows a signal, a failed one
//! names its failpoint.

use std::path::PathBuf;

use crate::{Driver, Etcd, Lan, TestNetns, failpoints_binary};

const NETS: [&str; 2] = ["fpa", "fpb"];
const ENV: &str = "OCI_MACVLAN_FAILPOINTS";

/// How a runtime or an operator carries on after the fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    Poststop,
    Reattach,
    Gc,
}

const THEN: [Then; 3] = [Then::Poststop, Then::Reattach, Then::Gc];

/// Which scenarios a run covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every failpoint, both actions, every continuation (the host's macvlan run).
    Every,
    /// A sample, for the VM tier's time (qemu without KVM runs each hook ~10 times slower): the
    /// steps where the driver's link exists or is deleted, killed (failing one of them runs
    /// the whole undo once), each scenario with one continuation, rotated through all of them.
    Sample,
}

impl Scope {
    /// The continuations of the `n`-th scenario of a test.
    fn thens(self, n: usize, all: &[Then]) -> Vec<Then> {
        match self {
            Self::Every => all.to_vec(),
            Self::Sample => vec![all[n % all.len()]],
        }
    }

    /// The actions (kill or not) a point is tried with.
    fn kills(self, point: &str) -> Vec<bool> {
        match self {
            Self::Every => vec![true, false],
            Self::Sample if point.starts_with("attach:net:routed") => vec![true, false],
            Self::Sample => vec![true],
        }
    }
}

#[derive(Debug)]
struct Suite {
    /// The cluster of a driver whose networks keep their leases on etcd.
    _etcd: Option<Etcd>,
    lan: Lan,
    faulty: PathBuf,
    next: usize,
    reached: Vec<String>,
}

/// One container of one scenario: its namespace and its states.
#[derive(Debug)]
struct Container {
    ns: Option<TestNetns>,
    creating: String,
    stopped: String,
    name: String,
    id: String,
}

impl Suite {
    fn new(driver: Driver) -> Self {
        let lan = Lan::new();
        let etcd = driver.create.contains(&"--ipam-opt").then(|| {
            let etcd = Etcd::start(&lan, 1);
            etcd.reach_from(&lan, "192.168.77.250");
            etcd
        });
        // Both networks with host access: the steps of its link and routes are failpoints too.
        let mut first = driver.create.to_vec();
        first.extend(["-o", "host_access=192.168.77.3"]);
        lan.create_network(NETS[0], &first);
        let mut second = vec![
            "network",
            "create",
            "--subnet",
            "10.77.0.0/24",
            "--gateway",
            "10.77.0.1",
            "-o",
            "parent=lan0",
            "-o",
            "host_access=10.77.0.3",
        ];
        second.extend_from_slice(driver.create);
        second.push(NETS[1]);
        lan.cli_ok(&second, "");
        Self {
            _etcd: etcd,
            lan,
            faulty: failpoints_binary(),
            next: 0,
            reached: Vec::new(),
        }
    }

    fn container(&mut self, scenario: &str) -> Container {
        self.next += 1;
        let id = format!("fp{}", self.next);
        let ns = TestNetns::new("omt-ctr-");
        let annotations = [("oci-macvlan.networks", "fpa,fpb")];
        let creating = self
            .lan
            .fake_bundle(&id, &annotations, &ns.path(), "creating");
        let stopped = self
            .lan
            .fake_bundle(&id, &annotations, &ns.path(), "stopped");
        Container {
            ns: Some(ns),
            creating,
            stopped,
            name: format!("{scenario} ({id})"),
            id,
        }
    }

    /// Runs the failpoints build with `spec`; asserts the hook died or failed where told.
    fn run_faulty(&mut self, c: &Container, args: &[&str], stdin: &str, spec: &str, kill: bool) {
        let out = self
            .lan
            .cli_with(&self.faulty, &[(ENV, spec)], args, stdin.as_bytes());
        if kill {
            assert_eq!(out.code, -1, "{}: not killed: {}", c.name, out.stderr);
        } else {
            let point = spec.split(',').next().unwrap().split('=').next().unwrap();
            // A hook's line says what it was doing, and to which container.
            let action = if stdin == c.stopped {
                "detach"
            } else {
                "attach"
            };
            let failed = format!(
                "oci-macvlan: error: {action} of container {}: injected failure at failpoint {point}",
                c.id
            );
            if spec.contains("undo:step=error") {
                // A rollback that fails is said on the same line, with what it left.
                let line = out.stderr.trim_end();
                assert_eq!(out.code, 1, "{}: {line}", c.name);
                assert_eq!(out.stderr.lines().count(), 1, "{}: {line}", c.name);
                assert!(
                    line.starts_with(&format!("{failed}; the rollback left "))
                        && line.contains("(injected failure at failpoint undo:step)")
                        // The record stays whatever failed: poststop and gc work from it.
                        && line.contains("the endpoint record (")
                        && line.ends_with(": poststop or `oci-macvlan gc` takes it back"),
                    "{}: {line}",
                    c.name
                );
            } else {
                assert_eq!(
                    (out.code, out.stderr.as_str()),
                    (1, format!("{failed}\n").as_str()),
                    "{}",
                    c.name
                );
            }
        }
        for entry in spec.split(',') {
            self.reached
                .push(entry.split('=').next().unwrap().to_owned());
        }
    }

    /// The container's namespace holds nothing of ours.
    fn assert_container_empty(&self, c: &Container) {
        if let Some(ns) = &c.ns {
            let names: Vec<String> = ns
                .links()
                .iter()
                .filter_map(|l| l["ifname"].as_str().map(str::to_owned))
                .collect();
            assert_eq!(names, ["lo"], "{}: links left in the container", c.name);
        }
    }

    fn assert_clean(&self, c: &Container) {
        self.lan.assert_no_residue(&NETS, &c.name);
        self.assert_container_empty(c);
    }

    /// Carries on after the fault as `then` says, and checks that nothing is left.
    fn carry_on(&self, c: &mut Container, then: Then) {
        match then {
            Then::Poststop => {
                self.lan.cli_ok(&["hook", "poststop"], &c.stopped);
            }
            Then::Reattach => {
                self.lan.cli_ok(&["hook"], &c.creating);
                let ns = c.ns.as_ref().unwrap();
                assert_eq!(ns.addresses("eth0").len(), 1, "{}: eth0", c.name);
                assert_eq!(ns.addresses("eth1").len(), 1, "{}: eth1", c.name);
                assert_eq!(ns.routes(false).len(), 3, "{}: routes", c.name);
                for net in NETS {
                    assert_eq!(self.lan.leased(net), 1, "{}: leases on {net}", c.name);
                }
                assert!(ns.ping(Lan::GATEWAY), "{}: no ping after re-attach", c.name);
                self.lan.cli_ok(&["hook", "poststop"], &c.stopped);
            }
            Then::Gc => {
                c.ns = None; // the container is gone, and its namespace with it
                self.lan.cli_ok(&["gc"], "");
            }
        }
        self.assert_clean(c);
    }
}

/// The failpoint specs of an attach: every step, and the per-network ones for both networks
/// (in a [`Scope::Sample`], the per-network ones for the first network).
fn attach_points(scope: Scope) -> Vec<String> {
    let mut points = Vec::new();
    for point in oci_macvlan_macvlan::failpoint::ALL {
        if scope == Scope::Sample {
            if point.starts_with("attach:net:") {
                points.push(format!("{point}=@1"));
            }
        } else if point.starts_with("attach:net:") {
            points.push(format!("{point}=@1"));
            points.push(format!("{point}=@2"));
        } else if *point == "attach:claimed" {
            // Passed by every attach; what it guards (taking back a gone container's record) has
            // its own test below.
            points.push(format!("{point}=@1"));
        } else if point.starts_with("attach:") {
            points.push(format!("{point}=@1"));
        }
    }
    points
}

fn with_action(spec: &str, action: &str) -> String {
    spec.replacen("=@", &format!("={action}@"), 1)
}

/// An attach killed or failed at each of its steps; then each continuation cleans up.
pub fn attach_dies_or_fails_at_every_step_and_every_continuation_cleans_up(
    driver: Driver,
    scope: Scope,
) {
    let mut suite = Suite::new(driver);
    let mut n = 0;
    let points = attach_points(scope);
    for spec in &points {
        for kill in scope.kills(spec) {
            let spec = with_action(spec, if kill { "kill" } else { "error" });
            for then in scope.thens(n, &THEN) {
                n += 1;
                let mut c = suite.container(&format!("{} {spec} then {then:?}", driver.name));
                let creating = c.creating.clone();
                suite.run_faulty(&c, &["hook"], &creating, &spec, kill);
                if !kill {
                    suite.assert_clean(&c);
                }
                suite.carry_on(&mut c, then);
            }
        }
    }
    for spec in points {
        let point = spec.split('=').next().unwrap();
        assert!(
            suite.reached.iter().any(|r| r == point),
            "{point} never exercised"
        );
    }
    if scope == Scope::Every {
        for point in oci_macvlan_macvlan::failpoint::ALL
            .iter()
            .filter(|p| p.starts_with("attach:"))
        {
            assert!(
                suite.reached.iter().any(|r| r == point),
                "{point} never exercised"
            );
        }
    }
}

/// The undo of an attach that failed at the second network's last step before its host routes
/// (6 steps: the record, a lease and a link per network, and the first network's host
/// routes), interrupted at each of its steps.
pub fn undo_dies_or_fails_at_every_step_and_every_continuation_cleans_up(
    driver: Driver,
    scope: Scope,
) {
    let mut suite = Suite::new(driver);
    let mut n = 0;
    for step in 1..=6 {
        let kills = match scope {
            Scope::Every => vec![true, false],
            Scope::Sample => vec![true],
        };
        for kill in kills {
            let action = if kill { "kill" } else { "error" };
            let spec = format!("attach:net:routed=error@2,undo:step={action}@{step}");
            for then in scope.thens(n, &THEN) {
                n += 1;
                let mut c = suite.container(&format!("{} {spec} then {then:?}", driver.name));
                let creating = c.creating.clone();
                suite.run_faulty(&c, &["hook"], &creating, &spec, kill);
                suite.carry_on(&mut c, then);
            }
        }
    }
}

/// A detach of a fully attached container, interrupted at each step; then poststop again, or the
/// container dies and `gc` runs.
pub fn detach_dies_or_fails_at_every_step_and_every_continuation_cleans_up(
    driver: Driver,
    scope: Scope,
) {
    let mut suite = Suite::new(driver);
    let mut n = 0;
    let points = oci_macvlan_macvlan::failpoint::ALL
        .iter()
        .filter(|p| p.starts_with("detach:"));
    for point in points {
        for kill in scope.kills(point) {
            let spec = format!("{point}={}", if kill { "kill" } else { "error" });
            for then in scope.thens(n, &[Then::Poststop, Then::Gc]) {
                n += 1;
                let mut c = suite.container(&format!("{} {spec} then {then:?}", driver.name));
                suite.lan.cli_ok(&["hook"], &c.creating);
                let stopped = c.stopped.clone();
                suite.run_faulty(&c, &["hook", "poststop"], &stopped, &spec, kill);
                suite.carry_on(&mut c, then);
            }
        }
    }
}

/// An attach for an id whose record is of an earlier container that is gone without its
/// poststop (its namespace path is gone): the attach takes that record back first, as `gc`
/// would. Interrupted at each step of that take-back, and right after it; then each
/// continuation leaves nothing.
pub fn an_attach_taking_back_a_gone_containers_record_dies_or_fails_at_every_step(driver: Driver) {
    let mut suite = Suite::new(driver);
    for point in ["detach:links", "detach:released", "attach:claimed"] {
        for kill in [true, false] {
            let spec = format!("{point}={}", if kill { "kill" } else { "error" });
            for then in THEN {
                let mut c = suite.container(&format!("stale record, {spec} then {then:?}"));
                // The earlier container of that id: attached in a namespace that is gone now.
                let earlier = TestNetns::new("omt-old-");
                let id = c
                    .name
                    .rsplit('(')
                    .next()
                    .unwrap()
                    .trim_end_matches(')')
                    .to_owned();
                let annotations = [("oci-macvlan.networks", "fpa,fpb")];
                let old = suite
                    .lan
                    .fake_bundle(&id, &annotations, &earlier.path(), "creating");
                suite.lan.cli_ok(&["hook"], &old);
                drop(earlier);
                // The bundle of the new container of that id (a new namespace).
                let ns = c.ns.as_ref().unwrap().path();
                c.creating = suite.lan.fake_bundle(&id, &annotations, &ns, "creating");
                let creating = c.creating.clone();
                suite.run_faulty(&c, &["hook"], &creating, &spec, kill);
                suite.carry_on(&mut c, then);
            }
        }
    }
}
