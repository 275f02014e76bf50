//! The status model and its computation: [`status_model`] runs every rule over every task and
//! gathers the summary counts, the outcome and quadrant tables and the recommendations.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::analysis::{AnalysisSettings, task_measurements};
use crate::attempt::AttemptRecord;
use crate::availability::{ImageAvailability, ImageIndex, ImageListing, Presence};
use crate::ids::CandidateName;
use crate::stats::{Direction, StatsConfig};
use crate::suite::Suite;
use crate::task::Task;
use crate::triage::Triage;

use super::judge::JudgeLabel;
use super::outcomes::{CandidateOutcome, LegacyView, OutcomeTable, legacy_view, outcome_tables};
use super::quadrants::{QuadrantTable, label_quadrants, quadrant_tables};
use super::recoverability::{Recommendation, recommendations};
use super::task_status::{TaskStatus, task_status};
use super::vocabulary::{Category, Finding, NoDataAs, Outcome, zero_map};

/// Version of [`StatusModel`] (and of `perfarena analyze --json`).
pub const STATUS_VERSION: u32 = 1;

/// Everything the status analysis says: what renderers format.
#[derive(Debug, Clone, Serialize)]
pub struct StatusModel {
    pub version: u32,
    pub suite: String,
    pub primary_metric: String,
    pub direction: Direction,
    /// Where the attempts came from.
    pub provenance: ProvenanceSummary,
    /// Where image availability came from (`registry`, `import:<name>`…); empty: nothing known
    /// beyond the attempts.
    pub image_sources: Vec<String>,
    /// The legacy single-threshold view, when computed.
    pub legacy: Option<LegacyView>,
    pub summary: StatusSummary,
    pub tasks: Vec<TaskStatus>,
    /// Per candidate, against the human change and against the baseline (usable tasks).
    pub outcomes: Vec<OutcomeTable>,
    pub quadrants: Vec<QuadrantTable>,
    /// How quadrant pairs without data were counted.
    pub quadrant_convention: NoDataAs,
    pub recommendations: Vec<Recommendation>,
}

/// How many attempts were measured by perfarena and how many imported, from which sources.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProvenanceSummary {
    pub measured_attempts: usize,
    pub imported_attempts: usize,
    pub import_sources: Vec<String>,
}

/// Counts for the executive summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusSummary {
    pub n_tasks: usize,
    /// Complete tasks where every candidate measured too ("complete N-way").
    pub complete_n_way: usize,
    /// Every category, zero counts included.
    pub categories: BTreeMap<Category, usize>,
    /// Every finding, zero counts included.
    pub findings: BTreeMap<Finding, usize>,
    /// Candidates seen in the data (the "N" of "complete N-way" is 2 + this).
    pub candidates: Vec<CandidateName>,
    pub n_way: usize,
    pub baseline_images: PresenceCounts,
    pub human_images: PresenceCounts,
    /// Tasks that are not complete and could be made so by known steps (complete tasks whose
    /// candidates failed on infrastructure are not counted).
    pub recoverable: usize,
    /// Tasks that are not complete and have no known way there.
    pub not_recoverable: usize,
    /// (task, candidate) pairs where the candidate crashed while the human worked.
    pub candidate_crashes: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PresenceCounts {
    pub present: usize,
    pub missing: usize,
    pub unknown: usize,
}

/// What the status analysis reads.
#[derive(Debug, Clone, Copy)]
pub struct StatusInput<'a> {
    pub suite: &'a Suite,
    pub tasks: &'a [Task],
    pub attempts: &'a [AttemptRecord],
    pub images: &'a [ImageAvailability],
    pub listings: &'a [ImageListing],
    pub labels: &'a [JudgeLabel],
    /// `--legacy-threshold`: compute the legacy view at this band (percent).
    pub legacy_threshold_pct: Option<f64>,
    /// `--no-data-as`: how quadrant pairs without a label or a hard outcome count.
    pub no_data_as: NoDataAs,
}

/// The analysis settings a suite implies (the same as `perfarena report` uses).
pub fn settings_from_suite(suite: &Suite) -> AnalysisSettings {
    AnalysisSettings {
        primary: suite.metric.primary.clone(),
        direction: suite.metric.direction,
        stats: StatsConfig {
            confidence: suite.stats.confidence,
            delta: suite.stats.delta,
            ..StatsConfig::default()
        },
    }
}

