//! Reliability of docker runs against the real daemon: SIGKILL mid-attempt then `--resume`
//! (no orphan, nothing lost or duplicated, the interrupted attempt rerun once), the daemon
//! unreachable before the start and in the middle of a run (through a socket proxy the test
//! stops), a disk that fills up while logs are written, the orphan sweep leaving foreign
//! containers alone, and `--parallel` with its GPU-slot checks.

mod docker_support;

use std::collections::{BTreeMap, HashMap};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder};
use docker_support::{
    Project, ProjectSpec, bench, bin, count_attempts, docker, runtime, text, wait_for,
};
use perfarena_core::{AttemptStatus, VariantKind};
use perfarena_store::Store;

/// A client that takes a moment, so that a test can act while an attempt is in flight.
fn slow_bench(extra: &str) -> String {
    bench(extra).replace(
        "client = \"sh benchmarks/bench.sh {port}\"",
        "client = \"sleep 1.5; sh benchmarks/bench.sh {port}\"",
    )
}

fn round_counts(project: &Project) -> BTreeMap<(String, u32), Vec<AttemptStatus>> {
    let mut counts: BTreeMap<(String, u32), Vec<AttemptStatus>> = BTreeMap::new();
    for a in project.attempts() {
        counts
            .entry((a.variant.to_string(), a.round_idx))
            .or_default()
            .push(a.status);
    }
    counts
}

#[test]
fn sigkill_mid_attempt_then_resume_loses_and_duplicates_nothing() {
    let Some(docker) = docker() else { return };
    let project = Project::new(
        docker,
        ProjectSpec {
            suite_extra: slow_bench(""),
            ..Default::default()
        },
    );
    let mut child = bin()
        .arg("-C")
        .arg(&project.dir)
        .args(project.run_args(&["--repeats", "2"]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let state = project.state_dir();
    wait_for("one recorded attempt", Duration::from_secs(60), || {
        count_attempts(&state) >= 1
    });
    let run_id = project.run_id();
    wait_for(
        "the next attempt's container",
        Duration::from_secs(30),
        || !project.containers(Some(&run_id)).is_empty(),
    );
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let recorded = count_attempts(&state);
    assert!(
        !project.containers(Some(&run_id)).is_empty(),
        "the killed run left its container (the orphan to sweep)"
    );

    let out = project.perfarena(&["run", "--backend", "docker", "--resume"]);
    assert!(out.status.success(), "{}", text(&out));
    // (The sweep says "removed 1 orphaned …" unless a concurrent perfarena on this host swept it first.)
    assert!(
        project.containers(Some(&run_id)).is_empty(),
        "no container of the run is left"
    );
    let counts = round_counts(&project);
    assert_eq!(counts.len(), 4, "{counts:?}");
    assert!(
        counts.values().all(|s| s == &vec![AttemptStatus::Ok]),
        "each (variant, round) exactly once: {counts:?}"
    );
    assert!(
        recorded < 4,
        "the kill happened mid-run ({recorded} recorded before it)"
    );
    // The interrupted attempt's directory was kept aside and its round run once more.
    let mut aside = Vec::new();
    let mut stack = vec![state.join("runs").join(&run_id)];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .contains(".interrupted-")
                {
                    aside.push(path.clone());
                }
                stack.push(path);
            }
        }
    }
    assert_eq!(aside.len(), 1, "{aside:?}");
}

#[test]
fn an_unreachable_daemon_is_a_clear_error_before_anything_starts() {
    let Some(docker) = docker() else { return };
    let project = Project::new(
        docker,
        ProjectSpec {
            suite_extra: bench(""),
            ..Default::default()
        },
    );
    let out = bin()
        .arg("-C")
        .arg(&project.dir)
        .args(project.run_args(&["--repeats", "1"]))
        .env("DOCKER_HOST", "unix:///nonexistent/perfarena/docker.sock")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "cannot reach the docker daemon at unix:///nonexistent/perfarena/docker.sock"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("DOCKER_HOST"), "says what to do: {stderr}");
    let store = Store::open_existing(&project.state_dir()).unwrap();
    assert!(store.runs().unwrap().is_empty(), "no run was created");
    assert_eq!(store.count_attempts(None).unwrap(), 0);
}

/// A unix-socket proxy in front of the daemon that the test can cut.
struct Proxy {
    path: PathBuf,
    stopped: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<UnixStream>>>,
}

