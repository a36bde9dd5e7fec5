//! The layering of `host/src`, checked on the source text.
//!
//! Imports only point down: cli → daemon → drill/report → plugin → incident →
//! config/playbook → store/diag/when/tomlfile. A module may import from its
//! own layer or a lower one; `lib.rs`, `main.rs` and `bin/` are exempt. Files
//! import each other without cycles, no source file grows past 700 lines, and
//! comments state their rule instead of pointing at notes or tickets.
//!
//! Imports are read from `use crate::…` (grouped trees included), inline
//! `crate::x::` paths and `super::` paths that leave their module. Test code
//! is skipped: a file stops at `#[cfg(test)] mod … {`, and a file declared by
//! `#[cfg(test)] mod x;` is not read. Comment lines are skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, bottom first: a module may import from its own layer or lower.
const LAYERS: &[&[&str]] = &[
    &["store", "diag", "when", "tomlfile"],
    &["config", "playbook"],
    &["incident"],
    &["plugin"],
    &["drill", "report", "complaints"],
    &["daemon"],
    &["cli"],
];

/// The longest a source file may grow.
const MAX_LINES: usize = 700;

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn layer_name(layer: Option<usize>) -> String {
    layer.map_or_else(|| "no layer".to_string(), |l| format!("layer {l}"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Every `.rs` file under `dir`, sorted, as paths relative to `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The module path of a file relative to `src`: `a/b.rs` and `a/b/mod.rs` are `[a, b]`.
fn module_path(rel: &Path) -> Vec<String> {
    let mut segs: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
    let last = segs.pop().unwrap();
    let stem = last.strip_suffix(".rs").unwrap();
    if stem != "mod" {
        segs.push(stem.to_string());
    }
    segs
}

/// One path a file names, absolute from the crate root, and where.
#[derive(Debug, Clone, PartialEq)]
struct Import {
    line: usize,
    path: Vec<String>,
}

/// What the scanner keeps of one file: its code lines (1-based numbers,
/// comments removed, test code dropped) and the test-only child modules.
#[derive(Debug, Default)]
struct Scanned {
    code: Vec<(usize, String)>,
    test_children: Vec<String>,
}

/// Cuts a trailing `//` comment that is not inside a string literal.
fn strip_comment(line: &str) -> &str {
    let mut in_str = false;
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if in_str => i += 1,
            b'"' => in_str = !in_str,
            b'/' if !in_str && b.get(i + 1) == Some(&b'/') => return &line[..i],
            _ => {}
        }
        i += 1;
    }
    line
}

/// The name in `mod x;` / `mod x {` / `pub(crate) mod x;`, if the line declares a module.
fn mod_decl(code: &str) -> Option<&str> {
    let mut rest = code.trim();
    if let Some(r) = rest.strip_prefix("pub") {
        rest = r.trim_start();
        if rest.starts_with('(') {
            rest = &rest[rest.find(')')? + 1..];
        }
        rest = rest.trim_start();
    }
    let rest = rest.strip_prefix("mod ")?;
    let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
    Some(&rest[..end])
}

fn scan(text: &str) -> Scanned {
    let mut out = Scanned::default();
    let mut cfg_test = false;
    // Brace depth of a `#[cfg(test)]` item being skipped.
    let mut skipping: Option<i32> = None;
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if trimmed.starts_with("//") {
            continue;
        }
        let code = strip_comment(raw);
        if let Some(depth) = skipping.as_mut() {
            *depth += code.matches('{').count() as i32 - code.matches('}').count() as i32;
            if *depth <= 0 {
                skipping = None;
            }
            continue;
        }
        let mut item = code.trim();
        if let Some(rest) = item.strip_prefix("#[cfg(test)]") {
            cfg_test = true;
            item = rest.trim();
        }
        if cfg_test {
            if item.is_empty() || item.starts_with("#[") {
                continue;
            }
            cfg_test = false;
            if let Some(name) = mod_decl(item) {
                if item.ends_with(';') {
                    out.test_children.push(name.to_string());
                    continue;
                }
                // A test module: the rest of the file is test code.
                break;
            }
            let depth = item.matches('{').count() as i32 - item.matches('}').count() as i32;
            if depth > 0 {
                skipping = Some(depth);
            }
            continue;
        }
        out.code.push((i + 1, code.to_string()));
    }
    out
}

