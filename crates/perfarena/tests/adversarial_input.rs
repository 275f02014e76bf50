//! Attacks on perfarena through the data it does not trust (issue: untrusted input never
//! executes, leaks or collides), each run end to end through the built binary.

mod common;

use std::path::{Path, PathBuf};

use common::{bin, perfarena, stderr, stdout};

/// Every file under `root` whose name is `name` (no symlinks followed).
fn find_named(root: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_name() == name {
                found.push(path.clone());
            }
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                todo.push(path);
            }
        }
    }
    found
}

/// Replaces the whole `key = …` line of the suite's `[bench]` table.
fn set_bench(dir: &Path, key: &str, value: &str) {
    let path = dir.join("perfarena.toml");
    let suite = std::fs::read_to_string(&path).unwrap();
    let mut table = String::new();
    let mut out = String::new();
    let mut done = false;
    for line in suite.lines() {
        if line.starts_with('[') {
            table = line.trim().to_string();
        }
        if table == "[bench]" && line.split('=').next().map(str::trim) == Some(key) {
            out.push_str(&format!("{key} = {value}\n"));
            done = true;
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    assert!(done, "no bench.{key} in the toy suite");
    std::fs::write(&path, out).unwrap();
}

/// A task row whose model is shell code, in a project whose path is shell code, run on the
/// `local` backend: every value reaches the commands as one unchanged word and nothing runs.
#[test]
fn data_is_never_code_on_the_local_backend() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp
        .path()
        .join("it's $(touch dirmark) \"q\";x `touch tick` {a,b}");
    let out = bin()
        .arg("-C")
        .arg(&dir)
        .args(["demo", "--no-run"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    // The task row, as a hub dataset would carry it, with a hostile model (a model with `$` is
    // read as a placeholder and never used, so this one attacks through the other syntax).
    let model = "x`touch marker`; touch marker2 '\" && touch marker3 #";
    let tasks = std::fs::read_to_string(dir.join("tasks.jsonl")).unwrap();
    let mut row: serde_json::Value = serde_json::from_str(tasks.lines().next().unwrap()).unwrap();
    row["models"] = serde_json::json!([model]);
    std::fs::write(dir.join("hostile.jsonl"), format!("{row}\n")).unwrap();
    let hostile = dir.join("hostile.jsonl");
    let out = perfarena(&dir, &["tasks", "import", hostile.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));

    // The client also writes what it received for {workdir} and {model}, one per line.
    set_bench(
        &dir,
        "client",
        "\"python3 benchmarks/benchmark_serving.py --model {model} --port {port} --num-prompts 4 --concurrency 2 && printf '%s\\\\n' {workdir} \\\"{model}\\\" > {attempt_dir}/seen.txt\"",
    );
    let out = perfarena(&dir, &["run", "--repeats", "1", "--backend", "local"]);
    let text = format!("{}\n{}", stdout(&out), stderr(&out));
    for mark in ["marker", "marker2", "marker3", "dirmark", "tick"] {
        assert!(
            find_named(tmp.path(), mark).is_empty()
                && find_named(&std::env::current_dir().unwrap(), mark).is_empty(),
            "{mark} was created: a value ran as code\n{text}"
        );
    }
    assert!(out.status.success(), "{text}");
    let seen = find_named(&dir.join(".perfarena"), "seen.txt");
    assert!(!seen.is_empty(), "the client ran\n{text}");
    for file in seen {
        let lines: Vec<String> = std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].contains("it's $(touch dirmark) \"q\";x `touch tick` {a,b}"),
            "{{workdir}} arrived changed: {lines:?}"
        );
        assert_eq!(lines[1], model, "{{model}} arrived changed");
    }
}

/// Runs `perfarena -C dir ARGS` expecting a failure; returns stderr.
fn fails(dir: &Path, args: &[&str]) -> String {
    let out = perfarena(dir, args);
    assert!(
        !out.status.success(),
        "{args:?} should fail\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    stderr(&out)
}

/// Suites and names are validated before anything runs: each error names where and what.
#[test]
fn suites_and_names_are_validated() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("toy");
    let out = bin()
        .arg("-C")
        .arg(&dir)
        .args(["demo", "--no-run"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let suite_path = dir.join("perfarena.toml");
    let suite = std::fs::read_to_string(&suite_path).unwrap();

    for (from, to, field) in [
        ("timeout_s = 120", "timeout_s = 0", "bench.timeout_s"),
        (
            "primary = \"output_throughput_tok_s\"",
            "primary = \" \"",
            "metric.primary",
        ),
    ] {
        assert!(suite.contains(from), "{from}");
        std::fs::write(&suite_path, suite.replacen(from, to, 1)).unwrap();
        let err = fails(&dir, &["run", "--repeats", "1"]);
        let line = suite
            .lines()
            .position(|l| l.trim() == from)
            .map(|i| i + 1)
            .unwrap();
        assert!(
            err.contains(field) && err.contains(&format!("perfarena.toml:{line}")),
            "{field} at line {line}: {err}"
        );
    }

    // Invalid UTF-8 in the suite: file, line and column.
    let mut bytes = suite.clone().into_bytes();
    let at = suite.find("toy-llm").unwrap() + 3;
    bytes.insert(at, 0xFF);
    std::fs::write(&suite_path, &bytes).unwrap();
    let err = fails(&dir, &["run", "--repeats", "1"]);
    let line = suite[..at].lines().count();
    let column = suite[..at].rsplit('\n').next().unwrap().chars().count() + 1;
    assert!(
        err.contains(&format!("perfarena.toml:{line}:{column}")),
        "{line}:{column}: {err}"
    );
    std::fs::write(&suite_path, &suite).unwrap();

    let patch = dir.join("candidates/fast.patch");
    let patch_arg = |name: &str| format!("{name}={}", patch.display());
    // The same candidate name twice.
    let err = fails(
        &dir,
        &[
            "run",
            "--repeats",
            "1",
            "--candidates",
            &patch_arg("a"),
            &patch_arg("a"),
        ],
    );
    assert!(err.contains("`a` is given twice"), "{err}");
    // Names that would leave their directory or be read as options.
    for name in ["..", "../up", "-rf", "a..b", "x$(id)"] {
        let arg = format!("--candidates={}", patch_arg(name));
        let err = fails(&dir, &["run", "--repeats", "1", &arg]);
        assert!(err.contains("not a candidate name"), "{name}: {err}");
    }
    for id in ["../../escape", "..", "-x", "a/b"] {
        let arg = format!("--run-id={id}");
        let err = fails(&dir, &["run", "--repeats", "1", &arg]);
        assert!(err.contains("not a run id"), "{id}: {err}");
    }
    assert!(!tmp.path().join("escape").exists());
    // A patch that is not UTF-8: its line and column.
    let bad = dir.join("bad.patch");
    std::fs::write(&bad, b"diff --git a/x b/x\n+ok \xC3(\n").unwrap();
    let err = fails(
        &dir,
        &[
            "run",
            "--repeats",
            "1",
            "--candidates",
            &format!("bad={}", bad.display()),
        ],
    );
    assert!(err.contains("bad.patch:2:5"), "{err}");
    // Nothing was recorded by the refused commands.
    assert!(
        !dir.join(".perfarena/runs").exists()
            || std::fs::read_dir(dir.join(".perfarena/runs"))
                .unwrap()
                .next()
                .is_none(),
        "a refused run left a run directory"
    );
}
