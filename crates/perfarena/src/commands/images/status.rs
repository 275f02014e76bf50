//! `perfarena images status`: every task's expected images, where they are (local engine,
//! registry), the last build of each, a category per task, and the counts of an executive
//! summary — the status report teams used to write by hand.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

use perfarena_backend::images::Availability;
use perfarena_backend::images::engine::Engine;
use perfarena_backend::images::reference::ImageName;
use perfarena_backend::images::registry::RegistryClient;
use perfarena_core::availability::ImageIndex;
use perfarena_core::images::image_ref;
use perfarena_core::{Suite, Task, VariantKind};

use super::{StatusArgs, read_candidates, registry_client, registry_override};
use crate::context::{Ctx, now};
use perfarena_store::{ImageRow, LastBuild};

pub const STATUS_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct ImageState {
    pub image: String,
    /// `present`, `missing` or `unknown` (no engine to ask).
    pub local: String,
    /// `present`, `missing` or `unknown` (the registry did not answer, or refused us).
    pub registry: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// `permanently_failed` reason from the suite's build overrides.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permanently_failed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_build: Option<LastBuild>,
}

impl ImageState {
    /// `present` if either place has it, `missing` if both say so (or the registry does and the
    /// local engine was not asked, as with `--offline`), else `unknown`.
    pub fn availability(&self) -> &'static str {
        if self.local == "present" || self.registry == "present" {
            "present"
        } else if self.registry == "missing"
            && (self.local == "missing"
                || self
                    .registry_reason
                    .as_deref()
                    .is_some_and(|r| r.starts_with(OFFLINE)))
        {
            "missing"
        } else {
            "unknown"
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CandidateState {
    pub name: String,
    #[serde(flatten)]
    pub state: ImageState,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskState {
    pub commit: String,
    pub parent: Option<String>,
    pub subject: Option<String>,
    /// `complete`, `candidates_missing`, `human_only`, `baseline_only`, `missing_images`,
    /// `permanently_failed` or `unknown` (a place could not be asked).
    pub category: String,
    pub human: ImageState,
    pub baseline: Option<ImageState>,
    pub candidates: Vec<CandidateState>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub tasks: usize,
    pub unique_parents: usize,
    pub baselines_existing: usize,
    pub baselines_missing: usize,
    pub baselines_unknown: usize,
    pub humans_existing: usize,
    pub humans_missing: usize,
    pub humans_unknown: usize,
    pub candidates_existing: usize,
    pub candidates_missing: usize,
    pub candidates_unknown: usize,
    pub permanently_failed: usize,
    pub categories: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub version: u32,
    pub registry: String,
    pub checked_at: String,
    /// Why the local engine could not be asked (then every `local` is `unknown`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine_error: Option<String>,
    pub tasks: Vec<TaskState>,
    pub summary: Summary,
}

pub fn run(ctx: &Ctx, args: &StatusArgs) -> Result<ExitCode> {
    let mut suite = ctx.suite()?;
    let insecure = registry_override(&mut suite, args.registry.as_deref());
    let store = ctx.store()?;
    let tasks = store.tasks()?;
    if tasks.is_empty() {
        bail!("no tasks in the store: import some with `perfarena tasks import FILE`");
    }
    // Candidates: given here, planned by recorded runs, or built before.
    let mut candidates: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut add = |task: &str, name: String, image: String| {
        let list = candidates.entry(task.to_string()).or_default();
        if !list.iter().any(|(_, i)| *i == image) {
            list.push((name, image));
        }
    };
    for cand in read_candidates(&args.candidates, &tasks)? {
        if let Some(task) = tasks.iter().find(|t| t.commit == cand.task) {
            let variant = VariantKind::Candidate(cand.name.clone());
            if let Ok(image) = image_ref(&suite.images, task, &variant, Some(&cand.sha256)) {
                add(task.commit.as_str(), cand.name.to_string(), image);
            }
        }
    }
    for run in store.runs()? {
        let Some(list) = run.config.get("candidates").and_then(|c| c.as_array()) else {
            continue;
        };
        for planned in list {
            let (Some(task_commit), Some(name), Some(sha)) = (
                planned.get("task").and_then(|v| v.as_str()),
                planned.get("name").and_then(|v| v.as_str()),
                planned.get("patch_sha").and_then(|v| v.as_str()),
            ) else {
                continue;
            };
            let Some(task) = tasks.iter().find(|t| t.commit.as_str() == task_commit) else {
                continue;
            };
            let Ok(variant) = format!("candidate:{name}").parse::<VariantKind>() else {
                continue;
            };
            if let Ok(image) = image_ref(&suite.images, task, &variant, Some(sha)) {
                add(task_commit, name.to_string(), image);
            }
        }
    }
    if args.registry.is_none() {
        // Recorded builds name their images with the registry they were built for.
        for (task, variant, image) in store.candidate_builds()? {
            let name = variant
                .strip_prefix("candidate:")
                .unwrap_or(&variant)
                .to_string();
            add(&task, name, image);
        }
    }

    // --offline: what `images import` and earlier checks recorded, no engine, no registry.
    let recorded = if args.offline {
        Some(super::super::import_images::recorded_index(&store)?)
    } else {
        None
    };
    if let Some((_, sources)) = &recorded {
        eprintln!(
            "note: --offline: no live registry or engine asked; availability as recorded by {}",
            sources.join(", ")
        );
    }
    let (engine, engine_error) = match Engine::connect() {
        _ if args.offline => (None, Some("--offline".to_string())),
        Ok(engine) => (Some(engine), None),
        Err(err) => (None, Some(err.to_string())),
    };
    let registry = registry_client(insecure);
    let builds = store.last_builds()?;
    let offline = recorded.as_ref().map(|(index, _)| index);
    let mut checker = Checker {
        engine: engine.as_ref(),
        registry: &registry,
        builds: &builds,
        cache: HashMap::new(),
        offline,
    };
    let checked_at = now();

    let mut states = Vec::new();
    for task in &tasks {
        states.push(task_state(
            &suite,
            task,
            candidates
                .get(task.commit.as_str())
                .map(Vec::as_slice)
                .unwrap_or(&[]),
            &mut checker,
        )?);
    }
    for state in checker.cache.values().filter(|_| !args.offline) {
        store
            .upsert_image(&ImageRow {
                image: &state.image,
                local: &state.local,
                registry: &state.registry,
                digest: state.digest.as_deref(),
                source: "status",
                checked_at: &checked_at,
            })
            .context("cannot record the image in the store")?;
    }
    let summary = summarize(&tasks, &states);
    let report = StatusReport {
        version: STATUS_VERSION,
        registry: suite.images.registry.clone(),
        checked_at,
        engine_error,
        tasks: states,
        summary,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render_table(&report));
    }
    Ok(ExitCode::SUCCESS)
}

struct Checker<'a> {
    engine: Option<&'a Engine>,
    registry: &'a RegistryClient,
    builds: &'a HashMap<String, LastBuild>,
    cache: HashMap<String, ImageState>,
    offline: Option<&'a ImageIndex>,
}

/// How `registry_reason` starts for states read from the records (`--offline`).
const OFFLINE: &str = "offline";

impl Checker<'_> {
    fn check(&mut self, image: &str, permanently_failed: Option<String>) -> ImageState {
        if let Some(state) = self.cache.get(image) {
            return state.clone();
        }
        if let Some(index) = self.offline {
            let recorded = index.state(image);
            let reason = match &recorded.source {
                Some(source) => format!("{OFFLINE}: as recorded by {source}"),
                None => format!("{OFFLINE}: nothing recorded"),
            };
            let state = ImageState {
                image: image.to_string(),
                local: "unknown".into(),
                registry: recorded.presence.as_str().into(),
                registry_reason: Some(reason),
                digest: None,
                permanently_failed,
                last_build: self.builds.get(image).cloned(),
            };
            self.cache.insert(image.to_string(), state.clone());
            return state;
        }
        let local = match self.engine.map(|e| e.inspect(image)) {
            Some(Ok(Some(_))) => "present",
            Some(Ok(None)) => "missing",
            _ => "unknown",
        };
        let (registry, reason, digest) = match ImageName::parse(image) {
            Ok(name) => match self.registry.manifest(&name) {
                Availability::Present { digest } => ("present", None, digest),
                Availability::Missing => ("missing", None, None),
                Availability::Unknown { reason } => ("unknown", Some(reason), None),
            },
            Err(err) => ("unknown", Some(err.to_string()), None),
        };
        let state = ImageState {
            image: image.to_string(),
            local: local.into(),
            registry: registry.into(),
            registry_reason: reason,
            digest,
            permanently_failed,
            last_build: self.builds.get(image).cloned(),
        };
        self.cache.insert(image.to_string(), state.clone());
        state
    }
}

