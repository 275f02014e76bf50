//! End-to-end tests of `perfarena run --backend slurm` against real Slurm daemons (slurmctld and
//! slurmd for one node on 127.0.0.1; `scripts/slurm-env.sh up` starts them): the toy example with
//! the plain and docker launchers (a task's round as one job), several tasks' rounds as one job
//! array (with Ctrl-C and resume on it), setup jobs, secrets, a failing client's exit code,
//! Slurm's time limit (one job per attempt), Ctrl-C cancelling the job, and `--resume`
//! re-attaching to a job a killed run left running.
//!
//! Without Slurm these tests fail with what to run, unless PERFARENA_SKIP_SLURM=1.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{bin, stderr, stdout, toy_candidates, toy_project};

/// Makes sure Slurm answers; `false` when the tests are to be skipped.
fn slurm_ready() -> bool {
    if std::env::var("PERFARENA_SKIP_SLURM").as_deref() == Ok("1") {
        eprintln!("PERFARENA_SKIP_SLURM=1: skipping a slurm test");
        return false;
    }
    // Set once, while every other test waits here: no thread reads the environment meanwhile.
    static CONF: std::sync::Once = std::sync::Once::new();
    CONF.call_once(|| {
        if std::env::var_os("SLURM_CONF").is_none() {
            let default = Path::new("/tmp/slurm-ci/etc/slurm.conf");
            if default.exists() {
                // SAFETY: inside `call_once`, before any test of this binary starts a command.
                unsafe { std::env::set_var("SLURM_CONF", default) };
            }
        }
    });
    assert!(
        std::env::var_os("SLURM_CONF").is_some(),
        "SLURM_CONF is not set and /tmp/slurm-ci/etc/slurm.conf does not exist: start Slurm with `eval \"$(bash scripts/slurm-env.sh up)\"` (or set PERFARENA_SKIP_SLURM=1)"
    );
    let out = Command::new("sinfo").args(["-h", "-o", "%T"]).output();
    let answer = match &out {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).to_string(),
        Ok(out) => String::from_utf8_lossy(&out.stderr).to_string(),
        Err(e) => format!("cannot run sinfo: {e}"),
    };
    assert!(
        ["idle", "mixed", "allocated", "completing"]
            .iter()
            .any(|s| answer.contains(s)),
        "slurm does not answer with a usable node ({answer:?}): run `eval \"$(bash scripts/slurm-env.sh up)\"` (or set PERFARENA_SKIP_SLURM=1)"
    );
    true
}

/// Appends TOML to the toy project's suite.
fn add_to_suite(dir: &Path, text: &str) {
    let path = dir.join("perfarena.toml");
    let mut suite = std::fs::read_to_string(&path).unwrap();
    suite.push('\n');
    suite.push_str(text);
    std::fs::write(&path, suite).unwrap();
}

/// Replaces (or adds) a `key = ...` line of the `[bench]` table of the toy suite.
fn set_bench(dir: &Path, key: &str, value: &str) {
    set_in_table(dir, "[bench]", key, value);
}

