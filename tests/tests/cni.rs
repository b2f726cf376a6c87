//! Privileged tier: `oci-macvlan` as a CNI plugin, driven as libcni drives a plugin
//! (tests/src/cni.rs): ADD, CHECK and DEL round trips in every version that has them, DEL
//! repeated and after the namespace is gone, CHECK naming what someone changed, `IP=`, hostile
//! environments and configs, and a hook-attached container beside a CNI-attached one.

#![allow(clippy::unwrap_used)]

use oci_macvlan_tests::{
    Lan, TestNetns,
    cni::{CniDriver, Hooked, Target, leases, target},
    privileged,
};
use serde_json::{Value, json};

const NET: &str = "lan77";

/// A hostile invocation: its name, the environment it overrides, stdin, the CNI code it gets
/// and what its message names.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, String, u64, &'a str);

/// ADD, CHECK, DEL in each version that has CHECK: the result is in the config's shape and is
/// what the kernel shows (`ip -j` in the namespace), the lease is in `inspect`, CHECK passes,
/// DEL takes the link and the lease back, a second DEL succeeds, nothing is left, the journal
/// has a line for each. In 0.3.x, CHECK is refused with code 1 and the rest works.
#[privileged]
fn add_check_del_round_trip_in_every_version() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    for version in ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] {
        let ns = TestNetns::new("omt-cni-");
        let path = ns.path();
        let id = format!("cni-{}", version.replace('.', "-"));
        let t = target(&id, &path);
        let mut cni = CniDriver::new(&lan, NET, version);
        let result = cni.add(t, "").unwrap();
        let link = ns.link("eth0").expect("ADD made eth0");
        assert_eq!(link["linkinfo"]["info_kind"], "macvlan", "{version}");
        assert_eq!(result["interfaces"][1]["name"], "eth0");
        assert_eq!(result["interfaces"][1]["sandbox"], json!(path));
        assert_eq!(result["interfaces"][1]["mac"], link["address"]);
        assert_eq!(result["interfaces"][0]["name"], Lan::PARENT);
        let ip = &result["ips"][0];
        assert_eq!(ip["interface"], 1, "{result}");
        assert_eq!(ip["gateway"], Lan::GATEWAY, "{result}");
        let address = ip["address"].as_str().unwrap();
        assert_eq!(ns.addresses("eth0"), [address], "{version}");
        assert_eq!(
            ip.get("version").is_some(),
            version.starts_with("0."),
            "{version}: {result}"
        );
        assert_eq!(result["routes"][0]["gw"], Lan::GATEWAY, "{result}");
        assert!(
            ns.ping(Lan::GATEWAY),
            "{version}: the router does not answer"
        );
        let leased = address.split('/').next().unwrap();
        assert_eq!(
            leases(&lan, NET),
            [(id.clone(), format!("{leased}/24"))],
            "{version}"
        );
        if version.starts_with("0.3") {
            let err = cni.check(t).unwrap_err();
            assert_eq!(err["code"], 1, "{err}");
            assert_eq!(err["cniVersion"], version, "{err}");
        } else {
            cni.check(t).unwrap();
        }
        cni.del(t).unwrap();
        assert!(ns.link("eth0").is_none(), "{version}: DEL left eth0");
        cni.del(t).unwrap();
        lan.assert_no_residue(&[NET], version);
    }
    // The journal has a line per ADD and DEL, as for a hook.
    let journal = lan.journal();
    for (stage, action) in [("cni:ADD", "attach"), ("cni:DEL", "detach")] {
        let lines: Vec<&Value> = journal.iter().filter(|l| l["stage"] == stage).collect();
        assert_eq!(
            lines.len(),
            if stage == "cni:ADD" { 5 } else { 10 },
            "{journal:?}"
        );
        assert!(
            lines
                .iter()
                .all(|l| l["outcome"] == "ok" && l["action"] == action)
        );
        assert!(
            lines.iter().any(|l| l["container"] == "cni-1-1-0"),
            "{lines:?}"
        );
    }
    let info = CniDriver::new(&lan, NET, "1.0.0").version_info();
    assert_eq!(
        info["supportedVersions"],
        json!(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
    );
}

