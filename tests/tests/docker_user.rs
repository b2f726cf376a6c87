//! What a Docker user expects of the network commands: networks named by name, full id or
//! unique id prefix; `inspect` of several shows those found before the error; a network whose
//! store does not answer can still be inspected; Docker's filters (regular expressions, labels);
//! templates that fail loudly.

#![allow(clippy::unwrap_used)]

use oci_macvlan_tests::{ContainerProcess, Lan, privileged};
use serde_json::Value;

fn id_of(lan: &Lan, name: &str) -> String {
    lan.inspect(name)[0]["Id"].as_str().unwrap().to_owned()
}

/// Rewrites the id in network `name`'s definition (as a hand edit would), to make ids that
/// share a prefix.
fn set_id(lan: &Lan, name: &str, id: &str) {
    let path = lan.config_dir().join(format!("networks/{name}.json"));
    let mut def: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    def["id"] = Value::from(id);
    std::fs::write(&path, serde_json::to_vec_pretty(&def).unwrap()).unwrap();
}

#[privileged]
fn networks_are_named_by_name_full_id_or_unique_id_prefix() {
    let lan = Lan::new();
    lan.create_network("lan-a", &[]);
    lan.cli_ok(
        &[
            "network",
            "create",
            "--subnet",
            "10.71.0.0/24",
            "-o",
            "parent=lan0",
            "lan-b",
        ],
        "",
    );
    set_id(&lan, "lan-a", &format!("abc1{}", "0".repeat(60)));
    set_id(&lan, "lan-b", &format!("abc2{}", "0".repeat(60)));
    let a = id_of(&lan, "lan-a");
    // `ls -q` gives ids that `inspect` takes: full, or the 12 characters `ls` shows.
    let listed = lan.cli_ok(&["network", "ls", "-q"], "");
    assert!(listed.lines().any(|l| a.starts_with(l)), "{listed}");
    for given in [a.as_str(), &a[..12], "abc1"] {
        let out = lan.cli_ok(&["network", "inspect", "-f", "{{.Name}}", given], "");
        assert_eq!(out, "lan-a\n", "{given}");
    }
    // A prefix of both: refused, naming both (exit 3).
    let out = lan.cli(&["network", "inspect", "abc"], "");
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("network id prefix abc is ambiguous")
            && out.stderr.contains("lan-a, lan-b"),
        "{}",
        out.stderr
    );
    // Several: those found are shown, then the error (exit 4 for the missing one).
    let out = lan.cli(
        &[
            "network",
            "inspect",
            "-f",
            "{{.Name}}",
            "lan-a",
            "nosuch",
            "abc2",
        ],
        "",
    );
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert_eq!(out.stdout, "lan-a\nlan-b\n");
    assert_eq!(
        out.stderr.trim(),
        "oci-macvlan: error: network nosuch not found"
    );
    // connect and disconnect by id prefix.
    let process = ContainerProcess::start();
    let pid = process.pid().to_string();
    let out = lan.cli_ok(&["network", "connect", "--pid", &pid, "abc1", "c1"], "");
    assert!(out.contains(" lan-a "), "{out}");
    assert_eq!(lan.leased("lan-a"), 1);
    lan.cli_ok(&["network", "disconnect", &a[..12], "c1"], "");
    assert_eq!(lan.leased("lan-a"), 0);
    process.kill();
    // A name that reads as an id is refused at create (it would shadow a short id), and a full
    // id names its network before any name does.
    let hexname = lan.cli(
        &[
            "network",
            "create",
            "--subnet",
            "10.77.0.0/24",
            "-o",
            "parent=lan0",
            &a[..12],
        ],
        "",
    );
    assert_eq!(hexname.code, 3, "{}", hexname.stderr);
    assert!(
        hexname.stderr.contains("read as a network id"),
        "{}",
        hexname.stderr
    );
    // rm by id prefix and by full id.
    assert_eq!(lan.cli_ok(&["network", "rm", "abc2"], ""), "lan-b\n");
    assert_eq!(lan.cli_ok(&["network", "rm", &a], ""), "lan-a\n");
    assert_eq!(lan.cli_ok(&["network", "ls", "-q"], ""), "");
}

