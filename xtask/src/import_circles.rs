//! `cargo xtask import-circles`: fails when two files of a library crate import each
//! other, directly or through others.
//!
//! A file's imports are the `crate::`, `super::` and `self::` paths in its code (comments
//! and string literals aside) that name another file's module, in `use` items and inline
//! alike. A `pub use` or `pub(crate) use` is a re-export, the module's face, not a
//! dependency of its code, so it does not count; `mod` declarations do not either. Each
//! path counts for the deepest module that has a file of its own.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, ensure};

/// Scans every crate under `crates/`; lists each circle.
pub(crate) fn check(root: &Path) -> anyhow::Result<()> {
    let mut circles = Vec::new();
    let mut crates: Vec<PathBuf> = fs::read_dir(root.join("crates"))
        .context("reading crates/")?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.join("src").is_dir())
        .collect();
    crates.sort();
    for krate in &crates {
        let graph = graph(&krate.join("src"))?;
        for circle in strongly_connected(&graph) {
            let name = krate
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            circles.push(format!("{name}: {}", circle.join(" <-> ")));
        }
    }
    eprintln!(
        "xtask: {} crates scanned, {} import circles",
        crates.len(),
        circles.len()
    );
    for circle in &circles {
        eprintln!("  {circle}");
    }
    ensure!(
        circles.is_empty(),
        "files import each other in a circle: {}",
        circles.len()
    );
    Ok(())
}

/// Each file (by its path under `src`) and the files it imports.
fn graph(src: &Path) -> anyhow::Result<BTreeMap<String, BTreeSet<String>>> {
    let mut files = Vec::new();
    collect(src, src, &mut files)?;
    let modules: BTreeMap<Vec<String>, String> = files
        .iter()
        .map(|(rel, _)| (module_of(rel), rel.clone()))
        .collect();
    let mut graph = BTreeMap::new();
    for (rel, text) in &files {
        let me = module_of(rel);
        let mut imports = BTreeSet::new();
        for path in paths(&code_of(text)) {
            let Some(target) = resolve(&me, rel, &path, &modules) else {
                continue;
            };
            if target != *rel {
                imports.insert(target);
            }
        }
        graph.insert(rel.clone(), imports);
    }
    Ok(graph)
}

/// The `.rs` files under `dir`, with their paths relative to `src` and their text.
fn collect(src: &Path, dir: &Path, files: &mut Vec<(String, String)>) -> anyhow::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(src, &path, files)?;
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let rel = path.strip_prefix(src)?.to_string_lossy().replace('\\', "/");
            files.push((rel, fs::read_to_string(&path)?));
        }
    }
    Ok(())
}

/// `a/b.rs` is module `a::b`; `a/mod.rs` is `a`; `lib.rs` the crate root.
fn module_of(rel: &str) -> Vec<String> {
    let stem = rel.trim_end_matches(".rs");
    let mut parts: Vec<String> = stem.split('/').map(str::to_owned).collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("lib" | "main" | "mod")
    ) {
        parts.pop();
    }
    parts
}

/// The file `path` (as written in file `rel`, module `me`) points into.
fn resolve(
    me: &[String],
    _rel: &str,
    path: &[String],
    modules: &BTreeMap<Vec<String>, String>,
) -> Option<String> {
    let (first, rest) = path.split_first()?;
    let mut base: Vec<String> = match first.as_str() {
        "crate" => Vec::new(),
        "self" => me.to_vec(),
        "super" => me[..me.len().saturating_sub(1)].to_vec(),
        _ => return None,
    };
    let mut rest = rest;
    while let Some(("super", tail)) = rest.split_first().map(|(head, tail)| (head.as_str(), tail)) {
        base.pop();
        rest = tail;
    }
    base.extend(rest.iter().cloned());
    while !base.is_empty() {
        if let Some(file) = modules.get(&base) {
            return Some(file.clone());
        }
        base.pop();
    }
    None
}

/// The code of a file: comments, string literals and re-exports (`pub use`,
/// `pub(crate) use` items) blanked.
fn code_of(text: &str) -> String {
    let mut code = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let (mut line_comment, mut block_depth, mut string) = (false, 0usize, false);
    while let Some(c) = chars.next() {
        if line_comment {
            if c == '\n' {
                line_comment = false;
                code.push('\n');
            }
            continue;
        }
        if block_depth > 0 {
            if c == '*' && chars.peek() == Some(&'/') {
                chars.next();
                block_depth -= 1;
            } else if c == '/' && chars.peek() == Some(&'*') {
                chars.next();
                block_depth += 1;
            }
            continue;
        }
        if string {
            if c == '\\' {
                chars.next();
            } else if c == '"' {
                string = false;
            }
            continue;
        }
        match c {
            '/' if chars.peek() == Some(&'/') => line_comment = true,
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                block_depth = 1;
            }
            '"' => string = true,
            _ => code.push(c),
        }
    }
    without_reexports(&code)
}

/// `code` with every `pub use ...;` and `pub(crate) use ...;` item removed.
fn without_reexports(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    loop {
        let next = ["pub use ", "pub(crate) use "]
            .iter()
            .filter_map(|pattern| rest.find(pattern))
            .min();
        let Some(at) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..at]);
        rest = rest[at..].split_once(';').map_or("", |(_, after)| after);
    }
}

