//! Tidy: the docs cannot drift silently. ARCHITECTURE.md's code map names only paths that exist
//! and maps every crate of the workspace; the driver list of ARCHITECTURE.md, README.md and the
//! `-d` help is the code's (`driver::NAMES`, the definition's typed options); every library crate
//! denies an undocumented `pub` item (`missing_docs`, an error under `cargo xtask ci`'s
//! `-D warnings`), and no `pub` item of theirs lacks a doc line. Tier 1: no root.

#![allow(clippy::unwrap_used)]

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

/// Library crates whose `missing_docs` is not on yet (none: every library crate has it); the lint is
/// turned on once they land. A crate that has the lint must not be listed.
const MISSING_DOCS_PENDING: &[&str] = &[];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    let path = root().join(path);
    fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// The `code` spans (between single backticks) of `line`.
fn spans(line: &str) -> impl Iterator<Item = &str> {
    line.split('`').skip(1).step_by(2)
}

/// Whether a `code` span names a file or directory: a relative path of plain characters with a
/// `/` or a file extension, not a Rust path, a command line or a pattern.
fn is_path(span: &str) -> bool {
    let plain = span
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c));
    let file = [".rs", ".md", ".toml"]
        .iter()
        .any(|ext| span.ends_with(ext));
    plain && !span.starts_with(['/', '-', '.']) && (span.contains('/') || file)
}

/// Each path ARCHITECTURE.md's code map names, with the directories of its section (the spans
/// of its `###` heading), which a path in that section may be relative to.
fn code_map_paths(architecture: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut section: Vec<String> = Vec::new();
    for line in architecture.lines() {
        if let Some(heading) = line.strip_prefix("### ") {
            section = spans(heading)
                .filter(|s| is_path(s))
                .map(str::to_owned)
                .collect();
            continue;
        }
        if line.starts_with("## ") {
            section.clear();
        }
        for span in spans(line).filter(|s| is_path(s)) {
            out.push((span.to_owned(), section.clone()));
        }
    }
    out
}

/// The paths of `paths` that exist neither from the workspace root nor from a directory of
/// their section (a crate's directory, or its `src/`).
fn missing(root: &Path, paths: &[(String, Vec<String>)]) -> Vec<String> {
    paths
        .iter()
        .filter(|(path, dirs)| {
            !root.join(path).exists()
                && !dirs.iter().any(|dir| {
                    root.join(dir).join(path).exists()
                        || root.join(dir).join("src").join(path).exists()
                })
        })
        .map(|(path, _)| path.clone())
        .collect()
}

/// The workspace's members, as directories: `members` of the root Cargo.toml, globs expanded.
fn members(root: &Path) -> Vec<String> {
    let manifest = read("Cargo.toml");
    let line = manifest
        .lines()
        .find(|l| l.starts_with("members"))
        .expect("Cargo.toml has members");
    let mut out = Vec::new();
    for member in line.split('"').skip(1).step_by(2) {
        match member.strip_suffix("/*") {
            Some(dir) => {
                let mut found: Vec<String> = fs::read_dir(root.join(dir))
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .filter(|p| p.join("Cargo.toml").exists())
                    .map(|p| format!("{dir}/{}", p.file_name().unwrap().to_string_lossy()))
                    .collect();
                found.sort();
                out.extend(found);
            }
            None => out.push(member.to_owned()),
        }
    }
    out
}

#[test]
fn the_code_map_names_only_paths_that_exist_and_maps_every_crate() {
    let architecture = read("ARCHITECTURE.md");
    let paths = code_map_paths(&architecture);
    assert!(
        paths.len() > 50,
        "the code map names too few paths: {paths:?}"
    );
    let missing = missing(&root(), &paths);
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names paths that do not exist: {missing:?}"
    );
    let headings: BTreeSet<&str> = architecture
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .flat_map(spans)
        .map(|s| s.trim_end_matches('/'))
        .collect();
    let unmapped: Vec<String> = members(&root())
        .into_iter()
        .filter(|m| !headings.contains(m.as_str()))
        .collect();
    assert!(
        unmapped.is_empty(),
        "crates without a section in ARCHITECTURE.md's code map: {unmapped:?}"
    );
}

/// The names of `text` after `marker` on its line, as `a`, `b` or `a, b`, up to the line's end.
fn listed_after<'a>(text: &'a str, marker: &str) -> BTreeSet<&'a str> {
    let line = text
        .lines()
        .find(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("no line with {marker:?}"));
    let rest = &line[line.find(marker).unwrap() + marker.len()..];
    rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty() && *w != "or" && *w != "and")
        .collect()
}

