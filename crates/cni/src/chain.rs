//! ADD in a chain: a plugin after others gets their result as `prevResult` and prints it with
//! its own added (the spec's "pass through"): their interfaces first, then ours, our
//! addresses' `interface` indexes moved past theirs; their addresses, routes and DNS kept.

use serde_json::Value;

use crate::{Error, Result};

fn bad(reason: impl Into<String>) -> Error {
    Error::InvalidConfig {
        field: "prevResult",
        reason: reason.into(),
    }
}

/// The list `key` of a result object: absent is empty, anything but a list is refused.
fn list<'a>(result: &'a serde_json::Map<String, Value>, key: &str) -> Result<&'a [Value]> {
    match result.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(bad(format!("{key} is not a list"))),
    }
}

/// `ours` (ADD's result, in the config's version) with the earlier plugins' `prev` before it.
pub fn chained(prev: &Value, ours: Value) -> Result<Value> {
    let Value::Object(prev) = prev else {
        return Err(bad("not an object"));
    };
    let Value::Object(mut ours) = ours else {
        return Err(bad("our own result is not an object"));
    };
    let before = list(prev, "interfaces")?.len();
    let mut interfaces = list(prev, "interfaces")?.to_vec();
    interfaces.extend(list(&ours, "interfaces")?.iter().cloned());
    let mut ips = list(prev, "ips")?.to_vec();
    for ip in list(&ours, "ips")? {
        let mut ip = ip.clone();
        if let Some(index) = ip.get("interface").and_then(Value::as_u64) {
            ip["interface"] = Value::from(index + before as u64);
        }
        ips.push(ip);
    }
    let mut routes = list(prev, "routes")?.to_vec();
    routes.extend(list(&ours, "routes")?.iter().cloned());
    ours.insert("interfaces".into(), Value::Array(interfaces));
    ours.insert("ips".into(), Value::Array(ips));
    ours.insert("routes".into(), Value::Array(routes));
    // DNS is the earlier plugins' (we give none).
    if let Some(dns) = prev.get("dns") {
        ours.insert("dns".into(), dns.clone());
    }
    // Keys this plugin does not know stay as the earlier plugins left them.
    for (key, value) in prev {
        ours.entry(key.clone()).or_insert_with(|| value.clone());
    }
    Ok(Value::Object(ours))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn earlier_results_come_first_and_our_indexes_move_past_them() {
        let prev = json!({
            "cniVersion": "1.0.0",
            "interfaces": [{"name": "veth0"}, {"name": "eth1", "sandbox": "/run/netns/x"}],
            "ips": [{"address": "10.1.0.5/16", "interface": 1}],
            "routes": [{"dst": "10.0.0.0/8"}],
            "dns": {"nameservers": ["10.1.0.1"]},
        });
        let ours = json!({
            "cniVersion": "1.0.0",
            "interfaces": [{"name": "eth0"}, {"name": "net1", "sandbox": "/run/netns/x"}],
            "ips": [{"address": "192.168.77.2/24", "gateway": "192.168.77.1", "interface": 1}],
            "routes": [{"dst": "0.0.0.0/0", "gw": "192.168.77.1"}],
        });
        let out = chained(&prev, ours).unwrap();
        let names: Vec<_> = out["interfaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["veth0", "eth1", "eth0", "net1"]);
        assert_eq!(out["ips"][0]["interface"], 1);
        assert_eq!(out["ips"][1]["interface"], 3);
        assert_eq!(out["ips"][1]["address"], "192.168.77.2/24");
        assert_eq!(out["routes"].as_array().unwrap().len(), 2);
        assert_eq!(out["dns"]["nameservers"][0], "10.1.0.1");
    }

    #[test]
    fn a_prev_result_of_the_wrong_shape_is_refused() {
        let ours = json!({"interfaces": [], "ips": []});
        for prev in [json!([]), json!({"interfaces": {}}), json!({"ips": "x"})] {
            assert!(matches!(
                chained(&prev, ours.clone()),
                Err(Error::InvalidConfig {
                    field: "prevResult",
                    ..
                })
            ));
        }
        let empty = chained(&json!({}), ours).unwrap();
        assert_eq!(empty["interfaces"], json!([]));
    }
}