impl Proxy {
    fn start(path: &Path) -> Proxy {
        let upstream = match std::env::var("DOCKER_HOST") {
            Ok(host) if host.starts_with("unix://") => {
                host.trim_start_matches("unix://").to_string()
            }
            _ => "/var/run/docker.sock".to_string(),
        };
        let listener = UnixListener::bind(path).unwrap();
        let stopped = Arc::new(AtomicBool::new(false));
        let streams: Arc<Mutex<Vec<UnixStream>>> = Arc::default();
        let (stop, all) = (stopped.clone(), streams.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = UnixStream::connect(&upstream) else {
                    continue;
                };
                let pairs = [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server.try_clone().unwrap(), client.try_clone().unwrap()),
                ];
                all.lock().unwrap().extend([client, server]);
                for (mut from, mut to) in pairs {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                }
            }
        });
        Proxy {
            path: path.to_path_buf(),
            stopped,
            streams,
        }
    }

    /// The daemon "goes away": no new connections, every open one cut.
    fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        let _ = std::fs::remove_file(&self.path);
        let _ = UnixStream::connect(&self.path);
        for stream in self.streams.lock().unwrap().drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

#[test]
fn the_daemon_going_away_mid_run_stops_cleanly_and_resume_continues() {
    let Some(docker) = docker() else { return };
    let project = Project::new(
        docker,
        ProjectSpec {
            suite_extra: slow_bench(""),
            ..Default::default()
        },
    );
    let socket = project.dir.join("proxy.sock");
    let proxy = Proxy::start(&socket);
    let child = bin()
        .arg("-C")
        .arg(&project.dir)
        .args(project.run_args(&["--repeats", "2"]))
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let state = project.state_dir();
    wait_for("one recorded attempt", Duration::from_secs(60), || {
        count_attempts(&state) >= 1
    });
    let run_id = project.run_id();
    wait_for(
        "the next attempt's container",
        Duration::from_secs(30),
        || !project.containers(Some(&run_id)).is_empty(),
    );
    std::thread::sleep(Duration::from_millis(500));
    proxy.stop();
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the run stops promptly"
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("docker daemon unreachable") && stderr.contains("--resume"),
        "{stderr}"
    );
    let attempts = project.attempts();
    let infra: Vec<_> = attempts
        .iter()
        .filter(|a| a.status == AttemptStatus::InfraError)
        .collect();
    assert_eq!(
        infra.len(),
        1,
        "the attempt in flight is recorded as an infra error: {attempts:#?}"
    );
    assert_eq!(
        infra[0].metadata["rerun_on_resume"],
        serde_json::json!(true)
    );
    assert_eq!(
        infra[0].failure.as_ref().unwrap().kind,
        perfarena_core::FailureKind::Infra
    );

    // The daemon is back (the real socket): resume finishes the run and sweeps the orphan.
    let out = project.perfarena(&["run", "--backend", "docker", "--resume"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(project.containers(Some(&run_id)).is_empty());
    let counts = round_counts(&project);
    assert_eq!(counts.len(), 4, "{counts:?}");
    let oks = counts
        .values()
        .filter(|s| s.iter().filter(|x| **x == AttemptStatus::Ok).count() == 1)
        .count();
    assert_eq!(oks, 4, "every round measured exactly once: {counts:?}");
    assert_eq!(
        counts.values().flatten().count(),
        5,
        "4 measured + the one infra error: {counts:?}"
    );
}

#[test]
fn a_full_disk_while_writing_logs_is_a_clear_error_and_the_store_stays_intact() {
    let Some(docker) = docker() else { return };
    let spec = ProjectSpec {
        human_files: vec![("server.sh", "yes 'a line of server output that fills the disk' | head -c 6000000\nexec httpd -f -p 127.0.0.1:$1 -h www\n".into())],
        suite_extra: bench(""),
        state_tmpfs: Some("3m"),
        ..Default::default()
    };
    let project = Project::new(docker, spec);
    let out = project.perfarena(&project.run_args(&["--repeats", "2"]));
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("No space left on device") && stderr.contains("server.log"),
        "{stderr}"
    );
    assert!(stderr.contains("--resume"), "{stderr}");
    // Free the space the log took, then check the store.
    let run_id = project.run_id();
    let human_dir = project.state_dir().join("runs").join(&run_id);
    let mut stack = vec![human_dir];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().unwrap() == "server.log"
                && std::fs::metadata(&path).unwrap().len() > 100_000
            {
                std::fs::remove_file(&path).unwrap();
            }
        }
    }
    let store = Store::open_existing(&project.state_dir()).unwrap();
    let check: String = store
        .connection()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let attempts = project.attempts();
    assert!(
        attempts
            .iter()
            .all(|a| a.status == AttemptStatus::Ok || a.status == AttemptStatus::InfraError),
        "{attempts:#?}"
    );
    assert!(
        attempts
            .iter()
            .filter(|a| a.variant == VariantKind::Human)
            .all(|a| a.status != AttemptStatus::Ok)
    );
    assert!(
        project.containers(Some(&run_id)).is_empty(),
        "the container was removed"
    );
}

