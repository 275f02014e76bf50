//! The ready-made suites (`perfarena init --preset vllm|sglang`): they parse with unknown keys
//! rejected, say what their docs promise, and their eras choose the right commands and
//! Dockerfile over a synthetic history of each project's layout.

mod common;

use std::collections::BTreeSet;
use std::fmt::Write as _;

use perfarena_core::eras::{self, Facts};
use perfarena_core::suite::Suite;
use perfarena_core::task::BenchKind;

const VLLM: &str = include_str!("../presets/vllm.toml");
const SGLANG: &str = include_str!("../presets/sglang.toml");

fn parse(text: &str, name: &str) -> Suite {
    Suite::from_toml_str(text, name).unwrap_or_else(|e| panic!("preset {name} does not parse: {e}"))
}

#[test]
fn the_presets_parse_and_hold_what_their_docs_promise() {
    for (text, name) in [(VLLM, "vllm"), (SGLANG, "sglang")] {
        let suite = parse(text, name);
        suite.require_runnable().unwrap();
        assert_eq!(suite.images.human, "{registry}/{repo}:{commit}", "{name}");
        assert_eq!(
            suite.images.baseline, "{registry}/{repo}:baseline-{parent:12}",
            "{name}"
        );
        for arg in ["max_jobs", "nvcc_threads", "torch_cuda_arch_list"] {
            assert!(
                suite.build.args.contains_key(arg),
                "{name}: build.args.{arg}"
            );
        }
        assert_eq!(suite.build.args["torch_cuda_arch_list"], "9.0");
        assert!(
            suite.build.min_max_jobs >= 1 && suite.build.timeout_s >= 7200,
            "{name}"
        );
        assert!(
            !suite.build.rebuild_globs.is_empty() && !suite.build.rebuild_command.trim().is_empty(),
            "{name}"
        );
        // Their Dockerfiles need BuildKit and bind-mount .git.
        assert_eq!(
            suite.build.builder,
            perfarena_core::suite::BuilderChoice::Buildkit,
            "{name}"
        );
        assert!(suite.build.context_git, "{name}");
        // The step becomes one RUN instruction of the candidate's Dockerfile.
        assert!(
            !suite.build.rebuild_command.trim().contains('\n'),
            "{name}: rebuild_command on one line"
        );
        assert_eq!(
            suite.bench.readiness.url, "http://127.0.0.1:{port}/health",
            "{name}"
        );
        assert_eq!(suite.bench.readiness.timeout_s, 300, "{name}");
        assert!(suite.bench.timeout_s >= 900, "{name}");
        assert_eq!(
            suite.docker.gpus,
            perfarena_core::suite_docker::GpuRequest::Word("all".into()),
            "{name}"
        );
        assert!(!suite.docker.shm_size.is_empty(), "{name}");
        assert!(
            suite.docker.mounts.iter().all(|m| m.ends_with(":/models")),
            "{name}: a read-only model cache"
        );
        assert!(suite.secrets.vars.contains_key("HF_TOKEN"), "{name}");
        assert!(
            !suite.secrets.allow.iter().any(|k| k == "candidate"),
            "{name}: never a secret for candidates"
        );
        assert_eq!(suite.docker.network.candidate, "none", "{name}");
        assert!(
            suite.triage.rules.len() >= 3,
            "{name}: project-specific triage rules"
        );
        // Every era can be told apart in the store.
        let names: BTreeSet<&str> = suite.bench.eras.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names.len(), suite.bench.eras.len());
    }
    let vllm = parse(VLLM, "vllm");
    for glob in [
        "csrc/**",
        "CMakeLists.txt",
        "cmake/**",
        "setup.py",
        "pyproject.toml",
        "requirements*.txt",
    ] {
        assert!(
            vllm.build.rebuild_globs.iter().any(|g| g == glob),
            "vllm rebuild_globs lacks {glob}"
        );
    }
}

