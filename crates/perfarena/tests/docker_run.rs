//! The docker backend against the real daemon: attempts in labelled containers with logs,
//! readiness and client timeouts, a server that ignores SIGTERM, an OOM-killed container, a
//! missing image, secrets (given only to allowed variants, redacted everywhere) and candidate
//! isolation (no network, no secret, a harness it cannot change and that is flagged).

mod docker_support;

use std::io::Read;
use std::time::{Duration, Instant};

use docker_support::{Project, ProjectSpec, bench, docker, text};
use perfarena_core::{AttemptStatus, FailureKind, VariantKind};

#[test]
fn attempts_run_in_labelled_containers_and_stream_logs() {
    let Some(docker) = docker() else { return };
    let project = Project::new(
        docker,
        ProjectSpec {
            suite_extra: bench(""),
            ..Default::default()
        },
    );
    let out = project.perfarena(&project.run_args(&["--repeats", "2"]));
    assert!(out.status.success(), "{}", text(&out));
    let attempts = project.attempts();
    assert_eq!(attempts.len(), 4, "{attempts:#?}");
    assert!(
        attempts
            .iter()
            .all(|a| a.status == AttemptStatus::Ok && a.backend == "docker"),
        "{attempts:#?}"
    );
    let tput = |v: VariantKind| {
        attempts
            .iter()
            .filter(|a| a.variant == v)
            .map(|a| a.sample("tput").unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(tput(VariantKind::Baseline), vec![100.0, 100.0]);
    assert_eq!(tput(VariantKind::Human), vec![200.0, 200.0]);
    let first = &attempts[0];
    assert!(
        first
            .image
            .as_deref()
            .unwrap()
            .starts_with(&format!("perfarena-test/{}:", project.image_repo))
    );
    assert!(first.metadata["ready_after_s"].as_f64().is_some());
    let dir = project.state_dir().join(first.log_dir.as_ref().unwrap());
    let server = std::fs::read_to_string(dir.join("server.log")).unwrap();
    assert!(server.contains("server starting on"), "{server}");
    let client = std::fs::read_to_string(dir.join("client.log")).unwrap();
    assert!(client.contains("throughput:"), "{client}");
    assert!(
        project
            .containers(Some(first.run_id.as_deref().unwrap()))
            .is_empty(),
        "containers are removed after each attempt"
    );
    // `perfarena logs` shows them.
    let logs = project.perfarena(&["logs", &project.commit[..10], "human", "1"]);
    assert!(logs.status.success(), "{}", text(&logs));
    let shown = String::from_utf8_lossy(&logs.stdout);
    assert!(
        shown.contains("server.log") && shown.contains("throughput: 200 tok/s"),
        "{shown}"
    );
}

#[test]
fn a_server_that_never_gets_ready_times_out() {
    let Some(docker) = docker() else { return };
    let spec = ProjectSpec {
        parent_files: vec![(
            "server.sh",
            "echo loading forever\nexec sleep 1000\n".into(),
        )],
        human_files: vec![("speed.txt", "150\n".into())],
        suite_extra: bench("").replace("timeout_s = 20", "timeout_s = 3"),
        ..Default::default()
    };
    let project = Project::new(docker, spec);
    let started = Instant::now();
    let out = project.perfarena(&project.run_args(&["--repeats", "1"]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "took {:?}",
        started.elapsed()
    );
    for attempt in project.attempts() {
        assert_eq!(attempt.status, AttemptStatus::Timeout, "{attempt:#?}");
        assert!(
            attempt.message.contains("readiness timeout"),
            "{}",
            attempt.message
        );
        assert_eq!(
            attempt.failure.as_ref().unwrap().signature,
            "readiness-timeout"
        );
        assert!(
            attempt.duration_s < 15.0,
            "readiness is bounded: {}",
            attempt.duration_s
        );
    }
    let run = project.attempts()[0].run_id.clone().unwrap();
    assert!(project.containers(Some(&run)).is_empty());
}

#[test]
fn a_hanging_client_times_out_and_the_container_goes() {
    let Some(docker) = docker() else { return };
    let spec = ProjectSpec {
        suite_extra: bench("")
            .replace(
                "client = \"sh benchmarks/bench.sh {port}\"",
                "client = \"echo client hangs; sleep 1000\"",
            )
            .replace("timeout_s = 60", "timeout_s = 4"),
        ..Default::default()
    };
    let project = Project::new(docker, spec);
    let out = project.perfarena(&project.run_args(&["--repeats", "1"]));
    assert!(out.status.success(), "{}", text(&out));
    let attempts = project.attempts();
    assert_eq!(attempts.len(), 2);
    for attempt in &attempts {
        assert_eq!(attempt.status, AttemptStatus::Timeout, "{attempt:#?}");
        assert!(
            attempt.message.contains("while the client was running"),
            "{}",
            attempt.message
        );
        assert!(attempt.duration_s < 15.0, "{}", attempt.duration_s);
    }
    assert!(
        project
            .containers(Some(attempts[0].run_id.as_deref().unwrap()))
            .is_empty()
    );
}

#[test]
fn a_container_ignoring_sigterm_is_killed_after_the_grace_period() {
    let Some(docker) = docker() else { return };
    let spec = ProjectSpec {
        parent_files: vec![(
            "server.sh",
            "trap '' TERM\nhttpd -f -p 127.0.0.1:$1 -h www &\nwhile :; do wait; sleep 1; done\n"
                .into(),
        )],
        suite_extra: bench(""),
        ..Default::default()
    };
    let project = Project::new(docker, spec);
    let out =
        project.perfarena(&project.run_args(&["--repeats", "1", "--tasks", &project.commit[..10]]));
    assert!(out.status.success(), "{}", text(&out));
    let attempts = project.attempts();
    let baseline = attempts
        .iter()
        .find(|a| a.variant == VariantKind::Baseline)
        .unwrap();
    assert_eq!(baseline.status, AttemptStatus::Ok, "{baseline:#?}");
    assert!(
        baseline
            .message
            .contains("did not stop on SIGTERM and was killed after the 2s grace period"),
        "{}",
        baseline.message
    );
    assert!(baseline.duration_s >= 2.0, "{}", baseline.duration_s);
    assert!(
        project
            .containers(Some(baseline.run_id.as_deref().unwrap()))
            .is_empty()
    );
}

#[test]
fn an_oom_killed_container_is_a_resource_failure() {
    let Some(docker) = docker() else { return };
    let spec = ProjectSpec {
        human_files: vec![(
            "server.sh",
            "echo allocating\nx=$(head -c 400000000 /dev/zero | tr '\\0' a)\necho never here\n"
                .into(),
        )],
        suite_extra: format!("{}\n[docker]\nmemory = \"48m\"\n", bench("")),
        ..Default::default()
    };
    let project = Project::new(docker, spec);
    let out = project.perfarena(&project.run_args(&["--repeats", "1"]));
    assert!(out.status.success(), "{}", text(&out));
    let attempts = project.attempts();
    let baseline = attempts
        .iter()
        .find(|a| a.variant == VariantKind::Baseline)
        .unwrap();
    assert_eq!(
        baseline.status,
        AttemptStatus::Ok,
        "the limit leaves a normal server alone: {baseline:#?}"
    );
    let human = attempts
        .iter()
        .find(|a| a.variant == VariantKind::Human)
        .unwrap();
    assert_eq!(human.status, AttemptStatus::Crashed, "{human:#?}");
    assert_eq!(
        human.metadata["oom_killed"],
        serde_json::json!(true),
        "{human:#?}"
    );
    assert!(human.message.contains("OOMKilled"), "{}", human.message);
    let failure = human.failure.as_ref().unwrap();
    assert_eq!(
        (failure.kind, failure.signature.as_str()),
        (FailureKind::Resource, "host-oom"),
        "{failure:?}"
    );
    let triage = project.perfarena(&["triage"]);
    let shown = String::from_utf8_lossy(&triage.stdout);
    assert!(shown.contains("resource `host-oom`"), "{shown}");
}

#[test]
fn a_missing_image_is_recorded_and_never_pulled() {
    let Some(docker) = docker() else { return };
    let project = Project::new(
        docker,
        ProjectSpec {
            suite_extra: bench(""),
            skip_images: vec!["human"],
            ..Default::default()
        },
    );
    let out = project.perfarena(&project.run_args(&["--repeats", "2"]));
    assert!(out.status.success(), "{}", text(&out));
    let attempts = project.attempts();
    let human: Vec<_> = attempts
        .iter()
        .filter(|a| a.variant == VariantKind::Human)
        .collect();
    assert_eq!(
        human.len(),
        1,
        "a missing image is recorded once: {human:#?}"
    );
    assert_eq!(human[0].status, AttemptStatus::MissingImage);
    assert!(
        human[0].message.contains("never pulls"),
        "{}",
        human[0].message
    );
    assert_eq!(human[0].failure.as_ref().unwrap().kind, FailureKind::Infra);
    assert_eq!(
        attempts
            .iter()
            .filter(|a| a.variant == VariantKind::Baseline && a.status == AttemptStatus::Ok)
            .count(),
        2
    );
}

const SECRET: &str = "hf_perfarenaTestSecret_42";

#[test]
fn secrets_reach_allowed_variants_only_and_never_the_disk() {
    let Some(docker) = docker() else { return };
    let printer = "echo \"token=$PA_TOKEN\"\necho \"again:${PA_TOKEN}:end\" >&2\nexec httpd -f -p 127.0.0.1:$1 -h www\n";
    let spec = ProjectSpec {
        parent_files: vec![("server.sh", printer.into())],
        candidates: vec![("agent", vec![("speed.txt", "120\n".into())])],
        suite_extra: format!(
            "{}\n[secrets]\nallow = [\"baseline\", \"human\"]\n[secrets.vars]\nPA_TOKEN = {{ env = \"PA_TEST_SECRET_SOURCE\" }}\n",
            bench("")
        ),
        ..Default::default()
    };
    let project = Project::new(docker, spec);
    let mut args = project.run_args(&["--repeats", "1", "--json"]);
    args.insert(0, "-C".into());
    args.insert(1, project.dir.display().to_string());
    let out = docker_support::bin()
        .args(&args)
        .env("PA_TEST_SECRET_SOURCE", SECRET)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(SECRET),
        "the event stream is redacted"
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains(SECRET));
    let attempts = project.attempts();
    assert_eq!(attempts.len(), 3);
    for attempt in &attempts {
        assert_eq!(attempt.status, AttemptStatus::Ok, "{attempt:#?}");
        let server = std::fs::read_to_string(
            project
                .state_dir()
                .join(attempt.log_dir.as_ref().unwrap())
                .join("server.log"),
        )
        .unwrap();
        assert!(!server.contains(SECRET), "{server}");
        if attempt.variant.candidate().is_some() {
            assert!(
                server.contains("token=\n") && server.contains("again::end"),
                "a candidate gets no secret: {server}"
            );
        } else {
            assert!(
                server.contains("token=[redacted:PA_TOKEN]")
                    && server.contains("again:[redacted:PA_TOKEN]:end"),
                "{server}"
            );
        }
    }
    // Nothing under the state dir (store, logs, harness copies) holds it.
    let mut stack = vec![project.state_dir()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            let mut bytes = Vec::new();
            std::fs::File::open(&path)
                .unwrap()
                .read_to_end(&mut bytes)
                .unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(SECRET),
                "{} holds the secret",
                path.display()
            );
        }
    }
    for args in [vec!["report", "--format", "json"], vec!["triage", "--json"]] {
        let out = project.perfarena(&args);
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains(SECRET),
            "{args:?}"
        );
    }
}