fn task_state(
    suite: &Suite,
    task: &Task,
    candidates: &[(String, String)],
    checker: &mut Checker<'_>,
) -> Result<TaskState> {
    let failed = |commit: &str| {
        suite
            .build_override(commit)
            .and_then(|o| o.permanently_failed.clone())
    };
    let human_ref = image_ref(&suite.images, task, &VariantKind::Human, None)?;
    let human = checker.check(&human_ref, failed(task.commit.as_str()));
    let baseline = match &task.parent {
        Some(parent) => {
            let baseline_ref = image_ref(&suite.images, task, &VariantKind::Baseline, None)?;
            Some(checker.check(&baseline_ref, failed(parent.as_str())))
        }
        None => None,
    };
    let candidates: Vec<CandidateState> = candidates
        .iter()
        .map(|(name, image)| CandidateState {
            name: name.clone(),
            state: checker.check(image, None),
        })
        .collect();
    let category = categorize(&human, baseline.as_ref(), &candidates);
    Ok(TaskState {
        commit: task.commit.to_string(),
        parent: task.parent.as_ref().map(|p| p.to_string()),
        subject: task.subject.clone(),
        category,
        human,
        baseline,
        candidates,
    })
}

fn categorize(
    human: &ImageState,
    baseline: Option<&ImageState>,
    candidates: &[CandidateState],
) -> String {
    let baseline_availability = baseline.map(ImageState::availability).unwrap_or("missing");
    let permanently_failed = human.permanently_failed.is_some()
        || baseline.is_some_and(|b| b.permanently_failed.is_some());
    let category = match (human.availability(), baseline_availability) {
        _ if permanently_failed => "permanently_failed",
        ("present", "present") => {
            let all = candidates
                .iter()
                .all(|c| c.state.availability() == "present");
            if all {
                "complete"
            } else if candidates
                .iter()
                .any(|c| c.state.availability() == "unknown")
            {
                "unknown"
            } else {
                "candidates_missing"
            }
        }
        ("present", "missing") => "human_only",
        ("missing", "present") => "baseline_only",
        ("missing", "missing") => "missing_images",
        _ => "unknown",
    };
    category.to_string()
}

