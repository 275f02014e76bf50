//! Snapshots of the batch scripts the slurm backend writes for what cannot run here: GPUs with
//! a GRES type, pyxis/enroot, apptainer, docker with GPUs, and a capped job array of image
//! builds. Paths are fixed (`/shared/...`) so the snapshots need no redaction beyond them.

use std::path::PathBuf;
use std::time::Duration;

use perfarena_backend::slurm::script::{
    AttemptScript, BuildCommand, JobHeader, LaunchTarget, build_script, round_array_script,
    round_script,
};
use perfarena_core::Suite;
use perfarena_core::suite::{ReadinessKind, SlurmLauncher};

/// A vLLM-like attempt on a GPU cluster, with the suite's `[slurm]` table edited by `edit`.
fn script(
    target: LaunchTarget,
    edit: impl FnOnce(&mut perfarena_core::suite::SlurmSection),
) -> String {
    script_with(target, edit, true)
}

/// `script`, the suite having one secret (HF_TOKEN) that this variant gets (`allowed`) or not.
fn script_with(
    target: LaunchTarget,
    edit: impl FnOnce(&mut perfarena_core::suite::SlurmSection),
    allowed: bool,
) -> String {
    let secrets: Vec<String> = vec!["HF_TOKEN".into()];
    let mut settings = Suite::defaults().slurm;
    settings.partition = "gpu".into();
    settings.account = "perf-team".into();
    settings.gpus = 1;
    settings.gpu_type = "h100".into();
    settings.cpus = 16;
    settings.mem = "128G".into();
    settings.mounts = vec!["/shared/hf-cache:/root/.cache/huggingface".into()];
    settings.prologue = "module load cuda/12.4".into();
    edit(&mut settings);
    let job_root = PathBuf::from(
        "/shared/perfarena/slurm/r20260101-000000-abcd/35fad35a485e/baseline/round-0",
    );
    let header = JobHeader::from_settings(
        &settings,
        "pa-35fad35a485e-baseline-r0".into(),
        job_root.join("slurm-%j.out"),
        Duration::from_secs(1020),
    );
    AttemptScript {
        header,
        about: vec!["perfarena attempt: run r20260101-000000-abcd, task 35fad35a485e, variant baseline, round 0".into()],
        target,
        job_root,
        server: Some("vllm serve meta-llama/Llama-3.1-8B-Instruct --port 8123 --gpu-memory-utilization 0.9".into()),
        client: "python3 benchmarks/benchmark_serving.py --backend vllm --model meta-llama/Llama-3.1-8B-Instruct --port 8123 --dataset-name random --num-prompts 200".into(),
        readiness: ReadinessKind::Http,
        readiness_url: "http://127.0.0.1:8123/health".into(),
        readiness_interval: Duration::from_millis(500),
        readiness_timeout: Duration::from_secs(600),
        port: 8123,
        timeout: Duration::from_secs(900),
        kill_grace: Duration::from_secs(30),
        env: vec![("HF_HOME".into(), "/root/.cache/huggingface".into()), ("VLLM_USE_V1".into(), "1".into())],
        labels: vec![
            ("perfarena.run".into(), "r20260101-000000-abcd".into()),
            ("perfarena.task".into(), "35fad35a485e".into()),
            ("perfarena.variant".into(), "baseline".into()),
        ],
        gpus: settings.gpus,
        mounts: settings.mounts.clone(),
        launcher_args: settings.launcher_args.clone(),
        prologue: settings.prologue.clone(),
        secrets: if allowed { secrets.clone() } else { Vec::new() },
        withheld: if allowed { Vec::new() } else { secrets },
    }
    .render()
}

fn container(launcher: SlurmLauncher) -> LaunchTarget {
    LaunchTarget::Container {
        launcher,
        image: "registry.example.com:5000/vllm:baseline-733e7c9e95f5".into(),
        mount: None,
        workdir: "/workspace/src".into(),
    }
}