/// Replaces (or adds) a `key = ...` line of a table of the toy suite.
fn set_in_table(dir: &Path, header: &str, key: &str, value: &str) {
    let path = dir.join("perfarena.toml");
    let suite = std::fs::read_to_string(&path).unwrap();
    let mut out = String::new();
    let mut table = String::new();
    let mut done = false;
    for line in suite.lines() {
        if line.starts_with('[') {
            if table == header && !done {
                out.push_str(&format!("{key} = {value}\n"));
                done = true;
            }
            table = line.trim().to_string();
        }
        if table == header && line.split('=').next().map(str::trim) == Some(key) {
            out.push_str(&format!("{key} = {value}\n"));
            done = true;
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if table == header && !done {
        out.push_str(&format!("{key} = {value}\n"));
        done = true;
    }
    assert!(done, "no {header} table in the toy suite");
    std::fs::write(&path, out).unwrap();
}

/// `perfarena -C DIR run ARGS…`, which must succeed.
fn run_ok(dir: &Path, args: &[&str]) -> std::process::Output {
    let out = bin()
        .arg("-C")
        .arg(dir)
        .arg("run")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "run failed: {}\n{}",
        stdout(&out),
        stderr(&out)
    );
    out
}

/// `perfarena -C DIR run --backend slurm --repeats 1 --run-id RUN` in the background (output
/// piped), for the tests that interrupt or kill it.
fn spawn_run(dir: &Path, run_id: &str) -> std::process::Child {
    bin()
        .arg("-C")
        .arg(dir)
        .args([
            "run",
            "--backend",
            "slurm",
            "--repeats",
            "1",
            "--run-id",
            run_id,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

const FAST_SLURM: &str = "[slurm]\npoll_interval_ms = 200\n";

fn unique_run_id(name: &str) -> String {
    format!(
        "{name}-{}-{:x}",
        std::process::id(),
        Instant::now().elapsed().as_nanos() ^ rand_bits()
    )
}

fn rand_bits() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
        & 0xffff_ffff
}

/// The recorded attempts, read from the store: `variant`, `status`, `exit_code`, `message`.
fn attempts(dir: &Path) -> Vec<serde_json::Value> {
    let conn = rusqlite::Connection::open(dir.join(".perfarena/perfarena.db")).expect("store");
    let mut stmt = conn
        .prepare("SELECT variant, status, exit_code, message FROM attempts ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| {
        Ok(serde_json::json!({
            "variant": r.get::<_, String>(0)?,
            "status": r.get::<_, String>(1)?,
            "exit_code": r.get::<_, Option<i64>>(2)?,
            "message": r.get::<_, String>(3)?,
        }))
    })
    .unwrap()
    .map(|r| r.unwrap())
    .collect()
}

/// The job ids the store recorded for a run.
fn recorded_jobs(dir: &Path, run_id: &str) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(dir.join(".perfarena/perfarena.db")).expect("store");
    let mut stmt = conn.prepare("SELECT job_id, state FROM jobs WHERE run_id = ?1 AND backend = 'slurm' ORDER BY job_id").unwrap();
    stmt.query_map([run_id], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })
    .unwrap()
    .map(|r| r.unwrap())
    .collect()
}

/// Every `round-N` attempt directory of a run.
fn attempt_dirs(dir: &Path, run_id: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.join(".perfarena/runs").join(run_id)];
    while let Some(path) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        for entry in entries.flatten() {
            let p = entry.path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if p.is_dir() && name.starts_with("round-") && !name.contains("interrupted") {
                found.push(p);
            } else if p.is_dir() {
                stack.push(p);
            }
        }
    }
    found.sort();
    found
}