/// A token of a `use` tree: a path segment or one of `:: { } , ; as *`.
fn use_tokens(code: &[(usize, String)]) -> Vec<(usize, String)> {
    let mut toks = Vec::new();
    for (line, text) in code {
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c.is_alphanumeric() || c == '_' {
                let mut end = i + c.len_utf8();
                while let Some(&(j, d)) = chars.peek() {
                    if !(d.is_alphanumeric() || d == '_') {
                        break;
                    }
                    end = j + d.len_utf8();
                    chars.next();
                }
                toks.push((*line, text[i..end].to_string()));
            } else if c == ':' && chars.peek().map(|&(_, d)| d) == Some(':') {
                chars.next();
                toks.push((*line, "::".to_string()));
            } else if "{},;*".contains(c) {
                toks.push((*line, c.to_string()));
            }
        }
    }
    toks
}

/// Expands a `use` tree (tokens after `use`, up to `;`) into its leaf paths.
fn expand_tree(toks: &[(usize, String)], pos: &mut usize, prefix: &[String], out: &mut Vec<Import>) {
    let mut path = prefix.to_vec();
    let mut line = toks.get(*pos).map_or(0, |t| t.0);
    while let Some((l, t)) = toks.get(*pos) {
        match t.as_str() {
            "::" => *pos += 1,
            "{" => {
                *pos += 1;
                loop {
                    expand_tree(toks, pos, &path, out);
                    match toks.get(*pos).map(|t| t.1.as_str()) {
                        Some(",") => *pos += 1,
                        Some("}") => {
                            *pos += 1;
                            return;
                        }
                        _ => return,
                    }
                    if toks.get(*pos).map(|t| t.1.as_str()) == Some("}") {
                        *pos += 1;
                        return;
                    }
                }
            }
            "," | "}" | ";" => break,
            "as" => *pos += 2,
            "*" => *pos += 1,
            _ => {
                if path.len() == prefix.len() {
                    line = *l;
                }
                // `a::{self, b}`: `self` names `a` itself.
                if t != "self" || path.is_empty() {
                    path.push(t.clone());
                }
                *pos += 1;
            }
        }
    }
    if path.len() > prefix.len()
        || (path == prefix && !path.is_empty() && toks.get(*pos - 1).is_some_and(|t| t.1 == "self"))
    {
        out.push(Import { line, path });
    }
}

/// Resolves `crate::`, `super::` and `self::` paths named in `module`;
/// other paths (external crates, child modules) give `None`.
fn absolute(module: &[String], path: &[String]) -> Option<Vec<String>> {
    let mut segs = path.iter().peekable();
    let mut base: Vec<String> = match segs.peek()?.as_str() {
        "crate" => {
            segs.next();
            Vec::new()
        }
        "super" | "self" => module.to_vec(),
        _ => return None,
    };
    while let Some(s) = segs.peek() {
        match s.as_str() {
            "super" => {
                base.pop()?;
            }
            "self" => {}
            _ => break,
        }
        segs.next();
    }
    base.extend(segs.cloned());
    Some(base)
}

/// Every path of `crate`, `super` or `self` a file's code names, absolute.
fn imports(module: &[String], code: &[(usize, String)]) -> Vec<Import> {
    let mut raw = Vec::new();
    let mut i = 0;
    while i < code.len() {
        let t = code[i].1.trim_start();
        let after_vis = t
            .strip_prefix("pub")
            .map(|r| if r.starts_with('(') { r.find(')').map_or(r, |e| &r[e + 1..]) } else { r })
            .unwrap_or(t);
        if after_vis.trim_start().starts_with("use ") {
            let start = i;
            while !code[i].1.contains(';') && i + 1 < code.len() {
                i += 1;
            }
            let toks = use_tokens(&code[start..=i]);
            let mut pos = toks.iter().position(|t| t.1 == "use").unwrap() + 1;
            expand_tree(&toks, &mut pos, &[], &mut raw);
            i += 1;
            continue;
        }
        // Inline paths: `crate::x::…`, `super::…`, `self::…` outside `use`.
        let toks = use_tokens(&code[i..=i]);
        let text = &code[i].1;
        for (k, (_, t)) in toks.iter().enumerate() {
            let starts_path = matches!(t.as_str(), "crate" | "super" | "self")
                && toks.get(k + 1).is_some_and(|n| n.1 == "::")
                && (k < 1 || toks[k - 1].1 != "::");
            if !starts_path {
                continue;
            }
            // `$crate::` is a macro's own crate, not an import of this one.
            if t == "crate" && text.contains("$crate") {
                continue;
            }
            let mut path = vec![t.clone()];
            let mut j = k + 1;
            while toks.get(j).is_some_and(|s| s.1 == "::") {
                match toks.get(j + 1) {
                    Some((_, s)) if s.chars().next().is_some_and(|c| c.is_alphanumeric() || c == '_') => {
                        path.push(s.clone())
                    }
                    _ => break,
                }
                j += 2;
            }
            raw.push(Import { line: code[i].0, path });
        }
        i += 1;
    }
    raw.into_iter().filter_map(|im| Some(Import { line: im.line, path: absolute(module, &im.path)? })).collect()
}