#[test]
fn plain_launcher_with_a_typed_gpu() {
    let text = script(
        LaunchTarget::Plain {
            workdir: "/shared/perfarena/work/r1/35fad35a485e/baseline".into(),
        },
        |s| {
            s.sbatch_args = vec!["--exclusive".into()];
            s.time_limit = "45".into();
        },
    );
    assert!(text.contains("#SBATCH --gres=gpu:h100:1\n") && text.contains("#SBATCH --time=45\n"));
    insta::assert_snapshot!("slurm_plain_gpu", text);
}

#[test]
fn pyxis_launcher() {
    let text = script(container(SlurmLauncher::Pyxis), |s| {
        s.launcher = SlurmLauncher::Pyxis
    });
    assert!(text.contains("--container-image=\"$PA_IMAGE\""));
    assert!(text.contains("PA_IMAGE='registry.example.com:5000#vllm:baseline-733e7c9e95f5'"));
    insta::assert_snapshot!("slurm_pyxis", text);
}

#[test]
fn apptainer_launcher() {
    let text = script(container(SlurmLauncher::Apptainer), |s| {
        s.launcher = SlurmLauncher::Apptainer
    });
    assert!(text.contains("apptainer exec --nv"));
    assert!(
        text.contains("PA_IMAGE=docker://registry.example.com:5000/vllm:baseline-733e7c9e95f5")
    );
    insta::assert_snapshot!("slurm_apptainer", text);
}

#[test]
fn docker_launcher_with_gpus_and_a_mounted_checkout() {
    let target = LaunchTarget::Container {
        launcher: SlurmLauncher::Docker,
        image: "vllm/vllm-openai:v0.6.3".into(),
        mount: Some((
            "/shared/perfarena/work/r1/35fad35a485e/baseline".into(),
            "/workspace/src".into(),
        )),
        workdir: "/workspace/src".into(),
    };
    let text = script(target, |s| {
        s.launcher = SlurmLauncher::Docker;
        s.launcher_args = vec!["--shm-size".into(), "16g".into()];
    });
    assert!(text.contains("--gpus \"\\\"device=${SLURM_JOB_GPUS"));
    insta::assert_snapshot!("slurm_docker_gpu", text);
}

#[test]
fn image_builds_as_a_capped_job_array() {
    let mut settings = Suite::defaults().slurm;
    settings.partition = "build".into();
    settings.cpus = 32;
    settings.mem = "256G".into();
    settings.array_limit = 3;
    let dir = PathBuf::from("/shared/perfarena/builds/b1");
    let mut header = JobHeader::from_settings(
        &settings,
        "pa-build".into(),
        dir.join("slurm-%A_%a.out"),
        Duration::from_secs(7200),
    );
    header.array = Some(format!("0-1%{}", settings.array_limit));
    let build = |image: &str, commit: &str| BuildCommand {
        name: image.into(),
        program: "/shared/bin/perfarena".into(),
        args: vec![
            "-C".into(),
            "/shared/project".into(),
            "images".into(),
            "build".into(),
            "--commit".into(),
            commit.into(),
        ],
        workdir: "/shared/project".into(),
        env: vec![("DOCKER_BUILDKIT".into(), "1".into())],
    };
    let text = build_script(
        &header,
        &dir,
        &[
            build(
                "reg:5000/vllm:35fad35a485e",
                "35fad35a485eac9195c510731ba4a9d297dfd963",
            ),
            build(
                "reg:5000/vllm:8c1e77fb585c",
                "8c1e77fb585c4f0e7a1f8b9d3e2c6a5b4d3c2b1a",
            ),
        ],
        "",
    );
    assert!(text.contains("#SBATCH --array=0-1%3\n"));
    insta::assert_snapshot!("slurm_build_array", text);
}

