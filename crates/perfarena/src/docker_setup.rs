//! Wires the suite's `[docker]` and `[secrets]` sections to the docker backend: resolves
//! secrets and the harness source, then connects (an unreachable daemon is an error here,
//! before a run is created).

use anyhow::{Result, bail};

use perfarena_backend::docker::{DockerBackend, DockerSettings, HarnessSource, resolve_secrets};
use perfarena_backend::git::GitRepo;
use perfarena_core::Suite;
use perfarena_core::suite_docker::HarnessFrom;

use crate::context::Ctx;

/// The docker backend for this project and suite.
pub fn docker_backend(ctx: &Ctx, suite: &Suite, repo: Option<GitRepo>) -> Result<DockerBackend> {
    let suite_dir = ctx.suite_dir();
    let harness = match suite.docker.harness_from() {
        HarnessFrom::Image => HarnessSource::Image,
        HarnessFrom::Dir(dir) => HarnessSource::Dir(suite_dir.join(dir)),
        HarnessFrom::Baseline => match repo {
            Some(repo) => HarnessSource::Baseline(repo),
            None => bail!(
                "{}: docker.harness_from = \"baseline\" takes the benchmark harness from the task's parent revision, which needs repo.path; set repo.path, or docker.harness_from = \"dir\" (with harness_dir) or \"image\"",
                ctx.suite_path.display()
            ),
        },
    };
    let secrets = resolve_secrets(&suite.secrets, &suite_dir)
        .map_err(|e| anyhow::anyhow!("{}: {e}", ctx.suite_path.display()))?;
    let settings = DockerSettings {
        section: suite.docker.clone(),
        source_dir: suite.repo.source_dir.clone(),
        secrets,
        secrets_section: suite.secrets.clone(),
        harness,
        harness_globs: suite.bench.harness_globs.clone(),
        state_dir: ctx.state_dir.clone(),
    };
    Ok(DockerBackend::connect(settings)?)
}