fn summarize(tasks: &[Task], states: &[TaskState]) -> Summary {
    let mut summary = Summary {
        tasks: tasks.len(),
        ..Default::default()
    };
    summary.unique_parents = tasks
        .iter()
        .filter_map(|t| t.parent.as_ref())
        .collect::<BTreeSet<_>>()
        .len();
    let mut seen_baselines = BTreeSet::new();
    let mut failed = BTreeSet::new();
    for state in states {
        *summary
            .categories
            .entry(state.category.clone())
            .or_insert(0) += 1;
        match state.human.availability() {
            "present" => summary.humans_existing += 1,
            "missing" => summary.humans_missing += 1,
            _ => summary.humans_unknown += 1,
        }
        if state.human.permanently_failed.is_some() {
            failed.insert(state.human.image.clone());
        }
        if let Some(baseline) = &state.baseline {
            if baseline.permanently_failed.is_some() {
                failed.insert(baseline.image.clone());
            }
            if seen_baselines.insert(baseline.image.clone()) {
                match baseline.availability() {
                    "present" => summary.baselines_existing += 1,
                    "missing" => summary.baselines_missing += 1,
                    _ => summary.baselines_unknown += 1,
                }
            }
        }
        for cand in &state.candidates {
            match cand.state.availability() {
                "present" => summary.candidates_existing += 1,
                "missing" => summary.candidates_missing += 1,
                _ => summary.candidates_unknown += 1,
            }
        }
    }
    summary.permanently_failed = failed.len();
    summary
}

