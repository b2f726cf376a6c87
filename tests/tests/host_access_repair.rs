//! Host access (`-o host_access`) repaired: the network's host link lost, set down or flushed is
//! made again with its addresses and every route by attach and by `gc`, `verify` saying so before
//! and not after, and `gc` goes on past a host link it cannot make. The setup is shared with
//! `host_access.rs` (`oci_macvlan_tests::host_access`).

#![allow(clippy::unwrap_used)]

use oci_macvlan_tests::host_access::{
    ACCESS, NET, create_dual_stack, host_access_doctor, host_link, lan_with_host_addresses,
    on_lan0, ping, runc,
};
use oci_macvlan_tests::privileged;
use serde_json::Value;

/// The link deleted by hand while two containers run: `verify` reports it; the next attach (of
/// a third container) makes it again with the routes of all three; `verify` is clean. Then
/// again, and `gc` restores it; and `gc` removes a route to an address no container holds.
#[privileged]
fn a_lost_host_link_is_restored_with_every_route_by_attach_and_by_gc() {
    let lan = lan_with_host_addresses();
    create_dual_stack(&lan, NET, &["-o", ACCESS]);
    let link = host_link(&lan, NET);
    let (a, b) = (runc(&lan, NET), runc(&lan, NET));
    let two = ["192.168.77.2", "192.168.77.4", "fd00:77::2", "fd00:77::4"];
    assert_eq!(lan.host.routes_via(&link), two);

    let mac = lan.host.link(&link).unwrap()["address"].clone();
    lan.host.ip(&["link", "del", &link]);
    let verify = lan.cli(&["verify"], "");
    assert_eq!(verify.code, 6, "{}", verify.stdout);
    assert!(
        verify
            .stdout
            .contains(&format!("host link {link} is missing")),
        "{}",
        verify.stdout
    );
    assert!(
        verify
            .stdout
            .contains("no host route to container address 192.168.77.4"),
        "{}",
        verify.stdout
    );
    let c = runc(&lan, NET);
    let mut three = two.to_vec();
    three.extend(["192.168.77.5", "fd00:77::5"]);
    three.sort_unstable();
    assert_eq!(lan.host.routes_via(&link), three, "attach restored");
    // Made again with its MAC: the containers' neighbour entries for the host stay right.
    assert_eq!(lan.host.link(&link).unwrap()["address"], mac);
    assert_eq!(lan.cli(&["verify"], "").code, 0);
    for ip in &three {
        assert!(lan.host.ping(ip), "the host cannot ping {ip}");
    }
    ping(&a, "192.168.77.3");

    lan.host.ip(&["link", "del", &link]);
    assert_eq!(lan.cli(&["verify"], "").code, 6);
    lan.host.sysctl("net/ipv4/conf/all/rp_filter", "1");
    let doctor = host_access_doctor(&lan);
    assert_eq!(doctor[0]["status"], "fail", "{doctor:#?}");
    assert!(
        doctor[0]["detail"].as_str().unwrap().contains("is missing"),
        "{doctor:#?}"
    );
    assert_eq!(doctor[1]["status"], "warn", "{doctor:#?}");
    let gc = lan.cli_ok(&["gc"], "");
    assert!(
        gc.contains(&format!("made host link {link} of network {NET} again")),
        "{gc}"
    );
    assert_eq!(lan.host.routes_via(&link), three, "gc restored");
    assert_eq!(lan.cli(&["verify"], "").code, 0);
    let doctor = host_access_doctor(&lan);
    assert_eq!(
        (&doctor[0]["status"], &doctor[1]["status"]),
        (&Value::from("ok"), &Value::from("ok")),
        "{doctor:#?}"
    );
    assert!(lan.host.ping("192.168.77.4"));

    // A route no container holds (a hook killed between its route and its record's removal).
    lan.host
        .ip(&["route", "add", "192.168.77.99/32", "dev", &link]);
    let verify = lan.cli(&["verify"], "");
    assert!(
        verify.stdout.contains("host route 192.168.77.99 via"),
        "{}",
        verify.stdout
    );
    let gc = lan.cli_ok(&["gc"], "");
    assert!(gc.contains("deleted host route 192.168.77.99"), "{gc}");
    assert_eq!(lan.host.routes_via(&link), three);

    a.stop().unwrap();
    assert_eq!(
        lan.host.routes_via(&link),
        ["192.168.77.4", "192.168.77.5", "fd00:77::4", "fd00:77::5"]
    );
    // Poststop with the link gone (it took the routes along): nothing to delete, nothing left.
    lan.host.ip(&["link", "del", &link]);
    for container in [b, c] {
        container.stop().unwrap();
    }
    assert_eq!(lan.records(), Vec::<String>::new());
    assert_eq!(
        lan.cli(&["verify"], "").code,
        6,
        "the link is still missing"
    );
    lan.cli_ok(&["gc"], "");
    assert_eq!(lan.host.routes_via(&link), Vec::<String>::new());
    assert_eq!(lan.cli(&["verify"], "").code, 0);
}

