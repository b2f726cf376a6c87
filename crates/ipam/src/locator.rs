//! Where a network's leases live, as the rest of the workspace sees it: this host's store, or
//! a shared store named by an opaque [`Locator`] that only its backend reads. `--ipam-opt` is
//! split and checked here (`KEY=VALUE`, a known key, given once, not empty) and handed to the
//! [`Backend`] whose key it is; a new backend is a crate implementing [`Backend`] and its
//! registration in the front doors' store policy (`oci-macvlan-stores`), nothing here.

use std::{collections::BTreeMap, fmt};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use serde_json::Value;

use crate::{Error, LeaseStore, Result};

/// A shared store's locator: its backend's name and the backend's own configuration (as the
/// definition and the endpoint record keep it), compared, kept and shown by everyone else,
/// read by the backend alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locator {
    backend: String,
    config: Value,
}

impl Locator {
    /// The locator of `backend`'s store `config` (a JSON object).
    pub fn new(backend: &str, config: Value) -> Self {
        Self {
            backend: backend.to_owned(),
            config,
        }
    }

    /// The backend's name (`"etcd"`): the key the locator is kept under.
    pub fn backend(&self) -> &str {
        &self.backend
    }

    /// The backend's configuration, for the backend to read.
    pub fn config(&self) -> &Value {
        &self.config
    }
}

/// Where a network's leases live. An endpoint record keeps it too (`"local"`, or
/// `{"<backend>": {…}}`, as `{"etcd": {…}}`), so that a detach opens the store the leases were
/// taken from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StoreChoice {
    /// This host's LMDB store in the state dir.
    #[default]
    Local,
    /// A store several hosts share, as its backend locates it.
    Shared(Locator),
}

impl StoreChoice {
    /// Whether this is this host's own store.
    pub fn is_local(&self) -> bool {
        matches!(self, Self::Local)
    }

    /// The shared store's locator, if it is one.
    pub fn shared(&self) -> Option<&Locator> {
        match self {
            Self::Local => None,
            Self::Shared(locator) => Some(locator),
        }
    }
}

impl Serialize for StoreChoice {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Self::Local => serializer.serialize_str("local"),
            Self::Shared(locator) => {
                BTreeMap::from([(&locator.backend, &locator.config)]).serialize(serializer)
            }
        }
    }
}

impl<'de> Deserialize<'de> for StoreChoice {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(local) if local == "local" => Ok(Self::Local),
            Value::Object(map) if map.len() == 1 => {
                let (backend, config) = map
                    .into_iter()
                    .next()
                    .ok_or_else(|| de::Error::custom("expected \"local\" or {\"BACKEND\": {…}}"))?;
                shared(backend, config)
            }
            _ => Err(de::Error::custom(
                "expected \"local\" or {\"BACKEND\": {…}}",
            )),
        }
    }
}

/// A shared store's locator from its key and value, which must be an object.
fn shared<E: de::Error>(backend: String, config: Value) -> std::result::Result<StoreChoice, E> {
    if !config.is_object() {
        return Err(E::custom(format!(
            "the store {backend:?} is not located by an object"
        )));
    }
    Ok(StoreChoice::Shared(Locator { backend, config }))
}

/// The store in a network definition: beside the definition's own fields, a shared store's
/// locator under its backend's name (`"etcd": {…}`, as definitions have always been written),
/// none for the local store. For `#[serde(flatten, with = "…")]`: of the fields the definition
/// does not know, the one whose value is an object is the locator (a definition holds none
/// other).
pub mod in_definition {
    use super::*;

    /// Writes `choice` as zero or one field.
    pub fn serialize<S: Serializer>(
        choice: &StoreChoice,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        match choice {
            StoreChoice::Local => BTreeMap::<String, Value>::new().serialize(serializer),
            StoreChoice::Shared(locator) => {
                BTreeMap::from([(&locator.backend, &locator.config)]).serialize(serializer)
            }
        }
    }

    /// Reads the store from the fields the definition left.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<StoreChoice, D::Error> {
        struct Fields;
        impl<'de> de::Visitor<'de> for Fields {
            type Value = StoreChoice;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a definition's fields")
            }