/// One source file of `host/src` that the rules apply to.
struct Source {
    rel: String,
    module: Vec<String>,
    imports: Vec<Import>,
}

/// Reads `host/src`: the files the layer rule covers (exempt and test-only files left out).
fn sources() -> Vec<Source> {
    let src = repo().join("host/src");
    let mut scanned = BTreeMap::new();
    for rel in rust_files(&src) {
        let text = std::fs::read_to_string(src.join(&rel)).unwrap();
        scanned.insert(rel, scan(&text));
    }
    let mut test_only: Vec<Vec<String>> = Vec::new();
    for (rel, s) in &scanned {
        for child in &s.test_children {
            let mut m = module_path(rel);
            m.push(child.clone());
            test_only.push(m);
        }
    }
    scanned
        .into_iter()
        .filter(|(rel, _)| !matches!(rel.to_str(), Some("lib.rs" | "main.rs")) && !rel.starts_with("bin"))
        .filter(|(rel, _)| !test_only.iter().any(|t| module_path(rel).starts_with(t)))
        .map(|(rel, s)| {
            let module = module_path(&rel);
            let imports = imports(&module, &s.code);
            Source { rel: format!("host/src/{}", rel.display()), module, imports }
        })
        .collect()
}

#[test]
fn imports_point_down_the_layers() {
    let mut violations = BTreeSet::new();
    for s in sources() {
        let from = &s.module[0];
        let from_layer = layer_of(from);
        if from_layer.is_none() {
            violations.insert((s.rel.clone(), 1, format!("module {from} is in no layer")));
        }
        for im in &s.imports {
            let Some(to) = im.path.first() else { continue };
            if to == from {
                continue;
            }
            let to_layer = layer_of(to);
            if to_layer.is_none() && !is_module(to) {
                continue; // an item of the crate root
            }
            if to_layer.is_none() || from_layer.is_none() || to_layer > from_layer {
                let what = format!(
                    "imports {to} ({}) from {} ({from}): crate::{}",
                    layer_name(to_layer),
                    layer_name(from_layer),
                    im.path.join("::")
                );
                violations.insert((s.rel.clone(), im.line, what));
            }
        }
    }
    let shown: Vec<String> = violations.iter().map(|(f, l, what)| format!("{f}:{l}: {what}")).collect();
    assert!(shown.is_empty(), "{} layer violations:\n{}", shown.len(), shown.join("\n"));
}

/// Whether `name` is a top-level module of the crate (a file or a directory in `host/src`).
fn is_module(name: &str) -> bool {
    let src = repo().join("host/src");
    src.join(format!("{name}.rs")).is_file() || src.join(name).is_dir()
}

/// The file-level import graph: file → (file, line) it imports from.
fn file_graph(sources: &[Source]) -> BTreeMap<String, BTreeMap<String, usize>> {
    let by_module: BTreeMap<&[String], &str> = sources.iter().map(|s| (s.module.as_slice(), s.rel.as_str())).collect();
    let mut graph: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for s in sources {
        let edges = graph.entry(s.rel.clone()).or_default();
        for im in &s.imports {
            // `crate::a::b::Item` is in `a/b.rs` (or `a/b/mod.rs`), else in `a.rs`.
            let target = (1..=im.path.len()).rev().find_map(|k| by_module.get(&im.path[..k]));
            if let Some(&t) = target
                && t != s.rel
            {
                edges.entry(t.to_string()).or_insert(im.line);
            }
        }
    }
    graph
}

/// Every elementary cycle of `graph`, each starting at its smallest file.
fn cycles(graph: &BTreeMap<String, BTreeMap<String, usize>>) -> Vec<Vec<String>> {
    fn dfs<'a>(
        g: &'a BTreeMap<String, BTreeMap<String, usize>>,
        start: &'a str,
        path: &mut Vec<&'a str>,
        out: &mut Vec<Vec<String>>,
    ) {
        if out.len() >= 200 {
            return;
        }
        let here = *path.last().unwrap();
        for next in g.get(here).into_iter().flat_map(|e| e.keys()) {
            let next = next.as_str();
            if next == start {
                let mut c: Vec<String> = Vec::new();
                for (k, f) in path.iter().enumerate() {
                    let to = path.get(k + 1).copied().unwrap_or(start);
                    c.push(format!("{f}:{}", g[*f][to]));
                }
                c.push(start.to_string());
                out.push(c);
            } else if next > start && !path.contains(&next) {
                path.push(next);
                dfs(g, start, path, out);
                path.pop();
            }
        }
    }
    let mut out = Vec::new();
    for start in graph.keys() {
        dfs(graph, start, &mut vec![start.as_str()], &mut out);
    }
    out
}

