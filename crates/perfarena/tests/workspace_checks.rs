//! Checks of the workspace's structure, run with the tests: no import cycle between the modules
//! of a crate; every declared dependency used; versions shared by several crates declared once
//! in `[workspace.dependencies]`; `rust-version` truthful (at least what edition 2024 and every
//! dependency in `Cargo.lock` need).
//!
//! The module graph is read by a small scanner of `use`/path text, not a crate: cargo-modules
//! draws module graphs but builds rust-analyzer's libraries (many minutes on a 2-core CI) and
//! reports no cycles, and crate-level tools (cargo-depgraph, cargo-deny) do not see modules.
//! The unused-dependency check is the same test `cargo machete` makes (a dependency's name in
//! the sources), without installing a binary in CI.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn crates() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(workspace().join("crates"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("Cargo.toml").exists())
        .collect();
    dirs.sort();
    dirs
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for path in entries.flatten().map(|e| e.path()) {
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// A file's module path in its crate: `src/lib.rs` → [], `src/a/mod.rs` and `src/a.rs` → [a],
/// `src/a/b.rs` → [a, b].
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The code of a file without its comments and its `#[cfg(test)]` modules (tests may reach
/// anywhere; they are not part of the module graph).
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod ") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Expands a path that may end in a `{…}` group into full paths of segments.
fn expand(prefix: &[String], rest: &str, out: &mut Vec<Vec<String>>) {
    let mut path = prefix.to_vec();
    let mut chars = rest.trim_start();
    loop {
        if let Some(group) = chars.strip_prefix('{') {
            // Split the group at top-level commas.
            let mut depth = 0;
            let mut start = 0;
            let mut end = group.len();
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        end = i;
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand(&path, &group[start..i], out);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            expand(&path, &group[start..end], out);
            return;
        }
        let ident: String = chars
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if ident.is_empty() {
            break;
        }
        path.push(ident.clone());
        chars = &chars[ident.len()..];
        match chars.strip_prefix("::") {
            Some(next) => chars = next,
            None => break,
        }
    }
    if path.len() > prefix.len() {
        out.push(path);
    }
}

/// The module paths a file's code refers to (`crate::…`, `super::…`, `self::…`, and `use`
/// of a child module), each as written.
fn references(code: &str, module: &[String], children: &BTreeSet<String>) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    for (at, _) in code.match_indices("::") {
        // The word before `::`, where it starts a path.
        let start = code[..at]
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        if start > 0 && (bytes[start - 1] == b':' || bytes[start - 1] == b'.') {
            continue;
        }
        let word = &code[start..at];
        let after_use = code[..start].trim_end().ends_with("use");
        let mut base: Vec<String> = match word {
            "crate" => Vec::new(),
            "self" => module.to_vec(),
            "super" => {
                let mut base = module.to_vec();
                base.pop();
                let mut rest = &code[at + 2..];
                while let Some(next) = rest.strip_prefix("super::") {
                    base.pop();
                    rest = next;
                }
                let mut paths = Vec::new();
                expand(&base, rest, &mut paths);
                out.extend(paths);
                continue;
            }
            child if after_use && children.contains(child) => {
                let mut base = module.to_vec();
                base.push(child.to_string());
                base
            }
            _ => continue,
        };
        let mut paths = Vec::new();
        expand(&base, &code[at + 2..], &mut paths);
        if paths.is_empty() {
            paths.push(std::mem::take(&mut base));
        }
        out.extend(paths);
    }
    out
}

/// Module → the modules it imports from, in one crate (edges to the module itself or to an
/// ancestor are left out: a module's parts use its shared items through `super::`).
fn module_graph(src: &Path) -> BTreeMap<Vec<String>, BTreeMap<Vec<String>, String>> {
    let files = rust_files(src);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(src, f)).collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let module = module_of(src, file);
        let children: BTreeSet<String> = modules
            .iter()
            .filter(|m| m.len() == module.len() + 1 && m.starts_with(&module))
            .map(|m| m[module.len()].clone())
            .collect();
        let text = std::fs::read_to_string(file).unwrap();
        let mut edges: BTreeMap<Vec<String>, String> = BTreeMap::new();
        for path in references(&code(&text), &module, &children) {
            let target = (0..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|prefix| modules.contains(prefix))
                .unwrap_or_default();
            if module.starts_with(&target) {
                continue;
            }
            edges.entry(target).or_insert_with(|| path.join("::"));
        }
        graph.insert(module, edges);
    }
    graph
}

