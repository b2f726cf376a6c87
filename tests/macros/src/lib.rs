//! `#[privileged]`: the one gate of the privileged test tier.
//!
//! A privileged test (root, network namespaces, runc, etcd) is written
//!
//! ```ignore
//! #[privileged]
//! fn a_container_gets_its_address() { … }
//! ```
//!
//! and expands to `#[test]` plus `#[cfg_attr(not(feature = "privileged"), ignore = …)]`, the
//! feature being the calling crate's (`oci-macvlan-tests/privileged`, which `cargo xtask ci`
//! turns on). Without the feature the test is still built and listed, as *ignored* with the
//! command that runs it: never silently absent, and `cargo xtask ci` fails on any ignored test.

#![warn(missing_docs)]

use proc_macro::{Delimiter, Group, Literal, Punct, Spacing, Span, TokenStream, TokenTree};

/// Why a privileged test is ignored without the feature, and how to run it.
const REASON: &str = "privileged tier: run `cargo xtask ci` as root";

/// Marks a test of the privileged tier; takes no arguments.
#[proc_macro_attribute]
pub fn privileged(args: TokenStream, item: TokenStream) -> TokenStream {
    if let Some(first) = args.into_iter().next() {
        return compile_error("#[privileged] takes no arguments", first.span());
    }
    let gate = format!("#[test] #[cfg_attr(not(feature = \"privileged\"), ignore = {REASON:?})]");
    match gate.parse::<TokenStream>() {
        Ok(mut out) => {
            out.extend(item);
            out
        }
        Err(error) => compile_error(&format!("#[privileged]: {error}"), Span::call_site()),
    }
}

/// `compile_error!("message")`, pointing at `span`.
fn compile_error(message: &str, span: Span) -> TokenStream {
    let mut literal = Literal::string(message);
    literal.set_span(span);
    let group = Group::new(Delimiter::Parenthesis, TokenTree::Literal(literal).into());
    let mut out: TokenStream = "compile_error!".parse().unwrap_or_default();
    out.extend([
        TokenTree::Group(group),
        Punct::new(';', Spacing::Alone).into(),
    ]);
    out
}
