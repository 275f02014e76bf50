//! A signal on the docker backend, against the real daemon: SIGTERM in the middle of an
//! attempt stops the run with 143, records it as interrupted, and leaves no container of the
//! run (found by its `perfarena.run` label); `--resume` then finishes it.

mod docker_support;

use std::process::Stdio;
use std::time::Duration;

use docker_support::{Project, ProjectSpec, bench, bin, count_attempts, docker, text, wait_for};
use perfarena_core::events::RunStopReason;
use perfarena_store::Store;

#[test]
fn sigterm_mid_attempt_leaves_no_container_and_resume_finishes() {
    let Some(docker) = docker() else { return };
    let project = Project::new(
        docker,
        ProjectSpec {
            // A client that takes a moment, so that the signal meets a running container.
            suite_extra: bench("").replace(
                "client = \"sh benchmarks/bench.sh {port}\"",
                "client = \"sleep 2; sh benchmarks/bench.sh {port}\"",
            ),
            ..Default::default()
        },
    );
    let child = bin()
        .arg("-C")
        .arg(&project.dir)
        .args(project.run_args(&["--repeats", "2"]))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let state = project.state_dir();
    wait_for("one recorded attempt", Duration::from_secs(120), || {
        count_attempts(&state) >= 1
    });
    let run_id = project.run_id();
    wait_for(
        "the next attempt's container",
        Duration::from_secs(60),
        || !project.containers(Some(&run_id)).is_empty(),
    );
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", text(&out));
    assert!(
        project.containers(Some(&run_id)).is_empty(),
        "no container of the run is left"
    );
    let store = Store::open_existing(&state).unwrap();
    assert_eq!(store.run(&run_id).unwrap().unwrap().status, "interrupted");
    assert_eq!(
        store.run_state(&run_id).unwrap().stopped,
        Some(RunStopReason::Interrupted {
            signal: Some("SIGTERM".into())
        })
    );
    drop(store);
    let resumed = project.perfarena(&["run", "--backend", "docker", "--resume"]);
    assert!(resumed.status.success(), "{}", text(&resumed));
    assert_eq!(
        project.attempts().len(),
        4,
        "2 variants × 2 rounds, each once"
    );
}
