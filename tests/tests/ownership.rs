//! Privileged tier: no container can take, free or delete what another holds. Each case is one
//! way an adversary who writes annotations and bundles (as on a shared podman host) tried to get
//! a live container's address or link: the same id from two runtime roots, a re-run with another
//! static address, a shared namespace with the same MAC, a namespace of another passthru
//! container, `network rm` racing an attach, a second container on a passthru parent.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use oci_macvlan_tests::{
    Bundle, Container, ContainerProcess, Lan, Runtime, TestNetns, binary, failpoints_binary,
    privileged,
};

const NET: &str = "lan77";
const ANN: &str = "oci-macvlan.networks";

/// The leases on `NET` as `(ip, container)`, from `inspect`.
fn leases(lan: &Lan) -> Vec<(String, String)> {
    lan.inspected(NET, "Name")
}

fn record_bytes(lan: &Lan, id: &str) -> Vec<u8> {
    std::fs::read(lan.state_dir().join(format!("endpoints/{id}.json"))).unwrap()
}

/// The same id from two runtime roots (simulated: two processes, as `runc --root A run web` and
/// `runc --root B run web` give the hook): the second attach is refused, exit 5, one line naming
/// the id, the address and the holder; the second one's poststop touches nothing either; a third
/// container does not get the holder's address; the holder's own poststop, once it has exited,
/// releases it. The same with a static MAC equal to the holder's.
#[privileged]
fn the_same_id_from_another_root_is_refused_and_touches_nothing_of_the_holder() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    let first = ContainerProcess::start();
    let mac = ("oci-macvlan.mac", "02:42:c0:a8:4d:aa");
    lan.cli_ok(
        &["hook"],
        &lan.pid_bundle("web", &[(ANN, NET), mac], first.pid(), "creating"),
    );
    let holder_view = lan.cli_ok(&["network", "inspect", NET], "");
    let record = record_bytes(&lan, "web");
    let first_ns = format!("/proc/{}/ns/net", first.pid());
    let eth0 = || {
        oci_macvlan_tests::run_ok(
            "nsenter",
            &[
                &format!("--net={first_ns}"),
                "ip",
                "-o",
                "-4",
                "addr",
                "show",
                "eth0",
            ],
        )
    };
    assert!(eth0().contains("192.168.77.2/24"), "{}", eth0());

    for (case, annotations) in [
        ("default MAC", vec![(ANN, NET)]),
        ("the holder's static MAC", vec![(ANN, NET), mac]),
    ] {
        let second = ContainerProcess::start();
        let out = lan.cli(
            &["hook"],
            &lan.pid_bundle("web", &annotations, second.pid(), "creating"),
        );
        assert_eq!(out.code, 5, "{case}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{case}: {}", out.stderr);
        let line = out.stderr.trim();
        assert!(
            line.contains("container id web is in use by another live container")
                && line.contains(&format!("pid {} still runs", first.pid()))
                && line.contains("192.168.77.2 on lan77"),
            "{case}: {line}"
        );
        // The runtime then runs the second one's poststop (no pid, as podman passes it).
        let out = lan.cli(
            &["hook"],
            &lan.pid_bundle("web", &[(ANN, NET)], 0, "stopped"),
        );
        assert_eq!(out.code, 5, "{case}: poststop: {}", out.stderr);
        assert_eq!(
            lan.cli_ok(&["network", "inspect", NET], ""),
            holder_view,
            "{case}"
        );
        assert_eq!(record_bytes(&lan, "web"), record, "{case}");
        assert!(eth0().contains("192.168.77.2/24"), "{case}: {}", eth0());
        let link = oci_macvlan_tests::run_ok(
            "nsenter",
            &[&format!("--net={first_ns}"), "ip", "-o", "link", "show"],
        );
        assert!(link.contains("02:42:c0:a8:4d:aa"), "{case}: {link}");
    }

    let third = TestNetns::new("omt-ctr-");
    lan.cli_ok(
        &["hook"],
        &lan.fake_bundle("other", &[(ANN, NET)], &third.path(), "creating"),
    );
    assert_eq!(third.addresses("eth0"), ["192.168.77.3/24"]);
    lan.cli_ok(
        &["hook"],
        &lan.fake_bundle("other", &[(ANN, NET)], &third.path(), "stopped"),
    );

    first.kill();
    lan.cli_ok(
        &["hook"],
        &lan.pid_bundle("web", &[(ANN, NET)], 0, "stopped"),
    );
    lan.assert_no_residue(&[NET], "after the holder's poststop");
}

