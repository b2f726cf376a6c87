//! The etcd backend's configuration: its `--ipam-opt`s (`etcd_*`), parsed and checked once, at
//! `network create`, into an [`EtcdConfig`], which the definition and the records keep as the
//! store's [`Locator`] (`"etcd": {…}`); and [`EtcdBackend`], the [`Backend`] a store policy
//! registers.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use oci_macvlan_ipam::{Backend, Error, HostIdentity, LeaseStore, Locator, Result, locator::bad};
use serde::{Deserialize, Serialize};

use crate::EtcdStore;

/// The keys `--ipam-opt` takes, in the order the error for an unknown one lists them.
pub const IPAM_OPTION_KEYS: [&str; 6] = [
    "etcd_endpoints",
    "etcd_prefix",
    "etcd_cacert",
    "etcd_cert",
    "etcd_key",
    "etcd_timeout",
];

/// The prefix of a cluster's keys when `etcd_prefix` is not given.
pub const DEFAULT_ETCD_PREFIX: &str = "/oci-macvlan";
/// How long one operation may take when `etcd_timeout` is not given.
pub const DEFAULT_ETCD_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest `etcd_timeout`: a hook that waits longer than this is one a runtime kills.
const MAX_ETCD_TIMEOUT: Duration = Duration::from_secs(60);
/// A certificate or key larger than this is not one.
const MAX_PEM: u64 = 1 << 20;

/// An etcd cluster, as `--ipam-opt` named it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EtcdConfig {
    /// `http://host:port` or `https://host:port`, tried in order.
    pub endpoints: Vec<String>,
    /// The first byte of every key oci-macvlan writes, without a trailing `/`.
    pub prefix: String,
    /// The cluster's CA certificate (`https://` endpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cacert: Option<PathBuf>,
    /// This host's client certificate, if the cluster asks for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// The client certificate's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// How long one operation on the cluster (a read; a transaction or a release, with its
    /// retries) may take, all its endpoints' turns included.
    pub timeout_ms: u64,
}

impl EtcdConfig {
    /// The backend's name, the key of its locators.
    pub const BACKEND: &'static str = "etcd";

    /// The cluster a locator names: an error when the locator is not etcd's or not readable.
    pub fn from_locator(locator: &Locator) -> Result<Self> {
        if locator.backend() != Self::BACKEND {
            return Err(Error::Corrupt(format!(
                "lease store {:?} is not an etcd cluster",
                locator.backend()
            )));
        }
        serde_json::from_value(locator.config().clone())
            .map_err(|err| Error::Corrupt(format!("etcd cluster of a definition or record: {err}")))
    }

    /// This cluster as a locator.
    pub fn to_locator(&self) -> Result<Locator> {
        let config = serde_json::to_value(self).map_err(|err| Error::Corrupt(err.to_string()))?;
        Ok(Locator::new(Self::BACKEND, config))
    }

    /// How long one operation may take.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// Whether `other` names this cluster's leases (the same endpoints and prefix): a record
    /// keeps the config of its attach, which a definition edited since (a timeout, a
    /// certificate's path) may word differently.
    pub fn same_cluster(&self, other: &Self) -> bool {
        self.endpoints == other.endpoints
            && normal_prefix(&self.prefix) == normal_prefix(&other.prefix)
    }

    /// Whether the keys of `other` and of this config may fall under one another: a shared
    /// endpoint (one cluster, as far as this host can tell) and prefixes one of which is a
    /// path below the other (`/col` and `/col/leases/zz`: the outer one's range of leases
    /// holds the inner one's keys). The same prefix is one store, not a nesting.
    pub fn nests_with(&self, other: &Self) -> bool {
        let (a, b) = (normal_prefix(&self.prefix), normal_prefix(&other.prefix));
        let below = |outer: &str, inner: &str| {
            inner
                .strip_prefix(outer)
                .is_some_and(|rest| rest.starts_with('/'))
        };
        self.endpoints.iter().any(|e| other.endpoints.contains(e))
            && (below(&a, &b) || below(&b, &a))
    }

    /// The endpoints as an error names them.
    pub fn describe(&self) -> String {
        format!("etcd {}", self.endpoints.join(","))
    }

