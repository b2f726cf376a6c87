//! `CNI_ARGS`: `KEY=VALUE` pairs separated by `;`, as runtimes pass per-container requests.

use std::{collections::BTreeSet, net::IpAddr};

use oci_macvlan_macvlan::{ContainerName, MacAddr};

use crate::{Error, Result, error::echo};

/// The longest `CNI_ARGS` read.
const MAX_ARGS: usize = 4096;

/// What `CNI_ARGS` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    /// `IP=`: static addresses (comma-separated, each with an optional `/prefix`, which is the
    /// network's anyway), at most one per family.
    pub ips: Vec<IpAddr>,
    /// `MAC=`: the link's MAC.
    pub mac: Option<MacAddr>,
    /// `K8S_POD_NAME`.
    pub pod_name: Option<String>,
    /// `K8S_POD_NAMESPACE`.
    pub pod_namespace: Option<String>,
    /// The container's name: the pod's, `namespace/name` (or its name alone when no namespace
    /// is given), recorded and shown by `network inspect`.
    pub name: Option<ContainerName>,
}

/// The keys Kubernetes runtimes send that this plugin has no use for.
const KNOWN_UNUSED: [&str; 2] = ["K8S_POD_INFRA_CONTAINER_ID", "K8S_POD_UID"];

impl Args {
    /// Parses `CNI_ARGS`. A key other than those [`Args`] holds (and the ones Kubernetes
    /// sends) is refused unless `IgnoreUnknown=1` (or `true`) is among the pairs, as libcni's
    /// plugins do; a key given twice is refused, never last-wins.
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidEnv {
            var: "CNI_ARGS",
            value: echo(text),
            reason,
        };
        if text.len() > MAX_ARGS {
            return Err(invalid(format!("longer than {MAX_ARGS} bytes")));
        }
        let mut pairs = Vec::new();
        let mut seen = BTreeSet::new();
        for pair in text.split(';').filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| invalid(format!("{:?} is not KEY=VALUE", echo(pair))))?;
            if !seen.insert(key) {
                return Err(invalid(format!("{} is given twice", echo(key))));
            }
            pairs.push((key, value));
        }
        let ignore_unknown = pairs.iter().any(|&(key, value)| {
            key == "IgnoreUnknown" && (value == "1" || value.eq_ignore_ascii_case("true"))
        });
        let mut args = Self::default();
        for (key, value) in pairs {
            match key {
                "IP" => args.ips = parse_ips(value.split(',')).map_err(invalid)?,
                "MAC" => {
                    args.mac = Some(value.parse().map_err(|_| {
                        invalid(format!("MAC {:?} is not a MAC address", echo(value)))
                    })?);
                }
                "K8S_POD_NAME" => args.pod_name = Some(name(key, value).map_err(invalid)?),
                "K8S_POD_NAMESPACE" => {
                    args.pod_namespace = Some(name(key, value).map_err(invalid)?);
                }
                "IgnoreUnknown" => {}
                key if KNOWN_UNUSED.contains(&key) || ignore_unknown => {}
                key => {
                    return Err(invalid(format!(
                        "unknown key {} (IgnoreUnknown=1 lets it pass)",
                        echo(key)
                    )));
                }
            }
        }
        if let Some(pod) = &args.pod_name {
            args.name = Some(
                ContainerName::pod(args.pod_namespace.as_deref(), pod)
                    .map_err(|err| invalid(err.to_string()))?,
            );
        }
        Ok(args)
    }
}

/// Addresses as `IP=` and `runtimeConfig.ips` give them: each with an optional `/prefix`, at
/// most one per family.
pub(crate) fn parse_ips<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> std::result::Result<Vec<IpAddr>, String> {
    let mut ips: Vec<IpAddr> = Vec::new();
    for value in values {
        let (addr, prefix) = match value.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (value, None),
        };
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("{:?} is not an IP address", echo(value)))?;
        if let Some(prefix) = prefix {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            if !prefix.parse::<u8>().is_ok_and(|p| p <= max) {
                return Err(format!("{:?} has an invalid prefix length", echo(value)));
            }
        }
        if ips.iter().any(|old| old.is_ipv4() == ip.is_ipv4()) {
            return Err(format!(
                "more than one IPv{} address",
                if ip.is_ipv4() { 4 } else { 6 }
            ));
        }
        ips.push(ip);
    }
    Ok(ips)
}

/// A pod's name or namespace, checked by the core's rule for a container's name.
fn name(key: &str, value: &str) -> std::result::Result<String, String> {
    ContainerName::pod(None, value)
        .map(String::from)
        .map_err(|err| format!("{key}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_runtimes_send_is_read() {
        let args = Args::parse(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;\
             K8S_POD_INFRA_CONTAINER_ID=abc;IP=192.168.50.10/24,fd00::10;MAC=02:00:00:00:00:01",
        )
        .unwrap();
        assert_eq!(
            args.ips,
            [
                "192.168.50.10".parse::<IpAddr>().unwrap(),
                "fd00::10".parse().unwrap()
            ]
        );
        assert_eq!(args.mac, Some("02:00:00:00:00:01".parse().unwrap()));
        assert_eq!(args.pod_name.as_deref(), Some("web-0"));
        assert_eq!(args.pod_namespace.as_deref(), Some("default"));
        assert_eq!(args.name.unwrap().as_str(), "default/web-0");
        let alone = Args::parse("K8S_POD_NAME=web-1").unwrap();
        assert_eq!(alone.name.unwrap().as_str(), "web-1");
        assert_eq!(Args::parse("K8S_POD_NAMESPACE=ns").unwrap().name, None);
        assert_eq!(Args::parse("").unwrap(), Args::default());
        assert!(Args::parse("Other=1;IgnoreUnknown=true").is_ok());
    }

    /// Each hostile or malformed `CNI_ARGS` is refused as an invalid environment (code 4),
    /// naming the variable and why.
    #[test]
    fn hostile_args_are_refused_naming_why() {
        let long = "A".repeat(MAX_ARGS + 1);
        let long_pod = format!("K8S_POD_NAME={}", "a".repeat(254));
        for (text, why) in [
            ("IP", "is not KEY=VALUE"),
            ("IP=1.2.3.4;IP=1.2.3.5", "IP is given twice"),
            ("IP=1.2.3.4,1.2.3.5", "more than one IPv4 address"),
            ("IP=1.2.3.4/33", "invalid prefix length"),
            ("IP=eth0", "is not an IP address"),
            ("MAC=zz", "is not a MAC address"),
            ("Other=1", "unknown key Other"),
            ("K8S_POD_NAME=a/b", "K8S_POD_NAME: invalid container name"),
            ("K8S_POD_NAMESPACE=a/b;K8S_POD_NAME=c", "no '/'"),
            ("K8S_POD_NAME=web\n0;IgnoreUnknown=1", "only letters"),
            (long_pod.as_str(), "longer than 253 characters"),
            ("K8S_POD_NAME=..", "'.' and '..'"),
            (long.as_str(), "longer than 4096 bytes"),
        ] {
            let err = Args::parse(text).unwrap_err();
            assert_eq!(err.code(), crate::code::INVALID_ENVIRONMENT, "{text}");
            let msg = err.to_string();
            assert!(msg.starts_with("invalid CNI_ARGS="), "{msg}");
            assert!(msg.contains(why), "{text}: {msg}");
            assert!(msg.len() < 300, "{msg}");
        }
    }
}