/// The cycles of a graph: its strongly connected components of more than one module.
fn cycles(graph: &BTreeMap<Vec<String>, BTreeMap<Vec<String>, String>>) -> Vec<Vec<Vec<String>>> {
    let reach = |from: &Vec<String>| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.clone()];
        while let Some(node) = stack.pop() {
            for next in graph.get(&node).into_iter().flat_map(|e| e.keys()) {
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<&Vec<String>, BTreeSet<Vec<String>>> =
        graph.keys().map(|m| (m, reach(m))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for module in graph.keys() {
        if done.contains(module) || !reachable[module].contains(module) {
            continue;
        }
        let component: Vec<Vec<String>> = graph
            .keys()
            .filter(|other| {
                reachable[module].contains(*other) && reachable[*other].contains(module)
            })
            .cloned()
            .collect();
        done.extend(component.iter().cloned());
        out.push(component);
    }
    out
}

fn name(module: &[String]) -> String {
    if module.is_empty() {
        "crate".into()
    } else {
        module.join("::")
    }
}

#[test]
fn no_module_imports_in_a_cycle() {
    let mut found = Vec::new();
    for krate in crates() {
        let graph = module_graph(&krate.join("src"));
        for component in cycles(&graph) {
            let members: BTreeSet<&Vec<String>> = component.iter().collect();
            let edges: Vec<String> = component
                .iter()
                .flat_map(|from| {
                    graph[from]
                        .iter()
                        .filter(|(to, _)| members.contains(to))
                        .map(move |(to, via)| format!("{} -> {} ({via})", name(from), name(to)))
                })
                .collect();
            found.push(format!(
                "{}: {}",
                krate.file_name().unwrap().to_string_lossy(),
                edges.join(", ")
            ));
        }
    }
    assert!(found.is_empty(), "import cycles:\n{}", found.join("\n"));
}

#[test]
fn the_cycle_scanner_sees_cycles() {
    // `a::inner` and `b` import each other (through `super::super` and a path in code); `a`
    // imports `b` through a group; `a::inner`'s use of its parent is no edge.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(src.join("lib.rs"), "mod a;\nmod b;\n").unwrap();
    std::fs::write(
        src.join("a/mod.rs"),
        "use crate::{b::{Thing, other}, c};\nmod inner;\n",
    )
    .unwrap();
    std::fs::write(
        src.join("a/inner.rs"),
        "use super::super::b::Y;\nuse super::X;\n",
    )
    .unwrap();
    std::fs::write(src.join("b.rs"), "fn f() { crate::a::inner::go(); }\n").unwrap();
    let graph = module_graph(src);
    let found = cycles(&graph);
    let a = vec!["a".to_string()];
    let b = vec!["b".to_string()];
    let inner = vec!["a".to_string(), "inner".to_string()];
    assert_eq!(found, vec![vec![inner.clone(), b.clone()]]);
    assert_eq!(graph[&inner].keys().collect::<Vec<_>>(), vec![&b]);
    assert_eq!(graph[&a].keys().collect::<Vec<_>>(), vec![&b]);
}

fn manifest(path: &Path) -> toml::Table {
    std::fs::read_to_string(path).unwrap().parse().unwrap()
}

/// Whether `ident` (a crate's name as code spells it) appears as a path or a macro in `text`.
fn mentions(text: &str, ident: &str) -> bool {
    text.match_indices(ident).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = &text[at + ident.len()..];
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
            && (after.starts_with("::") || after.starts_with('!') || after.starts_with(';'))
    })
}