/// Our run's jobs still in the queue: `(job id, state)`.
fn queued_jobs(run_id: &str) -> Vec<(String, String)> {
    let out = Command::new("squeue")
        .args(["-h", "-o", "%A|%T|%k"])
        .output()
        .expect("squeue runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!("perfarena.run={run_id};")))
        .map(|l| {
            let mut parts = l.split('|');
            (
                parts.next().unwrap_or("").to_string(),
                parts.next().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn wait_for_running_job(run_id: &str, child: &mut std::process::Child, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        if let Some((id, _)) = queued_jobs(run_id)
            .into_iter()
            .find(|(_, state)| state == "RUNNING")
        {
            return id;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "perfarena ended before its job ran"
        );
        assert!(
            Instant::now() < deadline,
            "no job of run {run_id} started within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn scontrol_state(job_id: &str) -> String {
    let out = Command::new("scontrol")
        .args(["show", "job", job_id])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("JobState="))
        .unwrap_or("")
        .to_string()
}

#[test]
fn toy_example_runs_as_slurm_jobs_with_the_plain_launcher() {
    if !slurm_ready() {
        return;
    }
    let (_tmp, dir) = toy_project();
    add_to_suite(&dir, FAST_SLURM);
    let run_id = unique_run_id("plain");
    let candidates: Vec<String> = toy_candidates(&dir)
        .into_iter()
        .filter(|c| c.starts_with("fast=") || c.starts_with("crash=") || c.starts_with("stale="))
        .collect();
    let mut args = vec![
        "run".to_string(),
        "--backend".into(),
        "slurm".into(),
        "--repeats".into(),
        "1".into(),
        "--run-id".into(),
        run_id.clone(),
        "--candidates".into(),
    ];
    args.extend(candidates);
    let started = Instant::now();
    let out = bin().arg("-C").arg(&dir).args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "run failed: {}\n{}",
        stdout(&out),
        stderr(&out)
    );
    eprintln!(
        "toy run through slurm took {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let rows = attempts(&dir);
    let status_of = |variant: &str| {
        rows.iter()
            .find(|r| r["variant"] == variant)
            .map(|r| r["status"].as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    };
    assert_eq!(status_of("baseline"), "ok", "{rows:#?}");
    assert_eq!(status_of("human"), "ok", "{rows:#?}");
    assert_eq!(status_of("candidate:fast"), "ok", "{rows:#?}");
    assert_eq!(status_of("candidate:crash"), "crashed", "{rows:#?}");
    assert_eq!(status_of("candidate:stale"), "patch_failed", "{rows:#?}");

    // The round is one job: every variant's attempt ran in it, one after the other on one node;
    // each attempt's own script, the round script, the job id, status and logs are in its dir.
    let dirs = attempt_dirs(&dir, &run_id);
    assert_eq!(dirs.len(), 4, "{dirs:?}");
    let mut job_ids = Vec::new();
    let mut spans = Vec::new();
    for attempt in &dirs {
        let script = std::fs::read_to_string(attempt.join("job.sh"))
            .expect("job.sh kept in the attempt dir");
        assert!(
            script.starts_with("#!/bin/sh\n") && script.contains("#SBATCH --job-name=pa-"),
            "{script}"
        );
        let round = std::fs::read_to_string(attempt.join("round.sh"))
            .expect("round.sh kept in the attempt dir");
        assert!(round.contains("pa_attempt "), "{round}");
        let job_id = std::fs::read_to_string(attempt.join("job.id"))
            .expect("job.id")
            .trim()
            .to_string();
        assert!(!job_id.is_empty());
        job_ids.push(job_id);
        let status = std::fs::read_to_string(attempt.join("status")).expect("status file ingested");
        assert!(status.contains("node=localhost"), "{status}");
        let field = |key: &str| -> f64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {key} in {status}"))
        };
        spans.push((field("started"), field("ended")));
        assert!(attempt.join("client.log").exists() && attempt.join("server.log").exists());
        assert!(
            std::fs::read_to_string(attempt.join("job.out"))
                .unwrap_or_default()
                .contains("perfarena: attempt"),
            "the round job's output is kept as job.out"
        );
    }
    job_ids.sort();
    job_ids.dedup();
    assert_eq!(job_ids.len(), 1, "one job for the round: {job_ids:?}");
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    for pair in spans.windows(2) {
        assert!(
            pair[0].1 <= pair[1].0,
            "attempts of a round run one after the other: {spans:?}"
        );
    }
    let recorded = recorded_jobs(&dir, &run_id);
    assert_eq!(
        recorded.len(),
        4,
        "one ledger row per attempt: {recorded:?}"
    );
    assert!(
        recorded.iter().all(|(id, state)| *id == job_ids[0]
            && (state == "ended:COMPLETED" || state == "ended:FAILED")),
        "{recorded:?}"
    );
    let ok = dirs
        .iter()
        .find(|d| d.to_string_lossy().contains("/human/"))
        .unwrap();
    let client = std::fs::read_to_string(ok.join("client.log")).unwrap();
    assert!(client.contains("Output token throughput"), "{client}");
    assert!(
        std::fs::read_to_string(ok.join("status"))
            .unwrap()
            .contains("result=ok")
    );
    assert!(
        queued_jobs(&run_id).is_empty(),
        "jobs left in the queue: {:?}",
        queued_jobs(&run_id)
    );
}

/// Adds a second task to the toy project and imports it: the commit before the prefix cache
/// (request counting) or, with `broken`, the newest one (a kernel whose build step fails).
fn add_second_task(dir: &Path, broken: bool) {
    let log = Command::new("git")
        .arg("-C")
        .arg(dir.join("repo"))
        .args(["log", "--format=%H|%s"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&log.stdout).to_string();
    // Newest first: the newest commit breaks the build.
    let lines: Vec<(&str, &str)> = log.lines().filter_map(|l| l.split_once('|')).collect();
    let at = lines
        .iter()
        .position(|(_, s)| s.starts_with("perf: prefix cache"))
        .expect("the prefix-cache commit");
    let (commit, subject) = if broken { lines[0] } else { lines[at + 1] };
    let row = serde_json::json!({
        "commit_hash": commit, "repo": "toyllm", "models": ["toy-1b"],
        "has_serving": true, "commit_subject": subject,
    });
    let file = dir.join("more-tasks.jsonl");
    std::fs::write(&file, format!("{row}\n")).unwrap();
    let out = bin()
        .arg("-C")
        .arg(dir)
        .args(["tasks", "import"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn rounds_of_several_tasks_go_as_one_job_array() {
    if !slurm_ready() {
        return;
    }
    let (_tmp, dir) = toy_project();
    add_to_suite(&dir, "[slurm]\npoll_interval_ms = 200\narray_limit = 1\n");
    add_second_task(&dir, false);
    let run_id = unique_run_id("array");
    let out = run_ok(
        &dir,
        &["--backend", "slurm", "--repeats", "2", "--run-id", &run_id],
    );
    let rows = attempts(&dir);
    assert_eq!(rows.len(), 8, "2 tasks × 2 variants × 2 rounds: {rows:#?}");
    assert!(rows.iter().all(|r| r["status"] == "ok"), "{rows:#?}");
    // Each round of both tasks was one array job of two tasks, `%1` as slurm.array_limit says.
    let text = format!("{}{}", stdout(&out), stderr(&out));
    let arrays: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split("as slurm job array ").nth(1))
        .collect();
    assert_eq!(arrays.len(), 2, "one array per round: {text}");
    let recorded = recorded_jobs(&dir, &run_id);
    assert_eq!(recorded.len(), 8, "{recorded:?}");
    let mut bases: Vec<String> = recorded
        .iter()
        .map(|(id, _)| id.split('_').next().unwrap_or("").to_string())
        .collect();
    bases.dedup();
    assert_eq!(bases.len(), 2, "two arrays: {recorded:?}");
    assert!(
        recorded
            .iter()
            .all(|(id, state)| (id.ends_with("_0") || id.ends_with("_1"))
                && state == "ended:COMPLETED"),
        "{recorded:?}"
    );
    let scripts: Vec<PathBuf> =
        std::fs::read_dir(dir.join(".perfarena/slurm").join(&run_id).join("arrays"))
            .expect("array scripts kept in the shared log dir")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "sh"))
            .collect();
    assert_eq!(scripts.len(), 2, "{scripts:?}");
    let script = std::fs::read_to_string(&scripts[0]).unwrap();
    assert!(script.contains("#SBATCH --array=0-1%1"), "{script}");
    // With one array task at a time, the two tasks' rounds did not overlap.
    let mut spans: Vec<(f64, f64)> = attempt_dirs(&dir, &run_id)
        .iter()
        .map(|d| {
            let status = std::fs::read_to_string(d.join("status")).unwrap();
            let field = |key: &str| -> f64 {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("{key}=")))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("no {key} in {status}"))
            };
            (field("started"), field("ended"))
        })
        .collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    for pair in spans.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "{spans:?}");
    }
    assert!(queued_jobs(&run_id).is_empty());
}

#[test]
fn the_setup_step_runs_as_a_job_on_the_node() {
    if !slurm_ready() {
        return;
    }
    let (_tmp, dir) = toy_project();
    add_to_suite(&dir, FAST_SLURM);
    add_second_task(&dir, true);
    let run_id = unique_run_id("setup");
    let log = Command::new("git")
        .arg("-C")
        .arg(dir.join("repo"))
        .args(["log", "-1", "--format=%H"])
        .output()
        .unwrap();
    let broken = String::from_utf8_lossy(&log.stdout).trim().to_string();
    run_ok(
        &dir,
        &[
            "--backend",
            "slurm",
            "--repeats",
            "1",
            "--run-id",
            &run_id,
            "--tasks",
            &broken,
        ],
    );
    let rows = attempts(&dir);
    let human = rows
        .iter()
        .find(|r| r["variant"] == "human")
        .expect("human row");
    assert_eq!(human["status"], "build_failed", "{rows:#?}");
    let message = human["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with("setup exited with code 1:") && message.contains("ValueError"),
        "{message}"
    );
    let baseline = rows
        .iter()
        .find(|r| r["variant"] == "baseline")
        .expect("baseline row");
    assert_eq!(baseline["status"], "ok", "{rows:#?}");
    // Each variant's setup was a job: its script and slurm's record of it are in the shared dir,
    // and its log is the variant's setup.log.
    let task_dir = std::fs::read_dir(dir.join(".perfarena/slurm").join(&run_id))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("human/setup/build.sh").exists())
        .expect("the human's setup job script");
    let script = std::fs::read_to_string(task_dir.join("human/setup/build.sh")).unwrap();
    assert!(
        script.contains("#SBATCH --job-name=pa-build") && script.contains("build.py"),
        "{script}"
    );
    assert!(task_dir.join("baseline/setup/build.sh").exists());
    let setup_logs: Vec<PathBuf> = attempt_dirs(&dir, &run_id)
        .iter()
        .filter_map(|d| d.parent().map(|p| p.join("setup.log")))
        .filter(|p| p.exists())
        .collect();
    assert!(
        !setup_logs.is_empty(),
        "setup.log copied next to the attempts"
    );
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
        {
            found.push(path);
        }
    }
    found
}