#[test]
fn candidates_get_no_network_cannot_change_the_harness_and_are_flagged() {
    let Some(docker) = docker() else { return };
    // A listener on the host's loopback: with `--network host` the baseline reaches it; a
    // candidate on `--network none` must not.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let reached = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = reached.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf);
            let _ = std::io::Write::write_all(
                &mut stream,
                b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
            );
        }
    });
    let reach = "if timeout 3 wget -q -O /dev/null http://127.0.0.1:$PA_HOST_PORT/; then echo NET_OK; else echo NET_BLOCKED; fi\n";
    let spec = ProjectSpec {
        parent_files: vec![("server.sh", format!("{reach}exec httpd -f -p 127.0.0.1:$1 -h www\n"))],
        candidates: vec![
            // Needs the network: fails where it has none.
            ("netty", vec![("server.sh", format!("{reach}timeout 3 wget -q -O /dev/null http://127.0.0.1:$PA_HOST_PORT/ || {{ echo 'error: network unreachable' >&2; exit 3; }}\nexec httpd -f -p 127.0.0.1:$1 -h www\n"))]),
            // Rewrites the harness in its patch (flagged; the fixed harness is mounted over it)
            // and at run time (read-only).
            (
                "cheat",
                vec![
                    ("benchmarks/bench.sh", "echo \"throughput: 99999 tok/s\"\n".into()),
                    ("server.sh", "echo 'echo \"throughput: 88888 tok/s\"' > benchmarks/bench.sh && echo HARNESS_WRITTEN || echo HARNESS_READ_ONLY\nexec httpd -f -p 127.0.0.1:$1 -h www\n".into()),
                ],
            ),
        ],
        suite_extra: format!("{}\n[docker.env]\nPA_HOST_PORT = \"{port}\"\n[docker.network]\nbaseline = \"host\"\nhuman = \"host\"\n", bench("")),
        ..Default::default()
    };
    let project = Project::new(docker, spec);
    let out = project.perfarena(&project.run_args(&["--repeats", "1"]));
    assert!(out.status.success(), "{}", text(&out));
    let attempts = project.attempts();
    let of = |name: &str| {
        attempts
            .iter()
            .find(|a| a.variant.to_string() == name)
            .unwrap_or_else(|| panic!("{name}: {attempts:#?}"))
    };
    let log = |name: &str| {
        std::fs::read_to_string(
            project
                .state_dir()
                .join(of(name).log_dir.as_ref().unwrap())
                .join("server.log"),
        )
        .unwrap()
    };
    assert!(log("baseline").contains("NET_OK"), "{}", log("baseline"));
    assert_eq!(
        reached.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "only baseline and human (network host) reached the host"
    );
    let netty = of("candidate:netty");
    assert_eq!(netty.status, AttemptStatus::Crashed, "{netty:#?}");
    assert!(log("candidate:netty").contains("NET_BLOCKED"));
    assert_eq!(netty.failure.as_ref().unwrap().kind, FailureKind::Candidate);
    let cheat = of("candidate:cheat");
    assert_eq!(cheat.status, AttemptStatus::Ok, "{cheat:#?}");
    assert_eq!(
        cheat.sample("tput"),
        Some(100.0),
        "measured by the baseline's harness, not the patched one"
    );
    assert!(
        log("candidate:cheat").contains("HARNESS_READ_ONLY"),
        "{}",
        log("candidate:cheat")
    );
    assert_eq!(
        cheat.metadata["harness_paths"],
        serde_json::json!(["benchmarks/bench.sh"])
    );
    let triage = project.perfarena(&["triage"]);
    let shown = String::from_utf8_lossy(&triage.stdout);
    assert!(
        shown.contains(
            "candidate:cheat: patch touches the benchmark harness (benchmarks/bench.sh): flagged"
        ),
        "{shown}"
    );
    assert!(
        shown.contains("candidate:netty: candidate_broke_it"),
        "{shown}"
    );
}