    /// The options as `inspect` shows them (Docker's `IPAM.Options`).
    pub fn options(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        out.insert("etcd_endpoints".into(), self.endpoints.join(","));
        out.insert("etcd_prefix".into(), self.prefix.clone());
        for (key, path) in [
            ("etcd_cacert", &self.cacert),
            ("etcd_cert", &self.cert),
            ("etcd_key", &self.key),
        ] {
            if let Some(path) = path {
                out.insert(key.into(), path.display().to_string());
            }
        }
        out.insert("etcd_timeout".into(), format!("{}ms", self.timeout_ms));
        out
    }
}

/// The cluster `given` (the `--ipam-opt`s of this backend, already split and checked for
/// repeats and empty values) names. Certificate files must be readable regular files now: a
/// typo is found at `network create`, not at the first attach.
fn parse(given: &BTreeMap<&str, &str>) -> Result<EtcdConfig> {
    let Some(endpoints) = given.get("etcd_endpoints") else {
        let key = given.keys().next().copied().unwrap_or("etcd_endpoints");
        return Err(bad(key, "needs etcd_endpoints"));
    };
    let endpoints = endpoints
        .split(',')
        .map(|url| check_endpoint(url).map(str::to_owned))
        .collect::<Result<Vec<_>>>()?;
    let prefix = match given.get("etcd_prefix") {
        None => DEFAULT_ETCD_PREFIX.to_owned(),
        Some(prefix) => check_prefix(prefix)?,
    };
    let file = |key: &str| -> Result<Option<PathBuf>> {
        given.get(key).map(|path| check_pem(key, path)).transpose()
    };
    let (cacert, cert, key) = (file("etcd_cacert")?, file("etcd_cert")?, file("etcd_key")?);
    if cert.is_some() != key.is_some() {
        let missing = if cert.is_some() {
            "etcd_key"
        } else {
            "etcd_cert"
        };
        return Err(bad(missing, "etcd_cert and etcd_key go together"));
    }
    let tls = endpoints.iter().any(|url| url.starts_with("https://"));
    if (cacert.is_some() || cert.is_some()) && !tls {
        return Err(bad(
            "etcd_endpoints",
            "certificates are given but no endpoint is https://",
        ));
    }
    if tls && endpoints.iter().any(|url| url.starts_with("http://")) {
        return Err(bad(
            "etcd_endpoints",
            "mixes http:// and https:// endpoints of one cluster",
        ));
    }
    if tls && cacert.is_none() {
        return Err(bad(
            "etcd_cacert",
            "https:// endpoints need the cluster's CA certificate",
        ));
    }
    let timeout = match given.get("etcd_timeout") {
        None => DEFAULT_ETCD_TIMEOUT,
        Some(value) => parse_timeout(value)?,
    };
    Ok(EtcdConfig {
        endpoints,
        prefix,
        cacert,
        cert,
        key,
        timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
    })
}

/// The etcd backend: networks defined with `--ipam-opt etcd_endpoints=…`.
#[derive(Debug, Clone, Copy, Default)]
pub struct EtcdBackend;

/// The etcd backend, for a store policy's list of backends.
pub const BACKEND: EtcdBackend = EtcdBackend;

impl Backend for EtcdBackend {
    fn name(&self) -> &'static str {
        EtcdConfig::BACKEND
    }

    fn option_keys(&self) -> &'static [&'static str] {
        &IPAM_OPTION_KEYS
    }

    fn parse_options(&self, given: &BTreeMap<&str, &str>) -> Result<Locator> {
        parse(given)?.to_locator()
    }

    fn same_store(&self, a: &Locator, b: &Locator) -> bool {
        match (EtcdConfig::from_locator(a), EtcdConfig::from_locator(b)) {
            (Ok(a), Ok(b)) => a.same_cluster(&b),
            _ => a == b,
        }
    }

    fn clash(&self, mine: &Locator, theirs: &Locator, other: &str) -> Option<String> {
        let (mine, theirs) = (
            EtcdConfig::from_locator(mine).ok()?,
            EtcdConfig::from_locator(theirs).ok()?,
        );
        mine.nests_with(&theirs).then(|| {
            format!(
                "etcd_prefix {} and etcd_prefix {} of network {other} are nested on one cluster: the outer one would read the inner one's keys as its own; use the same prefix or two apart",
                mine.prefix, theirs.prefix
            )
        })
    }

    fn describe(&self, locator: &Locator) -> String {
        match EtcdConfig::from_locator(locator) {
            Ok(config) => format!("{} under {}", config.describe(), config.prefix),
            Err(_) => "an unreadable etcd cluster".to_owned(),
        }
    }

    fn options(&self, locator: &Locator) -> BTreeMap<String, String> {
        EtcdConfig::from_locator(locator)
            .map(|config| config.options())
            .unwrap_or_default()
    }

    fn open(&self, locator: &Locator, host: &HostIdentity) -> Result<Box<dyn LeaseStore>> {
        let config = EtcdConfig::from_locator(locator)?;
        Ok(Box::new(EtcdStore::open(&config, host)?))
    }
}