#[test]
fn the_buildkit_rule_matches_what_builds_without_buildkit_say() {
    let vllm = parse(VLLM, "vllm");
    let triage = perfarena_core::triage::Triage::new(&vllm.triage.rules).unwrap();
    for text in [
        // The classic builder (build.builder = "classic").
        "Step 5/20 : RUN --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt\nthe --mount option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how to build images with BuildKit enabled",
        "the --chmod option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/",
        // perfarena's heredoc check on an engine before 23.
        "docker/Dockerfile:148: a heredoc (RUN <<EOF) needs Docker Engine >= 23 (its built-in Dockerfile frontend reads heredocs); this engine is 20.10.24",
    ] {
        let class = triage.classify_text(&[text]);
        assert_eq!(
            class.as_ref().map(|c| c.signature.as_str()),
            Some("buildkit-required"),
            "{text}: {class:?}"
        );
    }
    assert_ne!(
        triage
            .classify_text(&["Dockerfile parse error line 3: unknown instruction: FORM"])
            .map(|c| c.signature),
        Some("buildkit-required".to_string()),
        "a typo is not a BuildKit problem"
    );
}

#[test]
fn a_preset_with_a_typo_is_refused_by_path() {
    let broken = VLLM.replace("shm_size = \"16g\"", "shm-size = \"16g\"");
    let err = Suite::from_toml_str(&broken, "perfarena.toml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("docker") && err.contains("unknown field"),
        "{err}"
    );
}

/// A point in a project's history: the files at the task's parent, its date and kind.
struct Point {
    label: &'static str,
    files: &'static [&'static str],
    date: Option<&'static str>,
    kind: BenchKind,
}

fn table(suite: &Suite, history: &[Point]) -> String {
    let mut out = String::new();
    for point in history {
        let present: BTreeSet<&str> = point.files.iter().copied().collect();
        let exists = |path: &str| present.contains(path);
        let facts = Facts {
            exists: &exists,
            date: point.date.map(str::to_string),
            kind: point.kind,
        };
        let chosen = suite.bench.commands(&facts);
        let dockerfile = eras::dockerfile(&suite.bench.eras, &suite.build.dockerfile, &facts);
        let _ = writeln!(
            out,
            "{} [{} {}]",
            point.label,
            point.date.unwrap_or("no date"),
            point.kind.as_str()
        );
        let _ = writeln!(
            out,
            "  era:        {} ({})",
            chosen.era.as_deref().unwrap_or("-"),
            chosen.reason.as_deref().unwrap_or("plain [bench]")
        );
        let _ = writeln!(out, "  dockerfile: {dockerfile}");
        let _ = writeln!(
            out,
            "  server:     {}",
            if chosen.server.is_empty() {
                "(none)"
            } else {
                &chosen.server
            }
        );
        let _ = writeln!(out, "  client:     {}", chosen.client);
        let _ = writeln!(out, "  ready:      {}", chosen.readiness_url);
    }
    out
}

#[test]
fn vllm_eras_over_a_synthetic_history() {
    use BenchKind::*;
    let history = [
        Point {
            label: "2024-03 module server, ShareGPT client",
            files: &[
                "Dockerfile",
                "setup.py",
                "csrc/ops.h",
                "benchmarks/benchmark_serving.py",
            ],
            date: Some("2024-03-10"),
            kind: Serving,
        },
        Point {
            label: "2024-07 random dataset (merged 2024-07-08), no vllm serve yet",
            files: &["Dockerfile", "setup.py", "benchmarks/benchmark_serving.py"],
            date: Some("2024-07-10"),
            kind: Serving,
        },
        Point {
            label: "2024-09 vllm serve (scripts.py)",
            files: &[
                "Dockerfile",
                "vllm/scripts.py",
                "benchmarks/benchmark_serving.py",
            ],
            date: Some("2024-09-01"),
            kind: Serving,
        },
        Point {
            label: "2025-02 vllm serve (cli package)",
            files: &[
                "Dockerfile",
                "vllm/entrypoints/cli/main.py",
                "benchmarks/benchmark_serving.py",
            ],
            date: Some("2025-02-01"),
            kind: Serving,
        },
        Point {
            label: "2025-05 docker/ and vllm bench serve",
            files: &[
                "docker/Dockerfile",
                "vllm/entrypoints/cli/main.py",
                "vllm/benchmarks/serve.py",
                "benchmarks/benchmark_serving.py",
            ],
            date: Some("2025-05-01"),
            kind: Serving,
        },
        Point {
            label: "2025-10 benchmark_serving.py retired",
            files: &[
                "docker/Dockerfile",
                "vllm/entrypoints/cli/main.py",
                "vllm/benchmarks/serve.py",
            ],
            date: None,
            kind: Serving,
        },
        Point {
            label: "2024-09 standalone latency",
            files: &[
                "Dockerfile",
                "vllm/scripts.py",
                "benchmarks/benchmark_latency.py",
            ],
            date: Some("2024-09-01"),
            kind: Latency,
        },
        Point {
            label: "2025-10 standalone latency",
            files: &["docker/Dockerfile", "vllm/benchmarks/latency.py"],
            date: None,
            kind: Latency,
        },
        Point {
            label: "2024-09 standalone throughput",
            files: &["Dockerfile", "benchmarks/benchmark_throughput.py"],
            date: Some("2024-09-01"),
            kind: Throughput,
        },
        Point {
            label: "2025-10 standalone throughput",
            files: &["docker/Dockerfile", "vllm/benchmarks/throughput.py"],
            date: None,
            kind: Throughput,
        },
    ];
    insta::assert_snapshot!("vllm_eras", table(&parse(VLLM, "vllm"), &history));
}