/// The same with real runtimes: `runc` and `crun` keep their state under different roots, so
/// both accept the id `web`. crun's container is refused; runc's keeps its address, link and
/// lease through crun's failure and whatever crun runs after it.
#[privileged]
fn runc_and_crun_containers_of_one_id_never_share_an_address() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    let bundle = Bundle::new(&lan, "web-a", &[(ANN, NET)]);
    let web = Container::start(&lan, Runtime::Runc, "web", &bundle).unwrap();
    let before = web.exec(&["ip", "-o", "-4", "addr", "show", "eth0"]).1;
    assert!(before.contains("192.168.77.2/24"), "{before}");

    let other_root = Bundle::new(&lan, "web-b", &[(ANN, NET)]);
    let refused = Container::start(&lan, Runtime::Crun, "web", &other_root);
    let err = refused.expect_err("crun's web must be refused");
    assert!(err.contains("exit code: 5"), "{err}");
    let refusal = lan
        .journal()
        .into_iter()
        .find(|line| line["outcome"] == "error")
        .expect("a journal line for the refused attach");
    assert_eq!(refusal["exit"], 5, "{refusal}");
    assert!(
        refusal["error"]
            .as_str()
            .unwrap()
            .contains("container id web is in use by another live container"),
        "{refusal}"
    );
    assert_eq!(
        leases(&lan),
        [("192.168.77.2/24".to_owned(), "web".to_owned())]
    );
    let after = web.exec(&["ip", "-o", "-4", "addr", "show", "eth0"]).1;
    assert_eq!(after, before);
    let verify = lan.cli(&["verify"], "");
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);

    web.stop().unwrap();
    lan.assert_no_residue(&[NET], "after runc's web stopped");
}

/// A re-run createRuntime asking for another static address is refused, and the lease, link and
/// record it found stay exactly as they were.
#[privileged]
fn a_rerun_with_another_static_ip_is_refused_and_changes_nothing() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    let ns = TestNetns::new("omt-ctr-");
    let first = lan.fake_bundle(
        "c1",
        &[(ANN, NET), ("oci-macvlan.ip", "192.168.77.50")],
        &ns.path(),
        "created",
    );
    lan.cli_ok(&["hook", "createRuntime"], &first);
    let record = record_bytes(&lan, "c1");
    let link = ns.link("eth0").unwrap();
    let second = lan.fake_bundle(
        "c1",
        &[(ANN, NET), ("oci-macvlan.ip", "192.168.77.51")],
        &ns.path(),
        "created",
    );
    let out = lan.cli(&["hook", "createRuntime"], &second);
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert!(out.stderr.contains("192.168.77.50"), "{}", out.stderr);
    assert_eq!(ns.addresses("eth0"), ["192.168.77.50/24"]);
    assert_eq!(ns.link("eth0").unwrap()["ifindex"], link["ifindex"]);
    assert_eq!(
        leases(&lan),
        [("192.168.77.50/24".to_owned(), "c1".to_owned())]
    );
    assert_eq!(record_bytes(&lan, "c1"), record);
    let verify = lan.cli(&["verify"], "");
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
    lan.cli_ok(&["hook", "poststop"], &first);
    lan.assert_no_residue(&[NET], "after poststop");
}

