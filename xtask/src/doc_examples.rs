//! `cargo xtask doc-examples`: fails when a public type or constructor of a library crate
//! has no example in its documentation.
//!
//! It reads the HTML `cargo doc` writes (rustdoc's JSON output is not stable): every
//! struct, enum and trait page of the `worker_threads*` crates must show an example in
//! its own documentation, and so must every associated function of a type's inherent
//! impls that takes no `self` (a constructor: `new`, `builder`, `spawn`...). An item
//! re-exported by another crate is checked once, where it is defined; items re-exported
//! from other libraries (std, loom) are not ours to document.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, ensure};

/// What rustdoc puts around a rendered code example.
const EXAMPLE: &str = "example-wrap";

/// Documents the workspace and checks every page; lists what lacks an example.
pub(crate) fn check(root: &Path) -> anyhow::Result<()> {
    let status = Command::new(env!("CARGO"))
        .current_dir(root)
        .args(["doc", "--workspace", "--no-deps", "--all-features"])
        .args(["--exclude", "compare", "--exclude", "xtask"])
        .status()
        .context("running cargo doc")?;
    ensure!(status.success(), "cargo doc failed");
    let doc = root.join("target").join("doc");
    let mut pages = Vec::new();
    for entry in fs::read_dir(&doc).context("reading target/doc")? {
        let path = entry?.path();
        let is_ours = path
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.starts_with("worker_threads"));
        if is_ours && path.is_dir() {
            collect_pages(&path, &mut pages)?;
        }
    }
    pages.sort();
    let (mut checked, mut missing, mut seen) = (0usize, Vec::new(), HashSet::new());
    for page in pages {
        let html = fs::read_to_string(&page)?;
        let Some(source) = own_source(&html) else {
            continue;
        };
        if !seen.insert(source.to_owned()) {
            continue;
        }
        let name = page
            .strip_prefix(&doc)
            .unwrap_or(&page)
            .display()
            .to_string();
        checked += 1;
        if !top_doc(&html).contains(EXAMPLE) {
            missing.push(format!("{name}: the type itself"));
        }
        for (method, documented) in constructors(&html) {
            checked += 1;
            if !documented {
                missing.push(format!("{name}: constructor `{method}`"));
            }
        }
    }
    eprintln!(
        "xtask: {checked} public types and constructors checked, {} without an example",
        missing.len()
    );
    for item in &missing {
        eprintln!("  {item}");
    }
    ensure!(
        missing.is_empty(),
        "{} public items have no example in their documentation",
        missing.len()
    );
    Ok(())
}

/// The struct, enum and trait pages under `dir`.
fn collect_pages(dir: &Path, pages: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_pages(&path, pages)?;
            continue;
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let is_item = ["struct.", "enum.", "trait."]
            .iter()
            .any(|kind| name.starts_with(kind));
        if is_item && name.ends_with(".html") {
            pages.push(path);
        }
    }
    Ok(())
}

/// The item's source link, if it is defined in one of our crates (`src/worker_threads…`):
/// the first source link on the page is the item's own.
fn own_source(html: &str) -> Option<&str> {
    let start = html.find("src/worker_threads")?;
    let rest = &html[start..];
    let end = rest.find('"')?;
    // A redirect page or another library's item has no such link before the content.
    Some(&rest[..end])
}

/// The page up to the first section after the item's own documentation.
fn top_doc(html: &str) -> &str {
    const SECTIONS: [&str; 9] = [
        "<h2 id=\"fields\"",
        "<h2 id=\"variants\"",
        "<h2 id=\"implementations\"",
        "<h2 id=\"required-",
        "<h2 id=\"provided-",
        "<h2 id=\"implementors\"",
        "<h2 id=\"dyn-compat",
        "<h2 id=\"trait-implementations\"",
        "<h2 id=\"synthetic",
    ];
    let end = SECTIONS
        .iter()
        .filter_map(|section| html.find(section))
        .min()
        .unwrap_or(html.len());
    &html[..end]
}

/// Each inherent associated function without a `self` receiver, and whether its
/// documentation has an example.
fn constructors(html: &str) -> Vec<(String, bool)> {
    let Some(start) = html.find("id=\"implementations\"") else {
        return Vec::new();
    };
    let inherent = &html[start..];
    let end = [
        "id=\"trait-implementations\"",
        "id=\"synthetic-implementations\"",
        "id=\"blanket-implementations\"",
    ]
    .iter()
    .filter_map(|section| inherent.find(section))
    .min()
    .unwrap_or(inherent.len());
    inherent[..end]
        .split("<section id=\"method.")
        .skip(1)
        .filter_map(|part| {
            let name = part.split('"').next()?.to_owned();
            let header = part.split("</h4>").next()?;
            let signature = text_of(header);
            let params = parameters(&signature, &name)?;
            let receiver = params.trim_start().trim_start_matches('&').trim_start();
            let receiver = receiver
                .strip_prefix('\'')
                .map_or(receiver, |r| r.split_once(' ').map_or(r, |(_, rest)| rest))
                .trim_start();
            let receiver = receiver.strip_prefix("mut ").unwrap_or(receiver);
            let takes_self = receiver.starts_with("self")
                && !receiver[4..].starts_with(|c: char| c.is_alphanumeric() || c == '_');
            (!takes_self).then(|| (name, part.contains(EXAMPLE)))
        })
        .collect()
}

/// The text of an HTML fragment: tags dropped, the entities rustdoc writes decoded.
fn text_of(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
        .replace("&#39;", "'")
        .replace("&quot;", "\"")
}

/// What follows the `(` of `fn name`'s parameter list (after its generic parameters).
fn parameters<'a>(signature: &'a str, name: &str) -> Option<&'a str> {
    let at = signature.find(&format!("fn {name}"))? + 3 + name.len();
    let mut depth = 0i32;
    for (offset, c) in signature[at..].char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth -= 1,
            '(' if depth == 0 => return Some(&signature[at + offset + 1..]),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receiver_is_told_from_a_constructor() {
        let html = "<h2 id=\"implementations\"></h2>\
            <section id=\"method.new\"><h4>pub fn new&lt;T: Into&lt;String&gt;&gt;(name: T) -&gt; Self</h4></section>\
            <div class=\"docblock\"><div class=\"example-wrap\"></div></div>\
            <section id=\"method.len\"><h4>pub fn len(&amp;self) -&gt; usize</h4></section>\
            <section id=\"method.into_inner\"><h4>pub fn into_inner(self) -&gt; T</h4></section>\
            <section id=\"method.pin\"><h4>pub fn pin(self: Pin&lt;&amp;mut Self&gt;)</h4></section>\
            <section id=\"method.borrowed\"><h4>pub fn borrowed&lt;'a&gt;(&amp;'a mut self)</h4></section>\
            <section id=\"method.builder\"><h4>pub fn builder(selfless: u8) -&gt; B</h4></section>\
            <h2 id=\"trait-implementations\"></h2>\
            <section id=\"method.from\"><h4>fn from(value: u8) -&gt; Self</h4></section>";
        assert_eq!(
            constructors(html),
            [("new".to_string(), true), ("builder".to_string(), false)]
        );
    }

    #[test]
    fn the_top_doc_ends_at_the_first_section() {
        let html = "doc <div class=\"example-wrap\"></div><h2 id=\"fields\">x</h2>";
        assert!(top_doc(html).contains(EXAMPLE));
        assert!(!top_doc("doc <h2 id=\"fields\"><div class=\"example-wrap\">").contains(EXAMPLE));
    }
}
