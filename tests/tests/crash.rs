//! Privileged tier: hooks SIGKILLed at random instants of an attach. The runtime then kills the
//! container, as runc does when a createRuntime hook fails; `gc` must take back everything those
//! containers held, keep what live containers hold, and leave a store that `verify` passes.

#![allow(clippy::unwrap_used)]

use std::{
    collections::BTreeSet,
    io::Write,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use oci_macvlan_ipam::{LeaseSet, LmdbStore};
use oci_macvlan_tests::{ContainerProcess, Lan, privileged};

const NET: &str = "crash";
const ATTACHES: usize = 200;

/// xorshift64*: enough randomness for kill instants, and a seed to replay a failure with.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn state(lan: &Lan, id: &str, container: &ContainerProcess) -> String {
    lan.pid_bundle(
        id,
        &[("oci-macvlan.networks", NET)],
        container.pid(),
        "creating",
    )
}

/// Runs one attach to completion and returns how long it took.
fn timed_attach(lan: &Lan, state: &str) -> Duration {
    let start = Instant::now();
    lan.cli_ok(&["hook"], state);
    start.elapsed()
}

fn lease_holders(lan: &Lan) -> BTreeSet<String> {
    let mut store = LmdbStore::open(&lan.state_dir()).unwrap();
    store
        .all_leases()
        .unwrap()
        .into_iter()
        .map(|l| l.owner.container_id)
        .collect()
}

fn gc(lan: &Lan) -> String {
    let out = lan.cli_ok(&["gc"], "");
    eprintln!("{}", out.lines().last().unwrap_or_default());
    out
}

fn verify_passes(lan: &Lan) {
    let out = lan.cli(&["verify"], "");
    assert_eq!(out.code, 0, "verify: {}{}", out.stdout, out.stderr);
}

#[privileged]
fn two_hundred_attaches_killed_at_random_instants_then_gc() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    let seed = std::env::var("OMT_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("kill instants from seed {seed} (replay with OMT_CRASH_SEED={seed})");
    let mut rng = Rng(seed);

    // How long a whole attach takes here, from spawn to exit: kills are spread over that span.
    let mut span = Vec::new();
    for i in 0..5 {
        let container = ContainerProcess::start();
        let id = format!("calibrate{i}");
        span.push(timed_attach(&lan, &state(&lan, &id, &container)));
        container.kill();
    }
    span.sort();
    let span = span[2];
    eprintln!("one attach takes {span:?} (median of 5)");

    let mut live = Vec::new();
    let mut killed_hooks = 0;
    for i in 0..ATTACHES {
        let container = ContainerProcess::start();
        let id = format!("crash{i}");
        let state = state(&lan, &id, &container);
        let delay = span.mul_f64((rng.next() % 1000) as f64 / 1000.0 * 1.2);
        let mut hook = lan.spawn_cli(&["hook"], false);
        hook.stdin
            .take()
            .unwrap()
            .write_all(state.as_bytes())
            .unwrap();
        std::thread::sleep(delay);
        let _ = hook.kill();
        let status = hook.wait().unwrap();
        if status.success() {
            live.push((id, container));
        } else {
            // The hook failed: the runtime kills the container.
            assert_eq!(status.code(), None, "the hook failed by itself: {status}");
            killed_hooks += 1;
            container.kill();
        }
    }
    eprintln!(
        "{killed_hooks} of {ATTACHES} hooks killed mid-attach, {} completed",
        live.len()
    );
    assert!(
        killed_hooks > ATTACHES / 4,
        "few kills landed: {killed_hooks}"
    );

    // Every container whose hook completed holds its lease; the store opens after the kills.
    let holders = lease_holders(&lan);
    for (id, _) in &live {
        assert!(holders.contains(id), "{id} lost its lease");
    }

    let out = gc(&lan);
    verify_passes(&lan);
    let live_ids: BTreeSet<String> = live.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(lease_holders(&lan), live_ids, "gc output:\n{out}");
    let recorded: BTreeSet<String> = lan
        .records()
        .iter()
        .map(|name| name.trim_end_matches(".json").to_owned())
        .collect();
    assert_eq!(recorded, live_ids);
    assert!(
        out.ends_with(&format!(
            "{} still run; 0 undecided; 0 busy\n",
            live_ids.len()
        )),
        "{out}"
    );
    // Nothing ever appeared in the host namespace, even from an attach killed halfway.
    let mut host_links = lan.host_link_names();
    host_links.sort();
    assert_eq!(host_links, ["lan0", "lo"]);

    // Half of the live containers stop without their poststop hook (a crashed runtime).
    let mut still = Vec::new();
    for (n, (id, container)) in live.into_iter().enumerate() {
        if n % 2 == 0 {
            container.kill();
        } else {
            still.push((id, container));
        }
    }
    gc(&lan);
    verify_passes(&lan);
    let still_ids: BTreeSet<String> = still.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(lease_holders(&lan), still_ids);
    let usage = &lan.inspect(NET)[0]["Usage"][0];
    assert_eq!(usage["InUse"].as_array().unwrap().len(), still_ids.len());
    assert_eq!(
        usage["DynamicAvailable"].as_u64().unwrap(),
        253 - still_ids.len() as u64
    );

    // And the rest: gc leaves an empty store and no file behind.
    drop(still);
    gc(&lan);
    verify_passes(&lan);
    assert!(lease_holders(&lan).is_empty());
    for dir in ["endpoints", "locks"] {
        let left: Vec<String> = std::fs::read_dir(lan.state_dir().join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, Vec::<String>::new(), "left in {dir}/");
    }
}
