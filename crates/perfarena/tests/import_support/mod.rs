//! Shared helpers of the import end-to-end tests: a project directory without a repository,
//! the fixtures of `tests/fixtures/import/` and the built binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// A fixture file of `tests/fixtures/import/`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

/// A fresh project directory holding only the analysis-only suite (no repository).
pub fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(fixture("perfarena.toml"), dir.path().join("perfarena.toml"))
        .expect("copy the suite");
    dir
}

/// `perfarena -C <dir> <args…>`.
pub fn perfarena(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::cargo_bin("perfarena").expect("the perfarena binary");
    cmd.arg("-C").arg(dir).args(args);
    cmd
}

/// Runs a command that must succeed; returns its stdout and stderr.
pub fn ok(dir: &Path, args: &[&str]) -> (String, String) {
    let out = perfarena(dir, args).output().expect("run perfarena");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "perfarena {args:?} failed:\n{stdout}\n{stderr}"
    );
    (stdout, stderr)
}

pub fn path(name: &str) -> String {
    fixture(name).display().to_string()
}

/// Imports every fixture: tasks, results, image lists and judge labels.
pub fn import_all(dir: &Path) {
    ok(dir, &["tasks", "import", &path("tasks.jsonl")]);
    ok(
        dir,
        &[
            "results",
            "import",
            &path("results.jsonl"),
            "--source",
            "old-pipeline",
        ],
    );
    ok(
        dir,
        &[
            "images",
            "import",
            &path("registry-baseline-tags.json"),
            "--registry",
            "docker.io",
        ],
    );
    ok(dir, &["images", "import", &path("human-images.txt")]);
    ok(dir, &["judge", "import", &path("judge.jsonl")]);
}

/// `perfarena analyze --json` as JSON.
pub fn analyze(dir: &Path) -> serde_json::Value {
    let (stdout, _) = ok(dir, &["analyze", "--json"]);
    serde_json::from_str(&stdout).expect("analyze --json prints JSON")
}
