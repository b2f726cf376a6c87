//! Privileged tier: the fault-injection suite (`oci_macvlan_tests::suites::failpoints`, which
//! says what it checks), every scenario, for macvlan; the VM tier runs a sample for ipvlan.

use oci_macvlan_tests::{
    MACVLAN, MACVLAN_ON_ETCD, privileged,
    suites::failpoints::{self, Scope},
};

#[privileged]
fn attach_dies_or_fails_at_every_step_and_every_continuation_cleans_up() {
    failpoints::attach_dies_or_fails_at_every_step_and_every_continuation_cleans_up(
        MACVLAN,
        Scope::Every,
    );
}

#[privileged]
fn undo_dies_or_fails_at_every_step_and_every_continuation_cleans_up() {
    failpoints::undo_dies_or_fails_at_every_step_and_every_continuation_cleans_up(
        MACVLAN,
        Scope::Every,
    );
}

#[privileged]
fn detach_dies_or_fails_at_every_step_and_every_continuation_cleans_up() {
    failpoints::detach_dies_or_fails_at_every_step_and_every_continuation_cleans_up(
        MACVLAN,
        Scope::Every,
    );
}

#[privileged]
fn an_attach_taking_back_a_gone_containers_record_dies_or_fails_at_every_step() {
    failpoints::an_attach_taking_back_a_gone_containers_record_dies_or_fails_at_every_step(MACVLAN);
}

/// The etcd path (`--ipam-opt etcd_endpoints`): the hook killed or failed at every step of an
/// attach, of its undo and of a detach, on networks whose leases are in etcd; each continuation
/// leaves no lease in etcd, no record, no link.
#[privileged]
fn on_etcd_attach_undo_and_detach_die_or_fail_at_every_step_and_leave_nothing() {
    failpoints::attach_dies_or_fails_at_every_step_and_every_continuation_cleans_up(
        MACVLAN_ON_ETCD,
        Scope::Every,
    );
    failpoints::undo_dies_or_fails_at_every_step_and_every_continuation_cleans_up(
        MACVLAN_ON_ETCD,
        Scope::Sample,
    );
    failpoints::detach_dies_or_fails_at_every_step_and_every_continuation_cleans_up(
        MACVLAN_ON_ETCD,
        Scope::Every,
    );
}
