//! The toy example (`examples/toy-llm`), embedded so that `perfarena demo` works offline from
//! the binary alone: writes the repository with its history, the suite, the task list and the
//! candidate patches.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};
use include_dir::{Dir, include_dir};

static TOY: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../examples/toy-llm");

/// The file that marks a directory as a demo project written by `create`: `perfarena demo`
/// reuses such a directory and refuses any other non-empty one.
pub const MARKER: &str = ".perfarena-demo";

/// What `create` wrote.
pub struct ToyProject {
    pub dir: PathBuf,
    pub tasks_file: PathBuf,
    /// `(name, patch file)` for each candidate.
    pub candidates: Vec<(String, PathBuf)>,
}

fn git(repo: &Path, args: &[&str], date: &str) -> Result<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .env("GIT_AUTHOR_NAME", "toyllm developer")
        .env("GIT_AUTHOR_EMAIL", "dev@toyllm.invalid")
        .env("GIT_COMMITTER_NAME", "toyllm developer")
        .env("GIT_COMMITTER_EMAIL", "dev@toyllm.invalid")
        .env("GIT_AUTHOR_DATE", date)
        .env("GIT_COMMITTER_DATE", date)
        .output()
        .with_context(|| "cannot run git: perfarena needs git on PATH")?;
    if !output.status.success() {
        bail!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

fn write_dir(dir: &Dir<'_>, strip: &Path, target: &Path) -> Result<()> {
    for file in dir.files() {
        if file.path().file_name().and_then(|n| n.to_str()) == Some("COMMIT_MSG") {
            continue;
        }
        let rel = file.path().strip_prefix(strip).unwrap_or(file.path());
        let path = target.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, file.contents())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    for sub in dir.dirs() {
        write_dir(sub, strip, target)?;
    }
    Ok(())
}

/// True when `dir` holds a demo project written by `create`.
pub fn is_demo_project(dir: &Path) -> bool {
    dir.join(MARKER).is_file()
}

/// The demo project `create` wrote into `dir` earlier.
pub fn open(dir: &Path) -> Result<ToyProject> {
    let cand_dir = dir.join("candidates");
    let mut candidates = Vec::new();
    for entry in std::fs::read_dir(&cand_dir)
        .with_context(|| format!("cannot read {}", cand_dir.display()))?
    {
        let path = entry?.path();
        if let Some(name) = path.file_stem().and_then(|s| s.to_str()) {
            candidates.push((name.to_string(), path.clone()));
        }
    }
    candidates.sort();
    Ok(ToyProject {
        dir: dir.to_path_buf(),
        tasks_file: dir.join("tasks.jsonl"),
        candidates,
    })
}

/// Writes the toy project into `dir` (which must be empty or absent).
pub fn create(dir: &Path) -> Result<ToyProject> {
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        bail!(
            "{} is not empty: pick a new directory for the toy example",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(
        dir.join(MARKER),
        "a demo project written by `perfarena demo`; `perfarena -C <this directory> demo` \
         runs it again; delete the directory when you are done\n",
    )
    .with_context(|| format!("cannot write in {}", dir.display()))?;
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).with_context(|| format!("cannot create {}", repo.display()))?;
    git(&repo, &["init", "-q", "-b", "main"], "2024-01-01T00:00:00Z")?;
    let steps = TOY
        .get_dir("steps")
        .context("embedded toy example has no steps")?;
    let mut step_dirs: Vec<&Dir<'_>> = steps.dirs().collect();
    step_dirs.sort_by_key(|d| d.path().to_path_buf());
    let mut commits = Vec::new();
    for (idx, step) in step_dirs.iter().enumerate() {
        write_dir(step, step.path(), &repo)?;
        let message = step
            .get_file(step.path().join("COMMIT_MSG"))
            .and_then(|f| f.contents_utf8())
            .unwrap_or("toyllm change")
            .trim()
            .to_string();
        let date = format!("2024-01-{:02}T12:00:00Z", idx + 2);
        git(&repo, &["add", "-A"], &date)?;
        git(&repo, &["commit", "-q", "-m", &message], &date)?;
        commits.push((git(&repo, &["rev-parse", "HEAD"], &date)?, message));
    }
    // The suite, with the repository next to it.
    let suite = TOY
        .get_file("perfarena.toml")
        .context("embedded toy example has no perfarena.toml")?;
    std::fs::write(dir.join("perfarena.toml"), suite.contents())?;
    // The candidate patches.
    let mut candidates = Vec::new();
    let cand_dir = dir.join("candidates");
    std::fs::create_dir_all(&cand_dir)?;
    if let Some(embedded) = TOY.get_dir("candidates") {
        for file in embedded.files() {
            let name = file
                .path()
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("candidate")
                .to_string();
            let path = cand_dir.join(file.path().file_name().unwrap_or_default());
            std::fs::write(&path, file.contents())?;
            candidates.push((name, path));
        }
    }
    candidates.sort();
    // The task: the prefix-cache commit (the human optimisation), its parent resolved by git.
    // Later steps are commits for image-build tests (an OOM-prone kernel, a broken build).
    let (human, subject) = commits
        .iter()
        .find(|(_, message)| message.starts_with("perf: prefix cache"))
        .context("toy history has no prefix-cache commit")?;
    let tasks_file = dir.join("tasks.jsonl");
    let row = serde_json::json!({
        "commit_hash": human,
        "repo": "toyllm",
        "models": ["toy-1b"],
        "perf_command": "python3 benchmarks/benchmark_serving.py --model toy-1b --num-prompts 24",
        "has_serving": true,
        "commit_subject": subject,
        "pr_url": "https://example.invalid/toyllm/pull/3",
        "files_changed": ["toyllm/engine.py"],
    });
    std::fs::write(&tasks_file, format!("{row}\n"))?;
    Ok(ToyProject {
        dir: dir.to_path_buf(),
        tasks_file,
        candidates,
    })
}