#[test]
fn secrets_reach_allowed_variants_and_never_the_disk() {
    if !slurm_ready() {
        return;
    }
    let (_tmp, dir) = toy_project();
    add_to_suite(
        &dir,
        "[slurm]\npoll_interval_ms = 200\n[secrets.vars]\nPA_TEST_TOKEN = { env = \"PA_TEST_TOKEN_SRC\" }\n",
    );
    set_bench(
        &dir,
        "client",
        "\"echo token=${PA_TEST_TOKEN:-none}; python3 benchmarks/benchmark_serving.py --model {model} --port {port} --num-prompts 8 --concurrency 4\"",
    );
    let value = "s3cr3t-value-4242";
    let run_id = unique_run_id("secret");
    let fast = toy_candidates(&dir)
        .into_iter()
        .find(|c| c.starts_with("fast="))
        .expect("the fast candidate");
    let out = bin()
        .arg("-C")
        .arg(&dir)
        .args([
            "run",
            "--backend",
            "slurm",
            "--repeats",
            "1",
            "--run-id",
            &run_id,
            "--candidates",
            &fast,
        ])
        .env("PA_TEST_TOKEN_SRC", value)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let rows = attempts(&dir);
    assert_eq!(rows.len(), 3, "{rows:#?}");
    assert!(rows.iter().all(|r| r["status"] == "ok"), "{rows:#?}");
    for attempt in attempt_dirs(&dir, &run_id) {
        let client = std::fs::read_to_string(attempt.join("client.log")).unwrap();
        let path = attempt.to_string_lossy().to_string();
        if path.contains("/candidate-") {
            assert!(
                client.contains("token=none"),
                "secrets.allow leaves candidates out: {client}"
            );
        } else {
            assert!(
                client.contains("token=[redacted:PA_TEST_TOKEN]"),
                "{client}"
            );
        }
    }
    let leaks = files_containing(&dir.join(".perfarena"), value);
    assert!(leaks.is_empty(), "the secret's value is on disk: {leaks:?}");
}

