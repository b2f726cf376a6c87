//! The driver-generic privileged suites, written once and run for each driver where the kernel
//! has its links: `tests/tests/{failpoints,poststop}.rs` run them for macvlan on the host, the
//! VM tier (`tests/tests/vm/suites.rs`) for ipvlan. Each test of a suite makes its own
//! namespaces and removes them, as every privileged test does.

pub mod failpoints;
pub mod poststop;