#[test]
fn files_import_each_other_without_cycles() {
    let found = cycles(&file_graph(&sources()));
    let shown: Vec<String> = found.iter().map(|c| c.join(" -> ")).collect();
    assert!(
        found.is_empty(),
        "{} import cycles between files (file:line of each import):\n{}",
        found.len(),
        shown.join("\n")
    );
}

#[test]
fn source_files_stay_under_the_line_limit() {
    let src = repo().join("host/src");
    let over: Vec<String> = rust_files(&src)
        .into_iter()
        .filter_map(|rel| {
            let n = std::fs::read_to_string(src.join(&rel)).unwrap().lines().count();
            (n > MAX_LINES).then(|| format!("host/src/{}: {n} lines (limit {MAX_LINES})", rel.display()))
        })
        .collect();
    assert!(over.is_empty(), "{} files over {MAX_LINES} lines:\n{}", over.len(), over.join("\n"));
}

/// What a comment must not lean on: a design document, research notes, an issue number.
fn cites_elsewhere(comment: &str) -> Option<&'static str> {
    if comment.contains("DESIGN") {
        return Some("a design document");
    }
    let lower = comment.to_lowercase();
    if lower.contains("research") {
        return Some("research notes");
    }
    let mut rest = lower.as_str();
    while let Some(i) = rest.find("issue") {
        rest = &rest[i + "issue".len()..];
        let n = rest.trim_start_matches([' ', '#']);
        if n.starts_with(|c: char| c.is_ascii_digit()) {
            return Some("an issue number");
        }
    }
    None
}

#[test]
fn comments_state_their_rule_without_citing_notes_or_issues() {
    let root = repo();
    let mut dirs = vec![root.join("host/src")];
    for e in std::fs::read_dir(root.join("plugins")).unwrap() {
        let src = e.unwrap().path().join("src");
        if src.is_dir() {
            dirs.push(src);
        }
    }
    let mut found = Vec::new();
    for dir in dirs {
        for rel in rust_files(&dir) {
            let path = dir.join(&rel);
            let shown = path.strip_prefix(&root).unwrap().display().to_string();
            for (i, line) in std::fs::read_to_string(&path).unwrap().lines().enumerate() {
                let t = line.trim_start();
                let comment = if t.starts_with("//") || t.starts_with("/*") || t.starts_with("* ") {
                    t
                } else {
                    &line[strip_comment(line).len()..]
                };
                if let Some(what) = cites_elsewhere(comment) {
                    found.push(format!("{shown}:{}: comment cites {what}: {}", i + 1, comment.trim()));
                }
            }
        }
    }
    assert!(found.is_empty(), "{} comments cite notes instead of stating the rule:\n{}", found.len(), found.join("\n"));
}

#[test]
fn the_scanner_reads_grouped_inline_and_super_imports_and_skips_tests() {
    let text = "\
//! crate::cli::Doc is a comment
use crate::{store::Store, config::{self, Config as C}};
use super::super::plugin::Host;
pub(crate) use crate::diag::Diag; // crate::daemon in a comment
fn f() -> crate::drill::Run { super::sibling() }
#[cfg(test)]
mod helpers;
#[cfg(test)]
fn only_in_tests() {
    crate::cli::run();
}
fn g() {}
#[cfg(test)]
mod tests {
    use crate::daemon::Api;
}
";
    let s = scan(text);
    assert_eq!(s.test_children, vec!["helpers"]);
    let module: Vec<String> = vec!["incident".into(), "engine".into()];
    let got: Vec<(usize, String)> =
        imports(&module, &s.code).into_iter().map(|i| (i.line, i.path.join("::"))).collect();
    let want: Vec<(usize, String)> = [
        (2, "store::Store"),
        (2, "config"),
        (2, "config::Config"),
        (3, "plugin::Host"),
        (4, "diag::Diag"),
        (5, "drill::Run"),
        (5, "incident::sibling"),
    ]
    .into_iter()
    .map(|(l, p)| (l, p.to_string()))
    .collect();
    assert_eq!(got, want);
    assert_eq!(module_path(Path::new("a/b/mod.rs")), vec!["a", "b"]);
    assert_eq!(cites_elsewhere("// see issue #12"), Some("an issue number"));
    assert_eq!(cites_elsewhere("// the issue is the lock order"), None);
}
