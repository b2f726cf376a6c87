//! Privileged tier: the poststop suite (`oci_macvlan_tests::suites::poststop`, which says what
//! it checks) for macvlan; the VM tier runs it for ipvlan.

use oci_macvlan_tests::{MACVLAN, privileged, suites::poststop};

#[privileged]
fn poststop_exits_0_and_leaves_nothing_whatever_it_finds() {
    poststop::exits_0_and_leaves_nothing_whatever_it_finds(MACVLAN);
}

#[privileged]
fn poststop_after_the_parent_is_gone() {
    poststop::after_the_parent_is_gone(MACVLAN);
}

/// A container restarted at once (poststop, then createRuntime with the same id) gets the same
/// MAC while the kernel may still be tearing down the old namespace's macvlan holding it: the
/// attach waits for the MAC instead of failing. Macvlan's alone: an ipvlan has its parent's MAC.
#[privileged]
fn a_container_restarted_at_once_gets_its_mac_back() {
    poststop::a_container_restarted_at_once_gets_its_mac_back(MACVLAN);
}
