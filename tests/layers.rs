//! The layer check: every module of `src/` belongs to one layer of
//! docs/ARCHITECTURE.md, and a module may use its own layer and those below
//! it, never one above. Read from the source text: every `crate::`,
//! `super::` and `self::` path (in `use` lines, in code, grouped
//! `{a, b::c}` included; `//` comment lines skipped) is mapped to the module
//! it names, and that module to its layer. Fails naming file, line and
//! import.
//!
//! The rule has no exception: the engine (`peer` but its REPL, line
//! editor and input) imports nothing from the front layer above it.
//!
//! Limits: an inline module (`mod tests { .. }`) is taken to run to the end
//! of its file, as every one in `src/` does; a path after it resolves from
//! inside it. `src/bin/` uses the library by its public paths only and is
//! the top layer, so it is skipped.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// The layers, bottom-up, and the modules (paths under `crate::`) each
/// holds. A module's layer is that of the longest listed prefix of its path.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "leaf",
        &["bounds", "sync", "testing", "state_file", "storage::fs"],
    ),
    (
        "content",
        &[
            "base32", "manifest", "chunkset", "name", "select", "private", "link", "ticket",
            "identity",
        ],
    ),
    ("storage", &["storage", "state_dir"]),
    ("net", &["net"]),
    ("protocol", &["protocol", "error"]),
    ("server", &["server"]),
    ("services", &["peer", "tracker", "dht"]),
    ("front", &["console", "ui", "web", "cli"]),
];

/// One path a file names, and where.
struct Use {
    line: usize,
    /// The module path it resolves to, without `crate::`.
    target: String,
}

/// An import from a layer above the file's own.
struct Violation {
    file: String,
    line: usize,
    target: String,
    from: &'static str,
    to: &'static str,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: imports crate::{} ({}) from layer {}",
            self.file, self.line, self.target, self.to, self.from
        )
    }
}

#[test]
fn modules_import_only_their_own_layer_and_those_below() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    assert!(
        files.len() > 40,
        "found only {} files under src/",
        files.len()
    );
    let mut unplaced = Vec::new();
    let mut violations = Vec::new();
    for path in &files {
        let rel = path.strip_prefix(root).expect("under the root");
        let rel = rel.to_string_lossy().into_owned();
        if rel.starts_with("src/bin/") || rel == "src/lib.rs" {
            continue;
        }
        let module = module_of(&rel);
        let Some(from) = layer_of(&module) else {
            unplaced.push(rel);
            continue;
        };
        let text = fs::read_to_string(path).expect("readable source");
        for u in uses(&text, &module) {
            let Some(to) = layer_of(&u.target) else {
                unplaced.push(format!("{rel}:{}: crate::{}", u.line, u.target));
                continue;
            };
            if rank(to) <= rank(from) {
                continue;
            }
            violations.push(Violation {
                file: rel.clone(),
                line: u.line,
                target: u.target,
                from,
                to,
            });
        }
    }
    let mut report = String::new();
    for v in &violations {
        report += &format!("  {v}\n");
    }
    for u in &unplaced {
        report += &format!("  {u}: in no layer; add its module to LAYERS in tests/layers.rs and docs/ARCHITECTURE.md\n");
    }
    assert!(
        report.is_empty(),
        "imports that point up a layer (layers bottom-up: {}):\n{report}",
        LAYERS
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(" < ")
    );
}

