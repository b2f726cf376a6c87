//! The docs say what is so: README's speed figures are those of BENCHMARKS.md's current run,
//! BENCHMARKS.md reads as a report (no lab notebook's "this session"), CONTRIBUTING.md keeps no
//! counts or times that change every week (`cargo xtask ci` prints them), and README says how to
//! enter a test LAN and what `cargo xtask dist` needs.

use std::path::Path;

fn read(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// The section of `text` under heading `heading`, to the next heading of its level or above.
fn section<'a>(text: &'a str, heading: &str) -> &'a str {
    let start = text
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?}"));
    let rest = &text[start + heading.len()..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    &rest[..end]
}

/// Every decimal figure (`1.84`, `3.57x`, `129.92 ms`) of `text`.
fn figures(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() || (c == '.' && !current.is_empty()) {
            current.push(c);
        } else {
            let figure = current.trim_end_matches('.');
            if figure.contains('.') {
                out.push(figure.to_owned());
            }
            current.clear();
        }
    }
    out
}

#[test]
fn readmes_speed_figures_are_the_current_benchmarks() {
    let readme = read("README.md");
    let bench = read("BENCHMARKS.md");
    let performance = section(&readme, "## Performance");
    let now = section(&bench, "## The figures now");
    let said = figures(performance);
    assert!(
        said.len() >= 6,
        "README's Performance gives no figures: {performance}"
    );
    for figure in &said {
        assert!(
            now.contains(figure.as_str()),
            "README says {figure}, which BENCHMARKS.md's current figures do not"
        );
    }
    // The report comes first: the current figures before the method and the history.
    let at = |h: &str| bench.find(h).unwrap_or_else(|| panic!("no {h}"));
    assert!(at("## The figures now") < at("## How they are measured"));
    assert!(at("## How they are measured") < at("## Earlier runs"));
}

#[test]
fn no_doc_reads_like_a_lab_notebook() {
    for name in [
        "BENCHMARKS.md",
        "README.md",
        "CONTRIBUTING.md",
        "ARCHITECTURE.md",
    ] {
        let text = read(name).to_lowercase();
        for phrase in ["this session", "the session's", "session's start"] {
            assert!(!text.contains(phrase), "{name} says {phrase:?}");
        }
    }
    // CONTRIBUTING keeps no counts or times: `cargo xtask ci` prints them.
    let contributing = read("CONTRIBUTING.md");
    let words: Vec<&str> = contributing.split_whitespace().collect();
    for pair in words.windows(2) {
        let number = pair[0].trim_start_matches('(').parse::<f64>().is_ok();
        let unit = pair[1].trim_end_matches([')', ',', '.', ';']);
        assert!(
            !(number && matches!(unit, "s" | "min" | "tests" | "seconds" | "minutes")),
            "CONTRIBUTING.md says {} {}",
            pair[0],
            pair[1]
        );
    }
}

#[test]
fn readme_says_how_to_enter_a_test_lan_and_what_dist_needs() {
    let readme = read("README.md");
    assert!(readme.contains("nsenter\n--net=") || readme.contains("nsenter --net="));
    assert!(readme.contains("not with `ip netns exec"));
    let quick = section(&readme, "## Quick start on a real host");
    // The version the workspace declares (the oldest rustc its dependencies build with).
    let manifest = read("Cargo.toml");
    let msrv = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("rust-version in Cargo.toml");
    assert!(quick.contains(&format!("Rust {msrv}")), "the Rust version");
    assert!(quick.contains("lintian"), "lintian");
    // The quick start wires the bundle with oci-macvlan itself, not jq.
    assert!(quick.contains("oci-macvlan bundle --network lan"));
    assert!(!quick.contains("jq "), "jq is still in the quick start");
    let podman = section(&readme, "## Podman");
    let first = podman.trim_start().lines().nth(1).unwrap_or_default();
    assert!(
        first.starts_with("podman run"),
        "the podman section starts with {first:?}"
    );
}
