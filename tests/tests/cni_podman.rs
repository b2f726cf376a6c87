//! Real-client tier: podman 4.3 with its CNI backend (`network_backend = "cni"` in a
//! containers.conf of the test's own, tests/src/podman.rs) runs the `oci-macvlan` CNI plugin
//! from a conflist naming our network. `podman run --network lan` gets its leg and reaches the
//! router; `--ip` and `--mac-address` reach the plugin (podman sends them as `CNI_ARGS` `IP=` and
//! `MAC=`) and are applied; `podman stop` and `rm` release; a runc container attached by the hook
//! to the same network at the same time never shares an address with a podman one.

#![allow(clippy::unwrap_used)]

use oci_macvlan_tests::{Bundle, Container, Lan, Podman, Runtime, privileged, unique};
use serde_json::Value;

const NET: &str = "lan";

/// `ip -o -4 addr` of eth0 in a podman container: its `ADDRESS/PREFIX`.
fn address_of(podman: &Podman, name: &str) -> String {
    let (ok, out) = podman.exec(name, &["ip", "-o", "-4", "addr", "show", "dev", "eth0"]);
    assert!(ok, "ip addr in {name}: {out}");
    out.split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .unwrap_or_else(|| panic!("no IPv4 address on eth0 of {name}: {out}"))
        .to_owned()
}

/// The leases `inspect` lists on the network: (IPv4 address, MAC), sorted. Which container
/// holds one is read from the journal (its `container` is CNI's container id), not from
/// `inspect`'s `Name`, which for a CNI attachment may be the pod name podman sends.
fn leases(lan: &Lan) -> Vec<(String, String)> {
    lan.inspected(NET, "MacAddress")
}

/// The journal's lines for a CNI command (`cni:ADD`, `cni:DEL`) on container `id`.
fn journal_lines(lan: &Lan, stage: &str, id: &str) -> Vec<Value> {
    lan.journal()
        .into_iter()
        .filter(|l| l["stage"] == stage && l["container"] == id)
        .collect()
}

/// `podman run --network lan`: eth0 with the network's first address, a default route through
/// the gateway, the router answers, the lease is held under podman's container id. `podman
/// stop` runs DEL (the journal says so) and releases the lease; `podman rm` after it has
/// nothing left to do; nothing is left anywhere.
#[privileged]
fn podman_run_gets_its_leg_and_stop_releases_it() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    let podman = Podman::with_cni(&lan, NET);
    let name = unique("omt-cnipod-");
    podman
        .start_on(&name, &["--network", NET], &[])
        .unwrap_or_else(|e| panic!("podman run --network {NET}: {e}"));
    let id = podman.inspect(&name, "{{.Id}}");

    assert_eq!(address_of(&podman, &name), "192.168.77.2/24");
    let (ok, routes) = podman.exec(&name, &["ip", "route"]);
    assert!(
        ok && routes.contains("default via 192.168.77.1 dev eth0"),
        "{routes}"
    );
    let (ok, out) = podman.exec(&name, &["ping", "-c", "1", "-W", "2", Lan::GATEWAY]);
    assert!(ok, "the podman container cannot reach the router: {out}");
    let held = leases(&lan);
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].0, "192.168.77.2/24");
    let adds = journal_lines(&lan, "cni:ADD", &id);
    assert!(
        adds.len() == 1 && adds[0]["outcome"] == "ok",
        "journal: {adds:?}"
    );
    let verify = lan.cli(&["verify"], "");
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);

    podman.stop(&name).unwrap();
    assert_eq!(leases(&lan), [], "podman stop left the lease");
    let dels = journal_lines(&lan, "cni:DEL", &id);
    assert!(
        !dels.is_empty() && dels.iter().all(|l| l["outcome"] == "ok"),
        "journal: {dels:?}"
    );
    podman.rm(&name).unwrap();
    lan.assert_no_residue(&[NET], "podman stop, rm");
}