/// DEL after the runtime deleted the namespace (CNI_NETNS naming a path that is gone, then
/// unset): success, the lease released, nothing left, and again.
#[privileged]
fn del_after_the_namespace_is_gone_releases_everything() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    for unset in [false, true] {
        let ns = TestNetns::new("omt-cni-");
        let path = ns.path();
        let mut cni = CniDriver::new(&lan, NET, "1.1.0");
        cni.add(target("gone", &path), "").unwrap();
        assert_eq!(leases(&lan, NET).len(), 1);
        drop(ns);
        let t = Target {
            id: "gone",
            netns: (!unset).then_some(path.as_path()),
            ifname: "eth0",
        };
        cni.del(t).unwrap();
        cni.del(t).unwrap();
        lan.assert_no_residue(&[NET], &format!("CNI_NETNS unset: {unset}"));
    }
}

/// CHECK after someone changed the link's MAC, then after someone deleted the link: fails
/// (this plugin's code 102) naming what differs; DEL then succeeds and leaves nothing.
#[privileged]
fn check_names_what_someone_changed() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    let ns = TestNetns::new("omt-cni-");
    let path = ns.path();
    let t = target("changed", &path);
    let mut cni = CniDriver::new(&lan, NET, "1.0.0");
    cni.add(t, "").unwrap();
    cni.check(t).unwrap();
    ns.ip(&["link", "set", "eth0", "address", "02:00:00:00:00:99"]);
    let err = cni.check(t).unwrap_err();
    assert_eq!(err["code"], 102, "{err}");
    let msg = err["msg"].as_str().unwrap();
    assert!(msg.contains("MAC is 02:00:00:00:00:99"), "{msg}");
    ns.ip(&["link", "del", "eth0"]);
    let err = cni.check(t).unwrap_err();
    assert_eq!(err["code"], 102, "{err}");
    assert!(
        err["msg"].as_str().unwrap().contains("eth0 is missing"),
        "{err}"
    );
    cni.del(t).unwrap();
    lan.assert_no_residue(&[NET], "after CHECK failed");
}

/// `IP=` in CNI_ARGS (as podman and Kubernetes runtimes pass it, with `IgnoreUnknown` and pod
/// names) and `runtimeConfig.ips` give those addresses; the two disagreeing is refused (7).
#[privileged]
fn static_addresses_from_cni_args_and_runtime_config() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    let ns = TestNetns::new("omt-cni-");
    let path = ns.path();
    let mut cni = CniDriver::new(&lan, NET, "1.0.0");
    let t = target("static", &path);
    let result = cni
        .add(
            t,
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;IP=192.168.77.50",
        )
        .unwrap();
    assert_eq!(result["ips"][0]["address"], "192.168.77.50/24", "{result}");
    assert_eq!(ns.addresses("eth0"), ["192.168.77.50/24"]);
    cni.del(t).unwrap();

    let mut config = cni.config();
    config["runtimeConfig"] = json!({"ips": ["192.168.77.51/24"], "mac": "02:42:00:00:00:51"});
    let result = cni.exec("ADD", t, "", &config).unwrap();
    assert_eq!(result["ips"][0]["address"], "192.168.77.51/24", "{result}");
    assert_eq!(ns.link("eth0").unwrap()["address"], "02:42:00:00:00:51");
    cni.exec("DEL", t, "", &config).unwrap();

    let err = cni.exec("ADD", t, "IP=192.168.77.52", &config).unwrap_err();
    assert_eq!(err["code"], 7, "{err}");
    lan.assert_no_residue(&[NET], "static addresses");
}