/// `local+registry`, `local`, `registry`, `missing`, `unknown`…, with the last failed build.
fn cell(state: &ImageState) -> String {
    let place = match (state.local.as_str(), state.registry.as_str()) {
        ("present", "present") => "local+registry".to_string(),
        ("present", "missing") => "local only".to_string(),
        ("present", _) => "local (registry ?)".to_string(),
        ("missing", "present") => "registry".to_string(),
        (_, "present") => "registry (local ?)".to_string(),
        ("missing", "missing") => "missing".to_string(),
        (_, "missing") if state.availability() == "missing" => {
            "missing (registry, as recorded)".to_string()
        }
        _ => "unknown".to_string(),
    };
    if let Some(reason) = &state.permanently_failed {
        return format!("{place}; permanently failed: {reason}");
    }
    match &state.last_build {
        Some(build)
            if !matches!(build.status.as_str(), "success" | "already_exists")
                && state.availability() != "present" =>
        {
            let excerpt = build
                .excerpt
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            format!("{place}; {}{excerpt}", build.status)
        }
        _ => place,
    }
}

pub fn render_table(report: &StatusReport) -> String {
    let mut out = String::new();
    out.push_str(&format!("# Images — registry {}\n\n", report.registry));
    if let Some(err) = &report.engine_error {
        out.push_str(&format!("warning: local engine not checked: {err}\n\n"));
    }
    out.push_str("| commit | category | human image | baseline image | candidates |\n|---|---|---|---|---|\n");
    for task in &report.tasks {
        let baseline = task
            .baseline
            .as_ref()
            .map(cell)
            .unwrap_or_else(|| "no parent".into());
        let candidates = if task.candidates.is_empty() {
            "—".to_string()
        } else {
            task.candidates
                .iter()
                .map(|c| format!("{}: {}", c.name, cell(&c.state)))
                .collect::<Vec<_>>()
                .join("<br>")
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            &task.commit[..12.min(task.commit.len())],
            task.category,
            cell(&task.human).replace('|', "\\|"),
            baseline.replace('|', "\\|"),
            candidates.replace('|', "\\|")
        ));
    }
    let s = &report.summary;
    out.push_str("\n## Summary\n\n");
    out.push_str(&format!("- tasks: {}\n", s.tasks));
    out.push_str(&format!("- unique parents: {}\n", s.unique_parents));
    out.push_str(&format!(
        "- baselines: {} existing, {} missing, {} unknown\n",
        s.baselines_existing, s.baselines_missing, s.baselines_unknown
    ));
    out.push_str(&format!(
        "- human images: {} existing, {} missing, {} unknown\n",
        s.humans_existing, s.humans_missing, s.humans_unknown
    ));
    out.push_str(&format!(
        "- candidate images: {} existing, {} missing, {} unknown\n",
        s.candidates_existing, s.candidates_missing, s.candidates_unknown
    ));
    out.push_str(&format!("- permanently failed: {}\n", s.permanently_failed));
    let categories: Vec<String> = s
        .categories
        .iter()
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    out.push_str(&format!("- categories: {}\n", categories.join(", ")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(local: &str, registry: &str) -> ImageState {
        ImageState {
            image: "r/x:y".into(),
            local: local.into(),
            registry: registry.into(),
            registry_reason: None,
            digest: None,
            permanently_failed: None,
            last_build: None,
        }
    }

    #[test]
    fn categories_follow_availability() {
        let present = state("present", "unknown");
        let missing = state("missing", "missing");
        let unknown = state("missing", "unknown");
        assert_eq!(
            categorize(&present, Some(&state("missing", "present")), &[]),
            "complete"
        );
        assert_eq!(categorize(&present, Some(&missing), &[]), "human_only");
        assert_eq!(categorize(&missing, Some(&present), &[]), "baseline_only");
        assert_eq!(categorize(&missing, Some(&missing), &[]), "missing_images");
        assert_eq!(categorize(&present, Some(&unknown), &[]), "unknown");
        let cand = CandidateState {
            name: "a".into(),
            state: missing.clone(),
        };
        assert_eq!(
            categorize(&present, Some(&present), &[cand]),
            "candidates_missing"
        );
        let mut failed = missing.clone();
        failed.permanently_failed = Some("cuda 11".into());
        assert_eq!(
            categorize(&present, Some(&failed), &[]),
            "permanently_failed"
        );
    }

    #[test]
    fn an_unreachable_registry_is_never_missing() {
        assert_eq!(state("missing", "unknown").availability(), "unknown");
        assert_eq!(cell(&state("missing", "unknown")), "unknown");
        assert_eq!(cell(&state("present", "unknown")), "local (registry ?)");
    }
}