/// `--ip` and `--mac-address` reach the plugin and are applied: the container's eth0 has both,
/// the lease records both. `podman rm -f` of the running container releases it.
#[privileged]
fn podman_ip_and_mac_address_are_applied() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    let podman = Podman::with_cni(&lan, NET);
    let name = unique("omt-cnipod-");
    let mac = "02:42:c0:a8:4d:32";
    podman
        .start_on(
            &name,
            &[
                "--network",
                NET,
                "--ip",
                "192.168.77.50",
                "--mac-address",
                mac,
            ],
            &[],
        )
        .unwrap_or_else(|e| panic!("podman run --ip --mac-address: {e}"));
    let id = podman.inspect(&name, "{{.Id}}");
    assert_eq!(address_of(&podman, &name), "192.168.77.50/24");
    let (ok, link) = podman.exec(&name, &["ip", "-o", "link", "show", "dev", "eth0"]);
    assert!(ok && link.contains(&format!("link/ether {mac} ")), "{link}");
    let (ok, out) = podman.exec(&name, &["ping", "-c", "1", "-W", "2", Lan::GATEWAY]);
    assert!(ok, "the podman container cannot reach the router: {out}");
    assert_eq!(
        leases(&lan),
        [("192.168.77.50/24".to_owned(), mac.to_owned())]
    );
    assert_eq!(journal_lines(&lan, "cni:ADD", &id).len(), 1);

    podman.rm(&name).unwrap();
    lan.assert_no_residue(&[NET], "podman rm -f");
}

/// A runc container attached by the hook and podman containers attached through CNI share the
/// network at the same time: the podman one gets the next free address, a podman container
/// asking for the runc one's address is refused and leaves nothing, the two reach each other,
/// `verify` is clean with both; stopping the podman one leaves the runc one's lease alone.
#[privileged]
fn podman_through_cni_and_runc_through_the_hook_share_one_address_space() {
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    let runc_id = unique("omt-hookc-");
    let bundle = Bundle::new(&lan, &runc_id, &[("oci-macvlan.networks", NET)]);
    let runc = Container::start(&lan, Runtime::Runc, &runc_id, &bundle)
        .unwrap_or_else(|e| panic!("runc run {runc_id}: {e}"));
    let (ok, out) = runc.exec(&["ip", "-o", "-4", "addr", "show", "dev", "eth0"]);
    assert!(ok && out.contains("inet 192.168.77.2/24"), "{out}");

    let podman = Podman::with_cni(&lan, NET);
    let name = unique("omt-cnipod-");
    podman
        .start_on(&name, &["--network", NET], &[])
        .unwrap_or_else(|e| panic!("podman run --network {NET}: {e}"));
    assert_eq!(address_of(&podman, &name), "192.168.77.3/24");

    // The runc container's address, asked for through CNI: refused, nothing left of it.
    let taken = unique("omt-cnipod-");
    let err = podman
        .start_on(&taken, &["--network", NET, "--ip", "192.168.77.2"], &[])
        .expect_err("podman took the hook-attached container's address");
    assert!(err.contains("192.168.77.2"), "{err}");
    let _ = podman.rm(&taken);

    let (ok, out) = podman.exec(&name, &["ping", "-c", "1", "-W", "2", "192.168.77.2"]);
    assert!(ok, "podman cannot reach the runc container: {out}");
    let (ok, out) = runc.exec(&["ping", "-c", "1", "-W", "2", "192.168.77.3"]);
    assert!(ok, "runc cannot reach the podman container: {out}");
    let held: Vec<String> = leases(&lan).into_iter().map(|l| l.0).collect();
    assert_eq!(held.len(), 2, "{held:?}");
    assert!(held.contains(&"192.168.77.2/24".to_owned()), "{held:?}");
    assert!(held.contains(&"192.168.77.3/24".to_owned()), "{held:?}");
    let verify = lan.cli(&["verify"], "");
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);

    podman.rm(&name).unwrap();
    let held = leases(&lan);
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].0, "192.168.77.2/24", "the runc container's lease");
    let (ok, out) = runc.exec(&["ping", "-c", "1", "-W", "2", Lan::GATEWAY]);
    assert!(ok, "the runc container lost its leg: {out}");
    let verify = lan.cli(&["verify"], "");
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);

    runc.stop().unwrap();
    lan.assert_no_residue(&[NET], "runc and podman gone");
}
