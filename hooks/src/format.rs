//! `--format` / `-f` for `network ls` and `network inspect`, as Docker reads it: a Go template
//! (`{{.Name}}`, `{{json .IPAM}}`, `{{range .Containers}}…{{end}}`), `json` for one JSON
//! document per line, and `table TEMPLATE` for aligned columns under a header. The template
//! language is Go's own `text/template`, through the `gotmpl` crate (a port that matches Go's
//! output: `<no value>` for a missing key, `map[k:v]`, maps ranged in key order); the functions
//! Docker adds to it that scripts use (`json`, `join`, `split`, `lower`, `upper`, `title`,
//! `truncate`, `pad`, `println`) are defined here.

use std::sync::Arc;

use gotmpl::{MissingKey, Template, TemplateError, Value};
use serde_json::Value as Json;

use crate::error::{Error, Result};

/// A parsed `--format`.
pub enum Format {
    /// `json`: each item as one line of compact JSON.
    Json,
    /// A Go template, rendered once per item, each followed by a newline; with `table`, the
    /// rendered rows are aligned at their tabs under a header row.
    Template { template: Template, table: bool },
}

impl std::fmt::Debug for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Json => f.write_str("Json"),
            Self::Template { table, .. } => f
                .debug_struct("Template")
                .field("table", table)
                .finish_non_exhaustive(),
        }
    }
}

impl Format {
    pub fn parse(text: &str) -> Result<Self> {
        if text.trim() == "json" {
            return Ok(Self::Json);
        }
        let (body, table) = match text.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => {
                (rest.trim_start(), true)
            }
            _ => (text, false),
        };
        // `ls` gives its default table for a bare `table`, as Docker does; elsewhere there is
        // none, and rows of nothing would print blank lines.
        if table && body.is_empty() {
            return Err(Error::FormatEmptyTable);
        }
        // A template's `\t` in a shell argument arrives as two characters: Docker reads it as a tab.
        let body = body.replace("\\t", "\t").replace("\\n", "\n");
        let template = template(&body).map_err(|source| Error::Format {
            format: text.to_owned(),
            source,
        })?;
        Ok(Self::Template { template, table })
    }

    /// The lines for `items`: `header` gives, for a `table` format, the item whose fields are
    /// the column titles.
    pub fn render(&self, items: &[Json], header: Option<&Json>) -> Result<String> {
        let mut out = String::new();
        match self {
            Self::Json => {
                for item in items {
                    out.push_str(&item.to_string());
                    out.push('\n');
                }
            }
            Self::Template { template, table } => {
                let mut rows = Vec::with_capacity(items.len() + 1);
                let mut total = 0;
                let header = header.filter(|_| *table);
                for item in header.into_iter().chain(items) {
                    let row = execute(template, item)?;
                    count(&mut total, &row)?;
                    rows.push(row);
                }
                if *table {
                    out = align(&rows);
                } else {
                    for row in rows {
                        out.push_str(&row);
                        out.push('\n');
                    }
                }
            }
        }
        Ok(out)
    }
}

/// The widest `pad` a template may ask for, on each side: a table's column is never wider, and
/// a larger count is a typo or an attempt to make the command allocate without bound.
const MAX_PAD: usize = 4096;

/// The most a `--format` may print in all: far above any listing of real networks, and small
/// enough that a template cannot make a command fill a disk or a terminal's scrollback.
pub const MAX_OUTPUT: usize = 16 << 20;

fn execute(template: &Template, item: &Json) -> Result<String> {
    let render = |source| Error::FormatRender { source };
    let data = gotmpl::to_value(item).map_err(render)?;
    template.execute_to_string(&data).map_err(render)
}

/// Adds `row`'s length to `total`, refusing output past [`MAX_OUTPUT`].
fn count(total: &mut usize, row: &str) -> Result<()> {
    *total += row.len() + 1;
    if *total > MAX_OUTPUT {
        return Err(Error::FormatTooLong { limit: MAX_OUTPUT });
    }
    Ok(())
}