/// Computes the status model.
pub fn status_model(input: &StatusInput<'_>) -> StatusModel {
    let settings = settings_from_suite(input.suite);
    let triage = Triage::new(&input.suite.triage.rules).unwrap_or_else(|_| Triage::builtin());
    let index = ImageIndex::new(input.images, input.listings);
    let reports = task_measurements(input.tasks, input.attempts, &settings);

    let candidates: Vec<CandidateName> = input
        .attempts
        .iter()
        .filter_map(|a| a.variant.candidate().cloned())
        .chain(input.labels.iter().map(|l| l.candidate.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();

    let legacy = legacy_view(&reports, input.legacy_threshold_pct);
    let mut tasks: Vec<TaskStatus> = reports
        .iter()
        .map(|report| {
            task_status(
                report,
                input.suite,
                input.attempts,
                &triage,
                &index,
                &settings,
                legacy.as_ref(),
            )
        })
        .collect();
    label_quadrants(&mut tasks, input.labels, &candidates, input.no_data_as);

    let all_outcomes: Vec<&CandidateOutcome> = tasks.iter().flat_map(|t| &t.candidates).collect();
    let outcomes = outcome_tables(&all_outcomes, &candidates, legacy.is_some());
    let quadrants = quadrant_tables(&tasks, &candidates, input.labels);
    let recommendations = recommendations(
        tasks
            .iter()
            .filter_map(|t| Some((t.short.as_str(), t.recoverability.as_ref()?))),
    );
    let summary = summarize(&tasks, &candidates);
    let mut provenance = ProvenanceSummary::default();
    let mut sources = BTreeSet::new();
    for attempt in input.attempts {
        match attempt.provenance.source() {
            Some(source) => {
                provenance.imported_attempts += 1;
                sources.insert(source.to_string());
            }
            None => provenance.measured_attempts += 1,
        }
    }
    provenance.import_sources = sources.into_iter().collect();

    StatusModel {
        version: STATUS_VERSION,
        suite: input.suite.suite.name.clone(),
        primary_metric: settings.primary.clone(),
        direction: settings.direction,
        provenance,
        image_sources: index.sources().into_iter().collect(),
        legacy,
        summary,
        tasks,
        outcomes,
        quadrants,
        quadrant_convention: input.no_data_as,
        recommendations,
    }
}

fn summarize(tasks: &[TaskStatus], candidates: &[CandidateName]) -> StatusSummary {
    let mut categories: BTreeMap<Category, usize> = zero_map(&Category::ALL);
    let mut findings: BTreeMap<Finding, usize> = zero_map(&Finding::ALL);
    let mut baseline_images = PresenceCounts::default();
    let mut human_images = PresenceCounts::default();
    let count = |counts: &mut PresenceCounts, presence: Presence| match presence {
        Presence::Present => counts.present += 1,
        Presence::Missing => counts.missing += 1,
        Presence::Unknown => counts.unknown += 1,
    };
    let (mut recoverable, mut not_recoverable, mut candidate_crashes) = (0, 0, 0);
    for task in tasks {
        *categories.entry(task.category).or_default() += 1;
        *findings.entry(task.finding).or_default() += 1;
        count(&mut baseline_images, task.images.baseline.presence);
        count(&mut human_images, task.images.human.presence);
        if !task.category.is_usable() {
            match &task.recoverability {
                Some(r) if r.recoverable => recoverable += 1,
                _ => not_recoverable += 1,
            }
        }
        candidate_crashes += task
            .candidates
            .iter()
            .filter(|c| c.vs_human == Some(Outcome::CandidateCrashed))
            .count();
    }
    StatusSummary {
        n_tasks: tasks.len(),
        complete_n_way: tasks
            .iter()
            .filter(|t| t.category.is_usable() && t.candidates.iter().all(|c| c.worked))
            .count(),
        categories,
        findings,
        candidates: candidates.to_vec(),
        n_way: 2 + candidates.len(),
        baseline_images,
        human_images,
        recoverable,
        not_recoverable,
        candidate_crashes,
    }
}
