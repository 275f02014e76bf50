//! Helpers shared by the end-to-end tests: the built binary and a fresh toy project.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `perfarena` binary built for these tests.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_perfarena"))
}

/// Runs perfarena in `dir` with `args`; returns the output.
pub fn perfarena(dir: &Path, args: &[&str]) -> Output {
    bin()
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .expect("perfarena runs")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Creates the toy project (repository, suite, tasks imported, candidate patches) in a new
/// temporary directory, without running anything.
pub fn toy_project() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("toy");
    let out = bin()
        .arg("-C")
        .arg(&dir)
        .args(["demo", "--no-run"])
        .output()
        .expect("demo runs");
    assert!(
        out.status.success(),
        "demo --no-run failed: {}",
        stderr(&out)
    );
    (tmp, dir)
}

/// `--candidates` arguments for every patch of the toy project.
pub fn toy_candidates(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("candidates"))
        .expect("candidates dir")
        .map(|e| e.expect("entry").path())
        .map(|p| {
            format!(
                "{}={}",
                p.file_stem().unwrap().to_string_lossy(),
                p.display()
            )
        })
        .collect();
    names.sort();
    names
}
