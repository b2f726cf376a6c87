//! `oci-macvlan network ls [-q] [--filter KEY=VALUE]… [--format F] [--no-trunc]`, as Docker's.

use oci_macvlan_macvlan::{Network, Networks};
use regex_lite::{Regex, RegexBuilder};
use serde_json::{Value, json};

use crate::{
    cli::LsArgs,
    error::{Error, Result},
    format::Format,
    network_cmd::print,
};

/// The default listing: Docker's columns, then what a macvlan network is about.
const DEFAULT_FORMAT: &str =
    "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Parent}}\t{{.Mode}}\t{{.Subnets}}";

pub fn ls(networks: &Networks, args: &LsArgs) -> Result<()> {
    let filters = Filters::parse(&args.filter)?;
    let format = match (&args.format, args.quiet) {
        (_, true) => None,
        // A bare `table` is the default table, as in Docker.
        (Some(format), false) if format.trim() == "table" => Some(Format::parse(DEFAULT_FORMAT)?),
        (Some(format), false) => Some(Format::parse(format)?),
        (None, false) => Some(Format::parse(DEFAULT_FORMAT)?),
    };
    let rows: Vec<Value> = networks
        .list()?
        .iter()
        .filter(|net| filters.matches(net))
        .map(|net| row(net, args.no_trunc))
        .collect();
    let text = match format {
        None => rows
            .iter()
            .filter_map(|row| row["ID"].as_str())
            .map(|id| format!("{id}\n"))
            .collect(),
        Some(format) => format.render(&rows, Some(&header()))?,
    };
    print(format_args!("{text}"))
}

/// The fields a `--format` template sees for one network (Docker's, plus `Parent`, `Mode` and
/// `Subnets`).
fn row(net: &Network, no_trunc: bool) -> Value {
    let id = if no_trunc {
        net.id.as_str()
    } else {
        net.id.get(..12).unwrap_or(&net.id)
    };
    let subnets: Vec<String> = net.pools.iter().map(|p| p.subnet.to_string()).collect();
    json!({
        "ID": id,
        "Name": net.name,
        "Driver": net.driver().name(),
        "Scope": "local",
        "IPv6": net.ipv6,
        "Internal": net.internal,
        "Labels": net
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
        "CreatedAt": net.created,
        "Parent": net.parent,
        "Mode": net.driver().mode(),
        "Subnets": subnets.join(","),
    })
}

/// The column titles of a `table` format.
fn header() -> Value {
    json!({
        "ID": "NETWORK ID",
        "Name": "NAME",
        "Driver": "DRIVER",
        "Scope": "SCOPE",
        "IPv6": "IPV6",
        "Internal": "INTERNAL",
        "Labels": "LABELS",
        "CreatedAt": "CREATED",
        "Parent": "PARENT",
        "Mode": "MODE",
        "Subnets": "SUBNETS",
    })
}

/// `--filter KEY=VALUE`s, as Docker reads them: values of one key are alternatives (but
/// labels, which must all match), keys must all match. `name` and `id` are regular
/// expressions, matched anywhere (`name=^lan$` is that name alone).
#[derive(Debug, Default)]
pub struct Filters {
    name: Vec<Regex>,
    id: Vec<Regex>,
    driver: Vec<String>,
    /// `label=KEY` (any value) or `label=KEY=VALUE`.
    label: Vec<(String, Option<String>)>,
}

impl Filters {
    pub fn parse(filters: &[String]) -> Result<Self> {
        let mut out = Self::default();
        for filter in filters {
            let invalid = |reason: String| Error::Filter {
                filter: filter.clone(),
                reason,
            };
            let (key, value) = filter
                .split_once('=')
                .ok_or_else(|| invalid("expected KEY=VALUE".into()))?;
            let regex = || {
                // Bounded: a pattern is compiled once per command, never by a hook.
                RegexBuilder::new(value)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|err| invalid(format!("not a regular expression: {err}")))
            };
            match key {
                "name" => out.name.push(regex()?),
                "id" => out.id.push(regex()?),
                "driver" => out.driver.push(value.to_owned()),
                "label" => {
                    let (k, v) = match value.split_once('=') {
                        Some((k, v)) => (k, Some(v.to_owned())),
                        None => (value, None),
                    };
                    if k.is_empty() {
                        return Err(invalid("expected label=KEY or label=KEY=VALUE".into()));
                    }
                    out.label.push((k.to_owned(), v));
                }
                _ => return Err(invalid("the keys are name, id, driver and label".into())),
            }
        }
        Ok(out)
    }

    pub fn matches(&self, net: &Network) -> bool {
        let any = |patterns: &[Regex], text: &str| {
            patterns.is_empty() || patterns.iter().any(|p| p.is_match(text))
        };
        any(&self.name, &net.name)
            && any(&self.id, &net.id)
            && (self.driver.is_empty() || self.driver.iter().any(|d| net.driver().name() == d))
            && self.label.iter().all(|(key, value)| match value {
                None => net.labels.contains_key(key),
                Some(value) => net.labels.get(key) == Some(value),
            })
    }
}

