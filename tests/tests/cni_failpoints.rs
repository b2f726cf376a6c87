//! Privileged tier: fault injection through the CNI door. The plugin, built with the
//! `failpoints` feature, dies (SIGKILL) or fails at each named step of an ADD (the core's
//! attach of one network, on a network with host access so that its host link and routes are
//! steps too), of that attach's undo, and of a DEL (the core's disconnect); then each way a
//! runtime carries on — DEL, or GC once it no longer lists the attachment (the sandbox gone)
//! — must leave no link, no lease, no record, no lock and no host route, and `verify` passes.
//! A failed (not killed) ADD must leave that at once, with the spec's JSON error naming the
//! failpoint. Every failpoint of the steps is proven reached.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use oci_macvlan_tests::{
    Lan, TestNetns,
    cni::{CniDriver, Target, parse_outcome, target},
    failpoints_binary, privileged,
};
use serde_json::Value;

const NET: &str = "lan77";
const ENV: &str = "OCI_MACVLAN_FAILPOINTS";

/// How the runtime carries on after the fault.
#[derive(Debug, Clone, Copy)]
enum Then {
    /// DEL, with the namespace still there.
    Del,
    /// The sandbox is gone; GC with a list of valid attachments that no longer has it.
    Gc,
}

struct Door<'a> {
    lan: &'a Lan,
    cni: CniDriver<'a>,
    faulty: PathBuf,
    next: usize,
    reached: Vec<String>,
}

impl<'a> Door<'a> {
    fn new(lan: &'a Lan) -> Self {
        lan.create_network(NET, &["-o", "host_access=192.168.77.3"]);
        Self {
            lan,
            cni: CniDriver::new(lan, NET, "1.1.0"),
            faulty: failpoints_binary(),
            next: 0,
            reached: Vec::new(),
        }
    }

    fn id(&mut self) -> String {
        self.next += 1;
        format!("cfp{}", self.next)
    }

    /// Runs `command` for `t` with the failpoints build and `spec`; asserts that the plugin
    /// died, or failed with the spec's JSON error naming the failpoint.
    fn run_faulty(&mut self, command: &str, t: Target<'_>, spec: &str, kill: bool, case: &str) {
        let config = self.cni.config();
        let env = [(ENV, spec)];
        let out = self.cni.run(&self.faulty, &env, command, t, "", &config);
        if kill {
            assert_eq!(out.code, -1, "{case}: not killed: {}", out.stderr);
        } else {
            let err = parse_outcome(&out).unwrap_err();
            let point = spec.split(',').next().unwrap().split('=').next().unwrap();
            let text = format!("{}: {}", err["msg"], err["details"]);
            assert!(
                text.contains(&format!("injected failure at failpoint {point}")),
                "{case}: {err}"
            );
        }
        for entry in spec.split(',') {
            self.reached
                .push(entry.split('=').next().unwrap().to_owned());
        }
    }

    /// Nothing is left: no link but `lo` in the namespace (if there is one), nothing of the
    /// container on the host, in the store or the state dir.
    fn assert_clean(&self, ns: Option<&TestNetns>, case: &str) {
        self.lan.assert_no_residue(&[NET], case);
        if let Some(ns) = ns {
            let names: Vec<String> = ns
                .links()
                .iter()
                .filter_map(|l| l["ifname"].as_str().map(str::to_owned))
                .collect();
            assert_eq!(names, ["lo"], "{case}: links left in the container");
        }
    }

    /// Carries on as `then` says and checks that nothing is left.
    fn carry_on(&self, id: &str, ns: TestNetns, then: Then, case: &str) {
        let path = ns.path();
        match then {
            Then::Del => {
                let t = target(id, &path);
                self.cni.exec("DEL", t, "", &self.cni.config()).unwrap();
                // Again, as a runtime may.
                self.cni.exec("DEL", t, "", &self.cni.config()).unwrap();
                self.assert_clean(Some(&ns), case);
            }
            Then::Gc => {
                drop(ns);
                assert_eq!(self.cni.gc(&[]), Ok(Value::Null), "{case}");
                self.assert_clean(None, case);
            }
        }
    }

    /// For each way to carry on: a new container and namespace (a DEL's container added
    /// first), `command` run with `spec` (killed or failed), nothing left at once when
    /// `clean_at_once` and the plugin failed, then the carrying on.
    fn each_way(&mut self, command: &str, spec: &str, kill: bool, clean_at_once: bool) {
        for then in [Then::Del, Then::Gc] {
            let id = self.id();
            let case = format!("{command} {spec} then {then:?} ({id})");
            let ns = TestNetns::new("omt-cfp-");
            let path = ns.path();
            let t = target(&id, &path);
            if command == "DEL" {
                self.cni.exec("ADD", t, "", &self.cni.config()).unwrap();
            }
            self.run_faulty(command, t, spec, kill, &case);
            if clean_at_once && !kill {
                self.assert_clean(Some(&ns), &case);
            }
            self.carry_on(&id, ns, then, &case);
        }
    }
}

/// The failpoints of the core a scenario set covers.
fn points(prefix: &str) -> Vec<&'static str> {
    oci_macvlan_macvlan::failpoint::ALL
        .iter()
        .copied()
        .filter(|p| p.starts_with(prefix))
        .collect()
}

/// An ADD killed or failed at each step of its attach; then DEL, or GC without it.
#[privileged]
fn add_dies_or_fails_at_every_step_then_del_or_gc_leaves_nothing() {
    let lan = Lan::new();
    let mut door = Door::new(&lan);
    for point in points("attach:") {
        for kill in [true, false] {
            let spec = format!("{point}={}@1", if kill { "kill" } else { "error" });
            door.each_way("ADD", &spec, kill, true);
        }
    }
    assert_reached(&door.reached, &points("attach:"));
}

/// The undo of an ADD that failed at its last step before the host's routes (its routes in
/// the container), killed or failed at each of its steps (the link, the lease, the record);
/// then DEL, or GC without it.
#[privileged]
fn an_adds_undo_dies_or_fails_at_every_step_then_del_or_gc_leaves_nothing() {
    let lan = Lan::new();
    let mut door = Door::new(&lan);
    for step in 1..=3 {
        for kill in [true, false] {
            let action = if kill { "kill" } else { "error" };
            let spec = format!("attach:net:routed=error@1,undo:step={action}@{step}");
            door.each_way("ADD", &spec, kill, false);
        }
    }
    assert_reached(&door.reached, &["attach:net:routed", "undo:step"]);
}

/// A DEL of a whole attachment killed or failed at each step of the core's disconnect; then
/// DEL again, or GC without it.
#[privileged]
fn del_dies_or_fails_at_every_step_then_del_or_gc_leaves_nothing() {
    let lan = Lan::new();
    let mut door = Door::new(&lan);
    for point in points("detach:") {
        for kill in [true, false] {
            let spec = format!("{point}={}", if kill { "kill" } else { "error" });
            door.each_way("DEL", &spec, kill, false);
        }
    }
    assert_reached(&door.reached, &points("detach:"));
}

fn assert_reached(reached: &[String], points: &[&str]) {
    for point in points {
        assert!(
            reached.iter().any(|r| r == point),
            "{point} never exercised"
        );
    }
}
