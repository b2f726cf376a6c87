//! Real-runtime tier: podman with the hooks.d file `oci-macvlan install` writes. An annotated
//! container gets its leg; one without the annotation is untouched; `podman rm` (which runs
//! poststop itself, with no pid and an empty environment) leaves nothing leased.

#![allow(clippy::unwrap_used)]

use oci_macvlan_tests::{Lan, Podman, binary, privileged};

const NET: &str = "lan77";

#[privileged]
fn podman_runs_the_installed_hook_for_annotated_containers_only() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    let podman = Podman::new(&lan);
    let hooks_dir = podman.hooks_dir().display().to_string();
    let binary = binary().display().to_string();
    let install = ["install", "--hooks-dir", &hooks_dir, "--binary", &binary];
    let written = lan.cli_ok(&install, "");
    assert_eq!(written.trim(), format!("{hooks_dir}/oci-macvlan.json"));
    // Installing again replaces the file in one rename and leaves nothing else behind.
    lan.cli_ok(&install, "");
    let files: Vec<String> = std::fs::read_dir(podman.hooks_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, ["oci-macvlan.json"]);

    podman
        .start("omt-pod-a", &[("oci-macvlan.networks", NET)])
        .unwrap_or_else(|e| panic!("podman run: {e}"));
    let (ok, addr) = podman.exec(
        "omt-pod-a",
        &["ip", "-o", "-4", "addr", "show", "dev", "eth0"],
    );
    assert!(ok && addr.contains("inet 192.168.77.2/24"), "{addr}");
    let (ok, out) = podman.exec("omt-pod-a", &["ping", "-c", "1", "-W", "2", Lan::GATEWAY]);
    assert!(ok, "podman container cannot reach the router: {out}");

    podman
        .start("omt-pod-b", &[])
        .unwrap_or_else(|e| panic!("podman run: {e}"));
    let (ok, links) = podman.exec("omt-pod-b", &["ip", "-o", "link"]);
    assert!(ok, "{links}");
    assert_eq!(links.lines().count(), 1, "only lo: {links}");
    assert_eq!(lan.leased(NET), 1);
    assert_eq!(
        lan.records()
            .iter()
            .filter(|n| n.ends_with(".json"))
            .count(),
        1
    );

    podman.rm("omt-pod-a").unwrap();
    podman.rm("omt-pod-b").unwrap();
    assert_eq!(lan.leased(NET), 0, "podman rm left a lease");
    assert!(lan.records().is_empty(), "{:?}", lan.records());
}
