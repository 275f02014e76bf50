//! `perfarena images status|build`: which images of the tasks exist (local engine, registry),
//! and building the missing ones (retry ladder, candidates on their baseline, push).

mod build;
mod build_slurm;
mod progress_file;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;

use perfarena_backend::images::auth::CredentialSource;
use perfarena_backend::images::plan::{CandidatePatch, VariantFilter};
use perfarena_backend::images::registry::RegistryClient;
use perfarena_core::{Suite, Task};

use crate::context::Ctx;

#[derive(clap::Subcommand, Debug)]
pub enum ImagesCommand {
    /// For every task, the expected images and whether the local engine and the registry have them.
    Status(StatusArgs),
    /// Build the missing images (human, baseline, candidates), push them and record each try.
    Build(BuildArgs),
    /// Record what registry repositories hold from files (`tags/list` JSON or a list of refs),
    /// for `status` and `analyze` without a live registry.
    Import(super::import_images::ImportArgs),
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// The registry to check (default: the suite's images.registry); `http://` for a registry
    /// without TLS (loopback ones always are).
    #[arg(long)]
    pub registry: Option<String>,
    /// Candidate patches, NAME=PATCH (a file for every task, or a directory of
    /// `<commit>.patch` files); those of recorded runs and builds are shown too.
    #[arg(long = "candidates", num_args = 1..)]
    pub candidates: Vec<String>,
    /// Print JSON (stable schema, `version` field) instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Ask no engine and no registry: use what `images import` (and earlier checks) recorded.
    #[arg(long)]
    pub offline: bool,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum VariantArg {
    Baseline,
    Human,
    Candidates,
}

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// Build the images of every task.
    #[arg(long, conflicts_with = "commits")]
    pub all: bool,
    /// Build the images of these tasks (commit prefixes).
    #[arg(long = "commit", num_args = 1..)]
    pub commits: Vec<String>,
    /// Only this variant (default: human, then baseline, then candidates).
    #[arg(long, value_enum)]
    pub variant: Option<VariantArg>,
    /// Print the plan (images, order, args) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not push to the registry.
    #[arg(long)]
    pub no_push: bool,
    /// max_jobs of the first try (over the suite and its overrides); the ladder halves it.
    #[arg(long)]
    pub max_jobs: Option<u32>,
    /// Images built at the same time (within a phase: humans, baselines, candidates).
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Keep a JSON file with the live state of every image.
    #[arg(long)]
    pub progress_json: Option<PathBuf>,
    /// Candidate patches, NAME=PATCH: a patch file for every task, or a directory of
    /// `<commit>.patch` files.
    #[arg(long = "candidates", num_args = 1..)]
    pub candidates: Vec<String>,
    /// Print the outcome of every image as JSON.
    #[arg(long)]
    pub json: bool,
    /// Where builds run: `local` (this host's engine) or `slurm` (a job array with a task per
    /// commit, at most slurm.array_limit at once; docs/slurm.md).
    #[arg(long, default_value = "local", value_parser = ["local", "slurm"])]
    pub backend: String,
}

pub fn run(ctx: &Ctx, command: &ImagesCommand) -> Result<ExitCode> {
    match command {
        ImagesCommand::Status(args) => status::run(ctx, args),
        ImagesCommand::Build(args) => build::run(ctx, args),
        ImagesCommand::Import(args) => super::import_images::run(ctx, args),
    }
}

impl VariantArg {
    fn filter(arg: Option<VariantArg>) -> VariantFilter {
        match arg {
            None => VariantFilter::All,
            Some(VariantArg::Baseline) => VariantFilter::Baseline,
            Some(VariantArg::Human) => VariantFilter::Human,
            Some(VariantArg::Candidates) => VariantFilter::Candidates,
        }
    }
}

/// `--registry`: `host:port` or `http(s)://host:port`. Returns the registry for image names and
/// the hosts to speak plain HTTP to.
fn registry_override(suite: &mut Suite, registry: Option<&str>) -> Vec<String> {
    let Some(registry) = registry else {
        return Vec::new();
    };
    let (plain, host) = match registry.split_once("://") {
        Some((scheme, host)) => (scheme.eq_ignore_ascii_case("http"), host),
        None => (false, registry),
    };
    let host = host.trim_end_matches('/').to_string();
    suite.images.registry = host.clone();
    if plain { vec![host] } else { Vec::new() }
}

fn registry_client(insecure: Vec<String>) -> RegistryClient {
    RegistryClient::new(
        CredentialSource::from_environment(),
        insecure,
        Duration::from_secs(10),
    )
}

/// Reads `NAME=PATH` candidate arguments without touching the store.
fn read_candidates(args: &[String], tasks: &[Task]) -> Result<Vec<CandidatePatch>> {
    Ok(
        perfarena_runner::candidates::read_candidate_args(args, tasks)?
            .into_iter()
            .map(|(task, name, text)| CandidatePatch::new(task, name, text))
            .collect(),
    )
}