/// Every path that starts with `crate::`, `self::` or `super::`, as its segments; a
/// `use` group (`crate::a::{b, c::d}`) gives one path per member.
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    for start in ["crate::", "self::", "super::"] {
        let mut from = 0;
        while let Some(offset) = code[from..].find(start) {
            let at = from + offset;
            from = at + start.len();
            let preceded = at > 0
                && (bytes[at - 1].is_ascii_alphanumeric()
                    || bytes[at - 1] == b'_'
                    || bytes[at - 1] == b':');
            if preceded {
                continue;
            }
            let head = &start[..start.len() - 2];
            let mut segments = vec![head.to_owned()];
            let tail = &code[at + start.len()..];
            let word_end = tail
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(tail.len());
            let word = &tail[..word_end];
            segments.extend(
                word.split("::")
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            );
            if tail[word_end..].starts_with('{') && word.ends_with("::") {
                let group_end = matching_brace(&tail[word_end..]).unwrap_or(0);
                for member in split_group(&tail[word_end + 1..word_end + group_end]) {
                    let mut path = segments.clone();
                    path.extend(
                        member
                            .split("::")
                            .map(str::trim)
                            .filter(|s| !s.is_empty() && *s != "self" && !s.starts_with('{'))
                            .map(|s| s.split_whitespace().next().unwrap_or(s).to_owned()),
                    );
                    found.push(path);
                }
            } else {
                found.push(segments);
            }
        }
    }
    found
}

/// The offset of the brace that closes the one `text` starts with.
fn matching_brace(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (offset, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(offset);
                }
            }
            _ => {}
        }
    }
    None
}

/// The top-level members of a `use` group's inside.
fn split_group(inside: &str) -> Vec<&str> {
    let (mut members, mut depth, mut start) = (Vec::new(), 0usize, 0);
    for (offset, c) in inside.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                members.push(&inside[start..offset]);
                start = offset + 1;
            }
            _ => {}
        }
    }
    members.push(&inside[start..]);
    members
}

/// The strongly connected components of more than one file (Tarjan), each sorted.
fn strongly_connected(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(state: &mut State<'a>, node: &'a str) {
        state.index.insert(node, state.next);
        state.low.insert(node, state.next);
        state.next += 1;
        state.stack.push(node);
        state.on_stack.insert(node);
        let graph = state.graph;
        for next in graph.get(node).into_iter().flatten() {
            let next = next.as_str();
            if !state.index.contains_key(next) {
                visit(state, next);
                let low = state.low[node].min(state.low[next]);
                state.low.insert(node, low);
            } else if state.on_stack.contains(next) {
                let low = state.low[node].min(state.index[next]);
                state.low.insert(node, low);
            }
        }
        if state.low[node] == state.index[node] {
            let mut component = Vec::new();
            while let Some(member) = state.stack.pop() {
                state.on_stack.remove(member);
                component.push(member.to_owned());
                if member == node {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                state.found.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !state.index.contains_key(node.as_str()) {
            visit(&mut state, node);
        }
    }
    state.found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> BTreeMap<String, BTreeSet<String>> {
        let modules: BTreeMap<Vec<String>, String> = list
            .iter()
            .map(|(rel, _)| (module_of(rel), (*rel).to_owned()))
            .collect();
        list.iter()
            .map(|(rel, text)| {
                let me = module_of(rel);
                let imports = paths(&code_of(text))
                    .iter()
                    .filter_map(|path| resolve(&me, rel, path, &modules))
                    .filter(|target| target != rel)
                    .collect();
                ((*rel).to_owned(), imports)
            })
            .collect()
    }

    #[test]
    fn a_circle_through_a_group_and_super_is_found() {
        let graph = files(&[
            ("lib.rs", "mod a; mod b;"),
            ("a.rs", "use crate::{b::Thing, c};"),
            ("b/mod.rs", "mod inner; pub(crate) use inner::X;"),
            ("b/inner.rs", "fn f() -> super::super::a::A { todo!() }"),
        ]);
        assert_eq!(graph["b/inner.rs"], BTreeSet::from(["a.rs".to_owned()]));
        // a -> b/mod.rs only: b/mod.rs re-exports inner (not an import), so no circle.
        assert!(strongly_connected(&graph).is_empty());
        let graph = files(&[
            ("a.rs", "use crate::b::inner::X;"),
            ("b/mod.rs", ""),
            (
                "b/inner.rs",
                "// crate::c::Y in a comment\nfn f(_: crate::a::A) {}",
            ),
        ]);
        assert_eq!(
            strongly_connected(&graph),
            [vec!["a.rs".to_owned(), "b/inner.rs".to_owned()]]
        );
    }

    #[test]
    fn comments_strings_and_reexports_are_not_imports() {
        let code =
            code_of("// use crate::x;\nlet s = \"crate::y\";\npub use crate::z::W;\nuse crate::v;");
        assert_eq!(paths(&code), [vec!["crate".to_owned(), "v".to_owned()]]);
    }
}
