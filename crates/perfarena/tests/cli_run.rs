//! End-to-end tests of `perfarena run`, `report` and `demo` on the toy example, with the
//! local backend: each candidate's expected status, the human variant measured faster than
//! the baseline, and a run killed with SIGKILL that `--resume` finishes without redoing work.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{perfarena, stderr, stdout, toy_candidates, toy_project};
use perfarena_core::{AttemptStatus, VariantKind};
use perfarena_store::{AttemptFilter, Store};

fn run_args(dir: &std::path::Path, repeats: &str) -> Vec<String> {
    let mut args = vec![
        "-C".to_string(),
        dir.display().to_string(),
        "run".into(),
        "--repeats".into(),
        repeats.into(),
        "--seed".into(),
        "7".into(),
        "--candidates".into(),
    ];
    args.extend(toy_candidates(dir));
    args
}

#[test]
fn run_measures_every_variant_and_reports() {
    let (_tmp, dir) = toy_project();
    let out = common::bin().args(run_args(&dir, "2")).output().unwrap();
    assert!(
        out.status.success(),
        "run failed: {}\n{}",
        stderr(&out),
        stdout(&out)
    );

    let store = Store::open_existing(&dir.join(".perfarena")).unwrap();
    let attempts = store.attempts(&AttemptFilter::default()).unwrap();
    let mut statuses: BTreeMap<String, Vec<AttemptStatus>> = BTreeMap::new();
    for a in &attempts {
        statuses
            .entry(a.variant.to_string())
            .or_default()
            .push(a.status);
    }
    let all = |v: &str, s: AttemptStatus| statuses[v].iter().all(|x| *x == s);
    assert!(
        all("baseline", AttemptStatus::Ok) && statuses["baseline"].len() == 2,
        "{statuses:?}"
    );
    assert!(all("human", AttemptStatus::Ok));
    assert!(all("candidate:fast", AttemptStatus::Ok));
    assert!(all("candidate:neutral", AttemptStatus::Ok));
    assert!(
        all("candidate:kernel", AttemptStatus::Ok),
        "the compiled part is rebuilt by setup"
    );
    assert!(all("candidate:crash", AttemptStatus::Crashed));
    assert_eq!(
        statuses["candidate:stale"],
        vec![AttemptStatus::PatchFailed],
        "a patch that does not apply is recorded once, never forced"
    );

    let crash = attempts
        .iter()
        .find(|a| a.variant.to_string() == "candidate:crash")
        .unwrap();
    let failure = crash.failure.as_ref().expect("the crash is triaged");
    assert_eq!(failure.signature, "module-not-found");
    assert!(failure.evidence.contains("toyllm.fastpath"), "{failure:?}");
    let stale = attempts
        .iter()
        .find(|a| a.status == AttemptStatus::PatchFailed)
        .unwrap();
    assert!(
        stale.message.contains("patch failed") || stale.message.contains("does not apply"),
        "{}",
        stale.message
    );
    let kernel = attempts
        .iter()
        .find(|a| a.variant.to_string() == "candidate:kernel")
        .unwrap();
    assert_eq!(
        kernel.metadata["rebuild_paths"],
        serde_json::json!(["csrc/kernels.txt"])
    );

    let median = |variant: VariantKind| {
        let mut v: Vec<f64> = attempts
            .iter()
            .filter(|a| a.variant == variant)
            .filter_map(|a| a.sample("output_throughput_tok_s"))
            .collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (base, human) = (median(VariantKind::Baseline), median(VariantKind::Human));
    assert!(
        human > base * 1.2,
        "human {human} should be measurably faster than baseline {base}"
    );
    // Logs are files under the run directory.
    let log_dir = dir
        .join(".perfarena")
        .join(attempts[0].log_dir.as_ref().unwrap());
    assert!(log_dir.join("client.log").exists(), "{}", log_dir.display());

    let md = perfarena(&dir, &["report"]);
    assert!(md.status.success(), "{}", stderr(&md));
    let md = stdout(&md);
    for needle in [
        "| baseline | ok | 2 / 2",
        "| candidate:crash | crashed | 0 / 2",
        "| candidate:stale | patch_failed",
        "human vs baseline",
    ] {
        assert!(md.contains(needle), "report lacks {needle:?}:\n{md}");
    }
    let json = perfarena(&dir, &["report", "--format", "json"]);
    let model: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert!(model["version"].as_u64().is_some());
    let variants = model["tasks"][0]["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 7);
}

fn count_attempts(dir: &std::path::Path) -> i64 {
    let db = dir.join(".perfarena/perfarena.db");
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("SELECT COUNT(*) FROM attempts", [], |r| r.get(0))
        .unwrap_or(0)
}

#[test]
fn sigkill_mid_run_then_resume_finishes_only_the_missing_attempts() {
    let (_tmp, dir) = toy_project();
    let mut child = common::bin()
        .args(run_args(&dir, "2"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while count_attempts(&dir) < 4 {
        assert!(
            Instant::now() < deadline,
            "the run recorded too few attempts"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "run ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Kill in the middle of the next attempt (its server is up by then).
    std::thread::sleep(Duration::from_millis(700));
    child.kill().unwrap();
    child.wait().unwrap();
    let before = count_attempts(&dir);
    assert!(before < 13, "killed too late: {before} attempts");

    let out = perfarena(&dir, &["run", "--resume"]);
    assert!(out.status.success(), "resume failed: {}", stderr(&out));
    let store = Store::open_existing(&dir.join(".perfarena")).unwrap();
    let runs = store.runs().unwrap();
    assert_eq!(runs.len(), 1, "resume continues the same run");
    assert_eq!(runs[0].status, "finished");
    let attempts = store.attempts(&AttemptFilter::default()).unwrap();
    // 6 runnable variants × 2 rounds + the stale patch recorded once.
    assert_eq!(attempts.len(), 13, "every attempt exactly once");
    let mut keys: Vec<(String, u32)> = attempts
        .iter()
        .map(|a| (a.variant.to_string(), a.round_idx))
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 13, "no attempt duplicated");
    let resumed = stdout(&out);
    assert!(
        resumed.contains(&format!(
            "{} attempt(s) recorded in this session",
            13 - before
        )),
        "{resumed}"
    );
    // No process group of the killed run is left behind.
    let pids = dir.join(".perfarena/pids");
    let left: Vec<_> = std::fs::read_dir(&pids)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "process groups left: {left:?}");
    // The interrupted attempt's logs were kept aside.
    let runs_dir = dir.join(".perfarena/runs").join(&runs[0].run_id);
    let aside = walk(&runs_dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".interrupted-"))
        .count();
    assert!(
        aside <= 1,
        "at most the one interrupted attempt is set aside"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.push(path.clone());
                out.extend(walk(&path));
            }
        }
    }
    out
}

#[test]
fn demo_runs_end_to_end_and_writes_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let out = common::bin()
        .arg("-C")
        .arg(&dir)
        .args(["demo", "--repeats", "1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let report = dir.join("report.md");
    assert!(
        text.contains(&format!("report: {}", report.display())),
        "{text}"
    );
    let md = std::fs::read_to_string(report).unwrap();
    assert!(
        md.contains("candidate:crash") && md.contains("human vs baseline"),
        "{md}"
    );
}

#[test]
fn ctrl_c_stops_cleanly_and_resume_completes() {
    let (_tmp, dir) = toy_project();
    let mut args = run_args(&dir, "1");
    args.push("--json".into());
    let child = common::bin()
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while count_attempts(&dir) < 2 {
        assert!(
            Instant::now() < deadline,
            "the run recorded too few attempts"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: sending SIGINT to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "Ctrl-C exits with 130");
    // The event stream is JSON lines.
    let events: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON event"))
        .collect();
    assert!(
        events.iter().any(|e| e["event"] == "attempt_finished"),
        "{events:?}"
    );
    let store = Store::open_existing(&dir.join(".perfarena")).unwrap();
    assert_eq!(store.runs().unwrap()[0].status, "interrupted");
    let pids = dir.join(".perfarena/pids");
    let left: Vec<_> = std::fs::read_dir(&pids)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "process groups left after Ctrl-C: {left:?}"
    );
    drop(store);
    let resumed = perfarena(&dir, &["run", "--resume"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert_eq!(
        count_attempts(&dir),
        7,
        "6 variants × 1 round + the stale patch"
    );
}

#[test]
fn a_repository_url_is_cloned_into_the_store() {
    let (_tmp, dir) = toy_project();
    let suite = std::fs::read_to_string(dir.join("perfarena.toml")).unwrap();
    let url = format!("file://{}", dir.join("repo").display());
    std::fs::write(
        dir.join("perfarena.toml"),
        suite.replace("path = \"repo\"", &format!("url = \"{url}\"")),
    )
    .unwrap();
    let tasks = dir.join("tasks.jsonl");
    let out = perfarena(&dir, &["tasks", "import", tasks.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.join(".perfarena/repo/.git").exists());
}

#[test]
fn adaptive_repeats_stop_once_the_verdict_is_clear() {
    let (_tmp, dir) = toy_project();
    let suite_path = dir.join("perfarena.toml");
    let suite = std::fs::read_to_string(&suite_path).unwrap();
    std::fs::write(
        &suite_path,
        format!("{suite}\n[stats]\nmin_repeats = 3\nmax_repeats = 6\n"),
    )
    .unwrap();
    let out = perfarena(&dir, &["run", "--repeats", "auto", "--seed", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Rounds are added look by look (3, then 6) and never beyond the maximum; on a quiet
    // machine the first look is conclusive (the human change is ~60 % faster).
    let attempts = count_attempts(&dir);
    assert!(
        attempts == 6 || attempts == 12,
        "2 variants × a look's rounds (3 or 6), got {attempts}"
    );
    let json = perfarena(&dir, &["report", "--format", "json"]);
    let model: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    let text = model["tasks"][0]["comparisons"].to_string();
    assert!(text.contains("\"better\""), "{text}");
}

#[test]
fn a_relative_project_directory_works() {
    let (tmp, dir) = toy_project();
    let rel = dir.strip_prefix(tmp.path()).unwrap();
    let out = common::bin()
        .current_dir(tmp.path())
        .arg("-C")
        .arg(rel)
        .args(["run", "--repeats", "1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        count_attempts(&dir),
        2,
        "baseline and human, measured from a relative -C"
    );
}
