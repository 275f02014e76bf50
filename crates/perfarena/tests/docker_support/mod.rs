//! Helpers of the docker backend's end-to-end tests: a real Docker daemon (required unless
//! `PERFARENA_SKIP_DOCKER=1`), tiny busybox images built through bollard from a git repository
//! of a fake "server" (no image is pulled), a project with a suite and imported tasks, and the
//! store's attempts. Every image and container a test makes carries a unique name and is
//! removed when its guard drops.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{
    BuildImageOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveImageOptionsBuilder,
};
use futures_util::StreamExt;

use perfarena_core::{AttemptRecord, Suite, Task, VariantKind};
use perfarena_store::{AttemptFilter, Store};

/// The `perfarena` binary built for these tests.
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

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The daemon, or `None` when the tests are told to skip it. Absent without the skip variable:
/// a failure that says how to start it.
pub fn docker() -> Option<Docker> {
    if std::env::var("PERFARENA_SKIP_DOCKER").as_deref() == Ok("1") {
        eprintln!("PERFARENA_SKIP_DOCKER=1: skipping a docker test");
        return None;
    }
    let rt = runtime();
    let connected = rt.block_on(async {
        let docker = Docker::connect_with_defaults().map_err(|e| e.to_string())?;
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| e.to_string())?;
        docker.ping().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(docker)
    });
    match connected {
        Ok(docker) => Some(docker),
        Err(e) => panic!(
            "the docker tests need a Docker daemon ({e}): run `bash scripts/docker-env.sh up`, or set PERFARENA_SKIP_DOCKER=1 to skip them"
        ),
    }
}

/// A unique suffix for names.
pub fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:x}{:x}", std::process::id(), nanos % 0xffff_ffff)
}

pub fn git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t.invalid")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The files of the fake benchmarked program at the parent commit: a busybox httpd server
/// (`server.sh`) and the harness (`benchmarks/bench.sh`) that prints the program's "speed".
pub fn base_files(speed: &str) -> Vec<(&'static str, String)> {
    vec![
        ("www/health", "ok\n".into()),
        ("speed.txt", format!("{speed}\n")),
        ("server.sh", "echo server starting on $1\nexec httpd -f -p 127.0.0.1:$1 -h www\n".into()),
        (
            "benchmarks/bench.sh",
            "wget -q -O /dev/null http://127.0.0.1:$1/health || { echo 'error: server did not answer' >&2; exit 2; }\necho \"throughput: $(cat speed.txt) tok/s\"\n".into(),
        ),
    ]
}

/// What a test project holds.
pub struct Project {
    pub tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub repo: PathBuf,
    pub parent: String,
    pub commit: String,
    /// `(name, patch file, candidate commit)`.
    pub candidates: Vec<(String, PathBuf, String)>,
    pub image_repo: String,
    pub images: Vec<String>,
    pub docker: Docker,
    /// The commits of the tasks after the first (`more_tasks`).
    pub more_commits: Vec<String>,
    pub tmpfs: bool,
    pub base_image: Option<String>,
}

/// How to make a project.
pub struct ProjectSpec<'a> {
    /// Files at the parent commit (overrides of [`base_files`]).
    pub parent_files: Vec<(&'a str, String)>,
    /// Files the human commit changes.
    pub human_files: Vec<(&'a str, String)>,
    /// Candidates: name and the files their patch changes (against the parent).
    pub candidates: Vec<(&'a str, Vec<(&'a str, String)>)>,
    /// Extra suite TOML (appended).
    pub suite_extra: String,
    /// Variants whose image is not built.
    pub skip_images: Vec<&'a str>,
    /// More tasks: each a commit on top of the previous one, changing these files.
    pub more_tasks: Vec<Vec<(&'a str, String)>>,
    /// Mount a tmpfs of this size (e.g. "2m") as the state directory (needs root).
    pub state_tmpfs: Option<&'a str>,
    /// Build the images `FROM` this local image (e.g. `perfarena/toy-base:bookworm`, which has
    /// python3) instead of a busybox root.
    pub base_image: Option<&'a str>,
}

impl Default for ProjectSpec<'_> {
    fn default() -> Self {
        ProjectSpec {
            parent_files: Vec::new(),
            human_files: vec![("speed.txt", "200\n".into())],
            candidates: Vec::new(),
            suite_extra: String::new(),
            skip_images: Vec::new(),
            more_tasks: Vec::new(),
            state_tmpfs: None,
            base_image: None,
        }
    }
}

