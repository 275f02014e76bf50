//! End-to-end: the metrics perfarena measures itself (`wall_s`, `user_s`, `sys_s`,
//! `max_rss_mb`, and the server's `server_wall_s`…) are right within tolerance, on the local
//! backend (wait4) and on Docker (the container's cgroup statistics), for a client that sleeps
//! 0.4 s, burns 0.5 s of CPU and touches 200 MiB — and they serve as `metric.primary` with no
//! parser and no wrapper.

mod docker_support;

use std::path::Path;
use std::process::Output;

use docker_support::{git, text};

use perfarena_core::{AttemptRecord, AttemptStatus, VariantKind};
use perfarena_store::{AttemptFilter, Store};

/// Sleeps, then burns CPU (checking its own CPU clock only every 20 000 iterations, so that the
/// burn is user time), then touches 200 MiB; in a grandchild of the measured shell when run
/// through `sh -c`.
const LOAD_PY: &str = "import time
time.sleep(0.4)
t = time.process_time()
while time.process_time() - t < 0.5:
    for _ in range(20000):
        pass
x = b'a' * (200 << 20)
print('done', len(x))
";

const SLEEP_S: f64 = 0.4;
const BURN_S: f64 = 0.5;
const TOUCHED_MIB: f64 = 200.0;

fn perfarena(dir: &Path, args: &[&str]) -> Output {
    docker_support::bin()
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .expect("perfarena runs")
}

fn attempts(state_dir: &Path) -> Vec<AttemptRecord> {
    Store::open_existing(state_dir)
        .unwrap()
        .attempts(&AttemptFilter::default())
        .unwrap()
}

/// The client's built-in samples are those of the load, within tolerance. `rss_slack` is what
/// the measured tree holds besides the 200 MiB (the interpreter; on Docker the container's page
/// cache too).
fn check_client(attempt: &AttemptRecord, rss_slack: f64) {
    assert_eq!(attempt.status, AttemptStatus::Ok, "{attempt:#?}");
    let sample = |name: &str| {
        attempt
            .sample(name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", attempt.samples))
    };
    let wall = sample("wall_s");
    assert!(
        wall >= SLEEP_S + BURN_S && wall <= attempt.duration_s,
        "wall_s {wall} (attempt {} s)",
        attempt.duration_s
    );
    let (user, sys) = (sample("user_s"), sample("sys_s"));
    assert!(user >= 0.8 * BURN_S, "user_s {user}");
    // The burn, the interpreter's start and the page faults of 200 MiB.
    assert!(
        user + sys >= BURN_S && user + sys < BURN_S + 0.7,
        "user_s {user} + sys_s {sys}"
    );
    let rss = sample("max_rss_mb");
    assert!(
        rss >= TOUCHED_MIB && rss < TOUCHED_MIB + rss_slack,
        "max_rss_mb {rss}"
    );
}

const SUITE: &str = r#"[suite]
name = "builtin-metrics"
[repo]
path = "repo"
[metric]
primary = "wall_s"
[bench]
client = "sh -c 'python3 load.py'"
server = "python3 -c 'import time; time.sleep(120)'"
repeats = 1
timeout_s = 120
kill_grace_s = 2
[bench.readiness]
kind = "none"
"#;

#[test]
fn local_attempts_measure_the_client_tree_and_the_server_without_a_parser() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("project");
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("load.py"), LOAD_PY).unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "parent"]);
    std::fs::write(repo.join("README"), "a change that does nothing\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "change"]);
    let commit = git(&repo, &["rev-parse", "HEAD"]);
    std::fs::write(dir.join("perfarena.toml"), SUITE).unwrap();
    std::fs::write(
        dir.join("tasks.jsonl"),
        format!("{{\"commit_hash\": \"{commit}\"}}\n"),
    )
    .unwrap();
    let tasks = dir.join("tasks.jsonl");
    let out = perfarena(&dir, &["tasks", "import", tasks.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let out = perfarena(&dir, &["run", "--repeats", "1"]);
    assert!(out.status.success(), "{}", text(&out));
    let attempts = attempts(&dir.join(".perfarena"));
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    for attempt in &attempts {
        // The client prints no metric at all: wall_s is the primary metric all the same.
        check_client(attempt, 40.0);
        let server_wall = attempt.sample("server_wall_s").unwrap();
        assert!(
            server_wall >= attempt.sample("wall_s").unwrap(),
            "the server lives longer than its client: {:?}",
            attempt.samples
        );
        let server_user = attempt.sample("server_user_s").unwrap();
        assert!(server_user < 0.5, "a sleeping server: {server_user}");
        assert!(attempt.sample("server_max_rss_mb").unwrap() < 100.0);
    }
    // Shown in the report like any metric.
    let out = perfarena(&dir, &["report", "--format", "md"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("wall_s"), "{}", text(&out));
}

#[test]
fn docker_attempts_measure_the_container_from_its_cgroup() {
    let Some(docker) = docker_support::docker() else {
        return;
    };
    let spec = docker_support::ProjectSpec {
        parent_files: vec![("load.py", LOAD_PY.to_string())],
        human_files: vec![("README", "a change that does nothing\n".into())],
        base_image: Some("perfarena/toy-base:bookworm"),
        ..Default::default()
    };
    let project = docker_support::Project::new(docker, spec);
    let suite = std::fs::read_to_string(project.dir.join("perfarena.toml")).unwrap();
    // The images' names stay; the benchmark is the load, without a server and then with one.
    let images = &suite[suite.find("[images]").unwrap()..suite.find("[metric]").unwrap()];
    let write_suite = |server: &str| {
        std::fs::write(
            project.dir.join("perfarena.toml"),
            format!(
                "[suite]\nname = \"docker-metrics\"\n[repo]\npath = \"repo\"\nsource_dir = \"/workspace/src\"\n{images}[metric]\nprimary = \"wall_s\"\n[bench]\nclient = \"sh -c 'python3 load.py'\"\n{server}repeats = 1\ntimeout_s = 120\nkill_grace_s = 2\n[bench.readiness]\nkind = \"none\"\n"
            ),
        )
        .unwrap();
    };
    write_suite("");
    let out = project.perfarena(&["run", "--backend", "docker", "--repeats", "1"]);
    assert!(out.status.success(), "{}", docker_support::text(&out));
    let attempts = project.attempts();
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    for attempt in &attempts {
        // The container's peak holds the interpreter and the page cache of what it read.
        check_client(attempt, 80.0);
        assert!(attempt.sample("server_wall_s").is_none(), "no server");
    }
    assert!(project.containers(None).is_empty(), "no container left");

    write_suite("server = \"python3 -c 'import time; time.sleep(120)'\"\n");
    let out = project.perfarena(&["run", "--backend", "docker", "--repeats", "1"]);
    assert!(out.status.success(), "{}", docker_support::text(&out));
    let run_id = project.run_id();
    let with_server: Vec<AttemptRecord> = project
        .attempts()
        .into_iter()
        .filter(|a| a.run_id.as_deref() == Some(run_id.as_str()))
        .collect();
    assert_eq!(with_server.len(), 2);
    for attempt in &with_server {
        check_client(attempt, 80.0);
        let server_wall = attempt.sample("server_wall_s").unwrap();
        assert!(server_wall >= attempt.sample("wall_s").unwrap());
        assert!(
            matches!(attempt.variant, VariantKind::Baseline | VariantKind::Human),
            "{attempt:?}"
        );
    }
}
