//! The network configuration a runtime writes on a plugin's stdin, read and checked once.

use std::{
    io::Read,
    net::IpAddr,
    path::{Path, PathBuf},
};

use oci_macvlan_macvlan::{MacAddr, check_network_name};
use serde::Deserialize;
use serde_json::Value;

use crate::{Error, Result, Version, args::parse_ips, error::echo};

/// The largest network config read from stdin (a `prevResult` included).
pub const MAX_CONFIG: usize = 1 << 20;
/// The longest `name` (the CNI network's) accepted.
const MAX_NAME: usize = 256;

/// The plugin's network config: the spec's keys, and ours.
#[derive(Debug, Clone, PartialEq)]
pub struct NetConf {
    /// `cniVersion`: the shape the result is written in.
    pub version: Version,
    /// `name`: the CNI network's name (the conflist's).
    pub name: String,
    /// `network`: the network defined with `oci-macvlan network create`.
    pub network: String,
    /// `configDir`: where the definitions are, if not the default.
    pub config_dir: Option<PathBuf>,
    /// `stateDir`: where leases and records are, if not the default.
    pub state_dir: Option<PathBuf>,
    /// `runtimeConfig.ips`: static addresses, at most one per family.
    pub ips: Vec<IpAddr>,
    /// `runtimeConfig.mac`.
    pub mac: Option<MacAddr>,
    /// `prevResult`, as the runtime gave it (see [`crate::PrevResult`]).
    pub prev_result: Option<Value>,
    /// GC's `cni.dev/valid-attachments` (or the legacy `cni.dev/attachments` libcni sends):
    /// the `(containerID, ifname)` pairs to keep.
    pub valid_attachments: Option<Vec<(String, String)>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    cni_version: Option<String>,
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    network: Option<String>,
    config_dir: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    #[serde(default)]
    runtime_config: RuntimeConfig,
    prev_result: Option<Value>,
    #[serde(rename = "cni.dev/valid-attachments")]
    valid_attachments: Option<Vec<RawAttachment>>,
    #[serde(rename = "cni.dev/attachments")]
    legacy_attachments: Option<Vec<RawAttachment>>,
}

#[derive(Deserialize)]
struct RawAttachment {
    #[serde(rename = "containerID")]
    container_id: String,
    ifname: String,
}

#[derive(Default, Deserialize)]
struct RuntimeConfig {
    #[serde(default)]
    ips: Vec<String>,
    mac: Option<String>,
}

/// The plugin's `type`: the name it is installed under.
pub const PLUGIN_TYPE: &str = "oci-macvlan";

impl NetConf {
    /// Reads stdin (at most [`MAX_CONFIG`] bytes) and parses it.
    pub fn read(input: impl Read) -> Result<Self> {
        Self::parse(&read_bounded(input)?)
    }

    /// Parses and checks a network config.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_CONFIG {
            return Err(Error::ConfigTooLarge);
        }
        let raw: Raw = serde_json::from_slice(bytes).map_err(Error::Decode)?;
        let version = version_of(raw.cni_version.as_deref())?;
        let invalid = |field: &'static str, reason: String| Error::InvalidConfig { field, reason };
        let name = raw.name.ok_or_else(|| invalid("name", "missing".into()))?;
        if name.is_empty()
            || name.len() > MAX_NAME
            || !name.starts_with(|c: char| c.is_ascii_alphanumeric())
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        {
            return Err(invalid(
                "name",
                format!("{:?} is not a CNI network name", echo(&name)),
            ));
        }
        match raw.kind.as_deref() {
            Some(PLUGIN_TYPE) => {}
            Some(other) => {
                return Err(invalid(
                    "type",
                    format!("{:?} is not {PLUGIN_TYPE:?}", echo(other)),
                ));
            }
            None => return Err(invalid("type", "missing".into())),
        }
        let network = raw.network.ok_or_else(|| {
            invalid(
                "network",
                "missing: name a network made with 'oci-macvlan network create'".into(),
            )
        })?;
        check_network_name(&network).map_err(|err| invalid("network", err.to_string()))?;
        let dir = |field: &'static str, path: Option<PathBuf>| match path {
            Some(path) if !path.is_absolute() || path.as_os_str().len() > 4096 => Err(invalid(
                field,
                format!(
                    "{:?} is not an absolute path",
                    echo(&path.to_string_lossy())
                ),
            )),
            other => Ok(other),
        };
        let config_dir = dir("configDir", raw.config_dir)?;
        let state_dir = dir("stateDir", raw.state_dir)?;
        if raw.runtime_config.ips.len() > 2 {
            return Err(invalid(
                "runtimeConfig.ips",
                "more than one address per family".into(),
            ));
        }
        let ips = parse_ips(raw.runtime_config.ips.iter().map(String::as_str))
            .map_err(|reason| invalid("runtimeConfig.ips", reason))?;
        let mac = raw
            .runtime_config
            .mac
            .map(|mac| {
                mac.parse().map_err(|_| {
                    invalid(
                        "runtimeConfig.mac",
                        format!("{:?} is not a MAC address", echo(&mac)),
                    )
                })
            })
            .transpose()?;
        Ok(Self {
            version,
            name,
            network,
            config_dir,
            state_dir,
            ips,
            mac,
            prev_result: raw.prev_result,
            valid_attachments: raw
                .valid_attachments
                .or(raw.legacy_attachments)
                .map(|list| {
                    list.into_iter()
                        .map(|a| (a.container_id, a.ifname))
                        .collect()
                }),
        })
    }

    /// The config's directory for definitions, or `default`.
    pub fn config_dir_or<'a>(&'a self, default: &'a Path) -> &'a Path {
        self.config_dir.as_deref().unwrap_or(default)
    }

    /// The config's directory for state, or `default`.
    pub fn state_dir_or<'a>(&'a self, default: &'a Path) -> &'a Path {
        self.state_dir.as_deref().unwrap_or(default)
    }
}