fn check_endpoint(url: &str) -> Result<&str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| {
            bad(
                "etcd_endpoints",
                format!("{url:?}: expected http://HOST:PORT or https://HOST:PORT"),
            )
        })?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| bad("etcd_endpoints", format!("{url:?}: no port")))?;
    let host_ok = !host.is_empty()
        && (host.starts_with('[') && host.ends_with(']')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'));
    if !host_ok {
        return Err(bad(
            "etcd_endpoints",
            format!("{url:?}: invalid host {host:?}"),
        ));
    }
    if port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(bad(
            "etcd_endpoints",
            format!("{url:?}: invalid port {port:?}"),
        ));
    }
    Ok(url.strip_suffix('/').unwrap_or(url))
}

/// A prefix as its keys see it: one `/` where several were given, none at the end (a
/// definition written before prefixes were normalised compares as one written after).
fn normal_prefix(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    out.trim_end_matches('/').to_owned()
}

fn check_prefix(prefix: &str) -> Result<String> {
    let normal = normal_prefix(prefix);
    let trimmed = normal.as_str();
    if !trimmed.starts_with('/')
        || trimmed.len() > 256
        || !trimmed.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
    {
        return Err(bad(
            "etcd_prefix",
            format!(
                "{prefix:?}: expected a path such as /oci-macvlan (printable, at most 256 bytes)"
            ),
        ));
    }
    Ok(trimmed.to_owned())
}

fn check_pem(key: &str, path: &str) -> Result<PathBuf> {
    let path = PathBuf::from(path);
    if !path.is_absolute() {
        return Err(bad(
            key,
            format!("{}: not an absolute path", path.display()),
        ));
    }
    let meta = std::fs::metadata(&path)
        .map_err(|err| bad(key, format!("cannot read {}: {err}", path.display())))?;
    if !meta.is_file() || meta.len() > MAX_PEM {
        return Err(bad(key, format!("{}: not a PEM file", path.display())));
    }
    let text = std::fs::read(&path)
        .map_err(|err| bad(key, format!("cannot read {}: {err}", path.display())))?;
    if !text.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(bad(key, format!("{}: not a PEM file", path.display())));
    }
    Ok(path)
}

