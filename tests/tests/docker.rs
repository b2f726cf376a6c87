//! Privileged tier: Docker's habits — `network ls -q/--filter/--format`, `inspect -f`,
//! `prune`, and `connect`/`disconnect` of a running container through the hook's own core.

#![allow(clippy::unwrap_used)]

use oci_macvlan_tests::{
    Bundle, Container, ContainerProcess, Lan, Runtime, TestNetns, privileged, run_ok,
};
use serde_json::Value;

const ANN: &str = "oci-macvlan.networks";

/// `ip -j addr` in the namespace of process `pid`: the interface names and their IPv4
/// addresses, sorted.
fn addresses_of(pid: u32) -> Vec<(String, String)> {
    let out = run_ok(
        "nsenter",
        &["-t", &pid.to_string(), "-n", "ip", "-j", "-4", "addr"],
    );
    let links: Vec<Value> = serde_json::from_str(&out).unwrap();
    let mut found: Vec<(String, String)> = links
        .iter()
        .flat_map(|l| {
            let name = l["ifname"].as_str().unwrap().to_owned();
            l["addr_info"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |a| (name.clone(), a["local"].as_str().unwrap().to_owned()))
        })
        .filter(|(name, _)| name != "lo")
        .collect();
    found.sort();
    found
}

#[privileged]
fn ls_filters_and_formats_inspect_templates_and_prune_keeps_what_is_used() {
    let lan = Lan::new();
    lan.create_network("lan-a", &[]);
    lan.create_network("lan-b", &["-o", "macvlan_mode=private"]);
    // ipvlan needs a parent of its own: a second veth in the host namespace.
    lan.host.ip(&[
        "link", "add", "lan1", "type", "veth", "peer", "name", "lan1p",
    ]);
    lan.cli_ok(
        &[
            "network",
            "create",
            "-d",
            "ipvlan",
            "--subnet",
            "10.9.0.0/24",
            "-o",
            "parent=lan1",
            "other",
        ],
        "",
    );
    let ids: Vec<String> = lan
        .cli_ok(&["network", "ls", "-q"], "")
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert!(ids.iter().all(|id| id.len() == 12), "{ids:?}");
    let id_a = lan.inspect("lan-a")[0]["Id"].as_str().unwrap().to_owned();

    let names = |args: &[&str]| {
        let mut all = vec!["network", "ls", "--format", "{{.Name}}"];
        all.extend_from_slice(args);
        lan.cli_ok(&all, "")
    };
    assert_eq!(names(&[]), "lan-a\nlan-b\nother\n");
    assert_eq!(names(&["--filter", "name=lan"]), "lan-a\nlan-b\n");
    assert_eq!(names(&["-f", "driver=ipvlan"]), "other\n");
    assert_eq!(
        names(&["-f", "driver=macvlan", "-f", &format!("id={}", &id_a[..6])]),
        "lan-a\n"
    );
    let table = lan.cli_ok(
        &["network", "ls", "--format", "table {{.Name}}\t{{.Mode}}"],
        "",
    );
    assert_eq!(
        table,
        "NAME    MODE\nlan-a   bridge\nlan-b   private\nother   l2/bridge\n"
    );
    let json: Vec<Value> = lan
        .cli_ok(&["network", "ls", "--format", "json"], "")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(json[2]["Driver"], "ipvlan");
    // A key Docker has that is not ours (label is now one of ours: docker_user.rs).
    let bad = lan.cli(&["network", "ls", "--filter", "scope=x"], "");
    assert_eq!(bad.code, 3, "{}", bad.stderr);
    assert!(bad.stderr.contains("scope=x"), "{}", bad.stderr);

    // A container on lan-a: inspect's templates see it, and prune keeps lan-a.
    let container = TestNetns::new("omt-dk-");
    let state = lan.fake_bundle("c1", &[(ANN, "lan-a")], &container.path(), "creating");
    lan.cli_ok(&["hook"], &state);
    let mac = container.link("eth0").unwrap()["address"].clone();
    let line = lan.cli_ok(
        &[
            "network",
            "inspect",
            "-f",
            "{{.Name}} {{range .Containers}}{{.Name}} {{.MacAddress}} {{.IPv4Address}}{{end}} {{json .IPAM.Config}}",
            "lan-a",
        ],
        "",
    );
    assert_eq!(
        line,
        format!(
            "lan-a c1 {} 192.168.77.2/24 [{{\"Gateway\":\"192.168.77.1\",\"Subnet\":\"192.168.77.0/24\"}}]\n",
            mac.as_str().unwrap()
        )
    );
    let bad = lan.cli(&["network", "inspect", "-f", "{{.Name", "lan-a"], "");
    assert_eq!(bad.code, 3, "{}", bad.stderr);

    // Asked, and not confirmed: nothing goes.
    let kept = lan.cli(&["network", "prune"], "n\n");
    assert_eq!(
        (kept.code, kept.stdout.as_str()),
        (0, ""),
        "{}",
        kept.stderr
    );
    assert!(kept.stderr.contains("Are you sure"), "{}", kept.stderr);
    assert_eq!(lan.cli_ok(&["network", "ls", "-q"], "").lines().count(), 3);
    assert_eq!(
        lan.cli_ok(&["network", "prune", "-f"], ""),
        "Deleted Networks:\nlan-b\nother\n"
    );
    assert_eq!(names(&[]), "lan-a\n");
    // Nothing more to prune while c1 holds lan-a; after its poststop, lan-a goes too.
    assert_eq!(lan.cli_ok(&["network", "prune", "-f"], ""), "");
    lan.cli_ok(&["hook", "poststop"], &state);
    assert_eq!(
        lan.cli_ok(&["network", "prune"], "y\n"),
        "Deleted Networks:\nlan-a\n"
    );
    assert_eq!(names(&[]), "");
}