fn write_files(repo: &Path, files: &[(&str, String)]) {
    for (path, content) in files {
        let file = repo.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, content).unwrap();
    }
}

/// The default suite; `extra` is appended (later keys win only in new tables, so tests put
/// their own `[bench]` etc. in `extra` only when the default lacks that table).
pub fn suite_text(image_repo: &str, extra: &str) -> String {
    format!(
        r#"[suite]
name = "docker-test"
[repo]
path = "repo"
source_dir = "/workspace/src"
[images]
registry = "perfarena-test"
repo = "{image_repo}"
[metric]
primary = "tput"
parser = "custom"
[[metric.custom]]
regex = 'throughput: (?P<tput>[0-9.]+) tok/s'
{extra}
"#
    )
}

/// The `[bench]` table most tests use; `overrides` are extra lines inside it.
pub fn bench(overrides: &str) -> String {
    format!(
        r#"[bench]
server = "sh server.sh {{port}}"
client = "sh benchmarks/bench.sh {{port}}"
harness_globs = ["benchmarks/**"]
timeout_s = 60
repeats = 2
kill_grace_s = 2
{overrides}
[bench.readiness]
kind = "http"
url = "http://127.0.0.1:{{port}}/health"
interval_ms = 100
timeout_s = 20
"#
    )
}

impl Project {
    pub fn new(docker: Docker, spec: ProjectSpec<'_>) -> Project {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("project");
        let repo = dir.join("repo");
        std::fs::create_dir_all(&repo).unwrap();
        git(&repo, &["init", "-q", "-b", "main"]);
        let mut files = base_files("100");
        for (path, content) in &spec.parent_files {
            files.retain(|(p, _)| p != path);
            files.push((path, content.clone()));
        }
        write_files(&repo, &files);
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", "parent"]);
        let parent = git(&repo, &["rev-parse", "HEAD"]);
        let mut candidates = Vec::new();
        for (name, cand_files) in &spec.candidates {
            git(
                &repo,
                &["checkout", "-q", "-b", &format!("cand-{name}"), &parent],
            );
            write_files(&repo, cand_files);
            git(&repo, &["add", "-A"]);
            git(&repo, &["commit", "-q", "-m", &format!("candidate {name}")]);
            let cand_commit = git(&repo, &["rev-parse", "HEAD"]);
            let patch = git(&repo, &["diff", &parent, &cand_commit]) + "\n";
            let patch_file = dir.join(format!("{name}.patch"));
            std::fs::write(&patch_file, patch).unwrap();
            candidates.push((name.to_string(), patch_file, cand_commit));
            git(&repo, &["checkout", "-q", "main"]);
        }
        write_files(&repo, &spec.human_files);
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", "human optimisation"]);
        let commit = git(&repo, &["rev-parse", "HEAD"]);
        let mut more_commits = Vec::new();
        for (idx, files) in spec.more_tasks.iter().enumerate() {
            write_files(&repo, files);
            git(&repo, &["add", "-A"]);
            git(
                &repo,
                &["commit", "-q", "-m", &format!("optimisation {}", idx + 2)],
            );
            more_commits.push(git(&repo, &["rev-parse", "HEAD"]));
        }
        let image_repo = format!("t{}", unique());
        std::fs::write(
            dir.join("perfarena.toml"),
            suite_text(&image_repo, &spec.suite_extra),
        )
        .unwrap();
        let rows: String = std::iter::once(&commit)
            .chain(&more_commits)
            .map(|c| format!("{{\"commit_hash\": \"{c}\", \"models\": [\"toy\"]}}\n"))
            .collect();
        std::fs::write(dir.join("tasks.jsonl"), rows).unwrap();
        let tmpfs = spec.state_tmpfs.is_some();
        if let Some(size) = spec.state_tmpfs {
            let state = dir.join(".perfarena");
            std::fs::create_dir_all(&state).unwrap();
            let mounted = Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(&state)
                .status();
            assert!(
                mounted.is_ok_and(|s| s.success()),
                "mounting a tmpfs for the state directory needs root (mount -t tmpfs)"
            );
        }
        let out = bin()
            .arg("-C")
            .arg(&dir)
            .args(["tasks", "import"])
            .arg(dir.join("tasks.jsonl"))
            .output()
            .unwrap();
        assert!(out.status.success(), "import: {}", text(&out));
        let mut project = Project {
            tmp,
            dir,
            repo,
            parent,
            commit,
            candidates,
            image_repo,
            images: Vec::new(),
            docker,
            more_commits,
            tmpfs,
            base_image: spec.base_image.map(str::to_string),
        };
        // Images, named as the suite names them.
        let suite = project.suite();
        let task = project.task();
        let mut to_build: Vec<(VariantKind, String, Option<String>)> = vec![
            (VariantKind::Baseline, project.parent.clone(), None),
            (VariantKind::Human, project.commit.clone(), None),
        ];
        for (name, patch_file, cand_commit) in &project.candidates {
            let sha =
                perfarena_core::patch::sha256_hex(&std::fs::read_to_string(patch_file).unwrap());
            to_build.push((
                format!("candidate:{name}").parse().unwrap(),
                cand_commit.clone(),
                Some(sha),
            ));
        }
        for (variant, rev, sha) in to_build {
            if spec.skip_images.contains(&variant.to_string().as_str()) {
                continue;
            }
            let tag =
                perfarena_core::images::image_ref(&suite.images, &task, &variant, sha.as_deref())
                    .unwrap();
            project.build_image(&tag, &rev);
        }
        let tasks = Store::open_existing(&project.state_dir())
            .unwrap()
            .tasks()
            .unwrap();
        for task in tasks.iter().skip(1) {
            for variant in [VariantKind::Baseline, VariantKind::Human] {
                let tag =
                    perfarena_core::images::image_ref(&suite.images, task, &variant, None).unwrap();
                let rev = if variant == VariantKind::Baseline {
                    task.parent.as_ref().unwrap().to_string()
                } else {
                    task.commit.to_string()
                };
                if !project.images.contains(&tag) {
                    project.build_image(&tag, &rev);
                }
            }
        }
        project
    }