fn parse_timeout(value: &str) -> Result<Duration> {
    let (number, unit) = match value.strip_suffix("ms") {
        Some(number) => (number, Duration::from_millis(1)),
        None => match value.strip_suffix('s') {
            Some(number) => (number, Duration::from_secs(1)),
            None => (value, Duration::from_secs(1)),
        },
    };
    let timeout = number
        .parse::<u32>()
        .ok()
        .map(|n| unit * n)
        .filter(|t| !t.is_zero() && *t <= MAX_ETCD_TIMEOUT)
        .ok_or_else(|| {
            bad(
                "etcd_timeout",
                format!("{value:?}: expected a duration such as 2s or 500ms, at most 60s"),
            )
        })?;
    Ok(timeout)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use oci_macvlan_ipam::{Backends, StoreChoice};

    use super::*;

    fn parse(opts: &[&str]) -> Result<StoreChoice> {
        Backends(&[&BACKEND])
            .parse_options(&opts.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn no_options_is_the_local_store() {
        assert_eq!(parse(&[]).unwrap(), StoreChoice::Local);
    }

    #[test]
    fn endpoints_with_defaults() {
        let cfg = etcd(&["etcd_endpoints=http://10.0.0.5:2379,http://[fd00::5]:2379/"]);
        assert_eq!(
            cfg.endpoints,
            ["http://10.0.0.5:2379", "http://[fd00::5]:2379"]
        );
        assert_eq!(cfg.prefix, "/oci-macvlan");
        assert_eq!(cfg.timeout_ms, 2000);
    }

    fn etcd(opts: &[&str]) -> EtcdConfig {
        match parse(opts).unwrap() {
            StoreChoice::Shared(locator) => EtcdConfig::from_locator(&locator).unwrap(),
            StoreChoice::Local => panic!("not etcd"),
        }
    }

    #[test]
    fn prefixes_are_normalised_and_nesting_is_seen() {
        let a = "etcd_endpoints=http://a:1";
        assert_eq!(etcd(&[a, "etcd_prefix=//col//x/"]).prefix, "/col/x");
        let outer = etcd(&[a, "etcd_prefix=/col"]);
        let inner = etcd(&[a, "etcd_prefix=/col/leases/zz"]);
        let sibling = etcd(&[a, "etcd_prefix=/column"]);
        let elsewhere = etcd(&["etcd_endpoints=http://b:1", "etcd_prefix=/col/leases/zz"]);
        assert!(outer.nests_with(&inner) && inner.nests_with(&outer));
        assert!(!outer.nests_with(&outer), "one prefix is one store");
        assert!(!outer.nests_with(&sibling), "/column is not below /col");
        assert!(!outer.nests_with(&elsewhere), "another cluster");
        let mut old = outer.clone();
        old.prefix = "/col/".into();
        assert!(old.same_cluster(&outer));
    }

    #[test]
    fn bad_options_are_named() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["etcd_endpont=http://a:1"],
                "invalid --ipam-opt etcd_endpont: unknown option; known: etcd_endpoints, etcd_prefix, etcd_cacert, etcd_cert, etcd_key, etcd_timeout",
            ),
            (
                &["etcd_endpoints"],
                "invalid --ipam-opt etcd_endpoints: expected KEY=VALUE",
            ),
            (
                &["etcd_endpoints=10.0.0.5:2379"],
                "invalid --ipam-opt etcd_endpoints: \"10.0.0.5:2379\": expected http://HOST:PORT or https://HOST:PORT",
            ),
            (
                &["etcd_endpoints=http://10.0.0.5"],
                "invalid --ipam-opt etcd_endpoints: \"http://10.0.0.5\": no port",
            ),
            (
                &["etcd_endpoints=http://a b:1"],
                "invalid --ipam-opt etcd_endpoints: \"http://a b:1\": invalid host \"a b\"",
            ),
            (
                &["etcd_endpoints=http://a:99999"],
                "invalid --ipam-opt etcd_endpoints: \"http://a:99999\": invalid port \"99999\"",
            ),
            (
                &["etcd_endpoints=http://a:1", "etcd_endpoints=http://b:1"],
                "invalid --ipam-opt etcd_endpoints: given twice",
            ),
            (
                &["etcd_prefix=/x"],
                "invalid --ipam-opt etcd_prefix: needs etcd_endpoints",
            ),
            (
                &["etcd_endpoints=http://a:1", "etcd_prefix=x"],
                "invalid --ipam-opt etcd_prefix: \"x\": expected a path such as /oci-macvlan (printable, at most 256 bytes)",
            ),
            (
                &["etcd_endpoints=http://a:1", "etcd_timeout=0s"],
                "invalid --ipam-opt etcd_timeout: \"0s\": expected a duration such as 2s or 500ms, at most 60s",
            ),
            (
                &["etcd_endpoints=http://a:1", "etcd_timeout=2h"],
                "invalid --ipam-opt etcd_timeout: \"2h\": expected a duration such as 2s or 500ms, at most 60s",
            ),
            (
                &[
                    "etcd_endpoints=https://a:1",
                    "etcd_cacert=/nonexistent/ca.pem",
                ],
                "invalid --ipam-opt etcd_cacert: cannot read /nonexistent/ca.pem: No such file or directory (os error 2)",
            ),
            (
                &["etcd_endpoints=https://a:1", "etcd_cacert=ca.pem"],
                "invalid --ipam-opt etcd_cacert: ca.pem: not an absolute path",
            ),
            (
                &["etcd_endpoints=https://a:1", "etcd_cacert=/etc/hostname"],
                "invalid --ipam-opt etcd_cacert: /etc/hostname: not a PEM file",
            ),
            (
                &["etcd_endpoints=http://a:1,https://b:1"],
                "invalid --ipam-opt etcd_endpoints: mixes http:// and https:// endpoints of one cluster",
            ),
        ];
        for (opts, want) in cases {
            let err = parse(opts).unwrap_err();
            assert_eq!(err.to_string(), *want, "{opts:?}");
            assert!(err.is_invalid_input());
        }
    }
}
