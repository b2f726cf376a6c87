//! Shared by the validation tests (`validate.rs`, `validate_drivers.rs`).

use oci_macvlan_macvlan::NetworkSpec;

/// A `NetworkSpec` as `network create` parses it from `args` ("FLAG VALUE" each), on `lan50`.
pub fn spec(args: &[&str]) -> NetworkSpec {
    let mut spec = NetworkSpec {
        name: "lan50".into(),
        driver: "macvlan".into(),
        ..Default::default()
    };
    for arg in args {
        let (flag, value) = arg.split_once(' ').unwrap_or((arg, ""));
        let value = value.to_owned();
        match flag {
            "--name" => spec.name = value,
            "-d" => spec.driver = value,
            "--subnet" => spec.subnets.push(value),
            "--gateway" => spec.gateways.push(value),
            "--ip-range" => spec.ip_ranges.push(value),
            "--aux-address" => spec.aux_addresses.push(value),
            "-o" => spec.options.push(value),
            "--ipv6" => spec.ipv6 = true,
            "--internal" => spec.internal = true,
            "--ipam-driver" => spec.ipam_driver = value,
            "--ipam-opt" => spec.ipam_options.push(value),
            other => panic!("unknown flag {other}"),
        }
    }
    spec
}
