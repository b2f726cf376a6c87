//! The network drivers the driver-generic suites (fault injection, poststop, malformed input)
//! run for: a table, so a suite is written once and run for each driver where its kernel has
//! the links (macvlan on the host, ipvlan in the VM tier).

/// A driver as the suites see it: the `network create` flags that give a network of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Driver {
    pub name: &'static str,
    /// Added to `network create` (with `-o parent=lan0`, a subnet and a gateway).
    pub create: &'static [&'static str],
    /// Whether a container's link has a MAC of its own (macvlan), rather than its parent's.
    pub own_mac: bool,
}

pub const MACVLAN: Driver = Driver {
    name: "macvlan",
    create: &["-d", "macvlan"],
    own_mac: true,
};

/// L2, the default mode: the suites' containers reach the LAN's gateway as macvlan's do.
pub const IPVLAN: Driver = Driver {
    name: "ipvlan",
    create: &["-d", "ipvlan", "-o", "ipvlan_mode=l2"],
    own_mac: false,
};

/// macvlan with its leases on etcd (`--ipam-opt`): the suites start a one-member cluster in
/// the LAN's router namespace (`Etcd`, whose first client URL this is) when a driver's `create`
/// names it.
pub const MACVLAN_ON_ETCD: Driver = Driver {
    name: "macvlan on etcd",
    create: &[
        "-d",
        "macvlan",
        "--ipam-opt",
        "etcd_endpoints=http://192.168.77.1:2379",
    ],
    own_mac: true,
};

/// Every driver, for the suites that run for each on this kernel.
pub const DRIVERS: [Driver; 2] = [MACVLAN, IPVLAN];