#[test]
fn a_round_as_one_job_and_rounds_as_a_capped_array() {
    let mut settings = Suite::defaults().slurm;
    settings.partition = "gpu".into();
    settings.gpus = 1;
    settings.array_limit = 8;
    let task_dir = PathBuf::from("/shared/perfarena/slurm/r1/35fad35a485e");
    let header = JobHeader::from_settings(
        &settings,
        "pa-35fad35a485e-r2".into(),
        task_dir.join("round-2/slurm-%j.out"),
        Duration::from_secs(3 * 1020),
    );
    let round = round_script(
        &header,
        &["perfarena round: run r1, task 35fad35a485e, round 2".into()],
        &[
            ("human".into(), task_dir.join("human/round-2/job.sh")),
            ("baseline".into(), task_dir.join("baseline/round-2/job.sh")),
            (
                "candidate:agent-a".into(),
                task_dir.join("candidate-agent-a/round-2/job.sh"),
            ),
        ],
    );
    // Three attempts' limits, one after the other.
    assert!(round.contains("#SBATCH --time=0:51:00\n"), "{round}");
    assert!(round.contains("#SBATCH --gres=gpu:1\n"), "{round}");
    let order: Vec<&str> = round
        .lines()
        .filter(|l| l.starts_with("pa_attempt "))
        .collect();
    assert_eq!(order.len(), 3, "{round}");
    assert!(order[0].contains("human") && order[2].contains("candidate:agent-a"));
    insta::assert_snapshot!("slurm_round", round);

    let mut header = JobHeader::from_settings(
        &settings,
        "pa-rounds-r2".into(),
        PathBuf::from("/shared/perfarena/slurm/r1/arrays/slurm-%A_%a.out"),
        Duration::from_secs(3 * 1020),
    );
    header.array = Some(format!("0-1%{}", settings.array_limit));
    let array = round_array_script(
        &header,
        &["perfarena rounds: run r1, round 2, 2 tasks".into()],
        &[
            task_dir.join("round-2/round.sh"),
            PathBuf::from("/shared/perfarena/slurm/r1/8c1e77fb585c/round-2/round.sh"),
        ],
    );
    assert!(array.contains("#SBATCH --array=0-1%8\n"), "{array}");
    insta::assert_snapshot!("slurm_round_array", array);
}

/// The round script really sequences its attempts, passes PA_JOB_TAG, and on SIGTERM stops the
/// attempt in flight and starts no other.
#[test]
fn the_round_script_runs_attempts_in_order_and_stops_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let attempt = |name: &str, body: &str| {
        let path = dir.join(format!("{name}.sh"));
        std::fs::write(&path, body).unwrap();
        (name.to_string(), path)
    };
    let log = dir.join("log");
    let log_text = log.display().to_string();
    let header = JobHeader::from_settings(
        &Suite::defaults().slurm,
        "pa-test".into(),
        dir.join("out"),
        Duration::from_secs(60),
    );
    let attempts = vec![
        attempt(
            "first",
            &format!("echo \"first $PA_JOB_TAG\" >> {log_text}\n"),
        ),
        attempt(
            "second",
            &format!(
                "trap 'echo second-term >> {log_text}; exit 143' TERM\necho second >> {log_text}\nsleep 30 & wait\n"
            ),
        ),
        attempt("third", &format!("echo third >> {log_text}\n")),
    ];
    let script = dir.join("round.sh");
    std::fs::write(&script, round_script(&header, &[], &attempts)).unwrap();
    let mut child = std::process::Command::new("sh")
        .arg(&script)
        .env("SLURM_JOB_ID", "4242")
        .env_remove("SLURM_ARRAY_JOB_ID")
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("second")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "second attempt never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: signals the shell we spawned, by its pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text, "first 4242\nsecond\nsecond-term\n");
}

/// Secrets reach the job through sbatch's environment: the script names them, never holds them;
/// a variant `secrets.allow` leaves out has them unset before anything runs.
#[test]
fn secrets_are_named_not_written_and_withheld_from_other_variants() {
    let allowed = script_with(container(SlurmLauncher::Docker), |_| {}, true);
    assert!(allowed.contains(" -e HF_TOKEN"), "{allowed}");
    assert!(!allowed.contains("unset HF_TOKEN"), "{allowed}");
    let withheld = script_with(container(SlurmLauncher::Docker), |_| {}, false);
    assert!(withheld.contains("\nunset HF_TOKEN\n"), "{withheld}");
    assert!(!withheld.contains(" -e HF_TOKEN"), "{withheld}");
}
