//! Helpers of the `perfarena images` tests: the real Docker daemon and the registry on
//! 127.0.0.1:5000 (both required unless `PERFARENA_SKIP_DOCKER=1`; `scripts/docker-env.sh up`
//! starts them), the toy project with a unique image repository per test, its extra tasks, and
//! the store's build rows. Every image a test makes is named after its unique repository and
//! removed (locally and from the registry) when the guard drops.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const REGISTRY: &str = "127.0.0.1:5000";
pub const BASE_IMAGE: &str = "perfarena/toy-base:bookworm";

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_perfarena"))
}

pub fn text(output: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn docker_cli(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("the docker client runs")
}

/// Whether the tests run: `false` with `PERFARENA_SKIP_DOCKER=1`; a failure saying what to start
/// when the daemon, the base image or the registry is missing.
pub fn services() -> bool {
    if std::env::var("PERFARENA_SKIP_DOCKER").as_deref() == Ok("1") {
        eprintln!("PERFARENA_SKIP_DOCKER=1: skipping an images test");
        return false;
    }
    let hint = "run `bash scripts/docker-env.sh up` (or set PERFARENA_SKIP_DOCKER=1 to skip the docker tests)";
    let info = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output();
    match info {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "the images tests need a Docker daemon: {}; {hint}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => panic!("the images tests need the docker client and daemon ({e}); {hint}"),
    }
    assert!(
        docker_cli(&["image", "inspect", BASE_IMAGE])
            .status
            .success(),
        "the base image {BASE_IMAGE} is missing; {hint}"
    );
    let registry = Command::new("curl")
        .args([
            "-fsS",
            "-m",
            "3",
            "-o",
            "/dev/null",
            &format!("http://{REGISTRY}/v2/"),
        ])
        .status();
    assert!(
        registry.map(|s| s.success()).unwrap_or(false),
        "no registry answers on {REGISTRY}; {hint}"
    );
    true
}

/// A unique image repository name.
pub fn unique_repo(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "pa-test-{test}-{:x}{:x}",
        std::process::id(),
        nanos % 0xffff_ffff
    )
}

fn git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A `builds` row: (image, status, try_idx, max_jobs, excerpt).
pub type BuildRow = (String, String, i64, Option<i64>, Option<String>);

/// A toy project whose images go to a unique repository; removes them when dropped.
pub struct Toy {
    pub _tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub repo: String,
}

impl Toy {
    /// The toy project (`perfarena demo --no-run`), its suite pointed at a unique repository,
    /// `build_keys` added to its `[build]` table and `suite_extra` appended (TOML: new tables),
    /// and the tasks whose subjects start with `subjects` imported (the prefix-cache task is
    /// there already).
    pub fn new(test: &str, build_keys: &str, suite_extra: &str, subjects: &[&str]) -> Toy {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("toy");
        let out = bin()
            .arg("-C")
            .arg(&dir)
            .args(["demo", "--no-run"])
            .output()
            .expect("demo runs");
        assert!(out.status.success(), "demo --no-run: {}", text(&out));
        let repo = unique_repo(test);
        let suite_path = dir.join("perfarena.toml");
        let suite = std::fs::read_to_string(&suite_path).expect("suite");
        assert!(
            suite.contains("repo = \"toyllm\""),
            "the toy suite names its image repository toyllm"
        );
        let suite = suite.replace("repo = \"toyllm\"", &format!("repo = \"{repo}\""));
        // Tables the tests add must not repeat the toy's: put min_free_disk_gib under [build].
        let suite = suite.replace(
            "[build]\n",
            &format!("[build]\nmin_free_disk_gib = 0.5\n{build_keys}\n"),
        );
        std::fs::write(&suite_path, format!("{suite}\n{suite_extra}\n")).expect("write suite");
        let toy = Toy {
            _tmp: tmp,
            dir,
            repo,
        };
        if !subjects.is_empty() {
            let rows: Vec<String> = subjects
                .iter()
                .map(|s| serde_json::json!({ "commit_hash": toy.commit(s), "repo": "toyllm", "models": ["toy-1b"] }).to_string())
                .collect();
            let file = toy.dir.join("more-tasks.jsonl");
            std::fs::write(&file, rows.join("\n") + "\n").expect("write tasks");
            let out = toy.perfarena(&["tasks", "import", file.to_str().unwrap()]);
            assert!(out.status.success(), "tasks import: {}", text(&out));
        }
        toy
    }