#[test]
fn the_reader_finds_grouped_relative_and_inline_paths() {
    let text = "\
//! [`x`](crate::web) in a comment is not an import
use crate::{bounds::MAX_LINE, net::{rate::RateCap, stop}};
use super::super::Peer;
use self::child::Thing;
mod child;
fn f() { crate::console::say(\"hi\"); child::g(); }
mod tests {
    use super::f;
}
";
    let found: Vec<(usize, String)> = uses(text, "peer::repl::exec")
        .into_iter()
        .map(|u| (u.line, u.target))
        .collect();
    let want = [
        (2, "bounds::MAX_LINE"),
        (2, "net::rate::RateCap"),
        (2, "net::stop"),
        (3, "peer::Peer"),
        (4, "peer::repl::exec::child::Thing"),
        (6, "console::say"),
        (6, "peer::repl::exec::child::g"),
        (8, "peer::repl::exec::f"),
    ];
    let want: Vec<(usize, String)> = want.iter().map(|(l, t)| (*l, t.to_string())).collect();
    assert_eq!(found, want);
    assert_eq!(layer_of("ui::repl::exec"), Some("front"));
    assert_eq!(layer_of("peer::repl::exec"), Some("services"));
    assert_eq!(layer_of("peer::download"), Some("services"));
    assert_eq!(layer_of("peerless"), None);
    assert_eq!(module_of("src/peer/repl/mod.rs"), "peer::repl");
    assert_eq!(module_of("src/net/rate.rs"), "net::rate");
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .expect("readable src/")
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/peer/repl/mod.rs` → `peer::repl`.
fn module_of(rel: &str) -> String {
    let path = rel.strip_prefix("src/").unwrap_or(rel);
    let path = path.strip_suffix(".rs").unwrap_or(path);
    let path = path.strip_suffix("/mod").unwrap_or(path);
    path.replace('/', "::")
}

fn starts_with_module(path: &str, module: &str) -> bool {
    path == module || path.starts_with(&format!("{module}::"))
}

fn layer_of(path: &str) -> Option<&'static str> {
    LAYERS
        .iter()
        .flat_map(|(layer, modules)| modules.iter().map(move |m| (*layer, *m)))
        .filter(|(_, m)| starts_with_module(path, m))
        .max_by_key(|(_, m)| m.len())
        .map(|(layer, _)| layer)
}

fn rank(layer: &str) -> usize {
    LAYERS
        .iter()
        .position(|(name, _)| *name == layer)
        .expect("a layer of LAYERS")
}

/// Every path of `text` (the source of `module`) that starts at `crate`,
/// `super`, `self` or a child module it declares, resolved to a path under
/// `crate::`.
fn uses(text: &str, module: &str) -> Vec<Use> {
    let children: Vec<&str> = text
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let l = match l.strip_prefix("pub") {
                Some(rest) => rest.split_once(' ')?.1,
                None => l,
            };
            l.strip_prefix("mod ")?.strip_suffix(';')
        })
        .collect();
    let code: String = text
        .lines()
        .map(|l| match l.trim_start().starts_with("//") {
            true => "\n".to_string(),
            false => format!("{l}\n"),
        })
        .collect();
    // The first inline module: where it starts, and its name.
    let inline = code.match_indices("mod ").find_map(|(at, _)| {
        let line_start = code[..at].rfind('\n').map_or(0, |n| n + 1);
        let head = code[line_start..at].trim();
        let name = code[at + 4..].split_once(" {")?.0;
        let plain = matches!(head, "" | "pub" | "pub(crate)");
        (plain && name.bytes().all(is_ident)).then_some((at, name))
    });
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || !is_ident(bytes[i - 1]) && bytes[i - 1] != b':';
        if !(starts_word && is_ident(bytes[i])) {
            i += 1;
            continue;
        }
        let word_end = i + bytes[i..].iter().take_while(|b| is_ident(**b)).count();
        let word = &code[i..word_end];
        let is_root = matches!(word, "crate" | "super" | "self") || children.contains(&word);
        if !is_root || !code[word_end..].starts_with("::") {
            i = word_end;
            continue;
        }
        let line = code[..i].matches('\n').count() + 1;
        let (paths, end) = tree(&code, i);
        let here = match inline.filter(|(at, _)| i > *at) {
            Some((_, name)) => format!("{module}::{name}"),
            None => module.to_string(),
        };
        for path in paths {
            if let Some(target) = resolve(&path, &here) {
                found.push(Use { line, target });
            }
        }
        i = end;
    }
    found
}

/// Resolves a path as written in `module` to one under `crate::`.
fn resolve(path: &[String], module: &str) -> Option<String> {
    let mut base: Vec<&str> = module.split("::").collect();
    let mut rest = path;
    if rest.first().is_some_and(|w| w == "crate") {
        base.clear();
        rest = &rest[1..];
    }
    while let Some(word) = rest.first() {
        match word.as_str() {
            "super" => {
                base.pop()?;
            }
            "self" => {}
            _ => break,
        }
        rest = &rest[1..];
    }
    let mut full: Vec<&str> = base;
    full.extend(rest.iter().map(String::as_str));
    (!full.is_empty()).then(|| full.join("::"))
}

/// Reads the use tree starting at `start`: `a::b::{c, d::{e}}` gives
/// `[a,b,c]` and `[a,b,d,e]`. Returns the paths and where reading stopped.
fn tree(code: &str, start: usize) -> (Vec<Vec<String>>, usize) {
    let bytes = code.as_bytes();
    let mut prefix = Vec::new();
    let mut i = start;
    loop {
        i = skip_space(bytes, i);
        if bytes.get(i) == Some(&b'{') {
            let mut paths = Vec::new();
            i += 1;
            loop {
                i = skip_space(bytes, i);
                match bytes.get(i) {
                    None => return (paths, i),
                    Some(b'}') => return (paths, i + 1),
                    Some(b',') => i += 1,
                    Some(b) if is_ident(*b) => {
                        let (inner, end) = tree(code, i);
                        for p in inner {
                            paths.push(prefix.iter().cloned().chain(p).collect());
                        }
                        i = end;
                    }
                    // `*` or anything else: the group's prefix is the path.
                    Some(_) => {
                        paths.push(prefix.clone());
                        i += 1;
                    }
                }
            }
        }
        let len = bytes[i..].iter().take_while(|b| is_ident(**b)).count();
        if len == 0 {
            return (vec![prefix], i);
        }
        prefix.push(code[i..i + len].to_string());
        i += len;
        if !code[i..].starts_with("::") {
            return (vec![prefix], i);
        }
        i += 2;
    }
}

fn skip_space(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}
