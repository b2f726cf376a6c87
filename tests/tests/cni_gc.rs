//! Privileged tier: the CNI plugin's 1.1.0 commands, driven as libcni drives them
//! (tests/src/cni.rs): STATUS, GC leaving exactly the valid attachments and never a
//! hook-attached container, and DEL never taking back a hook-attached container either.

#![allow(clippy::unwrap_used)]

use oci_macvlan_tests::{
    Lan, TestNetns,
    cni::{CniDriver, Hooked, leases, target},
    privileged,
};
use serde_json::{Value, json};

const NET: &str = "lan77";

/// STATUS (1.1.0): success while the network's definition can be read, code 50 when it
/// cannot; a 1.0.0 config has no STATUS and no GC (code 1); GC without its list of valid
/// attachments is refused (7), never taken for "none is valid".
#[privileged]
fn status_says_whether_an_add_could_be_served() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    let ns = TestNetns::new("omt-cni-");
    let path = ns.path();
    let t = target("status", &path);
    let cni = CniDriver::new(&lan, NET, "1.1.0");
    assert_eq!(cni.status(t), Ok(Value::Null));
    let mut config = cni.config();
    config["network"] = json!("nosuch");
    let err = cni.exec("STATUS", t, "", &config).unwrap_err();
    assert_eq!(err["code"], 50, "{err}");
    let old = CniDriver::new(&lan, NET, "1.0.0");
    let err = old.exec("STATUS", t, "", &old.config()).unwrap_err();
    assert_eq!(err["code"], 1, "{err}");
    let err = old.exec("GC", t, "", &old.config()).unwrap_err();
    assert_eq!(err["code"], 1, "{err}");
    let err = cni.exec("GC", t, "", &cni.config()).unwrap_err();
    assert_eq!(err["code"], 7, "{err}");
    assert!(
        err["msg"].as_str().unwrap().contains("valid-attachments"),
        "{err}"
    );
    lan.assert_no_residue(&[NET], "status");
}

/// GC (1.1.0) with a list of valid attachments: the CNI attachments of the network that are
/// not listed go (their links and leases), the listed one stays (CHECK passes), a hook-attached
/// container on the same network is never touched, `verify` is clean; GC again changes
/// nothing. The legacy key `cni.dev/attachments` is read the same way.
#[privileged]
fn gc_leaves_exactly_the_valid_attachments_and_never_a_hooks() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    let hooked = Hooked::attach(&lan, NET);
    let namespaces: Vec<TestNetns> = (0..3).map(|_| TestNetns::new("omt-cni-")).collect();
    let paths: Vec<_> = namespaces.iter().map(TestNetns::path).collect();
    let ids = ["keep", "stale1", "stale2"];
    let mut cni = CniDriver::new(&lan, NET, "1.1.0");
    for (id, path) in ids.iter().zip(&paths) {
        cni.add(target(id, path), "").unwrap();
    }
    assert_eq!(leases(&lan, NET).len(), 4);
    for key in ["cni.dev/valid-attachments", "cni.dev/attachments"] {
        let mut config = cni.config();
        config[key] = json!([{"containerID": "keep", "ifname": "eth0"}]);
        let env = [("CNI_COMMAND", "GC"), ("CNI_PATH", "/usr/lib/cni")];
        let out = cni.exec_raw(&env, config.to_string().as_bytes());
        assert_eq!(
            oci_macvlan_tests::cni::parse_outcome(&out),
            Ok(Value::Null),
            "{key}"
        );
        let held: Vec<String> = leases(&lan, NET).into_iter().map(|(id, _)| id).collect();
        assert_eq!(held, ["hooked", "keep"], "{key}");
        assert!(
            namespaces[1].link("eth0").is_none(),
            "{key}: GC left stale1's link"
        );
        assert!(
            namespaces[2].link("eth0").is_none(),
            "{key}: GC left stale2's link"
        );
        let verify = lan.cli(&["verify"], "");
        assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
    }
    cni.check(target("keep", &paths[0])).unwrap();
    cni.del(target("keep", &paths[0])).unwrap();
    hooked.stop(&lan);
    lan.assert_no_residue(&[NET], "gc");
}

/// A DEL naming a hook-attached container (same id, network and interface) succeeds, as a DEL
/// of something absent does, and takes nothing of it: its link and lease stay, for its own
/// poststop.
#[privileged]
fn del_never_takes_back_a_hook_attached_container() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    let hooked = Hooked::attach(&lan, NET);
    let netns = std::path::PathBuf::from(format!("/proc/{}/ns/net", hooked.pid()));
    let mut cni = CniDriver::new(&lan, NET, "1.1.0");
    cni.del(target("hooked", &netns)).unwrap();
    assert_eq!(leases(&lan, NET).len(), 1, "DEL took the hook's lease");
    let links = oci_macvlan_tests::run_ok(
        "nsenter",
        &[
            "-t",
            &hooked.pid().to_string(),
            "-n",
            "ip",
            "-j",
            "link",
            "show",
            "eth0",
        ],
    );
    assert!(
        links.contains("\"eth0\""),
        "DEL deleted the hook's link: {links}"
    );
    hooked.stop(&lan);
    lan.assert_no_residue(&[NET], "a DEL of a hook container");
}