            fn visit_map<A: de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<StoreChoice, A::Error> {
                let mut found = StoreChoice::Local;
                while let Some((key, value)) = map.next_entry::<String, Value>()? {
                    if !value.is_object() {
                        continue;
                    }
                    if let StoreChoice::Shared(first) = &found {
                        return Err(de::Error::custom(format!(
                            "a definition names two lease stores, {} and {key}",
                            first.backend
                        )));
                    }
                    found = shared(key, value)?;
                }
                Ok(found)
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

/// Who this host is in a shared store: its id and the proof of its claim (a hash of the secret
/// only this machine holds; the secret itself never leaves the machine).
#[derive(Debug, Clone)]
pub struct HostIdentity {
    /// The host's id (`--host-id`, or the identity file's).
    pub id: String,
    /// `None` when this host has no identity file yet and the command only reads (it makes
    /// none): a write is refused then.
    pub proof: Option<String>,
    /// Where the secret is kept (named in the error that refuses another machine).
    pub kept_in: String,
}

/// A kind of shared lease store: what reads its `--ipam-opt`s and its [`Locator`]s, and opens
/// it. The front doors' store policy keeps the list of backends; nothing else names one.
pub trait Backend: Sync {
    /// Its name: the key its locators are kept under (`"etcd"`).
    fn name(&self) -> &'static str;
    /// The `--ipam-opt` keys it reads, in the order an error for an unknown key lists them.
    fn option_keys(&self) -> &'static [&'static str];
    /// Its locator from the options given (only its own keys, each once, none empty); an
    /// error names the option at fault ([`Error::IpamOption`]).
    fn parse_options(&self, given: &BTreeMap<&str, &str>) -> Result<Locator>;
    /// Whether two of its locators name the same leases (a record keeps the locator of its
    /// attach, which a definition edited since may word differently).
    fn same_store(&self, a: &Locator, b: &Locator) -> bool;
    /// Why `mine` cannot live beside `theirs` (of network `other`) although they are not the
    /// same store (one would read the other's leases as its own), if it cannot.
    fn clash(&self, mine: &Locator, theirs: &Locator, other: &str) -> Option<String>;
    /// The store as an error names it.
    fn describe(&self, locator: &Locator) -> String;
    /// Its options as `inspect` shows them (Docker's `IPAM.Options`).
    fn options(&self, locator: &Locator) -> BTreeMap<String, String>;
    /// Opens the store as `host`.
    fn open(&self, locator: &Locator, host: &HostIdentity) -> Result<Box<dyn LeaseStore>>;
}

/// The backends a store policy knows (see [`Backend`]).
#[derive(Clone, Copy, Default)]
pub struct Backends(pub &'static [&'static dyn Backend]);

impl fmt::Debug for Backends {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|b| b.name()))
            .finish()
    }
}

impl Backends {
    /// The backend of `locator`: an error naming the store when none has its name.
    pub fn of(&self, locator: &Locator) -> Result<&'static dyn Backend> {
        self.0
            .iter()
            .copied()
            .find(|b| b.name() == locator.backend)
            .ok_or_else(|| {
                Error::Corrupt(format!(
                    "lease store {:?}: no such kind of store (known: {})",
                    locator.backend,
                    self.names()
                ))
            })
    }

    fn names(&self) -> String {
        let names: Vec<&str> = self.0.iter().map(|b| b.name()).collect();
        names.join(", ")
    }

    /// Whether `a` and `b` are one store: both local, or one backend's same leases.
    pub fn same_store(&self, a: &StoreChoice, b: &StoreChoice) -> bool {
        match (a, b) {
            (StoreChoice::Local, StoreChoice::Local) => true,
            (StoreChoice::Shared(a), StoreChoice::Shared(b)) => {
                a.backend == b.backend && self.of(a).is_ok_and(|backend| backend.same_store(a, b))
            }
            (StoreChoice::Local, StoreChoice::Shared(_))
            | (StoreChoice::Shared(_), StoreChoice::Local) => false,
        }
    }

    /// Why `mine` cannot live beside `theirs`, of network `other` (see [`Backend::clash`]).
    pub fn clash(&self, mine: &StoreChoice, theirs: &StoreChoice, other: &str) -> Option<String> {
        match (mine, theirs) {
            (StoreChoice::Shared(a), StoreChoice::Shared(b)) if a.backend == b.backend => {
                self.of(a).ok()?.clash(a, b, other)
            }
            _ => None,
        }
    }

    /// The store as an error names it.
    pub fn describe(&self, choice: &StoreChoice) -> String {
        match choice {
            StoreChoice::Local => "this host's local store".to_owned(),
            StoreChoice::Shared(locator) => match self.of(locator) {
                Ok(backend) => backend.describe(locator),
                Err(_) => format!("a {} store", locator.backend),
            },
        }
    }

    /// The options of `choice` as `inspect` shows them (none for the local store).
    pub fn options(&self, choice: &StoreChoice) -> BTreeMap<String, String> {
        match choice {
            StoreChoice::Local => BTreeMap::new(),
            StoreChoice::Shared(locator) => self
                .of(locator)
                .map(|backend| backend.options(locator))
                .unwrap_or_default(),
        }
    }

    /// Parses `--ipam-opt KEY=VALUE` options (each key at most once) into the store they
    /// choose: none, the local store; else the store of the backend whose keys they are.
    pub fn parse_options(&self, options: &[String]) -> Result<StoreChoice> {
        let known: Vec<&str> = self
            .0
            .iter()
            .flat_map(|b| b.option_keys().iter().copied())
            .collect();
        let mut given: BTreeMap<&str, &str> = BTreeMap::new();
        let mut backend = None;
        for option in options {
            let (key, value) = option
                .split_once('=')
                .ok_or_else(|| bad(option, "expected KEY=VALUE"))?;
            let Some(owner) = self.0.iter().find(|b| b.option_keys().contains(&key)) else {
                return Err(bad(
                    key,
                    format!("unknown option; known: {}", known.join(", ")),
                ));
            };
            if value.is_empty() {
                return Err(bad(key, "empty value"));
            }
            if given.insert(key, value).is_some() {
                return Err(bad(key, "given twice"));
            }
            match backend {
                None => backend = Some(*owner),
                Some(first) if first.name() == owner.name() => {}
                Some(first) => {
                    return Err(bad(
                        key,
                        format!("an option of another store than {}", first.name()),
                    ));
                }
            }
        }
        match backend {
            None => Ok(StoreChoice::Local),
            Some(backend) => Ok(StoreChoice::Shared(backend.parse_options(&given)?)),
        }
    }
}

