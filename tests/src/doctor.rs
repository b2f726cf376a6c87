//! What the `doctor` tests (`doctor.rs`, `doctor_dhcp.rs`) share: `doctor --json` run on a
//! [`Lan`] and its report's checks found by name.

use serde_json::Value;

use crate::Lan;

/// `doctor --json ARGS` on `lan`: its exit code and its report (panics unless it is JSON).
pub fn run(lan: &Lan, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["doctor", "--json"];
    all.extend_from_slice(args);
    let out = lan.cli(&all, "");
    let report: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|err| panic!("not JSON ({err}): {} {}", out.stdout, out.stderr));
    (out.code, report)
}

/// The check named `name` in `report` (panics, showing the report, when there is none).
pub fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {report:#}"))
}
