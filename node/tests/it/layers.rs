//! The node's layers run one way: each top-level module of `node/src` may
//! use only modules of lower layers (see docs/ARCHITECTURE.md, "Layers").
//! A `use crate::…` (or a `crate::…` path in code) that points up or
//! sideways fails this test with the file and the line.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

/// Layer of each top-level module, lowest first. A module may depend on
/// modules of strictly lower layers only.
const LAYERS: &[(&str, u8)] = &[
    ("clock", 0),
    ("home", 0),
    ("notes", 0),
    ("store", 1),
    ("chain", 2),
    ("engine", 3),
    ("api", 4),
    ("config", 4),
    ("node", 5),
    ("runtime", 6),
    ("dev", 7),
    ("cli", 8),
];

fn layer(m: &str) -> Option<u8> {
    LAYERS.iter().find(|(n, _)| *n == m).map(|(_, l)| *l)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("node/src is readable") {
        let p = e.expect("directory entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level modules named by `crate::` paths in one line of code:
/// `crate::a::b`, and each item of `crate::{a::x, b, …}` (also when the
/// braces span several lines, which `body` carries on).
fn crate_refs(code: &str, open_brace: &mut Option<String>, out: &mut Vec<String>) {
    let mut text = code.to_string();
    if let Some(acc) = open_brace.take() {
        text = format!("{acc}{text}");
        if !text.contains('}') || depth(&text) > 0 {
            *open_brace = Some(text);
            return;
        }
        top_items(&text, out);
        return;
    }
    let mut rest = text.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if rest.starts_with('{') {
            if depth(rest) > 0 {
                *open_brace = Some(rest.to_string());
                return;
            }
            top_items(rest, out);
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
        }
    }
}

fn depth(s: &str) -> i32 {
    s.chars().fold(0, |d, c| match c {
        '{' => d + 1,
        '}' => d - 1,
        _ => d,
    })
}

/// The first path segment of each top-level item of a `{…}` group.
fn top_items(group: &str, out: &mut Vec<String>) {
    let inner = group.trim_start_matches('{');
    let (mut d, mut item) = (0, String::new());
    for c in inner.chars() {
        match c {
            '{' => d += 1,
            '}' if d == 0 => break,
            '}' => d -= 1,
            ',' if d == 0 => {
                out.push(first_segment(&item));
                item.clear();
                continue;
            }
            _ => {}
        }
        item.push(c);
    }
    out.push(first_segment(&item));
    out.retain(|s| !s.is_empty());
}

fn first_segment(item: &str) -> String {
    item.trim()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

#[test]
fn each_module_uses_only_lower_layers() {
    // Resolved at run time: a binary cached from another checkout must read
    // this checkout's sources.
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut violations = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&root).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        let Some(mine) = layer(&top) else {
            assert!(
                top == "lib" || top == "main",
                "{} is a top-level module the layer table does not list",
                rel.display()
            );
            continue;
        };
        let src = std::fs::read_to_string(f).unwrap();
        let mut open = None;
        for (n, line) in src.lines().enumerate() {
            // Tests may reach anywhere; they sit at the end of a file.
            if line.trim_start().starts_with("#[cfg(test)]") {
                break;
            }
            let code = line.split("//").next().unwrap_or("");
            let mut refs = Vec::new();
            crate_refs(code, &mut open, &mut refs);
            for r in refs.into_iter().filter(|r| !r.is_empty() && *r != top) {
                let Some(theirs) = layer(&r) else { continue };
                edges.entry(top.clone()).or_default().insert(r.clone());
                if theirs >= mine {
                    violations.push(format!(
                        "{}:{}: `{top}` (layer {mine}) uses `{r}` (layer {theirs})",
                        rel.display(),
                        n + 1
                    ));
                }
            }
        }
    }
    for (m, deps) in &edges {
        eprintln!(
            "{m} -> {}",
            deps.iter().cloned().collect::<Vec<_>>().join(" ")
        );
    }
    assert!(
        edges.get("chain").is_some_and(|d| d.contains("store")),
        "the scan found chain's use of the store: {edges:?}"
    );
    assert!(
        violations.is_empty(),
        "modules that use a module of their own or a higher layer:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_scanner_sees_grouped_and_multi_line_uses() {
    let mut out = Vec::new();
    let mut open = None;
    for l in [
        "use crate::{",
        "    chain::outbox::{EntryState, OutboxEntry},",
        "    clock::now_ms,",
        "};",
    ] {
        crate_refs(l, &mut open, &mut out);
    }
    crate_refs(
        "let x = crate::engine::EngineConfig::default();",
        &mut open,
        &mut out,
    );
    assert_eq!(out, ["chain", "clock", "engine"]);
}