#[test]
fn a_failing_client_is_a_crash_with_its_exit_code() {
    if !slurm_ready() {
        return;
    }
    let (_tmp, dir) = toy_project();
    add_to_suite(&dir, FAST_SLURM);
    set_bench(
        &dir,
        "client",
        "\"python3 -c 'import sys; print(\\\"bad request\\\"); sys.exit(7)'\"",
    );
    let run_id = unique_run_id("fail");
    run_ok(
        &dir,
        &["--backend", "slurm", "--repeats", "1", "--run-id", &run_id],
    );
    let rows = attempts(&dir);
    assert_eq!(rows.len(), 2, "{rows:#?}");
    for row in &rows {
        assert_eq!(row["status"], "crashed", "{row:#}");
        assert_eq!(row["exit_code"], 7, "{row:#}");
        let message = row["message"].as_str().unwrap_or("");
        assert!(
            message.contains("client exited with code 7") && message.contains("bad request"),
            "{message}"
        );
    }
}

/// The built-in metrics on Slurm come from the job script (start and end times, `times` for
/// the plain launcher); this cluster keeps no accounting (`jobacct_gather/none`), so a job of
/// one attempt has no `max_rss_mb` and the attempt is measured all the same.
#[test]
fn built_in_metrics_come_from_the_job_script() {
    if !slurm_ready() {
        return;
    }
    let (_tmp, dir) = toy_project();
    add_to_suite(
        &dir,
        "[slurm]\npoll_interval_ms = 500\njob_unit = \"attempt\"\n",
    );
    let load = dir.join("load.py");
    std::fs::write(
        &load,
        "import time\ntime.sleep(0.4)\nt = time.process_time()\nwhile time.process_time() - t < 0.5:\n    for _ in range(20000):\n        pass\n",
    )
    .unwrap();
    set_bench(&dir, "client", &format!("\"python3 {}\"", load.display()));
    set_in_table(&dir, "[metric]", "primary", "\"wall_s\"");
    set_in_table(&dir, "[metric]", "direction", "\"lower\"");
    let run_id = unique_run_id("builtin");
    run_ok(
        &dir,
        &["--backend", "slurm", "--repeats", "1", "--run-id", &run_id],
    );
    let rows = perfarena_store::Store::open_existing(&dir.join(".perfarena"))
        .unwrap()
        .attempts(&perfarena_store::AttemptFilter::default())
        .unwrap();
    assert_eq!(rows.len(), 2, "{rows:#?}");
    for row in &rows {
        assert_eq!(row.status, perfarena_core::AttemptStatus::Ok, "{row:#?}");
        let wall = row.sample("wall_s").expect("wall_s");
        assert!(wall >= 0.9 && wall < 10.0, "{row:#?}");
        let user = row.sample("user_s").expect("user_s");
        let sys = row.sample("sys_s").expect("sys_s");
        assert!(user >= 0.4 && user + sys < 1.5, "{row:#?}");
        assert!(row.sample("server_wall_s").expect("server_wall_s") >= wall);
        assert_eq!(
            row.sample("max_rss_mb"),
            None,
            "no accounting here: {row:#?}"
        );
    }
}