    /// The commit whose subject starts with `subject`.
    pub fn commit(&self, subject: &str) -> String {
        let log = git(&self.dir.join("repo"), &["log", "--format=%H %s"]);
        log.lines()
            .find_map(|l| {
                l.split_once(' ')
                    .filter(|(_, s)| s.starts_with(subject))
                    .map(|(h, _)| h.to_string())
            })
            .unwrap_or_else(|| panic!("no toy commit {subject:?} in:\n{log}"))
    }

    pub fn parent(&self, subject: &str) -> String {
        git(
            &self.dir.join("repo"),
            &["rev-parse", &format!("{}^", self.commit(subject))],
        )
    }

    pub fn perfarena(&self, args: &[&str]) -> Output {
        bin()
            .arg("-C")
            .arg(&self.dir)
            .args(args)
            .output()
            .expect("perfarena runs")
    }

    pub fn human_image(&self, subject: &str) -> String {
        format!("{REGISTRY}/{}:{}", self.repo, self.commit(subject))
    }

    pub fn baseline_image(&self, subject: &str) -> String {
        format!(
            "{REGISTRY}/{}:baseline-{}",
            self.repo,
            &self.parent(subject)[..12]
        )
    }

    pub fn candidate_patch(&self, name: &str) -> String {
        format!(
            "{name}={}",
            self.dir
                .join("candidates")
                .join(format!("{name}.patch"))
                .display()
        )
    }

    /// Build rows, in order.
    pub fn builds(&self) -> Vec<BuildRow> {
        let conn =
            rusqlite::Connection::open(self.dir.join(".perfarena/perfarena.db")).expect("store");
        let mut stmt = conn
            .prepare("SELECT image_ref, status, try_idx, max_jobs, excerpt FROM builds ORDER BY id")
            .expect("query");
        stmt.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .expect("rows")
        .map(|r| r.expect("row"))
        .collect()
    }

    /// The images of this test's repository in the local engine.
    pub fn local_images(&self) -> Vec<String> {
        let out = docker_cli(&[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            &format!("{REGISTRY}/{}", self.repo),
        ]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(String::from)
            .collect()
    }
}

/// `docker image inspect -f FORMAT IMAGE`.
pub fn inspect(image: &str, format: &str) -> Option<String> {
    let out = docker_cli(&["image", "inspect", "-f", format, image]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Runs a command in a throwaway container of `image` (no network); (exit ok, output).
pub fn run_in(image: &str, command: &[&str]) -> (bool, String) {
    let mut args = vec!["run", "--rm", "--network", "none", "--pull", "never", image];
    args.extend_from_slice(command);
    let out = docker_cli(&args);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The registry's digest for `repo:tag` (a HEAD with every manifest type accepted).
pub fn registry_digest(repo: &str, tag: &str) -> Option<String> {
    let accept = "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";
    let out = Command::new("curl")
        .args([
            "-fsS",
            "-m",
            "5",
            "-I",
            "-H",
            accept,
            &format!("http://{REGISTRY}/v2/{repo}/manifests/{tag}"),
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        l.to_ascii_lowercase()
            .starts_with("docker-content-digest:")
            .then(|| l.split_once(':').unwrap().1.trim().to_string())
    })
}

impl Drop for Toy {
    fn drop(&mut self) {
        // Only this test's images: its unique repository, locally and in the registry.
        for image in self.local_images() {
            if let Some((_, tag)) = image.rsplit_once(':')
                && let Some(digest) = registry_digest(&self.repo, tag)
            {
                let _ = Command::new("curl")
                    .args([
                        "-fsS",
                        "-m",
                        "5",
                        "-X",
                        "DELETE",
                        &format!("http://{REGISTRY}/v2/{}/manifests/{digest}", self.repo),
                    ])
                    .output();
            }
            let _ = docker_cli(&["rmi", "-f", &image]);
        }
    }
}
