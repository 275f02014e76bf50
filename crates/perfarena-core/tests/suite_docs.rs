//! Every key of the embedded suite defaults is documented (as `` `section.key` ``) in docs/.

use std::path::Path;

fn keys(prefix: &str, table: &toml::Table, out: &mut Vec<String>) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            // A table with entries is a section; an empty one is a map the user fills.
            toml::Value::Table(inner) if !inner.is_empty() => keys(&path, inner, out),
            _ => out.push(path),
        }
    }
}

#[test]
fn every_default_key_is_documented() {
    let defaults: toml::Table = toml::from_str(perfarena_core::suite::DEFAULTS_TOML).unwrap();
    let mut all = Vec::new();
    keys("", &defaults, &mut all);
    let docs_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
    let mut docs = String::new();
    for entry in std::fs::read_dir(&docs_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) == Some("md") {
            docs.push_str(&std::fs::read_to_string(path).unwrap());
        }
    }
    let missing: Vec<&String> = all
        .iter()
        .filter(|key| !docs.contains(&format!("`{key}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "suite keys without documentation in docs/*.md: {missing:?}"
    );
    assert!(all.len() > 30, "{all:?}");
}