#[test]
fn the_orphan_sweep_removes_only_dead_perfarena_containers_of_this_host() {
    let Some(docker) = docker() else { return };
    let project = Project::new(
        docker.clone(),
        ProjectSpec {
            suite_extra: bench(""),
            ..Default::default()
        },
    );
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    let image = project.images[0].clone();
    let make = |labels: &[(&str, &str)]| -> String {
        let rt = runtime();
        rt.block_on(async {
            let body = ContainerCreateBody {
                image: Some(image.clone()),
                cmd: Some(vec!["sleep".into(), "60".into()]),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect::<HashMap<_, _>>(),
                ),
                ..Default::default()
            };
            let name = format!("pa-sweep-{}", docker_support::unique());
            docker
                .create_container(
                    Some(CreateContainerOptionsBuilder::default().name(&name).build()),
                    body,
                )
                .await
                .unwrap()
                .id
        })
    };
    let dead = make(&[
        ("perfarena.run", "old-run"),
        ("perfarena.pid", "999999999"),
        ("perfarena.host", &host),
    ]);
    let foreign = make(&[("com.example.other", "1")]);
    let other_host = make(&[
        ("perfarena.run", "old-run"),
        ("perfarena.pid", "999999999"),
        ("perfarena.host", "some-other-host"),
    ]);
    let out = project.perfarena(&project.run_args(&["--repeats", "1"]));
    let exists = |id: &str| {
        runtime()
            .block_on(docker.inspect_container(id, None))
            .is_ok()
    };
    let (dead_left, foreign_left, other_left) =
        (exists(&dead), exists(&foreign), exists(&other_host));
    for id in [&dead, &foreign, &other_host] {
        let _ = runtime().block_on(docker.remove_container(
            id,
            Some(RemoveContainerOptionsBuilder::default().force(true).build()),
        ));
    }
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !dead_left,
        "a container of a dead perfarena on this host is removed"
    );
    assert!(
        foreign_left,
        "a container without perfarena's labels is never touched"
    );
    assert!(
        other_left,
        "another host's perfarena containers are left to that host"
    );
}

#[test]
fn parallel_runs_tasks_at_once_and_checks_gpu_slots() {
    let Some(docker) = docker() else { return };
    let spec = ProjectSpec {
        suite_extra: slow_bench(""),
        more_tasks: vec![vec![("speed.txt", "300\n".into())]],
        ..Default::default()
    };
    let project = Project::new(docker, spec);
    // Two slots for three workers: refused before anything runs.
    let suite = std::fs::read_to_string(project.dir.join("perfarena.toml")).unwrap();
    std::fs::write(
        project.dir.join("perfarena.toml"),
        format!("{suite}\n[docker]\ngpu_slots = [\"0\", \"1\"]\n"),
    )
    .unwrap();
    let out = project.perfarena(&project.run_args(&["--parallel", "3"]));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--parallel 3 needs 3 GPU slots"),
        "{}",
        text(&out)
    );
    std::fs::write(
        project.dir.join("perfarena.toml"),
        format!("{suite}\n[docker]\ngpus = \"all\"\n"),
    )
    .unwrap();
    let out = project.perfarena(&project.run_args(&["--parallel", "2"]));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("would share GPUs"),
        "{}",
        text(&out)
    );
    std::fs::write(project.dir.join("perfarena.toml"), &suite).unwrap();

    let started = Instant::now();
    let out = project.perfarena(&project.run_args(&["--parallel", "2", "--repeats", "2"]));
    let wall = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "{}", text(&out));
    let attempts = project.attempts();
    assert_eq!(attempts.len(), 8, "{attempts:#?}");
    assert!(
        attempts.iter().all(|a| a.status == AttemptStatus::Ok),
        "{attempts:#?}"
    );
    let busy: f64 = attempts.iter().map(|a| a.duration_s).sum();
    assert!(
        wall < busy * 0.9,
        "two tasks ran at once: wall {wall:.1}s for {busy:.1}s of attempts"
    );
}
