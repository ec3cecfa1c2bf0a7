//! The shape of the code, read from the sources: layers that import only downward (the
//! table in `src/lib.rs`), no import loops between modules or files, no folder with most
//! of the code, and no private labels ("seed 003", "issue 8") in text users read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Every `.rs` file under `dir`, by path relative to it.
fn rust_files(dir: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                out.insert(p.strip_prefix(root).unwrap().to_path_buf(), text);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Rust source without comments and without the insides of string and char literals, so
/// that only code is searched for paths.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'r' if b.get(i + 1) == Some(&b'#') || b.get(i + 1) == Some(&b'"') => {
                // A raw string r"..." or r#"..."# (a raw identifier r#x has no quote).
                let hashes = b[i + 1..].iter().take_while(|c| **c == b'#').count();
                if b.get(i + 1 + hashes) != Some(&b'"') {
                    out.push('r');
                    i += 1;
                    continue;
                }
                let close: Vec<u8> = std::iter::once(b'"')
                    .chain(std::iter::repeat_n(b'#', hashes))
                    .collect();
                i += 2 + hashes;
                while i < b.len() && !b[i..].starts_with(&close) {
                    i += 1;
                }
                i += close.len();
                out.push_str("\"\"");
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("\"\"");
            }
            b'\'' => {
                // A char literal ('x', '\n', '\u{..}'); otherwise a lifetime.
                if b.get(i + 1) == Some(&b'\\') {
                    i += 2;
                    while i < b.len() && b[i] != b'\'' {
                        i += 1;
                    }
                    i += 1;
                } else if b.get(i + 2) == Some(&b'\'') {
                    i += 3;
                } else {
                    // A char of several UTF-8 bytes, or a lifetime.
                    let rest = &src[i + 1..];
                    match rest.chars().next() {
                        Some(c) if rest[c.len_utf8()..].starts_with('\'') => {
                            i += 1 + c.len_utf8() + 1;
                        }
                        _ => {
                            out.push('\'');
                            i += 1;
                        }
                    }
                }
            }
            _ => {
                let c = src[i..].chars().next().unwrap();
                out.push(c);
                i += c.len_utf8();
            }
        }
    }
    out
}

/// The module path of a file: `runner/live.rs` -> [runner, live], `runner/mod.rs` -> [runner].
fn module_path(file: &Path) -> Vec<String> {
    let mut parts: Vec<String> = file
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().to_string())
        .collect();
    if parts.last().is_some_and(|l| l == "mod") {
        parts.pop();
    }
    parts
}

/// The paths a file names after `prefix` (`crate::` or `super::`), as segments.
fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let mut segs = Vec::new();
        let mut s = rest;
        loop {
            let word: String = s
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if word.is_empty() {
                break;
            }
            s = &s[word.len()..];
            segs.push(word);
            match s.strip_prefix("::") {
                Some(t) => s = t,
                None => break,
            }
        }
        // `use crate::{a, b}` names several: take each first word of the braces.
        if segs.is_empty() && s.starts_with('{') {
            let inner = &s[1..s.find('}').unwrap_or(s.len())];
            for item in inner.split(',') {
                let w: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !w.is_empty() {
                    out.push(vec![w]);
                }
            }
        }
        // A glob (`use super::*`) uses the module it names.
        if !segs.is_empty() || s.starts_with('*') {
            out.push(segs);
        }
    }
    out
}

struct Layers {
    /// Module -> layer number.
    of: BTreeMap<String, u32>,
}

/// The layer table of `src/lib.rs`: rows `//! | N | \`a\`, \`b\` | ... |`.
fn layers() -> Layers {
    let lib = std::fs::read_to_string(Path::new(SRC).join("lib.rs")).unwrap();
    let mut of = BTreeMap::new();
    for line in lib.lines() {
        let Some(row) = line.strip_prefix("//! | ") else {
            continue;
        };
        let mut cells = row.split('|');
        let Ok(n) = cells.next().unwrap_or("").trim().parse::<u32>() else {
            continue;
        };
        for m in cells.next().unwrap_or("").split('`').skip(1).step_by(2) {
            assert!(
                of.insert(m.to_string(), n).is_none(),
                "`{m}` is in two layers of lib.rs's table"
            );
        }
    }
    let declared: BTreeSet<String> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';').to_string())
        .collect();
    let listed: BTreeSet<String> = of.keys().cloned().collect();
    assert_eq!(
        declared, listed,
        "lib.rs's modules and its layer table must name the same modules"
    );
    Layers { of }
}