#[test]
fn every_declared_dependency_is_used() {
    let mut unused = Vec::new();
    for krate in crates() {
        let toml = manifest(&krate.join("Cargo.toml"));
        let sections = [
            ("dependencies", vec!["src"]),
            ("dev-dependencies", vec!["src", "tests", "benches"]),
        ];
        for (section, dirs) in sections {
            let Some(deps) = toml.get(section).and_then(|d| d.as_table()) else {
                continue;
            };
            let text: String = dirs
                .iter()
                .flat_map(|d| rust_files(&krate.join(d)))
                .map(|f| std::fs::read_to_string(f).unwrap())
                .collect();
            for name in deps.keys() {
                if !mentions(&text, &name.replace('-', "_")) {
                    unused.push(format!("{}: [{section}] {name}", krate.display()));
                }
            }
        }
    }
    assert!(
        unused.is_empty(),
        "declared but not used:\n{}",
        unused.join("\n")
    );
}

#[test]
fn shared_dependencies_come_from_the_workspace() {
    let root = manifest(&workspace().join("Cargo.toml"));
    let declared = root["workspace"]["dependencies"].as_table().unwrap();
    let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut local = Vec::new();
    for krate in crates() {
        let toml = manifest(&krate.join("Cargo.toml"));
        for section in ["dependencies", "dev-dependencies"] {
            for (name, spec) in toml
                .get(section)
                .and_then(|d| d.as_table())
                .into_iter()
                .flatten()
            {
                users
                    .entry(name.clone())
                    .or_default()
                    .push(krate.display().to_string());
                let inherited = spec.get("workspace").and_then(|w| w.as_bool()) == Some(true);
                if !inherited {
                    local.push((name.clone(), krate.display().to_string()));
                }
            }
        }
    }
    let shared: Vec<String> = local
        .iter()
        .filter(|(name, _)| users[name].len() > 1)
        .map(|(name, krate)| format!("{krate}: {name} (used by {} crates)", users[name].len()))
        .collect();
    assert!(
        shared.is_empty(),
        "dependencies of several crates must be `name.workspace = true`:\n{}",
        shared.join("\n")
    );
    for name in declared.keys() {
        assert!(
            users.contains_key(name),
            "[workspace.dependencies] {name} is used by no crate"
        );
    }
}

fn version(text: &str) -> (u64, u64) {
    let mut parts = text.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

#[test]
fn rust_version_is_what_the_code_and_its_dependencies_need() {
    let root = manifest(&workspace().join("Cargo.toml"));
    let package = root["workspace"]["package"].as_table().unwrap();
    let declared = version(package["rust-version"].as_str().unwrap());
    assert_eq!(package["edition"].as_str(), Some("2024"));
    assert!(declared >= (1, 85), "edition 2024 needs Rust 1.85");
    for krate in crates() {
        let toml = manifest(&krate.join("Cargo.toml"));
        let own = toml["package"].as_table().unwrap();
        for key in ["edition", "rust-version"] {
            assert_eq!(
                own.get(key)
                    .and_then(|v| v.get("workspace"))
                    .and_then(|w| w.as_bool()),
                Some(true),
                "{}: {key}.workspace = true",
                krate.display()
            );
        }
    }
    // Offline, so only what the build fetched is read: the packages of this platform (packages
    // for other targets, e.g. android_system_properties, are never downloaded by a build).
    let host = std::process::Command::new("rustc")
        .arg("-vV")
        .output()
        .unwrap();
    let host = String::from_utf8_lossy(&host.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .expect("rustc -vV names the host triple");
    let out = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .args(["--filter-platform", &host])
        .current_dir(workspace())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (needed, by) = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| Some((version(p["rust_version"].as_str()?), p["name"].to_string())))
        .max()
        .unwrap();
    assert!(
        declared >= needed,
        "rust-version {declared:?} is below {needed:?}, which {by} needs"
    );
}
