//! The slurm backend against real Slurm daemons (`scripts/slurm-env.sh up`: one node on
//! 127.0.0.1 with two fake GPUs as GRES): a job Slurm forgot is submitted once more (and only
//! once; likewise a round job or array task), `--gres=gpu:1` reaches the job, orphaned jobs of dead perfarena processes are swept, and
//! image builds run as a job array with a concurrency cap.
//!
//! Without Slurm these tests fail with what to run, unless PERFARENA_SKIP_SLURM=1.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use perfarena_backend::git::GitRepo;
use perfarena_backend::slurm::builds::{BuildPlan, run_builds};
use perfarena_backend::slurm::{
    JobKey, JobLedger, MemoryLedger, SlurmBackend, SlurmOptions, project_label,
};
use perfarena_backend::{AttemptSpec, Backend, CancelToken, Prepared, ReadinessSpec, RoundSpec};
use perfarena_core::events::{Event, EventSink};
use perfarena_core::suite::{ReadinessKind, SlurmSection};
use perfarena_core::{AttemptStatus, CommitId, RunId, Suite, VariantKind};

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
    let ok = matches!(&out, Ok(o) if o.status.success() && !o.stdout.is_empty());
    assert!(
        ok,
        "slurm does not answer ({out:?}): run `eval \"$(bash scripts/slurm-env.sh up)\"` (or set PERFARENA_SKIP_SLURM=1)"
    );
    true
}

#[derive(Default)]
struct Events(Mutex<Vec<Event>>);

impl EventSink for Events {
    fn emit(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }
}