#[test]
fn a_job_past_its_slurm_time_limit_is_a_timeout() {
    if !slurm_ready() {
        return;
    }
    let (_tmp, dir) = toy_project();
    // One minute is Slurm's smallest limit; it checks limits about every 30 s.
    add_to_suite(
        &dir,
        "[slurm]\npoll_interval_ms = 500\ntime_limit = \"1\"\njob_unit = \"attempt\"\n",
    );
    set_bench(&dir, "timeout_s", "900");
    // The baseline's client outlives the limit; the human's ends at once (no metrics).
    set_bench(
        &dir,
        "client",
        "\"case {variant} in baseline) sleep 600 ;; *) echo no result ;; esac\"",
    );
    let run_id = unique_run_id("timelimit");
    let started = Instant::now();
    run_ok(
        &dir,
        &["--backend", "slurm", "--repeats", "1", "--run-id", &run_id],
    );
    eprintln!(
        "time-limit run took {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let rows = attempts(&dir);
    let baseline = rows
        .iter()
        .find(|r| r["variant"] == "baseline")
        .expect("baseline attempt");
    assert_eq!(baseline["status"], "timeout", "{baseline:#}");
    let message = baseline["message"].as_str().unwrap_or("");
    assert!(message.contains("slurm time limit (1)"), "{message}");
    let human = rows
        .iter()
        .find(|r| r["variant"] == "human")
        .expect("human attempt");
    assert_eq!(human["status"], "no_metrics", "{human:#}");
}

#[test]
fn ctrl_c_cancels_the_running_job() {
    if !slurm_ready() {
        return;
    }
    let (_tmp, dir) = toy_project();
    add_to_suite(&dir, FAST_SLURM);
    set_bench(&dir, "client", "\"sleep 300\"");
    let run_id = unique_run_id("ctrlc");
    let mut child = spawn_run(&dir, &run_id);
    let job_id = wait_for_running_job(&run_id, &mut child, Duration::from_secs(120));
    // SAFETY: signals the child we spawned, by its pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    eprintln!(
        "perfarena stopped {:.1}s after SIGINT",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stderr(&out).contains("interrupted"), "{}", stderr(&out));
    assert!(
        queued_jobs(&run_id).is_empty(),
        "jobs left in the queue: {:?}",
        queued_jobs(&run_id)
    );
    assert_eq!(scontrol_state(&job_id), "CANCELLED");
    // The round's job (both variants' attempts) was cancelled.
    assert_eq!(
        recorded_jobs(&dir, &run_id),
        vec![
            (job_id.clone(), "cancelled".to_string()),
            (job_id.clone(), "cancelled".to_string())
        ]
    );
    // Nothing half-written: no attempt was recorded for the cancelled job.
    assert!(attempts(&dir).is_empty());
}