/// One network, one link: a re-run (or a `network connect` racing another, both past its own
/// check) asking for a network the container's record already has under another interface name
/// is refused before anything is made (exit 5, naming the interface it has), never a second link
/// and lease on that network.
#[privileged]
fn a_rerun_asking_for_a_network_under_another_name_is_refused_and_changes_nothing() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    let ns = TestNetns::new("omt-ctr-");
    let first = lan.fake_bundle("c1", &[(ANN, NET)], &ns.path(), "created");
    lan.cli_ok(&["hook", "createRuntime"], &first);
    let record = record_bytes(&lan, "c1");
    let held = leases(&lan);
    let second = lan.fake_bundle(
        "c1",
        &[(ANN, NET), (&format!("oci-macvlan.{NET}.ifname"), "eth7")],
        &ns.path(),
        "created",
    );
    let out = lan.cli(&["hook", "createRuntime"], &second);
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert!(out.stderr.contains("as eth0"), "{}", out.stderr);
    assert!(ns.link("eth7").is_none(), "a second link on the network");
    assert_eq!(leases(&lan), held);
    assert_eq!(record_bytes(&lan, "c1"), record);
    lan.cli_ok(&["hook", "poststop"], &first);
    lan.assert_no_residue(&[NET], "after poststop");
}

/// Containers sharing one namespace (a pod): the second asking for the first's name and MAC is
/// refused and the first's link stays; with a name of its own it gets its own link; one's
/// poststop never deletes the other's link, even when the other was killed right after writing
/// a record that names the same interface and MAC.
#[privileged]
fn containers_sharing_a_namespace_each_keep_their_own_link() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    let pod = TestNetns::new("omt-pod-");
    let mac = ("oci-macvlan.mac", "02:42:c0:a8:4d:0a");
    let bundle = |id: &str, extra: &[(&str, &str)], status: &str| {
        let mut ann = vec![(ANN, NET), mac];
        ann.extend_from_slice(extra);
        lan.fake_bundle(id, &ann, &pod.path(), status)
    };
    lan.cli_ok(&["hook"], &bundle("a", &[], "creating"));
    let eth0 = pod.link("eth0").unwrap();

    let out = lan.cli(&["hook"], &bundle("b", &[], "creating"));
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert!(out.stderr.contains("interface eth0 already exists"));
    lan.cli_ok(&["hook"], &bundle("b", &[], "stopped"));
    assert_eq!(pod.link("eth0").unwrap()["ifindex"], eth0["ifindex"]);

    // Killed after its record names eth0 with a's MAC: its poststop must leave a's eth0 alone.
    let out = lan.cli_with(
        &failpoints_binary(),
        &[("OCI_MACVLAN_FAILPOINTS", "attach:recorded=kill")],
        &["hook"],
        bundle("k", &[], "creating").as_bytes(),
    );
    assert_eq!(out.code, -1, "not killed: {}", out.stderr);
    lan.cli_ok(&["hook"], &bundle("k", &[], "stopped"));
    assert_eq!(pod.link("eth0").unwrap()["ifindex"], eth0["ifindex"]);

    let own = [
        ("oci-macvlan.lan77.ifname", "eth1"),
        ("oci-macvlan.lan77.mac", "02:42:c0:a8:4d:0b"),
    ];
    let c = |status| lan.fake_bundle("c", &[(ANN, NET), own[0], own[1]], &pod.path(), status);
    lan.cli_ok(&["hook"], &c("creating"));
    assert!(pod.link("eth1").is_some());
    lan.cli_ok(&["hook"], &c("stopped"));
    assert!(pod.link("eth1").is_none());
    assert_eq!(pod.link("eth0").unwrap()["ifindex"], eth0["ifindex"]);
    assert_eq!(pod.addresses("eth0"), ["192.168.77.2/24"]);

    // Another member's attach in progress (killed right after its record named eth0, with no
    // link of its own) does not keep a's poststop from deleting a's link: a's record holds the
    // link's index, the other only its name.
    let out = lan.cli_with(
        &failpoints_binary(),
        &[("OCI_MACVLAN_FAILPOINTS", "attach:recorded=kill")],
        &["hook"],
        bundle("k2", &[], "creating").as_bytes(),
    );
    assert_eq!(out.code, -1, "not killed: {}", out.stderr);
    lan.cli_ok(&["hook"], &bundle("a", &[], "stopped"));
    assert!(pod.link("eth0").is_none());
    assert!(!pod.ip(&["-o", "addr", "show"]).contains("192.168.77.2"));
    lan.cli_ok(&["hook"], &bundle("k2", &[], "stopped"));
    lan.assert_no_residue(&[NET], "after the pod's poststops");
}

