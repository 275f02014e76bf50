//! Snapshots of the batch scripts the slurm backend writes for what cannot run here: GPUs with
//! a GRES type, pyxis/enroot, apptainer, docker with GPUs, and a capped job array of image
//! builds. Paths are fixed (`/shared/...`) so the snapshots need no redaction beyond them.

use std::path::PathBuf;
use std::time::Duration;

use perfarena_backend::slurm::script::{
    AttemptScript, BuildCommand, JobHeader, LaunchTarget, build_script,
};
use perfarena_core::Suite;
use perfarena_core::suite::{ReadinessKind, SlurmLauncher};

/// A vLLM-like attempt on a GPU cluster, with the suite's `[slurm]` table edited by `edit`.
fn script(
    target: LaunchTarget,
    edit: impl FnOnce(&mut perfarena_core::suite::SlurmSection),
) -> String {
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