#[test]
fn ctrl_c_cancels_a_whole_job_array() {
    if !slurm_ready() {
        return;
    }
    let (_tmp, dir) = toy_project();
    add_to_suite(&dir, FAST_SLURM);
    add_second_task(&dir, false);
    set_bench(&dir, "client", "\"sleep 300\"");
    let run_id = unique_run_id("actrlc");
    let mut child = spawn_run(&dir, &run_id);
    wait_for_running_job(&run_id, &mut child, Duration::from_secs(120));
    // SAFETY: signals the child we spawned, by its pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        queued_jobs(&run_id).is_empty(),
        "jobs left in the queue: {:?}",
        queued_jobs(&run_id)
    );
    let recorded = recorded_jobs(&dir, &run_id);
    assert_eq!(recorded.len(), 4, "{recorded:?}");
    assert!(
        recorded
            .iter()
            .all(|(id, state)| id.contains('_') && state == "cancelled"),
        "{recorded:?}"
    );
    assert!(
        attempts(&dir).is_empty(),
        "nothing recorded for cancelled jobs"
    );
}

#[test]
fn resume_reattaches_to_the_job_a_killed_run_left_running() {
    if !slurm_ready() {
        return;
    }
    let (_tmp, dir) = toy_project();
    add_to_suite(&dir, FAST_SLURM);
    // A client slow enough to outlive its perfarena process.
    set_bench(
        &dir,
        "client",
        "\"sleep 6 && python3 benchmarks/benchmark_serving.py --model {model} --port {port} --num-prompts 8 --concurrency 4\"",
    );
    let run_id = unique_run_id("resume");
    let mut child = spawn_run(&dir, &run_id);
    let job_id = wait_for_running_job(&run_id, &mut child, Duration::from_secs(120));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        queued_jobs(&run_id).first().map(|(id, _)| id.clone()),
        Some(job_id.clone()),
        "the job outlives its perfarena"
    );

    let out = run_ok(
        &dir,
        &["--resume", "--run-id", &run_id, "--backend", "slurm"],
    );
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        text.contains(&format!("re-attached to slurm job {job_id}")),
        "{text}"
    );
    let rows = attempts(&dir);
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert!(rows.iter().all(|r| r["status"] == "ok"), "{rows:#?}");
    // The re-attached attempt holds the first job's logs; only one more job was submitted.
    let ids: Vec<String> = attempt_dirs(&dir, &run_id)
        .iter()
        .map(|d| {
            std::fs::read_to_string(d.join("job.id"))
                .unwrap()
                .trim()
                .to_string()
        })
        .collect();
    assert!(ids.contains(&job_id), "{ids:?} lacks {job_id}");
    assert_eq!(ids.len(), 2);
    assert_eq!(recorded_jobs(&dir, &run_id).len(), 2, "nothing resubmitted");
    assert!(queued_jobs(&run_id).is_empty());
}

#[test]
fn resume_reattaches_to_the_array_tasks_a_killed_run_left_running() {
    if !slurm_ready() {
        return;
    }
    let (_tmp, dir) = toy_project();
    add_to_suite(&dir, FAST_SLURM);
    add_second_task(&dir, false);
    set_bench(
        &dir,
        "client",
        "\"sleep 4 && python3 benchmarks/benchmark_serving.py --model {model} --port {port} --num-prompts 8 --concurrency 4\"",
    );
    let run_id = unique_run_id("aresume");
    let mut child = spawn_run(&dir, &run_id);
    wait_for_running_job(&run_id, &mut child, Duration::from_secs(120));
    child.kill().unwrap();
    child.wait().unwrap();
    // Both tasks' rounds went as one array: each attempt's ledger row names its array task.
    let before = recorded_jobs(&dir, &run_id);
    assert_eq!(before.len(), 4, "{before:?}");
    let mut tasks: Vec<String> = before.iter().map(|(id, _)| id.clone()).collect();
    tasks.dedup();
    assert_eq!(tasks.len(), 2, "{before:?}");
    let base = tasks[0].split('_').next().unwrap().to_string();
    assert_eq!(tasks, vec![format!("{base}_0"), format!("{base}_1")]);

    let out = run_ok(
        &dir,
        &["--resume", "--run-id", &run_id, "--backend", "slurm"],
    );
    let text = format!("{}{}", stdout(&out), stderr(&out));
    for task in &tasks {
        assert!(
            text.contains(&format!("re-attached to slurm job {task}")),
            "{text}"
        );
    }
    let rows = attempts(&dir);
    assert_eq!(rows.len(), 4, "{rows:#?}");
    assert!(rows.iter().all(|r| r["status"] == "ok"), "{rows:#?}");
    let after = recorded_jobs(&dir, &run_id);
    let ids: Vec<&String> = after.iter().map(|(id, _)| id).collect();
    assert_eq!(
        ids,
        before.iter().map(|(id, _)| id).collect::<Vec<_>>(),
        "nothing resubmitted"
    );
    assert!(queued_jobs(&run_id).is_empty());
}

