//! `scripts/gpu-check.sh`: the plan it prints with `--dry-run` (what a GPU machine would run,
//! snapshotted), its fast, clear failure where there is no `nvidia-smi`, and its arguments. The
//! GPU steps themselves need a GPU machine (docs/gpu.md).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn script(args: &[&str], path_env: Option<&Path>) -> Output {
    let mut cmd = Command::new(if Path::new("/bin/bash").exists() {
        "/bin/bash"
    } else {
        "bash"
    });
    cmd.arg(root().join("scripts/gpu-check.sh")).args(args);
    cmd.env_remove("PERFARENA")
        .env_remove("HF_HOME")
        .env_remove("HF_HUB_CACHE")
        .env("HOME", "/nonexistent");
    if let Some(dir) = path_env {
        cmd.env("PATH", dir);
    }
    cmd.output().expect("bash runs")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A PATH with the basic tools and without nvidia-smi (nor docker), whatever this host has.
fn path_without_gpu(tmp: &Path) -> PathBuf {
    let bin = tmp.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in [
        "date", "mktemp", "dirname", "sed", "grep", "head", "cat", "wc", "ls", "rm", "mkdir",
        "timeout",
    ] {
        let found = ["/usr/bin", "/bin"]
            .iter()
            .map(|d| Path::new(d).join(tool))
            .find(|p| p.exists());
        if let Some(found) = found {
            std::os::unix::fs::symlink(found, bin.join(tool)).unwrap();
        }
    }
    bin
}

#[test]
fn the_dry_run_prints_every_step_a_gpu_machine_would_run() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    let bin = env!("CARGO_BIN_EXE_perfarena");
    let out = script(
        &[
            "--dry-run",
            "--work",
            work.to_str().unwrap(),
            "--perfarena",
            bin,
            "--model",
            "/cache/hub/models--facebook--opt-125m",
        ],
        Some(&path_without_gpu(tmp.path())),
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for needle in [
        "nvidia-smi: not found (a real run stops here",
        "docker run --rm --gpus all --network none",
        "nvidia-smi -L",
        "demo --no-run",
        "images build --all --no-push",
        "run --backend docker --repeats 1",
        "dry run: nothing was run",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in\n{stdout}");
    }
    assert!(!work.exists(), "a dry run creates nothing");
    let redacted = stdout
        .replace(work.to_str().unwrap(), "[work]")
        .replace(bin, "[perfarena]")
        .replace(root().to_str().unwrap(), "[root]");
    // The summary's elapsed seconds vary.
    let redacted = match redacted.find("gpu-check summary (") {
        Some(at) => {
            let end = redacted[at..].find(')').map(|e| at + e).unwrap_or(at);
            format!(
                "{}gpu-check summary ([elapsed]{}",
                &redacted[..at],
                &redacted[end..]
            )
        }
        None => redacted,
    };
    insta::assert_snapshot!("gpu_check_plan", redacted);
}

#[test]
fn without_nvidia_smi_it_stops_at_once_and_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let start = std::time::Instant::now();
    let out = script(
        &[
            "--work",
            tmp.path().join("w").to_str().unwrap(),
            "--no-serving",
        ],
        Some(&path_without_gpu(tmp.path())),
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("nvidia-smi not found") && stderr.contains("docs/gpu.md"),
        "{stderr}"
    );
    assert!(
        stdout.contains("preflight  fail") && stdout.contains("result: FAILED"),
        "{stdout}"
    );
    assert!(start.elapsed().as_secs() < 10, "fails fast");
    assert!(!tmp.path().join("w").exists());
}

#[test]
fn arguments_are_checked() {
    let out = script(&["--bogus"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("unknown argument: --bogus"));
    let out = script(&["--work"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("--work needs a directory"));
    let out = script(&["--help"], None);
    assert!(out.status.success());
    assert!(
        text(&out).0.contains("--vllm-image IMG"),
        "{}",
        text(&out).0
    );
}
