//! Privileged tier: a namespace made again at a container's namespace path, with the old one's
//! nsfs inode, is not the container's (`gc` and a take-back judge by the namespace's cookie).
//! Alone in its test binary: the kernel gives a freed inode to the next namespace made, and a
//! test beside it making namespaces would take it first.

#![allow(clippy::unwrap_used)]

use oci_macvlan_tests::{Lan, TestNetns, privileged};

const NET: &str = "renet";

/// A container known by its namespace's path, that namespace deleted without a detach and a
/// new one mounted at the path that the kernel gave the old one's nsfs inode (it gives a
/// deleted namespace's inode to the next one made): the container is gone all the same, its
/// lease goes, and nothing in the new namespace is touched. The namespace's cookie, recorded at
/// attach where no pid decides, tells the two apart; the device and inode alone do not.
#[privileged]
fn a_namespace_made_again_at_the_path_with_the_old_inode_is_not_the_container() {
    use std::os::unix::fs::MetadataExt;
    let lan = Lan::new();
    lan.create_network(NET, &[]);
    let networks = [("oci-macvlan.networks", NET)];
    let netns = TestNetns::new("omt-gcre-");
    let path = netns.path();
    lan.cli_ok(
        &["hook"],
        &lan.fake_bundle("remade", &networks, &path, "creating"),
    );
    assert_eq!(lan.leased(NET), 1);
    let identity = |p: &std::path::Path| {
        let meta = std::fs::metadata(p).unwrap();
        (meta.dev(), meta.ino())
    };
    let old = identity(&path);
    // Deleted without a detach. Namespaces are then made, and kept, until one has the old
    // identity: each takes the lowest free inode, so those below the old one (freed by
    // earlier tests) fill first, and the old one comes once the kernel's cleanup of its
    // namespace has run. That one is then mounted at the container's path.
    oci_macvlan_tests::run_ok("ip", &["netns", "del", &netns.name]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut fillers = Vec::new();
    let remade = loop {
        let made = TestNetns::new("omt-gcfill-");
        if identity(&made.path()) == old {
            break made;
        }
        fillers.push(made);
        assert!(
            std::time::Instant::now() < deadline,
            "none of {} namespaces made got the old identity {old:?}",
            fillers.len()
        );
        if fillers.len() % 50 == 0 {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    drop(fillers);
    std::fs::write(&path, b"").unwrap();
    let mounted = std::process::Command::new("mount")
        .arg("--bind")
        .arg(remade.path())
        .arg(&path)
        .status()
        .unwrap();
    assert!(mounted.success(), "mount --bind onto {}", path.display());
    assert_eq!(identity(&path), old);
    // A link of the new namespace with the container's interface name and its address, which
    // the take-back of a namespace it judged the container's would strip.
    let containers = lan.inspect(NET)[0]["Containers"].clone();
    let leased = containers.as_object().unwrap().values().next().unwrap()["IPv4Address"]
        .as_str()
        .unwrap()
        .to_owned();
    netns.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "omtpeer",
    ]);
    netns.ip(&["addr", "add", &leased, "dev", "eth0"]);
    let out = lan
        .cli_ok(&["gc"], "")
        .replace(&path.display().to_string(), "NETNS");
    assert!(
        out.contains("(container remade: its network namespace NETNS is gone)"),
        "{out}"
    );
    assert!(
        out.contains("released 1 leases of 1 gone containers"),
        "{out}"
    );
    assert_eq!(lan.leased(NET), 0);
    assert_eq!(
        netns.addresses("eth0"),
        [leased],
        "gc touched the new namespace"
    );
}