/// Hostile or broken input gets the spec's code and one message naming what is wrong, in the
/// config's version where it could be read, and leaves nothing: no link in the namespace, no
/// record, no lease. An interface name the namespace has already is refused and the link the
/// namespace had is untouched.
#[privileged]
fn hostile_input_gets_the_specs_code_and_leaves_nothing() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    let ns = TestNetns::new("omt-cni-");
    let path = ns.path().display().to_string();
    let cni = CniDriver::new(&lan, NET, "0.4.0");
    let config = cni.config().to_string();
    let with = |key: &str, value: Value| {
        let mut c = cni.config();
        c[key] = value;
        c.to_string()
    };
    let huge = format!("{{\"x\":\"{}\"}}", "a".repeat(2 << 20));
    let long_id = "a".repeat(2000);
    let cases: Vec<Case<'_>> = vec![
        (
            "bad ifname",
            vec![("CNI_IFNAME", "eth%d")],
            config.clone(),
            4,
            "CNI_IFNAME",
        ),
        (
            "long ifname",
            vec![("CNI_IFNAME", "a-very-long-ifname")],
            config.clone(),
            4,
            "CNI_IFNAME",
        ),
        (
            "bad id",
            vec![("CNI_CONTAINERID", "../../etc")],
            config.clone(),
            4,
            "CNI_CONTAINERID",
        ),
        (
            "long id",
            vec![("CNI_CONTAINERID", &long_id)],
            config.clone(),
            4,
            "CNI_CONTAINERID",
        ),
        (
            "no netns",
            vec![("CNI_NETNS", "")],
            config.clone(),
            4,
            "CNI_NETNS",
        ),
        (
            "relative netns",
            vec![("CNI_NETNS", "run/netns/x")],
            config.clone(),
            4,
            "CNI_NETNS",
        ),
        (
            "bad command",
            vec![("CNI_COMMAND", "PWN")],
            config.clone(),
            4,
            "CNI_COMMAND",
        ),
        (
            "bad args",
            vec![("CNI_ARGS", "IP=1.2.3.4;IP=1.2.3.5")],
            config.clone(),
            4,
            "CNI_ARGS",
        ),
        ("huge stdin", vec![], huge, 7, "larger than"),
        ("not JSON", vec![], "{\"cniVersion\":".into(), 6, "decode"),
        (
            "unknown version",
            vec![],
            with("cniVersion", json!("2.0.0")),
            1,
            "2.0.0",
        ),
        (
            "no network",
            vec![],
            with("network", Value::Null),
            7,
            "network",
        ),
        (
            "unknown network",
            vec![],
            with("network", json!("nosuch")),
            7,
            "nosuch",
        ),
        (
            "other type",
            vec![],
            with("type", json!("macvlan")),
            7,
            "type",
        ),
        (
            "relative stateDir",
            vec![],
            with("stateDir", json!("tmp")),
            7,
            "stateDir",
        ),
        (
            "address outside",
            vec![("CNI_ARGS", "IP=10.9.9.9")],
            config.clone(),
            7,
            "10.9.9.9",
        ),
    ];
    for (case, overrides, stdin, code, needle) in cases {
        let mut env: Vec<(&str, &str)> = vec![
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "hostile"),
            ("CNI_NETNS", &path),
            ("CNI_IFNAME", "eth0"),
        ];
        env.retain(|(k, _)| !overrides.iter().any(|(o, _)| o == k));
        env.extend(overrides.iter().filter(|(_, v)| !v.is_empty()).copied());
        let out = cni.exec_raw(&env, stdin.as_bytes());
        let err = oci_macvlan_tests::cni::parse_outcome(&out).unwrap_err();
        assert_eq!(err["code"], code, "{case}: {err}");
        let msg = err["msg"].as_str().unwrap();
        let text = format!("{msg}: {}", err["details"].as_str().unwrap_or_default());
        assert!(text.contains(needle), "{case}: {err}");
        assert!(msg.len() < 400, "{case}: {msg}");
        if !matches!(case, "unknown version" | "huge stdin" | "not JSON") {
            assert_eq!(err["cniVersion"], "0.4.0", "{case}: {err}");
        }
        assert_eq!(
            ns.links().len(),
            1,
            "{case}: a link was left in the namespace"
        );
        lan.assert_no_residue(&[NET], case);
    }
    // What failed in the core (not the protocol's own refusals) has the journal's error line.
    let errors: Vec<Value> = lan
        .journal()
        .into_iter()
        .filter(|l| l["stage"] == "cni:ADD" && l["outcome"] == "error")
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0]["error"].as_str().unwrap().contains("nosuch"),
        "{errors:?}"
    );
    // An interface of that name is there already: refused, and it is left as it was.
    ns.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p",
    ]);
    let before = ns.link("eth0").unwrap()["address"].clone();
    let mut cni = CniDriver::new(&lan, NET, "1.1.0");
    let ns_path = ns.path();
    let t = target("exists", &ns_path);
    let err = cni.add(t, "").unwrap_err();
    assert!(err["msg"].as_str().unwrap().contains("eth0"), "{err}");
    let link = ns.link("eth0").unwrap();
    assert_eq!(link["linkinfo"]["info_kind"], "veth");
    assert_eq!(link["address"], before);
    cni.del(t).unwrap();
    assert!(
        ns.link("eth0").is_some(),
        "DEL deleted a link it did not make"
    );
    lan.assert_no_residue(&[NET], "ifname exists");
}