/// The file a path (segments from the crate root) names: the deepest file that exists.
fn file_of(files: &BTreeMap<Vec<String>, PathBuf>, segs: &[String]) -> Option<PathBuf> {
    (1..=segs.len())
        .rev()
        .find_map(|n| files.get(&segs[..n]).cloned())
}

/// Strongly connected components with more than one member (the loops) of a graph.
fn loops<T: Ord + Clone>(graph: &BTreeMap<T, BTreeSet<T>>) -> Vec<Vec<T>> {
    // Tarjan, recursive (the graphs here are small).
    struct S<T> {
        index: BTreeMap<T, usize>,
        low: BTreeMap<T, usize>,
        stack: Vec<T>,
        on: BTreeSet<T>,
        next: usize,
        out: Vec<Vec<T>>,
    }
    fn visit<T: Ord + Clone>(v: &T, g: &BTreeMap<T, BTreeSet<T>>, s: &mut S<T>) {
        s.index.insert(v.clone(), s.next);
        s.low.insert(v.clone(), s.next);
        s.next += 1;
        s.stack.push(v.clone());
        s.on.insert(v.clone());
        for w in g.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(w, g, s);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on.remove(&w);
                let done = &w == v;
                comp.push(w);
                if done {
                    break;
                }
            }
            if comp.len() > 1 {
                s.out.push(comp);
            }
        }
    }
    let mut s = S {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v) {
            visit(v, graph, &mut s);
        }
    }
    s.out
}

#[test]
fn layers_import_only_downward_and_nothing_imports_in_a_loop() {
    let layers = layers();
    let files = rust_files(Path::new(SRC));
    let by_module: BTreeMap<Vec<String>, PathBuf> =
        files.keys().map(|f| (module_path(f), f.clone())).collect();
    let mut upward = Vec::new();
    let mut module_graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut file_graph: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for (file, text) in &files {
        let me = module_path(file);
        let top = me[0].clone();
        if top == "lib" || top == "main" {
            continue; // the crate root, and the binary above every layer
        }
        let my_layer = *layers
            .of
            .get(&top)
            .unwrap_or_else(|| panic!("{} is in no layer of lib.rs's table", file.display()));
        let code = code_only(text);
        let mut targets: Vec<Vec<String>> = paths_after(&code, "crate::");
        // super:: from a file is relative to its parent module.
        let base: Vec<String> = me[..me.len() - 1].to_vec();
        for p in paths_after(&code, "super::") {
            targets.push(base.iter().cloned().chain(p).collect());
        }
        for t in targets {
            let Some(other) = t.first() else {
                continue; // `crate::*`
            };
            if let Some(&l) = layers.of.get(other) {
                if other != &top {
                    module_graph
                        .entry(top.clone())
                        .or_default()
                        .insert(other.clone());
                    if l > my_layer {
                        upward.push(format!(
                            "{} (layer {my_layer}) uses crate::{} (layer {l})",
                            file.display(),
                            t.join("::")
                        ));
                    }
                }
            }
            if let Some(f) = file_of(&by_module, &t) {
                if &f != file {
                    file_graph.entry(file.clone()).or_default().insert(f);
                }
            }
        }
    }
    assert!(upward.is_empty(), "upward imports:\n{}", upward.join("\n"));
    let module_loops = loops(&module_graph);
    assert!(
        module_loops.is_empty(),
        "modules in a loop: {module_loops:?}"
    );
    let file_loops = loops(&file_graph);
    assert!(file_loops.is_empty(), "files in a loop: {file_loops:?}");
}