/// Rows cut at their tabs into columns padded to the widest cell plus three spaces, as Docker's
/// tabwriter does; the last column is not padded.
fn align(rows: &[String]) -> String {
    let cells: Vec<Vec<&str>> = rows.iter().map(|r| r.split('\t').collect()).collect();
    let mut widths: Vec<usize> = Vec::new();
    for row in &cells {
        for (i, cell) in row.iter().enumerate() {
            let width = cell.chars().count();
            match widths.get_mut(i) {
                Some(w) => *w = (*w).max(width),
                None => widths.push(width),
            }
        }
    }
    let mut out = String::new();
    for row in &cells {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i] - cell.chars().count() + 3;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn template(text: &str) -> Result<Template, TemplateError> {
    // A field that is not there is an error, as in Docker (whose templates run on structs): a
    // typo never prints `<no value>` with exit 0. A key that may be missing is read with
    // `index` (`{{index .Options "parent"}}`), which gives nothing instead.
    Template::new("format")
        .missing_key(MissingKey::Error)
        .func("json", json)
        .func("join", join)
        .func("split", split)
        .func("lower", |args: &[Value]| {
            map_str("lower", args, str::to_lowercase)
        })
        .func("upper", |args: &[Value]| {
            map_str("upper", args, str::to_uppercase)
        })
        .func("title", |args: &[Value]| map_str("title", args, title_case))
        .func("truncate", truncate)
        .func("pad", pad)
        .func("println", |args: &[Value]| {
            let words: Vec<String> = args.iter().map(ToString::to_string).collect();
            Ok(string(format!("{}\n", words.join(" "))))
        })
        .parse(text)
}

fn string(text: impl AsRef<str>) -> Value {
    Value::String(Arc::from(text.as_ref()))
}

fn arity(name: &str, args: &[Value], expected: usize) -> gotmpl::Result<()> {
    if args.len() == expected {
        return Ok(());
    }
    Err(TemplateError::ArgCount {
        name: name.to_owned(),
        expected,
        got: args.len(),
    })
}

fn text_arg<'a>(name: &str, value: &'a Value) -> gotmpl::Result<&'a str> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(TemplateError::Exec(format!(
            "{name}: expected a string, got {other}"
        ))),
    }
}

fn number_arg(name: &str, value: &Value) -> gotmpl::Result<usize> {
    let n = match value {
        Value::Int(n) => usize::try_from(*n).ok(),
        Value::Uint(n) => usize::try_from(*n).ok(),
        _ => None,
    };
    n.ok_or_else(|| TemplateError::Exec(format!("{name}: expected a count, got {value}")))
}

/// `{{json .IPAM}}`: the value as compact JSON.
fn json(args: &[Value]) -> gotmpl::Result<Value> {
    arity("json", args, 1)?;
    Ok(string(to_json(&args[0]).to_string()))
}

fn to_json(value: &Value) -> Json {
    match value {
        Value::Nil => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(n) => Json::from(*n),
        Value::Uint(n) => Json::from(*n),
        Value::Float(f) => Json::from(*f),
        Value::String(s) => Json::from(s.as_ref()),
        Value::List(items) => items.iter().map(to_json).collect(),
        Value::Map(map) => map
            .iter()
            .map(|(k, v)| (k.to_string(), to_json(v)))
            .collect(),
        Value::Function(_) => Json::Null,
    }
}

/// `{{join .List ", "}}`.
fn join(args: &[Value]) -> gotmpl::Result<Value> {
    arity("join", args, 2)?;
    let separator = text_arg("join", &args[1])?;
    let Value::List(items) = &args[0] else {
        return Err(TemplateError::Exec(format!(
            "join: expected a list, got {}",
            args[0]
        )));
    };
    let words: Vec<String> = items.iter().map(ToString::to_string).collect();
    Ok(string(words.join(separator)))
}

/// `{{split .Name "-"}}`.
fn split(args: &[Value]) -> gotmpl::Result<Value> {
    arity("split", args, 2)?;
    let text = text_arg("split", &args[0])?;
    let separator = text_arg("split", &args[1])?;
    Ok(Value::List(text.split(separator).map(string).collect()))
}

fn map_str(name: &str, args: &[Value], f: impl Fn(&str) -> String) -> gotmpl::Result<Value> {
    arity(name, args, 1)?;
    Ok(string(f(&args[0].to_string())))
}

fn title_case(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut start = true;
    for c in text.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    out
}

/// `{{truncate .Id 12}}`.
fn truncate(args: &[Value]) -> gotmpl::Result<Value> {
    arity("truncate", args, 2)?;
    let len = number_arg("truncate", &args[1])?;
    Ok(string(
        args[0].to_string().chars().take(len).collect::<String>(),
    ))
}

