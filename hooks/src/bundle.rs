//! `oci-macvlan bundle`: wires a runc or crun bundle's `config.json` without editing JSON by
//! hand: the hook at `createRuntime` and `poststop` (this binary, with this invocation's dirs in
//! its args, since runtimes may clear a hook's environment) and the annotations that opt the
//! container in. Run again, it replaces what it wrote; `--remove` takes it all out.

use std::{collections::HashMap, path::PathBuf};

use oci_macvlan_macvlan as macvlan;
use serde_json::{Map, Value};

use crate::{
    Context, annotations,
    cli::BundleArgs,
    error::{Error, Result},
    install,
    network_cmd::print,
    oci,
};

/// The stages the hook is listed at.
const STAGES: [&str; 2] = ["createRuntime", "poststop"];

pub fn run(ctx: &Context, args: &BundleArgs) -> Result<()> {
    let path = if args.path.is_dir() {
        args.path.join("config.json")
    } else {
        args.path.clone()
    };
    let bytes = oci::read_config(&path)?;
    let mut config: Value =
        serde_json::from_slice(&bytes).map_err(|source| Error::ParseConfig {
            path: path.clone(),
            source,
        })?;
    let Some(root) = config.as_object_mut() else {
        return Err(Error::BundleNotObject { path });
    };
    let binary = install::binary(args.binary.as_deref())?;
    let (config_dir, state_dir) = ctx.absolute_dirs()?;
    let entry = install::hook_entry(&binary, &config_dir, &state_dir);
    // Ours: an entry that runs `oci-macvlan … hook`, wherever its binary is.
    let ours = |hook: &Value| hook["args"].get(0).and_then(Value::as_str) == Some("oci-macvlan");
    let hooks = object(root, "hooks", &path)?;
    for stage in STAGES {
        let list = hooks
            .entry(stage)
            .or_insert_with(|| Value::Array(Vec::new()));
        let Some(list) = list.as_array_mut() else {
            return Err(Error::BundleNotObject { path });
        };
        list.retain(|hook| !ours(hook));
        if !args.remove {
            list.push(entry.clone());
        }
    }
    hooks.retain(|_, list| list.as_array().is_none_or(|l| !l.is_empty()));
    if hooks.is_empty() {
        root.remove("hooks");
    }
    let annotations = object(root, "annotations", &path)?;
    annotations.retain(|key, _| !key.starts_with(annotations::PREFIX));
    if !args.remove {
        for (key, value) in requested(args)? {
            annotations.insert(key, Value::String(value));
        }
    }
    if annotations.is_empty() {
        root.remove("annotations");
    }
    let mut text = serde_json::to_string_pretty(&config).unwrap_or_default();
    text.push('\n');
    macvlan::write_atomic(
        &path,
        text.as_bytes(),
        macvlan::Put::Replace,
        macvlan::Durability::Durable,
    )?;
    print(format_args!("{}\n", path.display()))
}

/// The annotations `args` ask for, checked as the hook will read them.
fn requested(args: &BundleArgs) -> Result<Vec<(String, String)>> {
    let networks: Vec<&str> = args
        .networks
        .iter()
        .flat_map(|n| n.split(','))
        .map(str::trim)
        .collect();
    if networks.is_empty() {
        return Err(Error::BundleNoNetwork);
    }
    for name in &networks {
        macvlan::check_network_name(name)?;
    }
    let mut out = vec![(annotations::NETWORKS.to_owned(), networks.join(","))];
    for (key, value) in [("ip", &args.ip), ("ip6", &args.ip6), ("mac", &args.mac)] {
        if let Some(value) = value {
            out.push((format!("{}{key}", annotations::PREFIX), value.clone()));
        }
    }
    let map: HashMap<String, String> = out.iter().cloned().collect();
    annotations::parse(&map)?;
    Ok(out)
}

/// The object `root[key]`, made empty when missing.
fn object<'a>(
    root: &'a mut Map<String, Value>,
    key: &str,
    path: &std::path::Path,
) -> Result<&'a mut Map<String, Value>> {
    root.entry(key)
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| Error::BundleNotObject {
            path: PathBuf::from(path),
        })
}