/// A host link set down (by hand, or by a network manager) lost its IPv6 address and every
/// route through it: `verify` says so, and the next attach brings it back with both addresses
/// and the routes of every container on record, as for a link made again.
#[privileged]
fn a_host_link_set_down_comes_back_with_its_addresses_and_every_route() {
    let lan = lan_with_host_addresses();
    create_dual_stack(&lan, NET, &["-o", ACCESS]);
    let link = host_link(&lan, NET);
    let a = runc(&lan, NET);
    let addresses = lan.host.addresses(&link);
    assert_eq!(addresses, ["192.168.77.3/32", "fd00:77::3/128"]);

    lan.host.ip(&["link", "set", &link, "down"]);
    let verify = lan.cli(&["verify"], "");
    assert_eq!(verify.code, 6, "{}", verify.stdout);
    for says in [
        format!("host link {link} is down"),
        format!("host link {link} lacks the host access address fd00:77::3"),
    ] {
        assert!(verify.stdout.contains(&says), "{}", verify.stdout);
    }
    let b = runc(&lan, NET);
    assert_eq!(lan.host.addresses(&link), addresses, "attach");
    assert_eq!(
        lan.host.routes_via(&link),
        ["192.168.77.2", "192.168.77.4", "fd00:77::2", "fd00:77::4"],
        "attach"
    );
    ping(&a, "fd00:77::3");

    lan.host.ip(&["link", "set", &link, "down"]);
    let gc = lan.cli_ok(&["gc"], "");
    assert!(
        gc.contains(&format!("set up host link {link} of network {NET} again")),
        "{gc}"
    );
    assert_eq!(lan.host.addresses(&link), addresses, "gc");
    assert_eq!(lan.cli(&["verify"], "").code, 0);
    ping(&b, "fd00:77::3");
    assert!(lan.host.ping("fd00:77::2"));
}

/// `gc` goes on when one network's host link cannot be made (a link of its name that is not
/// ours): it says so in a line, repairs the other networks and finishes its report, then
/// fails (exit 1): what it could not repair is not "done".
#[privileged]
fn gc_goes_on_past_a_host_link_it_cannot_make() {
    let lan = lan_with_host_addresses();
    lan.create_network("a-blocked", &["-o", "host_access=192.168.77.3"]);
    lan.cli_ok(
        &on_lan0("b-fine", "192.168.77.0/24", &["host_access=192.168.77.9"]),
        "",
    );
    let (blocked, fine) = (host_link(&lan, "a-blocked"), host_link(&lan, "b-fine"));
    lan.host.ip(&["link", "del", &blocked]);
    lan.host.ip(&["link", "del", &fine]);
    // Someone else's link takes the name.
    lan.host.ip(&[
        "link", "add", &blocked, "link", "lan0", "type", "macvlan", "mode", "bridge",
    ]);
    let gc = lan.cli(&["gc"], "");
    assert_eq!(gc.code, 1, "{}", gc.stderr);
    assert!(
        gc.stderr
            .contains("gc could not repair the host access of 1 networks"),
        "{}",
        gc.stderr
    );
    assert!(gc.stdout.contains("network a-blocked"), "{}", gc.stdout);
    assert!(
        gc.stdout
            .contains(&format!("made host link {fine} of network b-fine again")),
        "{}",
        gc.stdout
    );
    assert!(lan.host.link(&fine).is_some());
    let foreign = lan.host.link(&blocked).unwrap();
    assert!(foreign.get("ifalias").is_none(), "{foreign}");
}

/// A host link whose addresses were flushed (by hand, or by a network manager) stays up but
/// cannot answer for the host: `verify` says which address it lacks, and `gc` gives it back.
#[privileged]
fn gc_gives_a_flushed_host_link_its_addresses_again() {
    let lan = lan_with_host_addresses();
    create_dual_stack(&lan, NET, &["-o", ACCESS]);
    let link = host_link(&lan, NET);
    let a = runc(&lan, NET);
    lan.host
        .ip(&["addr", "flush", "dev", &link, "scope", "global"]);
    let verify = lan.cli(&["verify"], "");
    assert!(
        verify.stdout.contains(&format!(
            "host link {link} lacks the host access address 192.168.77.3"
        )),
        "{}",
        verify.stdout
    );
    let gc = lan.cli_ok(&["gc"], "");
    assert!(
        gc.contains(&format!(
            "gave host link {link} of network {NET} its address 192.168.77.3, fd00:77::3 again"
        )),
        "{gc}"
    );
    assert_eq!(
        lan.host.addresses(&link),
        ["192.168.77.3/32", "fd00:77::3/128"]
    );
    assert_eq!(lan.cli(&["verify"], "").code, 0);
    ping(&a, "192.168.77.3");
    assert!(lan.host.ping("192.168.77.2"));
}