    pub fn suite(&self) -> Suite {
        Suite::from_toml_str(
            &std::fs::read_to_string(self.dir.join("perfarena.toml")).unwrap(),
            "perfarena.toml",
        )
        .unwrap()
    }

    pub fn task(&self) -> Task {
        let store = Store::open_existing(&self.state_dir()).unwrap();
        store
            .tasks()
            .unwrap()
            .into_iter()
            .find(|t| t.commit.as_str() == self.commit)
            .unwrap()
    }

    /// The run id of the most recent run.
    pub fn run_id(&self) -> String {
        Store::open_existing(&self.state_dir())
            .unwrap()
            .runs()
            .unwrap()[0]
            .run_id
            .clone()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.join(".perfarena")
    }

    /// Builds an image (a busybox root, or `FROM` the base image) holding the repository at
    /// `rev` under /workspace/src.
    pub fn build_image(&mut self, tag: &str, rev: &str) {
        let mut builder = tar::Builder::new(Vec::new());
        if self.base_image.is_none() {
            append_busybox(&mut builder);
        }
        self.append_source(&mut builder, rev);
        let dockerfile = match &self.base_image {
            Some(base) => format!("FROM {base}\nCOPY rootfs/ /\n"),
            None => "FROM scratch\nCOPY rootfs/ /\nENV PATH=/bin\nCMD [\"sh\"]\n".to_string(),
        };
        append_file(&mut builder, "Dockerfile", dockerfile.as_bytes(), 0o644);
        let context = builder.into_inner().unwrap();
        let rt = runtime();
        rt.block_on(async {
            let options = BuildImageOptionsBuilder::default()
                .t(tag)
                .rm(true)
                .forcerm(true)
                .networkmode("none")
                .build();
            let mut stream =
                self.docker
                    .build_image(options, None, Some(bollard::body_full(context.into())));
            while let Some(item) = stream.next().await {
                let info = item.unwrap_or_else(|e| panic!("building {tag}: {e}"));
                if let Some(error) = info.error_detail {
                    panic!("building {tag}: {error:?}");
                }
            }
        });
        self.images.push(tag.to_string());
    }