#[privileged]
fn connect_and_disconnect_a_running_container_and_its_poststop_releases_both() {
    let lan = Lan::new();
    lan.create_network("first", &[]);
    lan.cli_ok(
        &[
            "network",
            "create",
            "--subnet",
            "10.8.0.0/24",
            "-o",
            "parent=lan0",
            "second",
        ],
        "",
    );
    let process = ContainerProcess::start();
    let pid = process.pid();
    // Started by the hook on `first`: its record says where it runs.
    let state = lan.pid_bundle("web", &[(ANN, "first")], pid, "creating");
    lan.cli_ok(&["hook"], &state);

    let out = lan.cli_ok(
        &["network", "connect", "--ip", "10.8.0.20", "second", "web"],
        "",
    );
    assert!(out.starts_with("eth1 second "), "{out}");
    assert_eq!(
        addresses_of(pid),
        [
            ("eth0".to_owned(), "192.168.77.2".to_owned()),
            ("eth1".to_owned(), "10.8.0.20".to_owned()),
        ]
    );
    let inspect = lan.inspect("second");
    let endpoint = inspect[0]["Containers"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .clone();
    assert_eq!(
        (&endpoint["Name"], &endpoint["IPv4Address"]),
        (&Value::from("web"), &Value::from("10.8.0.20/24"))
    );
    // Twice is a conflict, and changes nothing.
    let again = lan.cli(&["network", "connect", "second", "web"], "");
    assert_eq!(again.code, 5, "{}", again.stderr);
    assert!(
        again.stderr.contains("already connected to network second"),
        "{}",
        again.stderr
    );
    // A bad flag names itself.
    let bad = lan.cli(
        &["network", "connect", "--ip", "10.8.0.x", "second", "x"],
        "",
    );
    assert_eq!(bad.code, 3, "{}", bad.stderr);
    assert!(bad.stderr.contains("--ip \"10.8.0.x\""), "{}", bad.stderr);

    lan.cli_ok(&["network", "disconnect", "second", "web"], "");
    assert_eq!(
        addresses_of(pid),
        [("eth0".to_owned(), "192.168.77.2".to_owned())]
    );
    assert_eq!(lan.leased("second"), 0);
    let twice = lan.cli(&["network", "disconnect", "second", "web"], "");
    assert_eq!(twice.code, 4, "{}", twice.stderr);

    // Connected again, then stopped: the poststop takes back both networks.
    lan.cli_ok(&["network", "connect", "second", "web"], "");
    assert_eq!((lan.leased("first"), lan.leased("second")), (1, 1));
    let actions: Vec<Value> = lan.journal().iter().map(|r| r["action"].clone()).collect();
    assert_eq!(
        actions,
        [
            "attach",
            "connect",
            "connect",
            "connect",
            "disconnect",
            "disconnect",
            "connect"
        ]
    );
    process.kill();
    let stopped = lan.pid_bundle("web", &[(ANN, "first")], pid, "stopped");
    lan.cli_ok(&["hook", "poststop"], &stopped);
    assert_eq!((lan.leased("first"), lan.leased("second")), (0, 0));
    assert!(lan.records().is_empty(), "{:?}", lan.records());
}

/// A container that no hook attached is located by its pid; `gc` releases what it was given
/// once it is gone.
#[privileged]
fn connect_finds_a_container_by_pid_and_gc_releases_it_when_gone() {
    let lan = Lan::new();
    lan.create_network("solo", &[]);
    let process = ContainerProcess::start();
    let pid = process.pid().to_string();
    let unlocated = lan.cli(&["network", "connect", "solo", "bare"], "");
    assert_eq!(unlocated.code, 3, "{}", unlocated.stderr);
    assert!(unlocated.stderr.contains("--pid"), "{}", unlocated.stderr);
    lan.cli_ok(
        &[
            "network", "connect", "--pid", &pid, "--ifname", "lan", "solo", "bare",
        ],
        "",
    );
    assert_eq!(
        addresses_of(process.pid()),
        [("lan".to_owned(), "192.168.77.2".to_owned())]
    );
    // Disconnected from its only network, it has nothing left: no record, and verify agrees.
    lan.cli_ok(&["network", "disconnect", "solo", "bare"], "");
    assert!(lan.records().is_empty(), "{:?}", lan.records());
    assert_eq!(lan.cli(&["verify"], "").code, 0);
    lan.cli_ok(&["network", "connect", "--pid", &pid, "solo", "bare"], "");
    process.kill();
    lan.cli_ok(&["gc"], "");
    assert_eq!(lan.leased("solo"), 0);
}

/// A runc container started with no oci-macvlan network (its hook skips it) joins one through
/// `--runtime runc --root`, reaches the LAN's router, and its poststop (runc delete) releases it.
#[privileged]
fn connect_a_runc_container_through_its_runtime_state() {
    let lan = Lan::new();
    lan.create_network("lan77", &[]);
    let bundle = Bundle::new(&lan, "late", &[]);
    let container = Container::start(&lan, Runtime::Runc, "late", &bundle).unwrap();
    let root = lan.tmp().join("runc-root");
    let root = root.to_str().unwrap();
    let missing = lan.cli(
        &[
            "network",
            "connect",
            "--runtime",
            "runc",
            "--root",
            root,
            "lan77",
            "nosuch",
        ],
        "",
    );
    assert_eq!(missing.code, 4, "{}", missing.stderr);
    lan.cli_ok(
        &[
            "network",
            "connect",
            "--runtime",
            "runc",
            "--root",
            root,
            "lan77",
            "late",
        ],
        "",
    );
    let (ok, out) = container.exec(&["ping", "-c", "1", "-W", "5", Lan::GATEWAY]);
    assert!(ok, "{out}");
    assert_eq!(lan.leased("lan77"), 1);
    container.stop().unwrap();
    assert_eq!(lan.leased("lan77"), 0);
    assert!(lan.records().is_empty(), "{:?}", lan.records());
}

/// A parent missing where `network create` runs: the error says which namespace it looked in
/// and the links there, and a first create that fails leaves no empty `networks/` dir.
#[privileged]
fn a_missing_parent_is_looked_for_where_it_says_and_leaves_nothing() {
    let lan = Lan::new();
    let out = lan.cli(
        &[
            "network",
            "create",
            "--subnet",
            "10.7.0.0/24",
            "-o",
            "parent=p0",
            "n",
        ],
        "",
    );
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert_eq!(
        out.stderr.trim(),
        format!(
            "oci-macvlan: error: parent interface p0 not found: looked in network namespace {}, whose links are lo, lan0",
            lan.host.path().display()
        )
    );
    assert!(
        !lan.config_dir().join("networks").exists(),
        "a failed first create left the networks dir"
    );
}