/// `{{pad .Name 1 2}}`: spaces before and after.
fn pad(args: &[Value]) -> gotmpl::Result<Value> {
    arity("pad", args, 3)?;
    let before = number_arg("pad", &args[1])?;
    let after = number_arg("pad", &args[2])?;
    if let Some(width) = [before, after].into_iter().find(|w| *w > MAX_PAD) {
        return Err(TemplateError::Exec(format!(
            "pad: {width} spaces is more than the {MAX_PAD} allowed"
        )));
    }
    Ok(string(format!(
        "{}{}{}",
        " ".repeat(before),
        args[0],
        " ".repeat(after)
    )))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn render(format: &str, item: &Json) -> String {
        Format::parse(format)
            .unwrap()
            .render(std::slice::from_ref(item), None)
            .unwrap()
    }

    #[test]
    fn dockers_templates_render_as_go_renders_them() {
        let net = json!({
            "Name": "lan50",
            "Id": "0123456789abcdef",
            "IPAM": {"Driver": "default", "Config": [{"Subnet": "192.168.50.0/24"}]},
            "Containers": {
                "ee": {"Name": "web", "IPv4Address": "192.168.50.11/24"},
                "aa": {"Name": "db", "IPv4Address": "192.168.50.10/24"},
            },
            "Options": {"parent": "eth0"},
        });
        let cases = [
            ("{{.Name}}", "lan50\n"),
            (
                "{{.Id}} {{index .Options \"nope\"}}",
                "0123456789abcdef <no value>\n",
            ),
            (
                "{{json .IPAM}}",
                "{\"Config\":[{\"Subnet\":\"192.168.50.0/24\"}],\"Driver\":\"default\"}\n",
            ),
            // Maps range in key order, as in Go.
            (
                "{{range .Containers}}{{.Name}}={{.IPv4Address}} {{end}}",
                "db=192.168.50.10/24 web=192.168.50.11/24 \n",
            ),
            (
                "{{range $id, $c := .Containers}}{{$id}}:{{$c.Name}};{{end}}",
                "aa:db;ee:web;\n",
            ),
            ("{{index .Options \"parent\"}}", "eth0\n"),
            ("{{(index .IPAM.Config 0).Subnet}}", "192.168.50.0/24\n"),
            ("{{.Options}}", "map[parent:eth0]\n"),
            ("{{len .Containers}}", "2\n"),
            ("{{upper .Name}} {{truncate .Id 4}}", "LAN50 0123\n"),
            ("{{join (split \"a-b\" \"-\") \"+\"}}", "a+b\n"),
            (
                "{{title \"lan fifty\"}}|{{pad .Name 1 1}}|",
                "Lan Fifty| lan50 |\n",
            ),
        ];
        for (format, expected) in cases {
            assert_eq!(render(format, &net), expected, "{format}");
        }
        assert_eq!(
            render("json", &net).lines().count(),
            1,
            "json: one line per item"
        );
        let back: Json = serde_json::from_str(&render("json", &net)).unwrap();
        assert_eq!(back, net);
    }

    #[test]
    fn a_table_aligns_its_columns_under_a_header() {
        let format = Format::parse("table {{.Name}}\\t{{.Driver}}").unwrap();
        let items = [
            json!({"Name": "lan50", "Driver": "macvlan"}),
            json!({"Name": "a-longer-name", "Driver": "ipvlan"}),
        ];
        let header = json!({"Name": "NAME", "Driver": "DRIVER"});
        insta::assert_snapshot!(format.render(&items, Some(&header)).unwrap(), @r"
        NAME            DRIVER
        lan50           macvlan
        a-longer-name   ipvlan
        ");
    }

    #[test]
    fn a_bad_template_names_itself() {
        let err = crate::error::line(&Format::parse("{{.Name").unwrap_err());
        assert!(err.starts_with("invalid --format \"{{.Name\""), "{err}");
        let err = Format::parse("{{json}}")
            .unwrap()
            .render(&[json!({})], None)
            .unwrap_err();
        assert!(crate::error::line(&err).contains("json"), "{err}");
    }

    #[test]
    fn widths_and_output_are_capped() {
        let name = json!({"Name": "lan50"});
        for format in ["{{pad .Name 100000000000 1}}", "{{pad .Name 1 4097}}"] {
            let err = Format::parse(format)
                .unwrap()
                .render(std::slice::from_ref(&name), None)
                .unwrap_err();
            let line = crate::error::line(&err);
            assert!(
                line.contains("more than the 4096 allowed"),
                "{format}: {line}"
            );
            assert_eq!(err.exit_code(), crate::error::exit::INVALID, "{format}");
        }
        assert_eq!(render("{{pad .Name 4096 0}}", &name).len(), 4096 + 5 + 1);
        // Widths under the cap, but output past MAX_OUTPUT in all.
        let items = vec![name; MAX_OUTPUT / 8193 + 2];
        let err = Format::parse("{{pad .Name 4096 4096}}")
            .unwrap()
            .render(&items, None)
            .unwrap_err();
        assert!(matches!(err, Error::FormatTooLong { .. }), "{err}");
        assert_eq!(err.exit_code(), crate::error::exit::INVALID);
    }

    #[test]
    fn a_missing_field_or_a_bare_table_is_an_error() {
        let net = json!({"Name": "lan50", "Options": {"parent": "eth0"}});
        for format in ["{{.Nope}}", "{{.Options.nope}}", "{{.Name}} {{.name}}"] {
            let err = Format::parse(format)
                .unwrap()
                .render(std::slice::from_ref(&net), None)
                .unwrap_err();
            let line = crate::error::line(&err);
            assert!(
                line.starts_with("cannot render --format"),
                "{format}: {line}"
            );
            assert!(line.contains("no entry for key"), "{format}: {line}");
            assert_eq!(err.exit_code(), crate::error::exit::INVALID);
        }
        let err = Format::parse("table").unwrap_err();
        assert_eq!(
            crate::error::line(&err),
            "--format table needs a template here: table {{.Name}}, say"
        );
        assert_eq!(err.exit_code(), crate::error::exit::INVALID);
    }
}