#[cfg(test)]
mod tests {
    use oci_macvlan_macvlan::NetworkSpec;

    use super::*;

    fn network(name: &str, driver: &str, id: &str) -> Network {
        labelled(name, driver, id, &[])
    }

    fn labelled(name: &str, driver: &str, id: &str, labels: &[&str]) -> Network {
        NetworkSpec {
            name: name.into(),
            driver: driver.into(),
            subnets: vec!["192.168.50.0/24".into()],
            gateways: vec!["192.168.50.1".into()],
            options: vec!["parent=eth0".into()],
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
            ..Default::default()
        }
        .validate(id.repeat(64), "2026-11-23T00:00:00Z".into())
        .unwrap()
    }

    #[test]
    fn filters_select_as_dockers_do() {
        let nets = [
            labelled("lan50", "macvlan", "a", &["env=prod", "site"]),
            labelled("lan60", "ipvlan", "b", &["env=test"]),
            network("guests", "macvlan", "c"),
            network("lan", "macvlan", "d"),
        ];
        let cases: &[(&[&str], &[&str])] = &[
            (&[], &["lan50", "lan60", "guests", "lan"]),
            (&["name=lan"], &["lan50", "lan60", "lan"]),
            (&["name=^lan$"], &["lan"]),
            (&["name=^lan[56]0$"], &["lan50", "lan60"]),
            (&["name=lan50", "name=guests"], &["lan50", "guests"]),
            (&["driver=macvlan"], &["lan50", "guests", "lan"]),
            (&["driver=macvlan", "name=lan"], &["lan50", "lan"]),
            (&["id=bbb"], &["lan60"]),
            (&["id=^d"], &["lan"]),
            (&["id=b", "driver=macvlan"], &[]),
            (&["label=env"], &["lan50", "lan60"]),
            (&["label=env=prod"], &["lan50"]),
            (&["label=env", "label=site"], &["lan50"]),
            (&["label=env=dev"], &[]),
            (&["label=site="], &["lan50"]),
        ];
        for (filters, expected) in cases {
            let filters: Vec<String> = filters.iter().map(|f| (*f).to_owned()).collect();
            let parsed = Filters::parse(&filters).unwrap();
            let got: Vec<&str> = nets
                .iter()
                .filter(|n| parsed.matches(n))
                .map(|n| n.name.as_str())
                .collect();
            assert_eq!(&got, expected, "{filters:?}");
        }
        for bad in ["nope=x", "name", "name=(", "label=", "label==x"] {
            let err = Filters::parse(&[bad.to_owned()]).unwrap_err();
            assert!(crate::error::line(&err).contains(bad), "{err}");
        }
    }

    #[test]
    fn the_default_listing_and_a_template() {
        let nets = [
            network("lan50", "macvlan", "a"),
            network("lan60", "ipvlan", "b"),
        ];
        let rows: Vec<Value> = nets.iter().map(|n| row(n, false)).collect();
        let listing = Format::parse(DEFAULT_FORMAT)
            .unwrap()
            .render(&rows, Some(&header()))
            .unwrap();
        insta::assert_snapshot!(listing, @r"
        NETWORK ID     NAME    DRIVER    PARENT   MODE        SUBNETS
        aaaaaaaaaaaa   lan50   macvlan   eth0     bridge      192.168.50.0/24
        bbbbbbbbbbbb   lan60   ipvlan    eth0     l2/bridge   192.168.50.0/24
        ");
        let names = Format::parse("{{.Name}} {{.Driver}} {{.IPv6}}")
            .unwrap()
            .render(&rows, Some(&header()))
            .unwrap();
        assert_eq!(names, "lan50 macvlan false\nlan60 ipvlan false\n");
        assert_eq!(row(&nets[0], true)["ID"], "a".repeat(64));
    }
}