#[test]
fn the_loop_finder_and_the_lexer_find_what_they_must() {
    // A test of the test: a loop is found, comments and strings are not code.
    let mut g: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    g.entry("a").or_default().insert("b");
    g.entry("b").or_default().insert("c");
    g.entry("c").or_default().insert("a");
    g.entry("d").or_default().insert("a");
    let l = loops(&g);
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].iter().collect::<BTreeSet<_>>().len(), 3);
    let code = code_only(
        "use crate::x::Y; // crate::z\nlet s = \"crate::w\"; let c = '\"'; use crate::{p, q};\nr#\"crate::v\"#;",
    );
    let found: Vec<String> = paths_after(&code, "crate::")
        .into_iter()
        .map(|p| p.join("::"))
        .collect();
    assert_eq!(found, ["x::Y", "p", "q"]);
}

#[test]
fn no_folder_holds_much_more_than_a_fifth_of_the_code() {
    let files = rust_files(Path::new(SRC));
    let total: usize = files.values().map(|t| t.lines().count()).sum();
    let mut per: BTreeMap<String, usize> = BTreeMap::new();
    for (f, t) in &files {
        let top = module_path(f).first().cloned().unwrap_or_default();
        *per.entry(top).or_default() += t.lines().count();
    }
    for (m, n) in &per {
        let share = *n as f64 / total as f64;
        assert!(
            share <= 0.22,
            "{m} holds {:.0}% of the {total} lines of harness/src: split it",
            share * 100.0
        );
    }
}

/// Files users read: README, docs, scenarios, scripts, help text, plot labels and
/// comments (the Rust sources).
fn user_facing_files() -> Vec<PathBuf> {
    let repo = Path::new(REPO);
    let mut out = vec![repo.join("README.md"), repo.join("fibtest/README.md")];
    fn walk(dir: &Path, exts: &[&str], out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "fixtures") {
                    walk(&p, exts, out);
                }
            } else if p.extension().is_some_and(|x| exts.iter().any(|e| x == *e)) {
                out.push(p);
            }
        }
    }
    walk(&repo.join("docs"), &["md", "toml", "sh", "yml"], &mut out);
    walk(&repo.join("scenarios"), &["toml"], &mut out);
    walk(&repo.join("scripts"), &["sh", "md"], &mut out);
    walk(&repo.join("harness/src"), &["rs"], &mut out);
    walk(&repo.join("harness/tests"), &["rs"], &mut out);
    walk(&repo.join("fibtest/src"), &["rs"], &mut out);
    out
}

/// A private label: "seed 003", "seed 000's", "issue 8" (a public issue is cited with
/// its project, like "kubernetes #97445").
fn private_label(line: &str) -> Option<String> {
    let lower = line.to_lowercase();
    for (word, digits) in [("seed", 3usize), ("issue", 1)] {
        let mut rest = lower.as_str();
        while let Some(at) = rest.find(word) {
            let before = rest[..at].chars().next_back();
            let after = &rest[at + word.len()..];
            rest = after;
            if before.is_some_and(|c| c.is_alphanumeric()) {
                continue;
            }
            let tail = after.trim_start_matches([' ', '_']);
            let separator = after.len() - tail.len();
            let n = tail.chars().take_while(|c| c.is_ascii_digit()).count();
            if n >= digits && separator <= 1 {
                return Some(format!("{word} {}", &tail[..n]));
            }
        }
    }
    None
}

#[test]
fn text_users_read_cites_sources_by_title_not_private_labels() {
    assert_eq!(
        private_label("as in seed 003's model"),
        Some("seed 003".into())
    );
    assert_eq!(
        private_label("fn x_seed_004s_order()"),
        Some("seed 004".into())
    );
    assert_eq!(private_label("the ask of issue 8"), Some("issue 8".into()));
    assert_eq!(private_label("kubernetes #97445, 4 seed bytes"), None);
    let mut found = Vec::new();
    // This file names the labels it looks for.
    let me = Path::new(file!()).file_name().unwrap().to_owned();
    for f in user_facing_files() {
        if f.ends_with(Path::new("architecture").join(&me)) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            if let Some(l) = private_label(line) {
                found.push(format!("{}:{}: {l}", f.display(), i + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "cite the source by its title (docs/sources.md) instead of:\n{}",
        found.join("\n")
    );
}
