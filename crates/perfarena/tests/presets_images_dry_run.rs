//! `perfarena images build --dry-run` with the vLLM preset on a synthetic repository whose
//! history mimics vLLM's layout eras (root `Dockerfile` then `docker/Dockerfile`,
//! `benchmarks/benchmark_serving.py` then `vllm bench serve`): per task, the exact build args,
//! Dockerfile and benchmark commands a GPU machine would run. Real git, the real binary; nothing
//! is built (no GPU here), so the plan is what is checked — and snapshotted.

mod common;

use std::path::Path;
use std::process::Command;

/// Runs git in `dir` with a fixed identity and date, so commit hashes are the same every run.
fn git(dir: &Path, date: &str, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "dev")
        .env("GIT_AUTHOR_EMAIL", "dev@example.com")
        .env("GIT_COMMITTER_NAME", "dev")
        .env("GIT_COMMITTER_EMAIL", "dev@example.com")
        .env("GIT_AUTHOR_DATE", date)
        .env("GIT_COMMITTER_DATE", date)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn write(root: &Path, path: &str, text: &str) {
    let file = root.join(path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(file, text).unwrap();
}

fn remove(root: &Path, path: &str) {
    std::fs::remove_file(root.join(path)).unwrap();
}

/// Commits everything in `repo` at `date`; returns the commit's hash.
fn commit(repo: &Path, date: &str, message: &str) -> String {
    git(repo, date, &["add", "-A"]);
    git(repo, date, &["commit", "-q", "-m", message]);
    git(repo, date, &["rev-parse", "HEAD"])
}

/// A repository with vLLM's layout eras; returns the four perf commits (tasks).
fn vllm_like_history(repo: &Path) -> Vec<String> {
    std::fs::create_dir_all(repo).unwrap();
    git(repo, "2024-03-01T12:00:00Z", &["init", "-q", "-b", "main"]);
    // 2024-03: root Dockerfile, compiled extension, the serving script.
    write(
        repo,
        "Dockerfile",
        "ARG CUDA_VERSION=12.1.0\nFROM nvidia/cuda:${CUDA_VERSION}-devel-ubuntu22.04\nARG max_jobs=2\nARG nvcc_threads=8\nARG torch_cuda_arch_list='7.0 8.0 9.0+PTX'\n",
    );
    write(repo, "setup.py", "# builds vllm._C from csrc/\n");
    write(repo, "CMakeLists.txt", "project(vllm_extensions)\n");
    write(repo, "csrc/attention.cu", "// paged attention v1\n");
    write(repo, "requirements.txt", "torch==2.1.2\n");
    write(repo, "vllm/__init__.py", "");
    write(repo, "vllm/engine.py", "BLOCK = 16\n");
    write(
        repo,
        "benchmarks/benchmark_serving.py",
        "# --dataset sharegpt.json\n",
    );
    write(repo, "benchmarks/benchmark_latency.py", "# Avg latency\n");
    commit(repo, "2024-03-01T12:00:00Z", "initial layout");
    write(
        repo,
        "csrc/attention.cu",
        "// paged attention v2: fewer syncs\n",
    );
    let t1 = commit(
        repo,
        "2024-03-05T12:00:00Z",
        "[Kernel] faster paged attention",
    );

    // 2024-08: `vllm serve` (vllm/scripts.py), random dataset in the script.
    write(repo, "vllm/scripts.py", "# vllm serve\n");
    write(
        repo,
        "benchmarks/benchmark_serving.py",
        "# --dataset-name random\n",
    );
    commit(repo, "2024-08-01T12:00:00Z", "add the vllm CLI");
    write(repo, "vllm/engine.py", "BLOCK = 32\n");
    let t2 = commit(repo, "2024-08-10T12:00:00Z", "[Perf] bigger blocks");

    // 2025-04: Dockerfile moved to docker/, requirements/ directory, benchmarks in the package.
    std::fs::create_dir_all(repo.join("docker")).unwrap();
    std::fs::rename(repo.join("Dockerfile"), repo.join("docker/Dockerfile")).unwrap();
    remove(repo, "requirements.txt");
    write(repo, "requirements/cuda.txt", "torch==2.6.0\n");
    remove(repo, "vllm/scripts.py");
    write(
        repo,
        "vllm/entrypoints/cli/main.py",
        "# vllm serve / vllm bench\n",
    );
    write(repo, "vllm/benchmarks/serve.py", "# vllm bench serve\n");
    write(repo, "vllm/benchmarks/latency.py", "# vllm bench latency\n");
    commit(
        repo,
        "2025-04-10T12:00:00Z",
        "move Dockerfiles to docker/, benchmarks into vllm/",
    );
    write(repo, "vllm/engine.py", "BLOCK = 32\nPREFIX_CACHE = True\n");
    let t3 = commit(
        repo,
        "2025-04-20T12:00:00Z",
        "[Perf] prefix caching by default",
    );

    // 2025-09: the old serving script is retired.
    remove(repo, "benchmarks/benchmark_serving.py");
    commit(
        repo,
        "2025-09-01T12:00:00Z",
        "retire benchmarks/benchmark_serving.py",
    );
    write(repo, "csrc/attention.cu", "// paged attention v3\n");
    let t4 = commit(
        repo,
        "2025-09-05T12:00:00Z",
        "[Kernel] latency of small batches",
    );
    vec![t1, t2, t3, t4]
}

#[test]
fn the_dry_run_shows_per_task_build_args_dockerfile_and_commands_by_era() {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("project");
    let tasks = vllm_like_history(&project.join("vllm"));

    // The preset as `init` writes it, with one per-commit override (as users add them).
    let init = common::perfarena(&project, &["init", "--preset", "vllm"]);
    assert!(init.status.success(), "{}", common::stderr(&init));
    let mut suite = std::fs::read_to_string(project.join("perfarena.toml")).unwrap();
    suite = suite.replace(
        "[build.overrides]\n",
        &format!(
            "[build.overrides.\"{}\"]\nmax_jobs = 4\nargs = {{ CUDA_VERSION = \"11.8.0\" }}\n",
            &tasks[0][..10]
        ),
    );
    std::fs::write(project.join("perfarena.toml"), suite).unwrap();

    // An imported task list like the teams' datasets: models, perf commands, PR dates.
    let rows = [
        serde_json::json!({"commit_hash": tasks[0], "models": ["meta-llama/Llama-2-7b-hf"], "has_serving": true, "pr_date": "2024-03-05", "perf_command": "python benchmarks/benchmark_serving.py --model meta-llama/Llama-2-7b-hf --dataset sharegpt.json"}),
        serde_json::json!({"commit_hash": tasks[1], "perf_command": "python benchmarks/benchmark_serving.py --model Qwen/Qwen2-7B-Instruct --dataset-name random", "pr_date": "2024-08-10"}),
        serde_json::json!({"commit_hash": tasks[2], "models": ["meta-llama/Llama-3.1-8B-Instruct"], "has_serving": true, "pr_date": "2025-04-20"}),
        serde_json::json!({"commit_hash": tasks[3], "models": ["meta-llama/Llama-3.1-8B-Instruct"], "has_latency": true, "perf_command": "vllm bench latency --model meta-llama/Llama-3.1-8B-Instruct --batch-size 1"}),
    ];
    let list: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(project.join("tasks.jsonl"), list).unwrap();
    let list_file = project.join("tasks.jsonl");
    let import = common::perfarena(&project, &["tasks", "import", list_file.to_str().unwrap()]);
    assert!(import.status.success(), "{}", common::stderr(&import));

    // A candidate for the python-only task, one for a kernel task.
    let py_patch = "diff --git a/vllm/engine.py b/vllm/engine.py\n--- a/vllm/engine.py\n+++ b/vllm/engine.py\n@@ -1 +1 @@\n-BLOCK = 16\n+BLOCK = 64\n";
    std::fs::create_dir_all(project.join("agent")).unwrap();
    std::fs::write(
        project
            .join("agent")
            .join(format!("{}.patch", &tasks[1][..12])),
        py_patch,
    )
    .unwrap();
    let cu_patch = "diff --git a/csrc/attention.cu b/csrc/attention.cu\n--- a/csrc/attention.cu\n+++ b/csrc/attention.cu\n@@ -1 +1 @@\n-// paged attention v2: fewer syncs\n+// paged attention v2: no syncs\n";
    std::fs::write(
        project
            .join("agent")
            .join(format!("{}.patch", &tasks[3][..12])),
        cu_patch,
    )
    .unwrap();

    let candidates = format!("agent={}", project.join("agent").display());
    let out = common::perfarena(
        &project,
        &[
            "images",
            "build",
            "--all",
            "--dry-run",
            "--no-push",
            "--candidates",
            &candidates,
        ],
    );
    let stdout = common::stdout(&out);
    assert!(out.status.success(), "{}\n{stdout}", common::stderr(&out));

    // What the snapshot shows, asserted outright.
    let section = |task: &str| -> String {
        let commands = &stdout[stdout
            .find("benchmark commands per task")
            .expect("the commands section")..];
        let start = commands
            .find(&format!("  task {}", &task[..12]))
            .expect("a section per task");
        commands[start..]
            .lines()
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        section(&tasks[0]).contains("era sharegpt")
            && section(&tasks[0]).contains(
                "python3 -m vllm.entrypoints.openai.api_server --model meta-llama/Llama-2-7b-hf"
            ),
        "{stdout}"
    );
    assert!(
        section(&tasks[1]).contains("era serve-scripts")
            && section(&tasks[1]).contains("vllm serve Qwen/Qwen2-7B-Instruct"),
        "{stdout}"
    );
    assert!(
        section(&tasks[2]).contains("era bench-cli")
            && section(&tasks[2]).contains("vllm bench serve"),
        "{stdout}"
    );
    assert!(
        section(&tasks[3]).contains("era latency-cli")
            && section(&tasks[3]).contains("(none: the client runs alone)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Dockerfile docker/Dockerfile") && stdout.contains("Dockerfile Dockerfile"),
        "{stdout}"
    );
    assert!(
        stdout.contains("CUDA_VERSION=11.8.0") && stdout.contains("max_jobs=4"),
        "the override of the first task: {stdout}"
    );
    assert!(
        stdout.contains("torch_cuda_arch_list=9.0 vllm_fa_cmake_gpu_arches=90-real"),
        "{stdout}"
    );

    let redacted = stdout.replace(&project.display().to_string(), "[project]");
    insta::assert_snapshot!("vllm_dry_run", redacted);
}

/// The preset's opt-in `precompiled-wheel` era, uncommented: images of a commit dated from
/// 2025-12-19 get VLLM_USE_PRECOMPILED and the wheel of exactly the commit built; older ones not.
#[test]
fn the_precompiled_wheel_era_builds_each_commit_on_its_own_wheel() {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("project");
    let repo = project.join("vllm");
    let tasks = vllm_like_history(&repo);
    write(&repo, "vllm/engine.py", "BLOCK = 64\n");
    let recent = commit(&repo, "2026-01-10T12:00:00Z", "[Perf] even bigger blocks");
    let parent = git(&repo, "2026-01-10T12:00:00Z", &["rev-parse", "HEAD^"]);

    let init = common::perfarena(&project, &["init", "--preset", "vllm"]);
    assert!(init.status.success(), "{}", common::stderr(&init));
    let suite = std::fs::read_to_string(project.join("perfarena.toml")).unwrap();
    let commented = "# [[bench.eras]]\n# name = \"precompiled-wheel\"\n# since = \"2025-12-19\"\n# build_args = { VLLM_USE_PRECOMPILED = \"1\", VLLM_MERGE_BASE_COMMIT = \"{commit}\" }\n";
    assert!(
        suite.contains(commented),
        "the preset ships the era commented out"
    );
    let enabled = commented.replace("# ", "");
    std::fs::write(
        project.join("perfarena.toml"),
        suite.replace(commented, &enabled),
    )
    .unwrap();
    let rows = [
        serde_json::json!({"commit_hash": recent, "models": ["m"], "has_serving": true, "pr_date": "2026-01-10"}),
        serde_json::json!({"commit_hash": tasks[2], "models": ["m"], "has_serving": true, "pr_date": "2025-04-20"}),
    ];
    let list: String = rows.iter().map(|r| format!("{r}\n")).collect();
    let list_file = project.join("tasks.jsonl");
    std::fs::write(&list_file, list).unwrap();
    let import = common::perfarena(&project, &["tasks", "import", list_file.to_str().unwrap()]);
    assert!(import.status.success(), "{}", common::stderr(&import));
    let out = common::perfarena(
        &project,
        &["images", "build", "--all", "--dry-run", "--no-push"],
    );
    let stdout = common::stdout(&out);
    assert!(out.status.success(), "{}\n{stdout}", common::stderr(&out));
    let block = |image_part: &str| -> String {
        let start = stdout
            .find(image_part)
            .unwrap_or_else(|| panic!("{image_part} in {stdout}"));
        stdout[start..]
            .lines()
            .take(8)
            .collect::<Vec<_>>()
            .join("\n")
    };
    let human = block(&format!("vllm:{}", recent));
    assert!(
        human.contains("VLLM_USE_PRECOMPILED=1")
            && human.contains(&format!("VLLM_MERGE_BASE_COMMIT={recent}")),
        "{human}"
    );
    let baseline = block(&format!("vllm:baseline-{}", &parent[..12]));
    assert!(
        baseline.contains(&format!("VLLM_MERGE_BASE_COMMIT={parent}")),
        "the baseline is built on its own commit's wheel: {baseline}"
    );
    let older = block(&format!("vllm:{}", tasks[2]));
    assert!(!older.contains("VLLM_USE_PRECOMPILED"), "{older}");
}