/// A container that changes its own link (another MAC, another name) in a namespace that
/// outlives it: poststop no longer knows the link as its own and leaves it, but never with the
/// address it releases, so the next container's address is nobody else's.
#[privileged]
fn a_link_the_container_changed_keeps_no_released_address() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    for (case, change) in [
        (
            "new MAC",
            &["link", "set", "eth0", "address", "02:11:22:33:44:55"][..],
        ),
        ("renamed", &["link", "set", "eth0", "name", "lanleg"]),
    ] {
        let pod = TestNetns::new("omt-pod-");
        let state = |status| lan.fake_bundle("changer", &[(ANN, NET)], &pod.path(), status);
        lan.cli_ok(&["hook"], &state("creating"));
        assert_eq!(pod.addresses("eth0"), ["192.168.77.2/24"], "{case}");
        if case == "renamed" {
            pod.ip(&["link", "set", "eth0", "down"]);
        }
        pod.ip(change);
        lan.cli_ok(&["hook"], &state("stopped"));
        let left = pod.ip(&["-o", "addr", "show"]);
        assert!(!left.contains("192.168.77.2"), "{case}: {left}");
        assert_eq!(lan.leased(NET), 0, "{case}");
        let next = TestNetns::new("omt-ctr-");
        let other = |status| lan.fake_bundle("next", &[(ANN, NET)], &next.path(), status);
        lan.cli_ok(&["hook"], &other("creating"));
        assert_eq!(next.addresses("eth0"), ["192.168.77.2/24"], "{case}");
        lan.cli_ok(&["hook"], &other("stopped"));
        lan.assert_no_residue(&[NET], case);
    }
}

/// A second parent in the host namespace for a passthru network: a veth whose peer stays there.
fn add_passthru_parent(lan: &Lan) {
    lan.host.ip(&[
        "link", "add", "lan1", "type", "veth", "peer", "name", "lan1peer",
    ]);
    lan.host.ip(&["link", "set", "lan1", "up"]);
    lan.host.ip(&["link", "set", "lan1peer", "up"]);
    lan.cli_ok(
        &[
            "network",
            "create",
            "--subnet",
            "10.99.0.0/24",
            "-o",
            "parent=lan1",
            "-o",
            "macvlan_mode=passthru",
            "pt",
        ],
        "",
    );
}