#[privileged]
fn filters_are_dockers_regular_expressions_and_labels() {
    let lan = Lan::new();
    lan.create_network("lan", &["--label", "env=prod", "--label", "site"]);
    for (name, subnet) in [("lan50", "10.72.0.0/24"), ("guests", "10.73.0.0/24")] {
        lan.cli_ok(
            &[
                "network",
                "create",
                "--subnet",
                subnet,
                "-o",
                "parent=lan0",
                "--label",
                "env=test",
                name,
            ],
            "",
        );
    }
    let names = |filters: &[&str]| {
        let mut args = vec!["network", "ls", "--format", "{{.Name}}"];
        for f in filters {
            args.extend(["--filter", f]);
        }
        lan.cli_ok(&args, "")
    };
    assert_eq!(names(&["name=^lan$"]), "lan\n");
    assert_eq!(names(&["name=lan"]), "lan\nlan50\n");
    assert_eq!(names(&["label=env=test"]), "guests\nlan50\n");
    assert_eq!(names(&["label=env", "label=site"]), "lan\n");
    let bad = lan.cli(&["network", "ls", "--filter", "name=("], "");
    assert_eq!(bad.code, 3, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("not a regular expression"),
        "{}",
        bad.stderr
    );
    assert_eq!(
        lan.inspect("lan")[0]["Labels"],
        serde_json::json!({"env": "prod", "site": ""})
    );
    let twice = lan.cli(
        &[
            "network",
            "create",
            "--subnet",
            "10.74.0.0/24",
            "-o",
            "parent=lan0",
            "--label",
            "a=1",
            "--label",
            "a=2",
            "x",
        ],
        "",
    );
    assert_eq!(twice.code, 3, "{}", twice.stderr);
    // A bare `table` is the default table; a missing field fails (exit 3), never `<no value>`.
    let table = lan.cli_ok(&["network", "ls", "--format", "table"], "");
    assert!(table.starts_with("NETWORK ID"), "{table}");
    assert_eq!(table.lines().count(), 4, "{table}");
    let nope = lan.cli(&["network", "inspect", "-f", "{{.Nope}}", "lan"], "");
    assert_eq!(nope.code, 3, "{}", nope.stderr);
    assert_eq!(nope.stdout, "");
    assert!(nope.stderr.contains("Nope"), "{}", nope.stderr);
    let pad = lan.cli(
        &[
            "network",
            "inspect",
            "-f",
            "{{pad .Name 100000000000 1}}",
            "lan",
        ],
        "",
    );
    assert_eq!(pad.code, 3, "{}", pad.stderr);
    assert_eq!(pad.stderr.lines().count(), 1, "{}", pad.stderr);
}

