//! The driver-generic suites (`oci_macvlan_tests::suites`) for ipvlan, which this host's kernel
//! lacks. For the VM tier's time (qemu without KVM), a chosen part of them:
//! - fault injection, [`Scope::Sample`]: each per-network attach step killed (failed too at its
//!   last step, which runs the whole undo), the undo killed at each of its 6 steps, each detach
//!   step killed, each scenario with one continuation (poststop, re-attach, gc) in turn. These
//!   are the steps where an ipvlan exists, is recognised as the container's own and is deleted;
//!   the record, lock and lease steps before them do not depend on the driver, and the host runs
//!   them all for macvlan. The take-back of a gone container's record is left out for the same
//!   reason.
//! - poststop: every case but the restart's MAC (an ipvlan has its parent's MAC).
//! - malformed input needs no ipvlan link: the host runs that corpus for both drivers.

use oci_macvlan_tests::{
    IPVLAN,
    suites::{
        failpoints::{self, Scope},
        poststop,
    },
};

#[test]
fn ipvlan_failpoints_attach_sample() {
    failpoints::attach_dies_or_fails_at_every_step_and_every_continuation_cleans_up(
        IPVLAN,
        Scope::Sample,
    );
}

#[test]
fn ipvlan_failpoints_undo_sample() {
    failpoints::undo_dies_or_fails_at_every_step_and_every_continuation_cleans_up(
        IPVLAN,
        Scope::Sample,
    );
}

#[test]
fn ipvlan_failpoints_detach_sample() {
    failpoints::detach_dies_or_fails_at_every_step_and_every_continuation_cleans_up(
        IPVLAN,
        Scope::Sample,
    );
}

#[test]
fn ipvlan_poststop_exits_0_and_leaves_nothing_whatever_it_finds() {
    poststop::exits_0_and_leaves_nothing_whatever_it_finds(IPVLAN);
}

#[test]
fn ipvlan_poststop_after_the_parent_is_gone() {
    poststop::after_the_parent_is_gone(IPVLAN);
}
