//! The status of a project's images (`perfarena images status`): every task's expected images
//! (human, baseline, candidates given, planned by recorded runs or built before), where each is
//! (local engine, registry, or what `images import` recorded), its last build, a category per
//! task and the counts of an executive summary. What it finds is recorded in the store's
//! `images` table (except `--offline`, which only reads what was recorded).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use perfarena_backend::images::Availability;
use perfarena_backend::images::engine::Engine;
use perfarena_backend::images::plan::CandidatePatch;
use perfarena_backend::images::reference::ImageName;
use perfarena_backend::images::registry::RegistryClient;
use perfarena_core::availability::ImageIndex;
use perfarena_core::images::image_ref;
use perfarena_core::plan::RunPlan;
use perfarena_core::{Suite, Task, VariantKind};
use perfarena_store::{ImageRow, LastBuild, Store};

use crate::{Result, RunError, now};

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

/// Where availability is asked.
pub struct Sources<'a> {
    /// The local engine (`None`: not asked, or unreachable, as `engine_error` says).
    pub engine: Option<&'a Engine>,
    pub engine_error: Option<String>,
    pub registry: &'a RegistryClient,
    /// `--offline`: what `images import` and earlier checks recorded, asking nothing.
    pub offline: Option<&'a ImageIndex>,
    /// Whether candidate images of earlier builds count (their names carry the registry they
    /// were built for, so not when another registry is asked).
    pub recorded_builds: bool,
}

/// The status of every task's images; what was asked live is recorded in the store.
pub fn status_report(
    store: &Store,
    suite: &Suite,
    tasks: &[Task],
    given: &[CandidatePatch],
    sources: &Sources<'_>,
) -> Result<StatusReport> {
    // Candidates: given here, planned by recorded runs, or built before.
    let mut candidates: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut add = |task: &str, name: String, image: String| {
        let list = candidates.entry(task.to_string()).or_default();
        if !list.iter().any(|(_, i)| *i == image) {
            list.push((name, image));
        }
    };
    let planned = store.runs()?.into_iter().filter_map(|run| {
        // A plan this build cannot read names no candidate it could check.
        RunPlan::from_json(&run.config).ok()
    });
    let planned: Vec<(
        perfarena_core::CommitId,
        perfarena_core::CandidateName,
        String,
    )> = planned
        .flat_map(|plan| plan.candidates)
        .map(|c| (c.task, c.name, c.patch_sha))
        .collect();
    let given = given
        .iter()
        .map(|c| (c.task.clone(), c.name.clone(), c.sha256.clone()));
    for (commit, name, sha) in given.chain(planned) {
        if let Some(task) = tasks.iter().find(|t| t.commit == commit) {
            let variant = VariantKind::Candidate(name.clone());
            if let Ok(image) = image_ref(&suite.images, task, &variant, Some(&sha)) {
                add(task.commit.as_str(), name.to_string(), image);
            }
        }
    }
    if sources.recorded_builds {
        for (task, variant, image) in store.candidate_builds()? {
            let name = variant
                .strip_prefix("candidate:")
                .unwrap_or(&variant)
                .to_string();
            add(&task, name, image);
        }
    }
    let builds = store.last_builds()?;
    let mut checker = Checker {
        engine: sources.engine,
        registry: sources.registry,
        builds: &builds,
        cache: HashMap::new(),
        offline: sources.offline,
    };
    let checked_at = now();
    let mut states = Vec::new();
    for task in tasks {
        let listed = candidates
            .get(task.commit.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        states.push(task_state(suite, task, listed, &mut checker)?);
    }
    if sources.offline.is_none() {
        for state in checker.cache.values() {
            store.upsert_image(&ImageRow {
                image: &state.image,
                local: &state.local,
                registry: &state.registry,
                digest: state.digest.as_deref(),
                source: "status",
                checked_at: &checked_at,
            })?;
        }
    }
    Ok(StatusReport {
        version: STATUS_VERSION,
        registry: suite.images.registry.clone(),
        checked_at,
        engine_error: sources.engine_error.clone(),
        summary: summarize(tasks, &states),
        tasks: states,
    })
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
    let image = |variant: &VariantKind| {
        image_ref(&suite.images, task, variant, None).map_err(|e| RunError::Input(e.to_string()))
    };
    let failed = |commit: &str| {
        suite
            .build_override(commit)
            .and_then(|o| o.permanently_failed.clone())
    };
    let human_ref = image(&VariantKind::Human)?;
    let human = checker.check(&human_ref, failed(task.commit.as_str()));
    let baseline = match &task.parent {
        Some(parent) => {
            let baseline_ref = image(&VariantKind::Baseline)?;
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
    }
}