/// A container attached by the hook and one attached through CNI on the same network: one
/// address space (different addresses), `verify` clean with both, and each front door takes
/// back only its own.
#[privileged]
fn hook_and_cni_containers_share_one_address_space() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    let hooked = Hooked::attach(&lan, NET);
    let ns = TestNetns::new("omt-cni-");
    let path = ns.path();
    let t = target("cnied", &path);
    let mut cni = CniDriver::new(&lan, NET, "1.1.0");
    cni.add(t, "").unwrap();
    let held = leases(&lan, NET);
    assert_eq!(held.len(), 2, "{held:?}");
    assert_ne!(held[0].1, held[1].1, "one address twice: {held:?}");
    let verify = lan.cli(&["verify"], "");
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
    cni.check(t).unwrap();
    cni.del(t).unwrap();
    assert_eq!(leases(&lan, NET).len(), 1, "DEL took the hook's lease");
    hooked.stop(&lan);
    lan.assert_no_residue(&[NET], "hook and CNI");
}

/// One pod on two networks (Multus's `eth0` and `net1`, one CNI_CONTAINERID): each DEL takes
/// back its own interface and lease only; the other's CHECK still passes.
#[privileged]
fn del_releases_only_its_own_interface() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    lan.cli_ok(
        &[
            "network",
            "create",
            "--subnet",
            "192.168.78.0/24",
            "-o",
            "parent=lan0",
            "lan78",
        ],
        "",
    );
    let ns = TestNetns::new("omt-cni-");
    let path = ns.path();
    let eth0 = target("pod", &path);
    let net1 = Target {
        ifname: "net1",
        ..eth0
    };
    let mut first = CniDriver::new(&lan, NET, "1.1.0");
    let mut second = CniDriver::new(&lan, "lan78", "1.1.0");
    first.add(eth0, "").unwrap();
    second.add(net1, "").unwrap();
    assert_eq!(ns.addresses("net1").len(), 1);
    // The DEL of eth0's network for net1 (a wrong pairing) touches nothing.
    first.exec("DEL", net1, "", &first.config()).unwrap();
    assert!(ns.link("net1").is_some());
    second.del(net1).unwrap();
    assert!(ns.link("net1").is_none(), "DEL left net1");
    assert_eq!(lan.leased("lan78"), 0);
    assert_eq!(leases(&lan, NET).len(), 1, "DEL of net1 took eth0's lease");
    first.check(eth0).unwrap();
    first.del(eth0).unwrap();
    lan.assert_no_residue(&[NET, "lan78"], "two networks");
}

/// ADD after other plugins of a chain: their `prevResult` passes through, ours added after
/// it (our address's `interface` index moved past theirs); a `prevResult` of the wrong shape
/// is refused (code 7) before anything is made.
#[privileged]
fn add_passes_a_chained_prev_result_through() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    let ns = TestNetns::new("omt-cni-");
    let path = ns.path();
    let cni = CniDriver::new(&lan, NET, "1.0.0");
    let mut config = cni.config();
    config["prevResult"] = json!({
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "lo", "sandbox": path}],
        "ips": [{"address": "127.0.0.1/8", "interface": 0}],
        "dns": {"nameservers": ["192.0.2.53"]},
    });
    let mut bad = config.clone();
    bad["prevResult"]["ips"] = json!("not a list");
    let refused = cni
        .exec("ADD", target("chain", &path), "", &bad)
        .unwrap_err();
    assert_eq!(refused["code"], 7, "{refused}");
    assert!(ns.link("eth0").is_none(), "a refused ADD made eth0");
    assert!(leases(&lan, NET).is_empty());

    let result = cni
        .exec("ADD", target("chain", &path), "", &config)
        .unwrap();
    let names: Vec<&str> = result["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["lo", Lan::PARENT, "eth0"], "{result}");
    assert_eq!(result["ips"][0]["address"], "127.0.0.1/8");
    assert_eq!(result["ips"][1]["interface"], 2, "{result}");
    assert_eq!(result["dns"]["nameservers"][0], "192.0.2.53");
    cni.exec("DEL", target("chain", &path), "", &cni.config())
        .unwrap();
    lan.assert_no_residue(&[NET], "chained ADD, DEL");
}
