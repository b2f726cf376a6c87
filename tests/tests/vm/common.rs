//! What the VM tier's modules share (`vm.rs`, `vm/ipvlan.rs`, `vm/ipvlan_docker.rs`): the router's
//! end of a VLAN, `network create`, an attach through the hook, and the host's links.

use oci_macvlan_tests::{Lan, TestNetns};
use serde_json::Value;

pub(crate) const ANN: &str = "oci-macvlan.networks";
pub(crate) const OWNER_ALIAS: &str = "created by oci-macvlan";

/// The router's end of VLAN `vid` on the trunk, holding `cidr`.
pub(crate) fn router_vlan(lan: &Lan, vid: u16, cidr: &str) {
    let name = format!("rtr.{vid}");
    lan.router.ip(&[
        "link",
        "add",
        "link",
        "rtr",
        "name",
        &name,
        "type",
        "vlan",
        "id",
        &vid.to_string(),
    ]);
    lan.router.ip(&["addr", "add", cidr, "dev", &name]);
    lan.router.ip(&["link", "set", &name, "up"]);
}

/// `network create NAME --subnet SUBNET [--gateway GW] -o parent=PARENT EXTRA…`
pub(crate) fn create(
    lan: &Lan,
    name: &str,
    subnet: &str,
    parent: Option<&str>,
    extra: &[&str],
) -> String {
    let mut args = vec!["network", "create", "--subnet", subnet];
    let parent_opt = parent.map(|p| format!("parent={p}"));
    if let Some(p) = &parent_opt {
        args.extend(["-o", p]);
    }
    args.extend_from_slice(extra);
    args.push(name);
    lan.cli_ok(&args, "").trim().to_owned()
}

pub(crate) fn attach(lan: &Lan, id: &str, ann: &[(&str, &str)]) -> (TestNetns, String) {
    let ns = TestNetns::new("omt-ctr-");
    let state = lan.fake_bundle(id, ann, &ns.path(), "creating");
    lan.cli_ok(&["hook"], &state);
    (ns, state)
}

pub(crate) fn host_link(lan: &Lan, name: &str) -> Option<Value> {
    lan.host.link(name)
}

/// `ip -d -j link show NAME` in the host namespace: kind, VLAN id, alias.
pub(crate) fn details(lan: &Lan, name: &str) -> Value {
    let out = lan.host.ip(&["-d", "-j", "link", "show", name]);
    serde_json::from_str::<Vec<Value>>(&out).unwrap().remove(0)
}