/// The drivers the definition's typed options know: serde's list of the variants of the
/// `"driver"` tag, from the error of a tag none has.
fn typed_option_drivers() -> BTreeSet<String> {
    let err = serde_json::from_value::<oci_macvlan_macvlan::driver::Options>(
        serde_json::json!({"driver": "no such driver"}),
    )
    .unwrap_err()
    .to_string();
    // "unknown variant `x`, expected `a`", "… expected `a` or `b`", "… expected one of `a`, …"
    let expected = err
        .split_once(", expected ")
        .map(|(_, expected)| expected)
        .unwrap_or_else(|| panic!("serde's error lists no variants: {err}"));
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_driver_list_is_the_same_in_the_code_and_in_the_docs() {
    let names: BTreeSet<&str> = oci_macvlan_macvlan::driver::NAMES.iter().copied().collect();
    let typed: BTreeSet<String> = typed_option_drivers();
    assert_eq!(
        names,
        typed.iter().map(String::as_str).collect(),
        "driver::NAMES and the typed options (driver::Options) disagree"
    );
    let architecture = read("ARCHITECTURE.md");
    assert_eq!(
        listed_after(&architecture, "Drivers (`driver::NAMES`):"),
        names,
        "ARCHITECTURE.md's driver list"
    );
    // README names each driver with `network create -d NAME` or in its flag table (`-d NAME`),
    // and no other.
    let readme = read("README.md");
    let in_readme: BTreeSet<&str> = ["create -d ", "`-d "]
        .iter()
        .flat_map(|flag| readme.split(flag).skip(1))
        .filter_map(|rest| rest.split(|c: char| !c.is_ascii_alphanumeric()).next())
        .filter(|name| !name.is_empty())
        .collect();
    assert_eq!(in_readme, names, "README.md's `-d` drivers");
    let cli = read("hooks/src/cli.rs");
    assert_eq!(
        listed_after(&cli, "/// Driver:"),
        names,
        "the `-d` help in hooks/src/cli.rs"
    );
}

/// The library crates of the workspace: members with a `src/lib.rs`, but the test harness
/// (`tests`), which only the tests link.
fn library_crates(root: &Path) -> Vec<String> {
    members(root)
        .into_iter()
        .filter(|m| m != "tests" && root.join(m).join("src/lib.rs").exists())
        .collect()
}

/// The `.rs` files under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The `pub` items of `source` (outside its `#[cfg(test)]` part) with no doc line above them
/// (attributes between are fine), as `LINE: TEXT`. A `pub mod` documented by its own file's
/// `//!` is fine; `pub use` re-exports and `pub(…)` items are not looked at.
fn undocumented(source: &str, module_documented: impl Fn(&str) -> bool) -> Vec<String> {
    let mut out = Vec::new();
    let lines: Vec<&str> = source.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let item = line.trim_start();
        if item.starts_with("#[cfg(test)]") {
            break;
        }
        let Some(rest) = item.strip_prefix("pub ") else {
            continue;
        };
        let rest = rest.strip_prefix("async ").unwrap_or(rest);
        let rest = rest.strip_prefix("unsafe ").unwrap_or(rest);
        let Some(kind) = [
            "fn ", "struct ", "enum ", "trait ", "const ", "static ", "type ", "mod ",
        ]
        .iter()
        .find(|k| rest.starts_with(**k)) else {
            continue;
        };
        if *kind == "mod " {
            let name = rest[4..].trim_end_matches([';', ' ', '{']);
            if module_documented(name) {
                continue;
            }
        }
        let above = lines[..i]
            .iter()
            .rev()
            .map(|l| l.trim_start())
            .find(|l| !l.starts_with("#[") && !l.starts_with(')') && !l.starts_with('"'));
        if !above.is_some_and(|l| l.starts_with("///")) {
            out.push(format!("{}: {}", i + 1, item));
        }
    }
    out
}

