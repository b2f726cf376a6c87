//! The switch of the fault-injection suite's failpoints, for every crate that has some: the
//! core's steps (`oci_macvlan_macvlan::failpoint`, which names them all) and the etcd store's
//! lost answer (`oci_macvlan_ipam_etcd::WRITE_UNANSWERED`). It exists only in a build with the
//! `failpoints` feature, which no release build enables; without it [`fails`] is an empty
//! inline function.
//!
//! `OCI_MACVLAN_FAILPOINTS=NAME=ACTION[@N][,…]`: at the N-th time (default: first) the point
//! NAME is passed, ACTION happens: `kill` (the process SIGKILLs itself, as a runtime's timeout or
//! the OOM killer would), `error` (the step fails, as its crate says) or `pause` (the step waits
//! [`PAUSE`] first, as on a slow machine: a test watches what runs meanwhile).

/// How long a `pause` waits.
pub const PAUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether the step `name` must fail now; never returns when it must die.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn fails(_name: &'static str) -> bool {
    false
}

/// Whether the step `name` must fail now; never returns when it must die.
#[cfg(feature = "failpoints")]
pub fn fails(name: &'static str) -> bool {
    use std::{
        collections::HashMap,
        sync::{Mutex, PoisonError},
    };

    static HITS: Mutex<Option<HashMap<&'static str, u32>>> = Mutex::new(None);
    let Ok(spec) = std::env::var("OCI_MACVLAN_FAILPOINTS") else {
        return false;
    };
    let count = {
        let mut hits = HITS.lock().unwrap_or_else(PoisonError::into_inner);
        let n = hits
            .get_or_insert_with(HashMap::new)
            .entry(name)
            .or_insert(0);
        *n += 1;
        *n
    };
    for entry in spec.split(',') {
        let Some((point, action)) = entry.split_once('=') else {
            continue;
        };
        let (action, nth) = match action.split_once('@') {
            Some((action, nth)) => (action, nth.parse().unwrap_or(1)),
            None => (action, 1),
        };
        if point != name || nth != count {
            continue;
        }
        match action {
            "kill" => {
                let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
                unreachable!("SIGKILL returned");
            }
            "error" => return true,
            "pause" => std::thread::sleep(PAUSE),
            other => panic!("unknown failpoint action {other:?} for {name}"),
        }
    }
    false
}