    /// The repository at `rev` under `rootfs/workspace/src/`.
    fn append_source(&self, builder: &mut tar::Builder<Vec<u8>>, rev: &str) {
        let archive = Command::new("git")
            .arg("-C")
            .arg(&self.repo)
            .args([
                "archive",
                "--format=tar",
                "--prefix=rootfs/workspace/src/",
                rev,
            ])
            .output()
            .unwrap();
        assert!(archive.status.success());
        let mut files = tar::Archive::new(&archive.stdout[..]);
        for entry in files.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_path_buf();
            let mut header = entry.header().clone();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
            if header.entry_type().is_file() || header.entry_type().is_dir() {
                builder.append_data(&mut header, path, &data[..]).unwrap();
            }
        }
    }

    /// `perfarena -C project ARGS`.
    pub fn perfarena<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Output {
        bin()
            .arg("-C")
            .arg(&self.dir)
            .args(args)
            .output()
            .expect("perfarena runs")
    }

    pub fn run_args(&self, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = ["run", "--backend", "docker", "--seed", "3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if !self.candidates.is_empty() {
            args.push("--candidates".into());
            args.extend(
                self.candidates
                    .iter()
                    .map(|(name, file, _)| format!("{name}={}", file.display())),
            );
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    pub fn attempts(&self) -> Vec<AttemptRecord> {
        let store = Store::open_existing(&self.state_dir()).unwrap();
        store.attempts(&AttemptFilter::default()).unwrap()
    }

    /// Containers labelled with `perfarena.run` = `run_id` (any run when `None`).
    pub fn containers(&self, run_id: Option<&str>) -> Vec<String> {
        containers_labelled(
            &self.docker,
            &match run_id {
                Some(run) => format!("perfarena.run={run}"),
                None => "perfarena.run".into(),
            },
        )
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let rt = runtime();
        rt.block_on(async {
            // Containers of this project's runs (a failed test may leave some), then its images.
            let mut filters = HashMap::new();
            filters.insert("label".to_string(), vec!["perfarena.run".to_string()]);
            if let Ok(list) = self
                .docker
                .list_containers(Some(
                    ListContainersOptionsBuilder::default()
                        .all(true)
                        .filters(&filters)
                        .build(),
                ))
                .await
            {
                for c in list {
                    if self
                        .images
                        .iter()
                        .any(|i| c.image.as_deref() == Some(i.as_str()))
                    {
                        let _ = self
                            .docker
                            .remove_container(
                                c.id.as_deref().unwrap_or(""),
                                Some(RemoveContainerOptionsBuilder::default().force(true).build()),
                            )
                            .await;
                    }
                }
            }
            for image in &self.images {
                let _ = self
                    .docker
                    .remove_image(
                        image,
                        Some(RemoveImageOptionsBuilder::default().force(true).build()),
                        None,
                    )
                    .await;
            }
        });
        if self.tmpfs {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.state_dir())
                .status();
        }
    }
}

/// busybox and its applets as the image's `/bin`.
fn append_busybox(builder: &mut tar::Builder<Vec<u8>>) {
    let busybox = std::fs::read("/bin/busybox")
        .expect("the tests need busybox-static at /bin/busybox (apt-get install busybox-static)");
    append_file(builder, "rootfs/bin/busybox", &busybox, 0o755);
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter(|a| !a.is_empty() && *a != "busybox")
    {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        header.set_mode(0o777);
        builder
            .append_link(&mut header, format!("rootfs/bin/{applet}"), "busybox")
            .unwrap();
    }
    append_file(builder, "rootfs/tmp/.keep", b"", 0o644);
}

fn append_file(builder: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8], mode: u32) {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(mode);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, path, data).unwrap();
}

/// Ids of containers matching a label filter (`key` or `key=value`).
pub fn containers_labelled(docker: &Docker, label: &str) -> Vec<String> {
    let rt = runtime();
    rt.block_on(async {
        let mut filters = HashMap::new();
        filters.insert("label".to_string(), vec![label.to_string()]);
        let list = docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .unwrap();
        list.into_iter().filter_map(|c| c.id).collect()
    })
}

/// Waits until `check` holds (polling), or panics with `what`.
pub fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

/// Attempts in the store of `state_dir` (0 when there is no store yet or it is busy).
pub fn count_attempts(state_dir: &Path) -> i64 {
    Store::open_existing(state_dir)
        .ok()
        .and_then(|s| s.count_attempts(None).ok())
        .unwrap_or(0)
}