impl Events {
    fn messages(&self) -> String {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::Message { text } => Some(text.clone()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    workdir: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let workdir = root.join("checkout");
    std::fs::create_dir_all(&workdir).unwrap();
    let status = Command::new("git")
        .args(["init", "-q"])
        .arg(&root)
        .status()
        .unwrap();
    assert!(status.success());
    Fixture {
        _tmp: tmp,
        root,
        workdir,
    }
}

fn settings(edit: impl FnOnce(&mut SlurmSection)) -> SlurmSection {
    let mut settings = Suite::defaults().slurm;
    settings.poll_interval_ms = 200;
    edit(&mut settings);
    settings
}

fn backend(fx: &Fixture, settings: SlurmSection, ledger: Box<dyn JobLedger>) -> SlurmBackend {
    let options = SlurmOptions {
        settings,
        images: Suite::defaults().images,
        source_dir: "/workspace/src".into(),
        repo: Some(GitRepo::open(&fx.root).unwrap()),
        state_dir: fx.root.join(".perfarena"),
        log_root: fx.root.join("shared-logs"),
        secrets: Vec::new(),
        secrets_section: Suite::defaults().secrets,
    };
    SlurmBackend::new(options, ledger).unwrap()
}

fn key(run: &str) -> JobKey {
    JobKey {
        run_id: run.into(),
        task: CommitId::parse("abcdef1234567").unwrap(),
        variant: VariantKind::Baseline,
        round_idx: 0,
    }
}

fn spec(fx: &Fixture, run: &str, client: &str) -> AttemptSpec {
    AttemptSpec {
        run_id: RunId(run.into()),
        task: CommitId::parse("abcdef1234567").unwrap(),
        variant: VariantKind::Baseline,
        round_idx: 0,
        attempt_dir: fx.root.join("attempt"),
        server: None,
        client: client.into(),
        readiness: ReadinessSpec {
            kind: ReadinessKind::None,
            url: String::new(),
            interval: Duration::from_millis(100),
            timeout: Duration::from_secs(10),
        },
        port: 0,
        env: vec![("PA_TEST_VALUE".into(), "it's here".into())],
        timeout: Duration::from_secs(60),
        kill_grace: Duration::from_secs(2),
        cancel: CancelToken::new(),
        gpus: Vec::new(),
    }
}

fn prepared(fx: &Fixture) -> Prepared {
    Prepared {
        variant: VariantKind::Baseline,
        workdir: Some(fx.workdir.clone()),
        image: None,
        rebuild_paths: Vec::new(),
        harness_paths: Vec::new(),
        failure: None,
    }
}

#[test]
fn a_vanished_job_is_submitted_once_more() {
    if !slurm_ready() {
        return;
    }
    let fx = fixture();
    let ledger = MemoryLedger::default();
    // A job id Slurm has never heard of, as if the controller lost the job.
    ledger
        .record(&key("vanish"), "99999001", "submitted")
        .unwrap();
    let backend = backend(&fx, settings(|_| {}), Box::new(ledger));
    let events = Events::default();
    let outcome = backend
        .run(
            &spec(&fx, "vanish", "echo \"value: $PA_TEST_VALUE\"; pwd"),
            &prepared(&fx),
            &events,
        )
        .unwrap();
    assert_eq!(outcome.status, AttemptStatus::Ok, "{outcome:?}");
    let messages = events.messages();
    assert!(
        messages.contains("re-attached to slurm job 99999001"),
        "{messages}"
    );
    assert!(
        messages.contains("vanished without a result; submitting it once more"),
        "{messages}"
    );
    let client = std::fs::read_to_string(&outcome.client_log).unwrap();
    assert!(client.contains("value: it's here"), "{client}");
    assert!(
        client.contains(&fx.workdir.display().to_string()),
        "ran in the checkout: {client}"
    );
    let job_id = std::fs::read_to_string(fx.root.join("attempt/job.id")).unwrap();
    assert_ne!(job_id.trim(), "99999001");
}

#[test]
fn a_job_that_vanishes_twice_is_an_infra_error() {
    if !slurm_ready() {
        return;
    }
    let fx = fixture();
    let ledger = MemoryLedger::default();
    ledger.record(&key("vanish2"), "99999002", "rerun").unwrap();
    let backend = backend(&fx, settings(|_| {}), Box::new(ledger));
    let outcome = backend
        .run(
            &spec(&fx, "vanish2", "true"),
            &prepared(&fx),
            &Events::default(),
        )
        .unwrap();
    assert_eq!(outcome.status, AttemptStatus::InfraError, "{outcome:?}");
    assert!(outcome.message.contains("vanished"), "{}", outcome.message);
}

#[test]
fn a_gpu_request_reaches_the_job() {
    if !slurm_ready() {
        return;
    }
    let fx = fixture();
    let backend = backend(
        &fx,
        settings(|s| s.gpus = 1),
        Box::new(MemoryLedger::default()),
    );
    let outcome = backend
        .run(
            &spec(&fx, "gpu", "echo \"gpus=$CUDA_VISIBLE_DEVICES\""),
            &prepared(&fx),
            &Events::default(),
        )
        .unwrap();
    assert_eq!(outcome.status, AttemptStatus::Ok, "{outcome:?}");
    let script = std::fs::read_to_string(fx.root.join("attempt/job.sh")).unwrap();
    assert!(script.contains("#SBATCH --gres=gpu:1\n"), "{script}");
    let client = std::fs::read_to_string(&outcome.client_log).unwrap();
    assert!(
        client.contains("gpus=0") || client.contains("gpus=1"),
        "the job got a GPU from GRES: {client}"
    );
}

#[test]
fn orphaned_jobs_of_dead_processes_are_swept_and_live_ones_kept() {
    if !slurm_ready() {
        return;
    }
    let fx = fixture();
    let backend = backend(&fx, settings(|_| {}), Box::new(MemoryLedger::default()));
    let project = project_label(&fx.root.join(".perfarena"));
    let host = String::from_utf8(Command::new("hostname").output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_string();
    let submit = |owner_pid: u32, run: &str| {
        let comment = format!(
            "--comment=perfarena.run={run};perfarena.project={project};perfarena.owner={host}:{owner_pid}"
        );
        let out = Command::new("sbatch")
            .args(["--parsable", "--hold", &comment, "--wrap", "sleep 60"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let orphan = submit(999_999_999, "old-run");
    let live = submit(std::process::id(), "this-run");
    let swept = backend.sweep_orphans(&[]).unwrap();
    let queued = String::from_utf8(
        Command::new("squeue")
            .args(["-h", "-o", "%A"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let _ = Command::new("scancel").arg(&live).status();
    assert_eq!(swept, 1);
    assert!(
        !queued.lines().any(|l| l.trim() == orphan),
        "orphan {orphan} still queued"
    );
    assert!(
        queued.lines().any(|l| l.trim() == live),
        "live job {live} was swept"
    );
}

#[test]
fn builds_run_as_a_job_array_with_a_cap() {
    if !slurm_ready() {
        return;
    }
    let fx = fixture();
    let build = |name: &str, script: &str| BuildPlan {
        name: name.into(),
        program: "sh".into(),
        args: vec!["-c".into(), script.into()],
        workdir: fx.workdir.clone(),
        env: vec![("IMAGE_TAG".into(), name.into())],
    };
    let builds = vec![
        build("img:a", "echo building $IMAGE_TAG in $(pwd)"),
        build("img:b", "echo broken >&2; exit 3"),
        build("img:c", "sleep 1; echo done"),
    ];
    let dir = fx.root.join("builds");
    let settings = settings(|s| s.array_limit = 2);
    let outcomes = run_builds(
        &settings,
        &dir,
        &builds,
        Duration::from_secs(120),
        &CancelToken::new(),
        &Events::default(),
    )
    .unwrap();
    let script = std::fs::read_to_string(dir.join("build.sh")).unwrap();
    assert!(script.contains("#SBATCH --array=0-2%2\n"), "{script}");
    assert_eq!(outcomes.len(), 3);
    assert!(outcomes[0].ok && outcomes[2].ok, "{outcomes:#?}");
    assert_eq!(outcomes[0].state, "COMPLETED");
    let log = std::fs::read_to_string(&outcomes[0].log).unwrap();
    assert!(
        log.contains("building img:a in") && log.contains(&fx.workdir.display().to_string()),
        "{log}"
    );
    assert!(!outcomes[1].ok);
    assert_eq!(outcomes[1].exit_code, Some(3));
    assert_eq!(outcomes[1].state, "FAILED");
    assert!(
        outcomes[1].message.contains("code 3: broken"),
        "{}",
        outcomes[1].message
    );
}

/// A round of two attempts (baseline, human), as the runner hands it over.
fn round_specs(fx: &Fixture, run: &str, client: &str) -> Vec<AttemptSpec> {
    [VariantKind::Baseline, VariantKind::Human]
        .into_iter()
        .map(|variant| {
            let mut spec = spec(fx, run, client);
            spec.attempt_dir = fx.root.join(format!("attempt-{}", variant.dir_name()));
            spec.variant = variant;
            spec
        })
        .collect()
}

fn round_key(run: &str, variant: VariantKind) -> JobKey {
    JobKey {
        variant,
        ..key(run)
    }
}

/// Runs a round of two attempts whose ledger rows (both) name `job_id` in `state`, as an
/// earlier perfarena process of the run left them. Returns the specs, each attempt's outcome
/// and the messages.
fn run_recorded_round(
    fx: &Fixture,
    run: &str,
    job_id: &str,
    state: &str,
    client: &str,
) -> (
    Vec<AttemptSpec>,
    Vec<perfarena_backend::AttemptOutcome>,
    String,
) {
    let ledger = MemoryLedger::default();
    for variant in [VariantKind::Baseline, VariantKind::Human] {
        ledger
            .record(&round_key(run, variant), job_id, state)
            .unwrap();
    }
    let backend = backend(fx, settings(|_| {}), Box::new(ledger));
    let events = Events::default();
    let specs = round_specs(fx, run, client);
    let prepared = prepared(fx);
    let round = RoundSpec {
        task: specs[0].task.clone(),
        round_idx: 0,
        attempts: specs.iter().map(|s| (s.clone(), &prepared)).collect(),
    };
    let mut outcomes = backend
        .run_rounds(std::slice::from_ref(&round), &events)
        .unwrap();
    assert_eq!(outcomes.len(), 1);
    let outcomes = outcomes.remove(0).into_iter().map(|o| o.unwrap()).collect();
    (specs, outcomes, events.messages())
}

#[test]
fn a_vanished_array_task_of_a_round_is_submitted_once_more() {
    if !slurm_ready() {
        return;
    }
    let fx = fixture();
    // Both attempts of the round name an array task Slurm has never heard of.
    let (specs, outcomes, messages) = run_recorded_round(
        &fx,
        "rvanish",
        "99999003_1",
        "submitted",
        "echo \"value: $PA_TEST_VALUE\"",
    );
    assert!(
        messages.contains("re-attached to slurm job 99999003_1"),
        "{messages}"
    );
    assert!(
        messages.contains("vanished without a result; submitting it once more"),
        "{messages}"
    );
    let ids: Vec<String> = specs
        .iter()
        .map(|s| std::fs::read_to_string(s.attempt_dir.join("job.id")).unwrap())
        .collect();
    for (outcome, spec) in outcomes.iter().zip(&specs) {
        assert_eq!(outcome.status, AttemptStatus::Ok, "{outcome:?}");
        let client = std::fs::read_to_string(&outcome.client_log).unwrap();
        assert!(client.contains("value: it's here"), "{client}");
        assert!(spec.attempt_dir.join("round.sh").exists());
    }
    assert_eq!(ids[0], ids[1], "one new job for the whole round");
    assert_ne!(ids[0].trim(), "99999003_1");
}

#[test]
fn a_round_whose_job_vanishes_twice_is_an_infra_error_for_each_attempt() {
    if !slurm_ready() {
        return;
    }
    let fx = fixture();
    let (_, outcomes, _) = run_recorded_round(&fx, "rvanish2", "99999004", "rerun", "true");
    assert_eq!(outcomes.len(), 2);
    for outcome in &outcomes {
        assert_eq!(outcome.status, AttemptStatus::InfraError, "{outcome:?}");
        assert!(outcome.message.contains("vanished"), "{}", outcome.message);
    }
}