/// A network on an etcd cluster that does not answer: `inspect` shows its definition and
/// says the store did not answer, exit 0.
#[privileged]
fn a_network_whose_store_does_not_answer_is_still_inspected() {
    let lan = Lan::new();
    // create asks the cluster once: it warns, and the network is defined.
    let created = lan.cli(
        &[
            "network",
            "create",
            "--subnet",
            Lan::SUBNET,
            "--gateway",
            Lan::GATEWAY,
            "-o",
            "parent=lan0",
            "--ipam-opt",
            "etcd_endpoints=http://127.0.0.1:9",
            "--ipam-opt",
            "etcd_timeout=1s",
            "far",
        ],
        "",
    );
    assert_eq!(created.code, 0, "{}", created.stderr);
    assert!(
        created.stderr.starts_with(
            "oci-macvlan: warning: network far is defined, but its etcd cluster did not answer ("
        ) && created.stderr.contains("127.0.0.1:9")
            && created
                .stderr
                .trim_end()
                .ends_with("containers cannot join it until it does"),
        "{}",
        created.stderr
    );
    let out = lan.cli(&["network", "inspect", "far"], "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let view: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(view[0]["Name"], "far");
    assert_eq!(view[0]["Store"]["State"], "unreachable", "{view:#}");
    assert!(
        view[0]["Store"]["Error"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1:9"),
        "{view:#}"
    );
    assert_eq!(view[0]["Containers"], serde_json::json!({}));
    // And it can be removed: rm says how, rm -f does it.
    let rm = lan.cli(&["network", "rm", "far"], "");
    assert_eq!(rm.code, 1, "{}", rm.stderr);
    assert!(rm.stderr.contains("network rm -f far"), "{}", rm.stderr);
    lan.cli_ok(&["network", "rm", "-f", "far"], "");
    assert_eq!(lan.cli_ok(&["network", "ls", "-q"], ""), "");
}

/// A user who is not root is told to run as root, not which uid owns the dirs.
#[privileged]
fn a_user_who_is_not_root_is_told_to_run_as_root() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (config, state) = (dir.path().join("etc"), dir.path().join("run"));
    for d in [&config, &state] {
        std::fs::create_dir(d).unwrap();
    }
    // The binary must be reachable by uid 65534: a copy in the test's dir.
    let bin = dir.path().join("oci-macvlan");
    // Copied by `cp`, not by this process: a writable fd of ours, inherited by another test
    // thread's child, would make the exec fail with "Text file busy".
    oci_macvlan_tests::run_ok(
        "cp",
        &[
            oci_macvlan_tests::binary().to_str().unwrap(),
            bin.to_str().unwrap(),
        ],
    );
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&bin)
        .arg("--config-dir")
        .arg(&config)
        .arg("--state-dir")
        .arg(&state)
        .args(["network", "ls"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("it is root's and oci-macvlan runs as uid 65534: run oci-macvlan as root"),
        "{stderr}"
    );
}

/// Whether this kernel makes links of `kind`, asked in a scratch namespace of the test's own.
fn kernel_makes(kind: &str) -> bool {
    let ns = oci_macvlan_tests::TestNetns::new("omt-kind-");
    let net = format!("--net={}", ns.path().display());
    oci_macvlan_tests::run("nsenter", &[&net, "ip", "link", "add", "k0", "type", kind])
        .status
        .success()
}

/// A kernel without ipvlan (or dummy, for a network without a parent) is named with what to do:
/// `modprobe ipvlan`, and what a network without `-o parent` is. On a kernel that has them the
/// attach simply works (the VM tier).
#[privileged]
fn a_missing_kernel_driver_is_named_with_what_to_do() {
    let lan = Lan::new();
    // Without -o parent: an internal network on a dummy link of its own, made at create.
    let inner = lan.cli(
        &["network", "create", "--subnet", "10.76.0.0/24", "inner"],
        "",
    );
    if kernel_makes("dummy") {
        assert_eq!(inner.code, 0, "{}", inner.stderr);
    } else {
        assert_eq!(inner.code, 1, "{}", inner.stderr);
        assert_eq!(inner.stderr.lines().count(), 1, "{}", inner.stderr);
        assert!(
            inner.stderr.contains("no -o parent was given: network inner is internal, on a dummy link of its own, which this kernel cannot make (or give -o parent=IF)")
                && inner.stderr.contains("modprobe dummy"),
            "{}",
            inner.stderr
        );
    }
    lan.cli_ok(
        &[
            "network",
            "create",
            "-d",
            "ipvlan",
            "--subnet",
            "10.75.0.0/24",
            "-o",
            "parent=lan0",
            "iv",
        ],
        "",
    );
    let ns = oci_macvlan_tests::TestNetns::new("omt-ctr-");
    let state = lan.fake_bundle(
        "c1",
        &[("oci-macvlan.networks", "iv")],
        &ns.path(),
        "creating",
    );
    let out = lan.cli(&["hook"], &state);
    if kernel_makes("ipvlan") {
        assert_eq!(out.code, 0, "{}", out.stderr);
        lan.cli_ok(
            &["hook"],
            &lan.fake_bundle(
                "c1",
                &[("oci-macvlan.networks", "iv")],
                &ns.path(),
                "stopped",
            ),
        );
    } else {
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(
            out.stderr
                .contains("the kernel has no ipvlan driver (modprobe ipvlan)"),
            "{}",
            out.stderr
        );
        assert!(lan.records().is_empty(), "{:?}", lan.records());
    }
}

/// An alternative name of a link is refused as a parent: every check by parent compares names
/// (drivers sharing a parent, the host link's reserved MAC), so the definition names the link.
#[privileged]
fn a_parent_is_named_by_its_name_not_an_altname() {
    let lan = Lan::new();
    lan.host.ip(&[
        "link", "property", "add", "dev", "lan0", "altname", "lanalt",
    ]);
    let out = lan.cli(
        &[
            "network",
            "create",
            "--subnet",
            "10.78.0.0/24",
            "-o",
            "parent=lanalt",
            "alt",
        ],
        "",
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(
        out.stderr.trim(),
        "oci-macvlan: error: parent interface lanalt is an alternative name of lan0: give -o parent=lan0"
    );
    assert_eq!(lan.cli_ok(&["network", "ls", "-q"], ""), "");
}

/// The host id is said once — README's `oci-macvlan --host-id hostA network create …` — and
/// every later command agrees with it, flag or not: the hooks (given it in their args or not),
/// `verify` and `inspect` see one host, and report no false problems.
#[privileged]
fn the_host_id_is_said_once_and_every_command_agrees() {
    use oci_macvlan_tests::{
        Etcd,
        etcd_network::{ANN, NET, create_shared, etcd_leases},
    };
    let lan = Lan::new();
    let etcd = Etcd::start(&lan, 1);
    etcd.reach_from(&lan, "192.168.77.250");
    // README's example: the id given once, to `network create` (a global flag, after it).
    create_shared(&lan, &etcd.endpoints(), &["--host-id", "hostA"]);
    let identity = lan.config_dir().join("host-identity");
    assert!(
        identity.exists(),
        "network create --host-id made no identity file"
    );
    // A hook given the id in its args, then one given none (runtimes may clear the env).
    let ns1 = oci_macvlan_tests::TestNetns::new("omt-ctr-");
    let ns2 = oci_macvlan_tests::TestNetns::new("omt-ctr-");
    let with = lan.fake_bundle("c1", &[(ANN, NET)], &ns1.path(), "creating");
    lan.cli_ok(&["--host-id", "hostA", "hook"], &with);
    let without = lan.fake_bundle("c2", &[(ANN, NET)], &ns2.path(), "creating");
    lan.cli_ok(&["hook"], &without);
    let hosts: Vec<String> = etcd_leases(&etcd).into_iter().map(|l| l.1).collect();
    assert_eq!(hosts, ["hostA", "hostA"]);
    // The CLI without the flag: no false problem, both containers this host's.
    let verify = lan.cli(&["verify"], "");
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
    let names = lan.cli_ok(
        &[
            "network",
            "inspect",
            "-f",
            "{{range .Containers}}{{.Name}} {{end}}",
            NET,
        ],
        "",
    );
    assert!(names.contains("c1") && names.contains("c2"), "{names}");
    // Another id than the one said is refused, naming both.
    let other = lan.cli(&["--host-id", "hostB", "verify"], "");
    assert_eq!(other.code, 3, "{}", other.stderr);
    assert!(
        other.stderr.contains("hostA") && other.stderr.contains("hostB"),
        "{}",
        other.stderr
    );
}
