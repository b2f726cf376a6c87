//! Privileged tier: a hook run again on a link an earlier run made (adopted), whose recorded
//! lease ran out, runs a new exchange; the old lease's address leaves the link and the store
//! (review 27, finding 7), so the link has the new lease's address only.

#![allow(clippy::unwrap_used)]

use oci_macvlan_tests::{
    Lan, TestNetns,
    dhcp_lan::{NET, create_dhcp_network, kea_config, record, state_with_hostname},
    kea::{Kea, KeaConfig},
    privileged,
};

const OLD: &str = "192.168.77.100";
const NEW: &str = "192.168.77.120";

fn only(address: &str) -> KeaConfig {
    KeaConfig {
        pool: format!("{address} - {address}"),
        ..kea_config()
    }
}

#[privileged]
fn a_new_lease_on_an_adopted_link_takes_the_old_address_off() {
    let lan = Lan::new();
    let kea = Kea::start(&lan.router, &only(OLD));
    create_dhcp_network(&lan, &[]);
    let container = TestNetns::new("omt-ctr-");
    let creating = state_with_hostname(&lan, "c1", &container, "creating", "web");
    lan.cli_ok(&["hook"], &creating);
    assert_eq!(container.addresses("eth0"), [format!("{OLD}/24")]);

    // The recorded lease ran out (as if the renewer died with it), and the LAN's server now
    // leases another address.
    let path = lan.state_dir().join("endpoints/c1.json");
    let mut rec = record(&lan, "c1");
    let lease = &mut rec["endpoints"][0]["dhcp"]["lease"];
    lease["expiry"] = lease["obtained"].clone();
    std::fs::write(&path, rec.to_string()).unwrap();
    drop(kea.stop());
    let _kea = Kea::start(&lan.router, &only(NEW));

    lan.cli_ok(&["hook"], &creating);
    assert_eq!(
        container.addresses("eth0"),
        [format!("{NEW}/24")],
        "the old lease's address stayed"
    );
    assert_eq!(lan.leased(NET), 1, "the store kept the old lease");
    assert_eq!(
        record(&lan, "c1")["endpoints"][0]["dhcp"]["lease"]["address"],
        NEW
    );
    lan.cli_ok(
        &["hook"],
        &state_with_hostname(&lan, "c1", &container, "stopped", "web"),
    );
    lan.assert_no_residue(&[NET], "after poststop");
}