/// The `cniVersion` of a config a plugin could not fully parse (for its error reply), if it
/// is one this plugin speaks.
pub fn peek_version(bytes: &[u8]) -> Option<Version> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Peek {
        cni_version: String,
    }
    let peek: Peek = serde_json::from_slice(bytes).ok()?;
    Version::parse(&peek.cni_version)
}

fn version_of(text: Option<&str>) -> Result<Version> {
    let text = text.ok_or(Error::InvalidConfig {
        field: "cniVersion",
        reason: "missing".into(),
    })?;
    Version::parse(text).ok_or_else(|| Error::IncompatibleVersion {
        version: echo(text),
    })
}

/// Stdin, at most [`MAX_CONFIG`] bytes: one more is an error, never a cut config.
pub fn read_bounded(input: impl Read) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    input
        .take(MAX_CONFIG as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(Error::Stdin)?;
    if bytes.len() > MAX_CONFIG {
        return Err(Error::ConfigTooLarge);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::code;

    fn conf(value: Value) -> Result<NetConf> {
        NetConf::parse(&serde_json::to_vec(&value).unwrap())
    }

    fn base() -> Value {
        json!({"cniVersion": "1.0.0", "name": "lan", "type": "oci-macvlan", "network": "lan50"})
    }

    fn with(key: &str, value: Value) -> Value {
        let mut v = base();
        v[key] = value;
        v
    }

    #[test]
    fn a_config_with_our_keys_and_others_is_read() {
        let mut v = base();
        v["configDir"] = json!("/etc/x");
        v["capabilities"] = json!({"ips": true});
        v["runtimeConfig"] =
            json!({"ips": ["192.168.50.9/24"], "mac": "02:00:00:00:00:09", "portMappings": []});
        v["prevResult"] = json!({"cniVersion": "1.0.0", "interfaces": []});
        let c = conf(v).unwrap();
        assert_eq!(c.version, Version::V1_0_0);
        assert_eq!(c.network, "lan50");
        assert_eq!(c.config_dir.as_deref(), Some(Path::new("/etc/x")));
        assert_eq!(c.ips, ["192.168.50.9".parse::<IpAddr>().unwrap()]);
        assert!(c.mac.is_some() && c.prev_result.is_some());
    }

    /// Each malformed config gets the spec's code and names the field.
    #[test]
    fn a_bad_config_gets_the_specs_code_naming_the_field() {
        for (value, want, field) in [
            (
                with("cniVersion", json!("0.2.0")),
                code::INCOMPATIBLE_VERSION,
                "0.2.0",
            ),
            (
                with("cniVersion", json!("9.9.9")),
                code::INCOMPATIBLE_VERSION,
                "9.9.9",
            ),
            (
                with("cniVersion", Value::Null),
                code::INVALID_CONFIG,
                "cniVersion",
            ),
            (
                with("network", Value::Null),
                code::INVALID_CONFIG,
                "network",
            ),
            (
                with("network", json!("../x")),
                code::INVALID_CONFIG,
                "network",
            ),
            (with("network", json!(5)), code::DECODE, "network config"),
            (with("name", json!("")), code::INVALID_CONFIG, "name"),
            (with("type", json!("macvlan")), code::INVALID_CONFIG, "type"),
            (
                with("stateDir", json!("run/x")),
                code::INVALID_CONFIG,
                "stateDir",
            ),
            (
                with("runtimeConfig", json!({"ips": ["1.2.3.4", "1.2.3.5"]})),
                code::INVALID_CONFIG,
                "runtimeConfig.ips",
            ),
            (
                with("runtimeConfig", json!({"mac": "nope"})),
                code::INVALID_CONFIG,
                "runtimeConfig.mac",
            ),
        ] {
            let err = conf(value.clone()).unwrap_err();
            assert_eq!(err.code(), want, "{value}: {err}");
            assert!(err.to_string().contains(field), "{value}: {err}");
        }
        let err = NetConf::parse(b"{").unwrap_err();
        assert_eq!(err.code(), code::DECODE);
    }

    #[test]
    fn gc_reads_the_valid_attachments_or_the_legacy_key() {
        let list = json!([{"containerID": "c1", "ifname": "eth0"}]);
        for key in ["cni.dev/valid-attachments", "cni.dev/attachments"] {
            let c = conf(with(key, list.clone())).unwrap();
            assert_eq!(
                c.valid_attachments,
                Some(vec![("c1".into(), "eth0".into())])
            );
        }
        assert_eq!(conf(base()).unwrap().valid_attachments, None);
    }

    #[test]
    fn stdin_past_the_bound_is_refused_not_cut() {
        let huge = vec![b' '; MAX_CONFIG + 1];
        let err = NetConf::read(&huge[..]).unwrap_err();
        assert_eq!(err.code(), code::INVALID_CONFIG);
        assert!(matches!(err, Error::ConfigTooLarge));
        assert_eq!(read_bounded(&b"{}"[..]).unwrap(), b"{}");
    }

    #[test]
    fn the_version_of_a_config_that_fails_is_still_used_for_its_reply() {
        assert_eq!(
            peek_version(br#"{"cniVersion":"0.4.0","name":""}"#),
            Some(Version::V0_4_0)
        );
        assert_eq!(peek_version(b"{"), None);
    }
}