#[test]
fn every_library_crate_documents_its_pub_items() {
    let root = root();
    let libraries = library_crates(&root);
    assert!(libraries.len() >= 6, "{libraries:?}");
    for pending in MISSING_DOCS_PENDING {
        assert!(
            libraries.iter().any(|l| l == pending),
            "{pending} is no library crate"
        );
    }
    let mut problems = Vec::new();
    for library in &libraries {
        let lib = read(&format!("{library}/src/lib.rs"));
        let lint = lib.contains("#![warn(missing_docs)]") || lib.contains("#![deny(missing_docs)]");
        let pending = MISSING_DOCS_PENDING.contains(&library.as_str());
        if pending {
            assert!(
                !lint,
                "{library} has missing_docs on: take it out of MISSING_DOCS_PENDING"
            );
            continue;
        }
        if !lint {
            problems.push(format!("{library}/src/lib.rs: no #![warn(missing_docs)]"));
        }
        for file in rust_files(&root.join(library).join("src")) {
            let name = file.file_name().unwrap().to_string_lossy();
            if name == "tests.rs" || name.ends_with("_tests.rs") {
                continue;
            }
            let source = fs::read_to_string(&file).unwrap();
            let dir = if name == "lib.rs" || name == "mod.rs" || name == "main.rs" {
                file.parent().unwrap().to_path_buf()
            } else {
                file.with_extension("")
            };
            let module_documented = |module: &str| {
                [
                    dir.join(format!("{module}.rs")),
                    dir.join(module).join("mod.rs"),
                ]
                .iter()
                .any(|f| fs::read_to_string(f).is_ok_and(|s| s.starts_with("//!")))
            };
            for item in undocumented(&source, module_documented) {
                problems.push(format!(
                    "{}:{item}",
                    file.strip_prefix(&root).unwrap().display()
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "pub items without a doc line:\n{}",
        problems.join("\n")
    );
}

/// The code of `source` outside its `#[cfg(test)]` part, without comments.
fn production_code(source: &str) -> String {
    let code = source.split("#[cfg(test)]").next().unwrap_or_default();
    code.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The identifiers of `text` that follow `prefix` (`crate::`), and those inside a
/// `crate::{…}` group, each as its first path segment.
fn crate_paths(text: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        match rest.strip_prefix('{') {
            Some(group) => {
                // The group's top-level names: nested groups (`kernel::{A, B}`) name their
                // module by the segment before them.
                let mut depth = 0;
                let mut item = String::new();
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            out.push(ident(item.trim()));
                            item.clear();
                            continue;
                        }
                        _ => {}
                    }
                    if depth == 0 || item.is_empty() {
                        item.push(c);
                    }
                }
                out.push(ident(item.trim()));
            }
            None => out.push(ident(rest)),
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

/// The core's module graph: each top-level module of `crates/macvlan/src` and the top-level
/// modules its production code uses, through a path or through a name `lib.rs` re-exports.
fn core_modules() -> BTreeMap<String, BTreeSet<String>> {
    let src = root().join("crates/macvlan/src");
    let lib = read("crates/macvlan/src/lib.rs");
    let mut reexported = BTreeMap::new();
    for line in lib.lines() {
        if let Some(rest) = line.strip_prefix("pub use ") {
            let (module, names) = rest.split_once("::").unwrap_or_default();
            for name in names.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if !name.is_empty() {
                    reexported.insert(name.to_owned(), module.to_owned());
                }
            }
        }
    }
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in rust_files(&src) {
        let rel = path
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let top = rel
            .split('/')
            .next()
            .unwrap()
            .trim_end_matches(".rs")
            .to_owned();
        if top == "lib" || rel.contains("/tests/") || rel.ends_with("tests.rs") {
            continue;
        }
        if rel.ends_with("/fake.rs") {
            continue; // the fake kernel is compiled for tests only
        }
        let code = production_code(&fs::read_to_string(&path).unwrap());
        let uses = graph.entry(top.clone()).or_default();
        for name in crate_paths(&code) {
            let module = reexported.get(&name).cloned().unwrap_or(name);
            if module != top {
                uses.insert(module);
            }
        }
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for uses in graph.values_mut() {
        uses.retain(|m| modules.contains(m));
    }
    graph
}

/// A path from `from` back to `from`, if the graph has one.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    let mut stack = vec![(from.to_owned(), vec![from.to_owned()])];
    let mut seen = BTreeSet::new();
    while let Some((at, path)) = stack.pop() {
        for next in &graph[&at] {
            if next == from {
                let mut found = path.clone();
                found.push(next.clone());
                return Some(found);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

/// ARCHITECTURE.md's invariant: the core's modules form no circle (error.rs and the drivers are
/// leaves; host access never uses attach or detach; attach, detach, gc and verify sit on top).
#[test]
fn the_core_has_no_import_circle() {
    let graph = core_modules();
    assert!(
        graph.len() > 20,
        "the core's modules were not found: {graph:?}"
    );
    assert!(
        graph["endpoint"].contains("plan") && graph["verify"].contains("source"),
        "the graph misses edges the code has: {graph:?}"
    );
    assert!(
        graph["error"].is_empty(),
        "error.rs uses {:?}",
        graph["error"]
    );
    let circles: Vec<Vec<String>> = graph.keys().filter_map(|m| circle(&graph, m)).collect();
    assert!(
        circles.is_empty(),
        "import circles in crates/macvlan: {circles:?}"
    );
}
