//! Named failpoints at every step of attach, its undo, and detach, for the fault-injection suite
//! (`tests/tests/failpoints.rs`). They exist only in a build with the `failpoints` feature, which
//! no release build enables; without it [`hit`] is an empty inline function.
//!
//! `OCI_MACVLAN_FAILPOINTS=NAME=ACTION[@N][,…]` (read by `oci_macvlan_ipam::failpoint`, the
//! switch every crate's failpoints share): at the N-th time (default: first) the step NAME is
//! passed, ACTION happens: `kill` (the process SIGKILLs itself, as a runtime's timeout or the OOM
//! killer would), `error` (the step fails with [`Error::Injected`]) or `pause` (the step waits a
//! second first).

use crate::Result;
#[cfg(feature = "failpoints")]
use crate::error::Error;

/// Every failpoint, in the order an attach (then its undo, then a detach) passes them. The
/// `attach:net:*` points are passed once per network of the container (`attach:net:host-*`
/// once per network with host access).
pub const ALL: &[&str] = &[
    "attach:locked",
    "attach:claimed",
    "attach:recorded",
    "attach:net:parent",
    "attach:net:leased",
    "attach:net:created",
    "attach:net:addressed",
    "attach:net:configured",
    "attach:net:up",
    "attach:net:routed",
    "attach:net:host-link",
    "attach:net:host-routed",
    "attach:done",
    "undo:step",
    "detach:locked",
    "detach:host-unrouted",
    "detach:links",
    "detach:released",
    "detach:unrecorded",
];

/// The failpoints only an attach to a DHCP network passes (`tests/tests/dhcp_faults.rs`),
/// once per such network: the server's ACK read, its lease not yet recorded in full (the
/// endpoint's record names the offer); the full record about to be written.
pub const DHCP: &[&str] = &["attach:net:dhcp-acked", "attach:net:record-lease"];

/// The failpoints a DHCP lease's renewer passes (`tests/tests/dhcp_renew_noted.rs`): the
/// server's ACK to a discovery read, the record naming its offer only; the same for a DHCPv6
/// discovery's REPLY.
pub const RENEW: &[&str] = &["renew:acked", "renew:replied6"];

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn hit(_name: &'static str) -> Result<()> {
    Ok(())
}

#[cfg(feature = "failpoints")]
pub(crate) fn hit(name: &'static str) -> Result<()> {
    debug_assert!(
        ALL.contains(&name) || DHCP.contains(&name) || RENEW.contains(&name),
        "undeclared failpoint {name}"
    );
    if oci_macvlan_ipam::failpoint::fails(name) {
        return Err(Error::Injected(name));
    }
    Ok(())
}
