//! Clean stops and one writer, end to end on the toy example (local backend): SIGINT, SIGTERM
//! and SIGHUP each stop a run with 128 + the signal, record it as interrupted with the signal's
//! name and leave no process group behind (checked by pgid); a closed stdout neither kills a
//! run nor panics a short command; two `run --resume` at once: the second fails at once naming
//! the first, a lock left by a killed run is taken over (said once), a reader works meanwhile,
//! and no attempt is recorded twice.

mod common;

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{bin, perfarena, stderr, toy_candidates, toy_project};
use perfarena_core::AttemptStage;
use perfarena_core::events::RunStopReason;
use perfarena_store::{AttemptFilter, Store};

fn count_attempts(dir: &Path) -> i64 {
    Store::open_existing(&dir.join(".perfarena"))
        .and_then(|s| s.count_attempts(None))
        .unwrap_or(0)
}

fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `perfarena run` on the toy project, its output discarded.
fn spawn_run(dir: &Path, extra: &[&str]) -> Child {
    bin()
        .arg("-C")
        .arg(dir)
        .arg("run")
        .args(extra)
        .args(["--seed", "7", "--candidates"])
        .args(toy_candidates(dir))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The process groups the run has registered (`.perfarena/pids/<pgid>`).
fn registered_groups(dir: &Path) -> BTreeSet<i32> {
    std::fs::read_dir(dir.join(".perfarena/pids"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a live process (not a zombie waiting for a reaper) is in the process group, from
/// `/proc/<pid>/stat` (fields after the command: state, ppid, pgrp).
fn group_exists(pgid: i32) -> bool {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .any(|stat| {
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.split_whitespace().collect())
                .unwrap_or_default();
            fields.len() > 2 && fields[2] == pgid.to_string() && !matches!(fields[0], "Z" | "X")
        })
}

/// Starts a run, waits until an attempt is in flight (one recorded, a process group
/// registered), sends `signal`, and checks the clean stop. Returns the project.
fn stop_with(signal: i32, name: &str) -> (tempfile::TempDir, PathBuf) {
    let (tmp, dir) = toy_project();
    let child = spawn_run(&dir, &["--repeats", "2"]);
    let mut groups = BTreeSet::new();
    wait_for("an attempt in flight", Duration::from_secs(120), || {
        groups.extend(registered_groups(&dir));
        count_attempts(&dir) >= 1 && !registered_groups(&dir).is_empty()
    });
    groups.extend(registered_groups(&dir));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, signal) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(128 + signal),
        "{name}: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains(&format!("interrupted by {name}")),
        "{}",
        stderr(&out)
    );
    assert!(!groups.is_empty());
    for pgid in &groups {
        assert!(!group_exists(*pgid), "{name}: process group {pgid} is left");
    }
    assert!(
        registered_groups(&dir).is_empty(),
        "{name}: registry not cleared"
    );
    let store = Store::open_existing(&dir.join(".perfarena")).unwrap();
    let run = &store.runs().unwrap()[0];
    assert_eq!(run.status, "interrupted");
    assert_eq!(
        store.run_state(&run.run_id).unwrap().stopped,
        Some(RunStopReason::Interrupted {
            signal: Some(name.into())
        })
    );
    (tmp, dir)
}

#[test]
fn sigint_stops_cleanly() {
    stop_with(libc::SIGINT, "SIGINT");
}

#[test]
fn sigterm_stops_cleanly() {
    stop_with(libc::SIGTERM, "SIGTERM");
}

#[test]
fn sighup_stops_cleanly_and_resume_finishes_the_run() {
    let (_tmp, dir) = stop_with(libc::SIGHUP, "SIGHUP");
    let resumed = perfarena(&dir, &["run", "--resume"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let store = Store::open_existing(&dir.join(".perfarena")).unwrap();
    assert_eq!(store.runs().unwrap()[0].status, "finished");
}

#[test]
fn a_closed_stdout_neither_kills_a_run_nor_panics_a_short_command() {
    let (_tmp, dir) = toy_project();
    // The reader goes away at once: every line of the event stream meets a closed pipe.
    let mut child = bin()
        .arg("-C")
        .arg(&dir)
        .args([
            "run",
            "--json",
            "--repeats",
            "1",
            "--seed",
            "7",
            "--candidates",
        ])
        .args(toy_candidates(&dir))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}: {}", out.status, stderr(&out));
    let store = Store::open_existing(&dir.join(".perfarena")).unwrap();
    assert_eq!(store.runs().unwrap()[0].status, "finished");
    assert_eq!(
        count_attempts(&dir),
        7,
        "6 variants × 1 round + the stale patch"
    );

    // `perfarena report | head -1`, its reader gone before the report is written.
    for args in [vec!["report"], vec!["report", "--format", "json"]] {
        let mut child = bin()
            .arg("-C")
            .arg(&dir)
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = stderr(&out);
        assert_ne!(out.status.code(), Some(101), "{args:?} panicked: {err}");
        assert!(
            out.status.success() || out.status.signal() == Some(libc::SIGPIPE),
            "{args:?}: {:?} {err}",
            out.status
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn two_resumes_at_once_the_second_fails_naming_the_first() {
    let (_tmp, dir) = toy_project();
    // A run killed outright: its lock file still names it, and there is work to resume.
    let mut killed = spawn_run(&dir, &["--repeats", "2", "--run-id", "r-lock"]);
    wait_for("a recorded attempt", Duration::from_secs(120), || {
        count_attempts(&dir) >= 1
    });
    killed.kill().unwrap(); // SIGKILL: no chance to release anything
    killed.wait().unwrap();
    let lock_file = dir.join(".perfarena/lock");
    assert!(
        std::fs::read_to_string(&lock_file)
            .unwrap()
            .contains(&format!("\"pid\":{}", killed.id())),
        "the killed run's name stays in its lock file"
    );

    let first = bin()
        .arg("-C")
        .arg(&dir)
        .args(["run", "--resume"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(
        "the first resume to hold the lock",
        Duration::from_secs(60),
        || {
            std::fs::read_to_string(&lock_file)
                .is_ok_and(|t| t.contains(&format!("\"pid\":{}", first.id())))
        },
    );
    let started = Instant::now();
    let second = perfarena(&dir, &["run", "--resume"]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the second writer fails at once"
    );
    assert_ne!(second.status.code(), Some(0));
    let message = stderr(&second);
    assert!(
        message.contains(&format!("pid {}", first.id())) && message.contains("run --resume"),
        "the message names the holder: {message}"
    );
    // A reader works while the run writes.
    let report = perfarena(&dir, &["report", "--format", "json"]);
    assert!(report.status.success(), "{}", stderr(&report));

    let out = first.wait_with_output().unwrap();
    let first_err = stderr(&out);
    assert!(out.status.success(), "{first_err}");
    assert_eq!(
        first_err.matches("taking over the lock").count(),
        1,
        "the takeover is said once: {first_err}"
    );
    assert!(
        first_err.contains(&format!("pid {}", killed.id())),
        "{first_err}"
    );
    assert_eq!(
        std::fs::read_to_string(&lock_file).unwrap(),
        "",
        "a released lock names nobody"
    );

    let store = Store::open_existing(&dir.join(".perfarena")).unwrap();
    let attempts = store.attempts(&AttemptFilter::default()).unwrap();
    let mut seen = BTreeSet::new();
    for attempt in attempts.iter().filter(|a| a.stage == AttemptStage::Attempt) {
        assert!(
            seen.insert((
                attempt.task.clone(),
                attempt.variant.clone(),
                attempt.round_idx
            )),
            "recorded twice: {} round {}",
            attempt.variant,
            attempt.round_idx
        );
    }
    assert_eq!(store.runs().unwrap()[0].status, "finished");
}