/// Whether the docker launcher can run here: the daemon answers and the toy base image exists.
fn docker_ready() -> bool {
    if std::env::var("PERFARENA_SKIP_DOCKER").as_deref() == Ok("1") {
        eprintln!("PERFARENA_SKIP_DOCKER=1: skipping the docker launcher");
        return false;
    }
    let info = Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        matches!(info, Ok(s) if s.success()),
        "the docker daemon does not answer: run `bash scripts/docker-env.sh up` (or set PERFARENA_SKIP_DOCKER=1)"
    );
    let image = Command::new("docker")
        .args(["image", "inspect", "perfarena/toy-base:bookworm"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        matches!(image, Ok(s) if s.success()),
        "image perfarena/toy-base:bookworm is missing: run `bash scripts/docker-env.sh up` (or set PERFARENA_SKIP_DOCKER=1)"
    );
    true
}

#[test]
fn toy_example_runs_with_the_docker_launcher() {
    if !slurm_ready() || !docker_ready() {
        return;
    }
    let (_tmp, dir) = toy_project();
    add_to_suite(
        &dir,
        "[slurm]\npoll_interval_ms = 200\nlauncher = \"docker\"\nimage = \"perfarena/toy-base:bookworm\"\nlauncher_args = [\"--pull\", \"never\"]\n",
    );
    let run_id = unique_run_id("docker");
    run_ok(
        &dir,
        &["--backend", "slurm", "--repeats", "1", "--run-id", &run_id],
    );
    let rows = attempts(&dir);
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert!(rows.iter().all(|r| r["status"] == "ok"), "{rows:#?}");
    for attempt in attempt_dirs(&dir, &run_id) {
        let script = std::fs::read_to_string(attempt.join("job.sh")).unwrap();
        assert!(
            script.contains("docker run --rm --init --network host")
                && script.contains("--label 'perfarena.run="),
            "{script}"
        );
    }
    // The containers are gone with their jobs.
    let left = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=perfarena.run={run_id}"),
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&left.stdout).trim().is_empty(),
        "containers left behind"
    );
}

#[test]
fn images_build_runs_on_a_node_as_a_slurm_job() {
    if !slurm_ready() || !docker_ready() {
        return;
    }
    let (_tmp, dir) = toy_project();
    // The toy's images are tiny: the disk guard (20 GiB by default) is tested in images_build.rs
    // and must not make this test depend on how full the CI machine's disk is.
    add_to_suite(&dir, FAST_SLURM);
    set_in_table(&dir, "[build]", "min_free_disk_gib", "0.5");
    // Image names of this test alone, removed at the end.
    let repo = format!("slurm-images-{}", std::process::id());
    set_in_table(&dir, "[images]", "repo", &format!("\"{repo}\""));
    let out = bin()
        .arg("-C")
        .arg(&dir)
        .args([
            "images",
            "build",
            "--all",
            "--no-push",
            "--backend",
            "slurm",
        ])
        .output()
        .unwrap();
    let built = Command::new("docker")
        .args(["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .output()
        .unwrap();
    let refs: Vec<String> = String::from_utf8_lossy(&built.stdout)
        .lines()
        .filter(|l| l.contains(&format!("/{repo}:")))
        .map(str::to_string)
        .collect();
    for image in &refs {
        let _ = Command::new("docker").args(["rmi", "-f", image]).output();
    }
    assert!(
        out.status.success(),
        "images build failed: {}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stderr(&out);
    assert!(text.contains("submitted 1 build(s) as slurm job"), "{text}");
    assert!(
        text.contains("1 task(s) built on slurm, 0 failed"),
        "{text}"
    );
    assert_eq!(
        refs.len(),
        2,
        "human and baseline images built on the node: {refs:?}"
    );
    let builds = std::fs::read_dir(dir.join(".perfarena/builds"))
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("slurm-"))
        .expect("build dir");
    let script = std::fs::read_to_string(builds.path().join("build.sh")).unwrap();
    assert!(
        script.contains("images build --commit") && script.contains("--no-push"),
        "{script}"
    );
    let log = std::fs::read_to_string(builds.path().join("build-0.log")).unwrap();
    assert!(log.contains("images: 2 success"), "{log}");
}