/// An `--ipam-opt` that cannot be used: `key`, and why.
pub fn bad(key: &str, reason: impl Into<String>) -> Error {
    Error::IpamOption {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    /// The forms earlier builds wrote load, and are written back the same: `"local"` and
    /// `{"etcd": {…}}` in a record, a definition's `"etcd": {…}` beside its own fields.
    #[test]
    fn the_old_forms_load_and_are_written_the_same() {
        let local: StoreChoice = serde_json::from_str("\"local\"").unwrap();
        assert_eq!(local, StoreChoice::Local);
        let text = r#"{"etcd":{"endpoints":["http://10.0.0.5:2379"],"prefix":"/oci-macvlan","timeout_ms":2000}}"#;
        let shared: StoreChoice = serde_json::from_str(text).unwrap();
        let locator = shared.shared().unwrap();
        assert_eq!(locator.backend(), "etcd");
        assert_eq!(locator.config()["prefix"], json!("/oci-macvlan"));
        assert_eq!(serde_json::to_string(&shared).unwrap(), text);
        assert_eq!(serde_json::to_string(&local).unwrap(), "\"local\"");
        for bad in ["\"etcd\"", "{\"etcd\": 1}", "{}", "{\"a\":{},\"b\":{}}"] {
            assert!(serde_json::from_str::<StoreChoice>(bad).is_err(), "{bad}");
        }

        #[derive(Debug, Serialize, Deserialize)]
        struct Definition {
            name: String,
            options: BTreeMap<String, String>,
            #[serde(flatten, with = "in_definition")]
            store: StoreChoice,
        }
        let text = r#"{"name":"n","options":{"parent":"eth0"},"mode":"bridge","etcd":{"endpoints":["http://a:1"],"prefix":"/x","timeout_ms":2000}}"#;
        let definition: Definition = serde_json::from_str(text).unwrap();
        assert_eq!(definition.store.shared().unwrap().backend(), "etcd");
        let written = serde_json::to_value(&definition).unwrap();
        assert_eq!(written["etcd"]["prefix"], json!("/x"));
        let plain: Definition = serde_json::from_str(r#"{"name":"n","options":{}}"#).unwrap();
        assert_eq!(plain.store, StoreChoice::Local);
        assert!(!serde_json::to_string(&plain).unwrap().contains("etcd"));
    }

    /// With no backend, every option is unknown and none is the local store.
    #[test]
    fn options_are_split_and_checked_before_any_backend() {
        let none = Backends::default();
        assert_eq!(none.parse_options(&[]).unwrap(), StoreChoice::Local);
        let err = none.parse_options(&["x".to_owned()]).unwrap_err();
        assert_eq!(err.to_string(), "invalid --ipam-opt x: expected KEY=VALUE");
        let err = none.parse_options(&["x=1".to_owned()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid --ipam-opt x: unknown option; known: "
        );
    }
}