#[test]
fn sglang_eras_over_a_synthetic_history() {
    use BenchKind::*;
    let history = [
        Point {
            label: "2024-05 benchmark script",
            files: &[
                "docker/Dockerfile",
                "benchmark/latency_throughput/bench_throughput.py",
            ],
            date: Some("2024-05-01"),
            kind: Serving,
        },
        Point {
            label: "2024-09 bench_serving in the package",
            files: &[
                "docker/Dockerfile",
                "python/sglang/bench_serving.py",
                "python/sglang/bench_latency.py",
            ],
            date: Some("2024-09-01"),
            kind: Serving,
        },
        Point {
            label: "2024-09 old script still there",
            files: &[
                "docker/Dockerfile",
                "python/sglang/bench_serving.py",
                "benchmark/latency_throughput/bench_throughput.py",
            ],
            date: Some("2024-09-01"),
            kind: Serving,
        },
        Point {
            label: "2024-09 standalone latency (bench_latency)",
            files: &["docker/Dockerfile", "python/sglang/bench_latency.py"],
            date: Some("2024-09-01"),
            kind: Latency,
        },
        Point {
            label: "2025-03 standalone latency (bench_one_batch)",
            files: &["docker/Dockerfile", "python/sglang/bench_one_batch.py"],
            date: Some("2025-03-01"),
            kind: Latency,
        },
        Point {
            label: "2025-03 offline throughput",
            files: &[
                "docker/Dockerfile",
                "python/sglang/bench_offline_throughput.py",
            ],
            date: Some("2025-03-01"),
            kind: Throughput,
        },
    ];
    insta::assert_snapshot!("sglang_eras", table(&parse(SGLANG, "sglang"), &history));
}

#[test]
fn init_writes_each_preset_and_keeps_an_existing_file() {
    let tmp = tempfile::tempdir().unwrap();
    for (preset, text) in [("vllm", VLLM), ("sglang", SGLANG)] {
        let dir = tmp.path().join(preset);
        std::fs::create_dir_all(&dir).unwrap();
        let out = common::perfarena(&dir, &["init", "--preset", preset]);
        assert!(out.status.success(), "{}", common::stderr(&out));
        assert!(
            common::stdout(&out).contains("docs/presets.md"),
            "{}",
            common::stdout(&out)
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("perfarena.toml")).unwrap(),
            text
        );
        let again = common::perfarena(&dir, &["init", "--preset", preset]);
        assert!(
            !again.status.success() && common::stderr(&again).contains("--force"),
            "{}",
            common::stderr(&again)
        );
        // The written file is what later commands read.
        let list = common::perfarena(&dir, &["tasks", "list"]);
        assert!(
            !common::stderr(&list).contains("perfarena.toml:"),
            "{}",
            common::stderr(&list)
        );
    }
    let out = common::perfarena(tmp.path(), &["init", "--preset", "tgi"]);
    assert!(!out.status.success());
    let err = common::stderr(&out);
    assert!(err.contains("vllm") && err.contains("sglang"), "{err}");
}
