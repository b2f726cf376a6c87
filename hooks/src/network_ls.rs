//! `oci-macvlan network ls [-q] [--filter KEY=VALUE]… [--format F] [--no-trunc]`, as Docker's.

use oci_macvlan_macvlan::{Network, Networks};
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
        "Labels": "",
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

/// `--filter KEY=VALUE`s, as Docker reads them: values of one key are alternatives, keys must
/// all match.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Filters {
    name: Vec<String>,
    id: Vec<String>,
    driver: Vec<String>,
}

impl Filters {
    pub fn parse(filters: &[String]) -> Result<Self> {
        let mut out = Self::default();
        for filter in filters {
            let invalid = |reason: &str| Error::Filter {
                filter: filter.clone(),
                reason: reason.to_owned(),
            };
            let (key, value) = filter
                .split_once('=')
                .ok_or_else(|| invalid("expected KEY=VALUE"))?;
            let slot = match key {
                "name" => &mut out.name,
                "id" => &mut out.id,
                "driver" => &mut out.driver,
                _ => return Err(invalid("the keys are name, id and driver")),
            };
            slot.push(value.to_owned());
        }
        Ok(out)
    }

    pub fn matches(&self, net: &Network) -> bool {
        let any = |values: &[String], f: &dyn Fn(&str) -> bool| {
            values.is_empty() || values.iter().any(|v| f(v))
        };
        any(&self.name, &|v| net.name.contains(v))
            && any(&self.id, &|v| net.id.starts_with(v))
            && any(&self.driver, &|v| net.driver().name() == v)
    }
}

#[cfg(test)]
mod tests {
    use oci_macvlan_macvlan::NetworkSpec;

    use super::*;

    fn network(name: &str, driver: &str, id: &str) -> Network {
        NetworkSpec {
            name: name.into(),
            driver: driver.into(),
            subnets: vec!["192.168.50.0/24".into()],
            gateways: vec!["192.168.50.1".into()],
            options: vec!["parent=eth0".into()],
            ..Default::default()
        }
        .validate(id.repeat(64), "2026-11-23T00:00:00Z".into())
        .unwrap()
    }

    #[test]
    fn filters_select_as_dockers_do() {
        let nets = [
            network("lan50", "macvlan", "a"),
            network("lan60", "ipvlan", "b"),
            network("guests", "macvlan", "c"),
        ];
        let cases: &[(&[&str], &[&str])] = &[
            (&[], &["lan50", "lan60", "guests"]),
            (&["name=lan"], &["lan50", "lan60"]),
            (&["name=lan50", "name=guests"], &["lan50", "guests"]),
            (&["driver=macvlan"], &["lan50", "guests"]),
            (&["driver=macvlan", "name=lan"], &["lan50"]),
            (&["id=bbb"], &["lan60"]),
            (&["id=b", "driver=macvlan"], &[]),
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
        for bad in ["label=x", "name"] {
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