/// A container pointed at another's namespace on a passthru network (another network, another
/// parent, no MAC at all): it does not adopt that container's eth0, and its poststop leaves it.
/// A second container of its own on the passthru parent is refused naming network, parent and
/// holder (exit 5), where the kernel says only "Invalid argument".
#[privileged]
fn passthru_neither_adopts_another_containers_link_nor_takes_a_second_container() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    add_passthru_parent(&lan);
    let victim = TestNetns::new("omt-ctr-");
    lan.cli_ok(
        &["hook"],
        &lan.fake_bundle("victim", &[(ANN, NET)], &victim.path(), "creating"),
    );
    let eth0 = victim.link("eth0").unwrap();
    let thief = |status| lan.fake_bundle("thief", &[(ANN, "pt")], &victim.path(), status);
    let out = lan.cli(&["hook"], &thief("creating"));
    assert_eq!(out.code, 5, "{}", out.stderr);
    lan.cli_ok(&["hook"], &thief("stopped"));
    assert_eq!(victim.link("eth0").unwrap()["ifindex"], eth0["ifindex"]);
    assert_eq!(victim.addresses("eth0"), ["192.168.77.2/24"]);

    let one = TestNetns::new("omt-ctr-");
    let two = TestNetns::new("omt-ctr-");
    lan.cli_ok(
        &["hook"],
        &lan.fake_bundle("pt1", &[(ANN, "pt")], &one.path(), "creating"),
    );
    let out = lan.cli(
        &["hook"],
        &lan.fake_bundle("pt2", &[(ANN, "pt")], &two.path(), "creating"),
    );
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert_eq!(
        out.stderr.trim(),
        "oci-macvlan: error: attach of container pt2: network pt is in mode passthru and its parent interface lan1 has a \
         container already (container pt1): passthru takes one container per parent"
    );
    assert!(two.link("eth0").is_none());
    for (id, ns) in [("pt1", &one), ("victim", &victim)] {
        let ann = if id == "pt1" { "pt" } else { NET };
        lan.cli_ok(
            &["hook"],
            &lan.fake_bundle(id, &[(ANN, ann)], &ns.path(), "stopped"),
        );
    }
    lan.host.ip(&["link", "del", "lan1"]);
    lan.assert_no_residue(&[NET, "pt"], "after the passthru cases");
}

/// Every id the hook accepts (runc's characters, up to 1024 of them) can be attached, detached
/// and taken back by `gc`: records and locks of long ids are named by their hash.
#[privileged]
fn ids_up_to_the_documented_limit_work_end_to_end() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    for len in [200, 240, 251, 1024] {
        let id = "i".repeat(len);
        let ns = TestNetns::new("omt-ctr-");
        let bundle = lan.tmp().join(format!("long-{len}"));
        std::fs::create_dir_all(&bundle).unwrap();
        let config = serde_json::json!({
            "ociVersion": "1.0.2",
            "annotations": {ANN: NET},
            "linux": {"namespaces": [{"type": "network", "path": ns.path()}]},
        });
        std::fs::write(bundle.join("config.json"), config.to_string()).unwrap();
        let state = |status: &str| {
            serde_json::json!({"ociVersion": "1.0.2", "id": id, "status": status, "bundle": bundle})
                .to_string()
        };
        lan.cli_ok(&["hook"], &state("creating"));
        assert_eq!(ns.addresses("eth0"), ["192.168.77.2/24"], "id of {len}");
        lan.cli_ok(&["hook"], &state("stopped"));
        assert!(ns.link("eth0").is_none(), "id of {len}");
        lan.assert_no_residue(&[NET], &format!("poststop of an id of {len}"));

        // gc: a container whose process is gone.
        let process = ContainerProcess::start();
        let pid_bundle = lan.tmp().join(format!("long-pid-{len}"));
        std::fs::create_dir_all(&pid_bundle).unwrap();
        let config = serde_json::json!({
            "ociVersion": "1.0.2",
            "annotations": {ANN: NET},
            "linux": {"namespaces": [{"type": "network"}]},
        });
        std::fs::write(pid_bundle.join("config.json"), config.to_string()).unwrap();
        let state = serde_json::json!({
            "ociVersion": "1.0.2", "id": id, "status": "creating",
            "bundle": pid_bundle, "pid": process.pid(),
        });
        lan.cli_ok(&["hook"], &state.to_string());
        process.kill();
        let gc = lan.cli_ok(&["gc"], "");
        assert!(gc.contains("released 192.168.77.2"), "id of {len}: {gc}");
        lan.assert_no_residue(&[NET], &format!("gc of an id of {len}"));
    }
    assert!(Path::new(&binary()).exists());
}
