//! The status analysis of a suite: per task its category, finding, evidence and recoverability;
//! per candidate its outcome against the human change and the baseline; soft-judge quadrants;
//! and recommendations derived from all of it. A pure function of the tasks, the attempts
//! (measured and imported alike), image availability, judge labels and the suite.
//!
//! Renderers (Markdown status report, JSON, HTML) format [`StatusModel`]; they compute nothing.
//! The vocabulary and the exact rules are documented in `docs/analysis.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::analysis::{AnalysisSettings, TaskReport, VariantSummary, task_reports};
use crate::attempt::{AttemptRecord, AttemptStatus, FailureClass, FailureKind};
use crate::availability::{ImageAvailability, ImageIndex, ImageListing, Presence, normalize_ref};
use crate::ids::{CandidateName, CommitId, VariantKind};
use crate::images::image_ref;
use crate::stats::{Comparison, Direction, StatsConfig, Verdict, legacy_verdict};
use crate::suite::Suite;
use crate::task::{BenchKind, Task, model_from_command};
use crate::triage::{Judgement, Triage, VariantFate, judge_task};

/// Version of [`StatusModel`] (and of `perfarena analyze --json`).
pub const STATUS_VERSION: u32 = 1;

/// The legacy band used when the data has one value per variant and no threshold was given.
pub const DEFAULT_LEGACY_THRESHOLD_PCT: f64 = 2.0;

// ---------------------------------------------------------------------------------------------
// Vocabulary
// ---------------------------------------------------------------------------------------------

/// Where a task stands, in the words of the status reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Baseline and human measured: the task is usable, whatever its candidates did (their
    /// crashes are outcomes). "Complete N-way" counts those where every candidate measured too.
    Complete,
    /// The human is measured but there is no baseline to compare with (its image is missing, or
    /// it was not run).
    HumanOnly,
    /// Not usable, and no model is known (task row, `--model` of its perf command, result rows,
    /// suite default).
    UnknownModel,
    /// Not usable because the human's image (or both images) is missing.
    MissingImage,
    /// Not usable: the baseline was attempted and failed in every attempt.
    BaselineFailedEverywhere,
    /// Not usable for any other reason (human failed, nothing run yet…).
    OtherFailed,
}

impl Category {
    pub const ALL: [Category; 6] = [
        Category::Complete,
        Category::HumanOnly,
        Category::OtherFailed,
        Category::BaselineFailedEverywhere,
        Category::UnknownModel,
        Category::MissingImage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Complete => "complete",
            Category::HumanOnly => "human_only",
            Category::UnknownModel => "unknown_model",
            Category::MissingImage => "missing_image",
            Category::BaselineFailedEverywhere => "baseline_failed_everywhere",
            Category::OtherFailed => "other_failed",
        }
    }

    /// Baseline and human both measured: the task counts in the outcome tables.
    pub fn is_usable(self) -> bool {
        self == Category::Complete
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The one thing to know about a task, most upstream cause first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finding {
    /// Everything measured.
    Working,
    /// The human change worked and a candidate broke it (a legitimate candidate failure).
    CandidateCrashed,
    /// The human image is missing, or the human fails with an infra signature while code on the
    /// baseline image works: an infrastructure problem, not the change.
    HumanImageBroken,
    /// The human and the candidates (or, without candidates, the baseline) all failed.
    BothFailed,
    /// The baseline image is missing (the human image is not).
    MissingBaselineImage,
    /// Neither the baseline nor the human image is available.
    NoImages,
    /// The baseline image exists (or is not known missing) but the baseline fails; the human works.
    BaselineFailed,
    /// The human change itself fails (not an infra signature) while the baseline works.
    HumanFailed,
    /// Baseline and human worked; a candidate failed on infrastructure (its image, its build).
    CandidateInfraFailed,
    /// The baseline or the human has no attempts yet.
    NotRun,
}

impl Finding {
    pub const ALL: [Finding; 10] = [
        Finding::Working,
        Finding::CandidateCrashed,
        Finding::HumanImageBroken,
        Finding::BothFailed,
        Finding::MissingBaselineImage,
        Finding::NoImages,
        Finding::BaselineFailed,
        Finding::HumanFailed,
        Finding::CandidateInfraFailed,
        Finding::NotRun,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Finding::Working => "working",
            Finding::CandidateCrashed => "candidate_crashed",
            Finding::HumanImageBroken => "human_image_broken",
            Finding::BothFailed => "both_failed",
            Finding::MissingBaselineImage => "missing_baseline_image",
            Finding::NoImages => "no_images",
            Finding::BaselineFailed => "baseline_failed",
            Finding::HumanFailed => "human_failed",
            Finding::CandidateInfraFailed => "candidate_infra_failed",
            Finding::NotRun => "not_run",
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one piece of evidence shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    /// A variant failed; `signature` and `line` say how.
    Failure,
    /// A variant's image is missing; `image` names it.
    MissingImage,
    /// No model is known for the task.
    UnknownModel,
    /// A variant has no attempts.
    NotRun,
    /// The suite marks the commit as permanently failed.
    PermanentlyFailed,
}

/// One piece of evidence behind a category or finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    pub kind: EvidenceKind,
    /// The variant it is about (`None` for task-wide evidence such as an unknown model).
    pub variant: Option<VariantKind>,
    /// Who is to blame after the cross-variant judgement.
    pub blame: Option<FailureKind>,
    /// The triage signature (e.g. `missing-compiled-extension`).
    pub signature: Option<String>,
    /// The log line (or error text) that matched, or a sentence for non-failure evidence.
    pub line: Option<String>,
    /// The image ref, for missing images.
    pub image: Option<String>,
}

/// What it would take to get a task benchmarked, as data.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum RecoveryAction {
    /// Build (or rebuild) the baseline image of the parent commit.
    BuildBaselineImage {
        parent: Option<CommitId>,
        image: Option<String>,
        /// `missing`, or the failure signature that says the image is broken.
        cause: String,
    },
    /// Build (or rebuild) the human image.
    RebuildHumanImage {
        commit: CommitId,
        image: Option<String>,
        cause: String,
        fix: Option<String>,
    },
    /// Rebuild a candidate's image (its failure was infrastructure, not the candidate).
    RebuildCandidateImage {
        candidate: CandidateName,
        cause: String,
    },
    /// Name the model: in the task row, the perf command's `--model`, or `bench.default_model`.
    SupplyModel { hint: String },
    /// A resource limit (OOM, disk): rerun with more of it.
    FixResources {
        variant: VariantKind,
        signature: String,
        fix: String,
    },
    /// The benchmark harness does not fit this code: use a harness of its era.
    FixHarness {
        variant: VariantKind,
        signature: String,
        fix: String,
    },
    /// Nothing is known to be wrong: run (or rerun) these variants.
    Rerun {
        variants: Vec<VariantKind>,
        reason: String,
    },
    /// A failure with no known fix (the code itself crashes): a person must look. Not recoverable.
    Investigate {
        variant: VariantKind,
        signature: String,
        evidence: String,
    },
    /// The suite marks the commit `permanently_failed`: nothing to do. Not recoverable.
    NonePermanentlyFailed { reason: String },
}

impl RecoveryAction {
    /// The action's name as serialised (`build_baseline_image`…).
    pub fn name(&self) -> &'static str {
        match self {
            RecoveryAction::BuildBaselineImage { .. } => "build_baseline_image",
            RecoveryAction::RebuildHumanImage { .. } => "rebuild_human_image",
            RecoveryAction::RebuildCandidateImage { .. } => "rebuild_candidate_image",
            RecoveryAction::SupplyModel { .. } => "supply_model",
            RecoveryAction::FixResources { .. } => "fix_resources",
            RecoveryAction::FixHarness { .. } => "fix_harness",
            RecoveryAction::Rerun { .. } => "rerun",
            RecoveryAction::Investigate { .. } => "investigate",
            RecoveryAction::NonePermanentlyFailed { .. } => "none_permanently_failed",
        }
    }

    /// Whether this action is a known step that gets the task benchmarked.
    pub fn is_recovery(&self) -> bool {
        !matches!(
            self,
            RecoveryAction::Investigate { .. } | RecoveryAction::NonePermanentlyFailed { .. }
        )
    }
}

/// Whether a task that is not complete can be made so, and how.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recoverability {
    /// Every action is a known recovery step (no `investigate`, not permanently failed).
    pub recoverable: bool,
    pub actions: Vec<RecoveryAction>,
    /// One line for tables, e.g. "build baseline image for parent 733e7c9e95f5".
    pub summary: String,
}

/// A candidate's outcome against a control (the human change, or the baseline).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The control (human or baseline) is better.
    ControlBetter,
    CandidateBetter,
    Equivalent,
    Inconclusive,
    /// The candidate failed for its own reasons (not infrastructure).
    CandidateCrashed,
    /// The candidate was not measured because of infrastructure (its image, its build).
    NotMeasured,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Outcome::ControlBetter,
        Outcome::CandidateBetter,
        Outcome::Equivalent,
        Outcome::Inconclusive,
        Outcome::CandidateCrashed,
        Outcome::NotMeasured,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::ControlBetter => "control_better",
            Outcome::CandidateBetter => "candidate_better",
            Outcome::Equivalent => "equivalent",
            Outcome::Inconclusive => "inconclusive",
            Outcome::CandidateCrashed => "candidate_crashed",
            Outcome::NotMeasured => "not_measured",
        }
    }

    /// A label for tables, naming the control: "human better", "candidate better"…
    pub fn label(self, control: &VariantKind) -> String {
        match self {
            Outcome::ControlBetter => format!("{control} better"),
            other => other.as_str().replace('_', " "),
        }
    }

    fn from_verdict(verdict: Verdict) -> Outcome {
        match verdict {
            Verdict::Better => Outcome::CandidateBetter,
            Verdict::Worse => Outcome::ControlBetter,
            Verdict::Equivalent => Outcome::Equivalent,
            Verdict::Inconclusive => Outcome::Inconclusive,
        }
    }
}

/// A soft judge's label of a candidate: did it target the same bottleneck as the human change?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SoftLabel {
    Same,
    Related,
    Different,
    NoOptimization,
}

impl SoftLabel {
    pub const ALL: [SoftLabel; 4] = [
        SoftLabel::Same,
        SoftLabel::Related,
        SoftLabel::Different,
        SoftLabel::NoOptimization,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SoftLabel::Same => "same",
            SoftLabel::Related => "related",
            SoftLabel::Different => "different",
            SoftLabel::NoOptimization => "no_optimization",
        }
    }

    /// `same` and `related` pass the soft judgement.
    pub fn passes(self) -> bool {
        matches!(self, SoftLabel::Same | SoftLabel::Related)
    }
}

impl fmt::Display for SoftLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown judge label `{0}`: expected one of same, related, different, no_optimization")]
pub struct UnknownLabel(pub String);

impl FromStr for SoftLabel {
    type Err = UnknownLabel;

    fn from_str(text: &str) -> Result<SoftLabel, UnknownLabel> {
        let wanted = text.trim().to_ascii_lowercase().replace('-', "_");
        SoftLabel::ALL
            .into_iter()
            .find(|l| l.as_str() == wanted)
            .ok_or_else(|| UnknownLabel(text.to_string()))
    }
}

/// One soft-judge label (a row of the store's `judge_labels` table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JudgeLabel {
    pub task: CommitId,
    pub candidate: CandidateName,
    pub label: SoftLabel,
    pub source: String,
}

/// Soft label × hard outcome (see `docs/analysis.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Quadrant {
    /// Right bottleneck (`same`/`related`) and it pays off (candidate better than or equivalent to human).
    #[serde(rename = "q1_true_success")]
    Q1TrueSuccess,
    /// Right bottleneck, no pay-off (human better, or the candidate crashed).
    #[serde(rename = "q2_good_intent")]
    Q2GoodIntent,
    /// Pays off without targeting the bottleneck (`different`/`no_optimization`).
    #[serde(rename = "q3_lucky_win")]
    Q3LuckyWin,
    /// Neither.
    #[serde(rename = "q4_failure")]
    Q4Failure,
}

impl Quadrant {
    pub const ALL: [Quadrant; 4] = [
        Quadrant::Q1TrueSuccess,
        Quadrant::Q2GoodIntent,
        Quadrant::Q3LuckyWin,
        Quadrant::Q4Failure,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Quadrant::Q1TrueSuccess => "q1_true_success",
            Quadrant::Q2GoodIntent => "q2_good_intent",
            Quadrant::Q3LuckyWin => "q3_lucky_win",
            Quadrant::Q4Failure => "q4_failure",
        }
    }

    /// "Q1 true success"…
    pub fn label(self) -> &'static str {
        match self {
            Quadrant::Q1TrueSuccess => "Q1 true success",
            Quadrant::Q2GoodIntent => "Q2 good intent",
            Quadrant::Q3LuckyWin => "Q3 lucky win",
            Quadrant::Q4Failure => "Q4 failure",
        }
    }

    /// The mapping: soft pass × hard pass. `None` when the hard outcome cannot say
    /// (inconclusive, not measured).
    pub fn of(label: SoftLabel, hard: Outcome) -> Option<Quadrant> {
        let hard_pass = match hard {
            Outcome::CandidateBetter | Outcome::Equivalent => true,
            Outcome::ControlBetter | Outcome::CandidateCrashed => false,
            Outcome::Inconclusive | Outcome::NotMeasured => return None,
        };
        Some(match (label.passes(), hard_pass) {
            (true, true) => Quadrant::Q1TrueSuccess,
            (true, false) => Quadrant::Q2GoodIntent,
            (false, true) => Quadrant::Q3LuckyWin,
            (false, false) => Quadrant::Q4Failure,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

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
    pub recommendations: Vec<Recommendation>,
}

/// How many attempts were measured by perfarena and how many imported, from which sources.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProvenanceSummary {
    pub measured_attempts: usize,
    pub imported_attempts: usize,
    pub import_sources: Vec<String>,
}

/// The legacy view: one value per variant and a fixed ±threshold band.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LegacyView {
    pub threshold_pct: f64,
    /// `true` when perfarena turned it on because the data has one value per variant.
    pub automatic: bool,
    pub reason: String,
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

/// One task's status.
#[derive(Debug, Clone, Serialize)]
pub struct TaskStatus {
    pub commit: CommitId,
    pub parent: Option<CommitId>,
    /// The first 12 characters of the commit.
    pub short: String,
    pub subject: Option<String>,
    pub pr_url: Option<String>,
    pub model: Option<String>,
    /// `task`, `perf_command`, `results` or `suite_default`; `None` when unknown.
    pub model_source: Option<String>,
    pub bench_kind: BenchKind,
    pub category: Category,
    pub category_reason: String,
    pub finding: Finding,
    pub finding_reason: String,
    pub evidence: Vec<Evidence>,
    pub images: TaskImages,
    pub variants: Vec<VariantStatus>,
    /// `None` for complete tasks, unless a candidate failed on infrastructure (then: rebuild its image).
    pub recoverability: Option<Recoverability>,
    pub candidates: Vec<CandidateOutcome>,
}

/// Availability of a task's baseline and human images.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskImages {
    pub baseline: VariantImage,
    pub human: VariantImage,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariantImage {
    /// The ref looked up (the suite's template, or the one the attempts name).
    pub image_ref: Option<String>,
    pub presence: Presence,
    /// `registry`, `import:<name>`, `attempts`…; `None` when unknown.
    pub source: Option<String>,
}

/// How one variant of a task fared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariantStatus {
    pub variant: VariantKind,
    pub n_attempts: usize,
    pub n_ok: usize,
    pub worked: bool,
    /// `ok` when any attempt measured; otherwise the most frequent failure status.
    pub status: AttemptStatus,
    /// Attempts per status.
    pub statuses: BTreeMap<AttemptStatus, usize>,
    /// `measured`, `imported` or `mixed`.
    pub provenance: String,
    pub median: Option<f64>,
    pub failure: Option<FailureClass>,
    /// The cross-variant judgement of its failure.
    pub judgement: Option<Judgement>,
}

/// One candidate on one task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CandidateOutcome {
    pub candidate: CandidateName,
    pub worked: bool,
    /// Against the human change (usable tasks only).
    pub vs_human: Option<Outcome>,
    pub vs_baseline: Option<Outcome>,
    pub comparison_vs_human: Option<Comparison>,
    pub comparison_vs_baseline: Option<Comparison>,
    /// The legacy single-threshold outcomes, when the legacy view is on.
    pub legacy_vs_human: Option<Outcome>,
    pub legacy_vs_baseline: Option<Outcome>,
    pub label: Option<SoftLabel>,
    pub quadrant: Option<Quadrant>,
    /// Which hard outcome the quadrant used: `statistical` or `legacy`.
    pub hard_basis: Option<String>,
}

/// Outcome counts of one candidate against one control.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutcomeTable {
    pub candidate: CandidateName,
    /// `human` or `baseline`.
    pub control: VariantKind,
    /// Usable tasks where the candidate has attempts.
    pub total: usize,
    pub counts: BTreeMap<Outcome, usize>,
    /// Percent of `total`, one decimal.
    pub percent: BTreeMap<Outcome, f64>,
    /// The same with the legacy rule, when the legacy view is on.
    pub legacy_counts: Option<BTreeMap<Outcome, usize>>,
    pub legacy_percent: Option<BTreeMap<Outcome, f64>>,
}

/// Quadrant counts of one candidate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuadrantTable {
    pub candidate: CandidateName,
    pub counts: BTreeMap<Quadrant, usize>,
    /// Labelled pairs whose hard outcome cannot say (inconclusive, not measured, task not usable).
    pub undetermined: usize,
    /// Usable tasks with the candidate but no label.
    pub unlabelled: usize,
}

/// A step derived from the recoverability data, grouping tasks that need the same thing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommendation {
    /// The [`RecoveryAction`] name it groups.
    pub action: String,
    /// E.g. "build baseline images for these parents".
    pub title: String,
    /// What to act on: parents, image refs, models…
    pub items: Vec<String>,
    /// The tasks (short commits) it would unblock.
    pub tasks: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Inputs and the computation
// ---------------------------------------------------------------------------------------------

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
    let reports = task_reports(input.tasks, input.attempts, &settings);

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
        .map(|report| task_status(report, input, &triage, &index, &settings, legacy.as_ref()))
        .collect();
    for task in &mut tasks {
        for outcome in &mut task.candidates {
            outcome.label = input
                .labels
                .iter()
                .find(|l| l.task == task.commit && l.candidate == outcome.candidate)
                .map(|l| l.label);
            if let Some(label) = outcome.label {
                let statistical = outcome
                    .vs_human
                    .and_then(|hard| Quadrant::of(label, hard).map(|q| (q, "statistical")));
                let legacy = || {
                    outcome
                        .legacy_vs_human
                        .and_then(|hard| Quadrant::of(label, hard).map(|q| (q, "legacy")))
                };
                if let Some((quadrant, basis)) = statistical.or_else(legacy) {
                    outcome.quadrant = Some(quadrant);
                    outcome.hard_basis = Some(basis.to_string());
                }
            }
        }
    }

    let outcomes = outcome_tables(&tasks, &candidates, legacy.is_some());
    let quadrants = quadrant_tables(&tasks, &candidates, input.labels);
    let recommendations = recommendations(&tasks);
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
        recommendations,
    }
}

/// The legacy view is on when asked for, or when every usable task's measured variants have at
/// most one value each (then no interval can be computed and only the old rule can say anything).
fn legacy_view(reports: &[TaskReport], threshold: Option<f64>) -> Option<LegacyView> {
    if let Some(threshold_pct) = threshold {
        return Some(LegacyView {
            threshold_pct,
            automatic: false,
            reason: format!(
                "asked for with --legacy-threshold {threshold_pct}: medians compared with a fixed ±{threshold_pct} % band"
            ),
        });
    }
    let usable: Vec<&TaskReport> = reports
        .iter()
        .filter(|r| worked(r, &VariantKind::Baseline) && worked(r, &VariantKind::Human))
        .collect();
    let single = !usable.is_empty()
        && usable
            .iter()
            .all(|r| r.variants.iter().all(|v| v.values.len() <= 1));
    single.then(|| LegacyView {
        threshold_pct: DEFAULT_LEGACY_THRESHOLD_PCT,
        automatic: true,
        reason: format!(
            "the data has one value per variant, so no confidence interval can be computed: the legacy rule (±{DEFAULT_LEGACY_THRESHOLD_PCT} % band) is shown beside the statistical verdicts (all inconclusive)"
        ),
    })
}

fn find_variant<'a>(report: &'a TaskReport, variant: &VariantKind) -> Option<&'a VariantSummary> {
    report.variants.iter().find(|v| &v.variant == variant)
}

fn worked(report: &TaskReport, variant: &VariantKind) -> bool {
    find_variant(report, variant).is_some_and(|v| v.n_ok > 0)
}

/// The model and where it came from.
fn task_model(
    task: &Task,
    attempts: &[&AttemptRecord],
    suite: &Suite,
) -> (Option<String>, Option<String>) {
    if let Some(model) = task.models.iter().find(|m| !m.trim().is_empty()) {
        return (Some(model.trim().to_string()), Some("task".into()));
    }
    if let Some(model) = task.perf_command.as_deref().and_then(model_from_command) {
        return (Some(model), Some("perf_command".into()));
    }
    let from_results = attempts.iter().find_map(|a| {
        a.metadata
            .get("model")
            .and_then(|m| m.as_str())
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_string)
    });
    if let Some(model) = from_results {
        return (Some(model), Some("results".into()));
    }
    if !suite.bench.default_model.trim().is_empty() {
        return (
            Some(suite.bench.default_model.trim().to_string()),
            Some("suite_default".into()),
        );
    }
    (None, None)
}

/// The image state of the baseline or the human: the registry/listing data for the suite's ref
/// and the refs the attempts name; failing that, what the attempts show.
fn variant_image(
    task: &Task,
    variant: &VariantKind,
    attempts: &[&AttemptRecord],
    suite: &Suite,
    index: &ImageIndex,
    summary: Option<&VariantSummary>,
) -> VariantImage {
    let mut refs: Vec<String> = Vec::new();
    if let Ok(expected) = image_ref(&suite.images, task, variant, None) {
        refs.push(expected);
    }
    for attempt in attempts.iter().filter(|a| &a.variant == variant) {
        if let Some(image) = attempt
            .image
            .as_deref()
            .map(str::trim)
            .filter(|i| !i.is_empty())
            && !refs.iter().any(|r| r == image)
        {
            refs.push(image.to_string());
        }
    }
    let states: Vec<_> = refs.iter().map(|r| index.state(r)).collect();
    let pick = |presence: Presence| states.iter().find(|s| s.presence == presence);
    if let Some(state) = pick(Presence::Present).or_else(|| pick(Presence::Missing)) {
        return VariantImage {
            image_ref: Some(state.image_ref.clone()),
            presence: state.presence,
            source: state.source.clone(),
        };
    }
    // Nothing in the index: the attempts say what they saw. An image named by the attempts is
    // shown in preference to the suite's template (it is the one that was actually used).
    let shown = refs.last().map(|r| normalize_ref(r));
    let worked = summary.is_some_and(|s| s.n_ok > 0);
    let said_missing = attempts.iter().any(|a| {
        &a.variant == variant
            && (a.status == AttemptStatus::MissingImage
                || a.failure
                    .as_ref()
                    .is_some_and(|f| f.signature == "missing-image"))
    });
    let (presence, source) = if worked {
        (Presence::Present, Some("attempts".to_string()))
    } else if said_missing {
        (Presence::Missing, Some("attempts".to_string()))
    } else {
        (Presence::Unknown, None)
    };
    VariantImage {
        image_ref: shown,
        presence,
        source,
    }
}

fn task_status(
    report: &TaskReport,
    input: &StatusInput<'_>,
    triage: &Triage,
    index: &ImageIndex,
    settings: &AnalysisSettings,
    legacy: Option<&LegacyView>,
) -> TaskStatus {
    let task = &report.task;
    let attempts: Vec<&AttemptRecord> = input
        .attempts
        .iter()
        .filter(|a| a.task == task.commit && !a.is_warmup)
        .collect();
    let (model, model_source) = task_model(task, &attempts, input.suite);

    // Fates for the cross-variant judgement; a failed variant always gets a failure class.
    let fates: Vec<VariantFate> = report
        .variants
        .iter()
        .map(|v| {
            let worked = v.n_ok > 0;
            let failure = if worked {
                None
            } else {
                v.failure.clone().or_else(|| {
                    triage.classify_attempt(v.status, v.message.as_deref().unwrap_or(""), &[])
                })
            };
            VariantFate {
                variant: v.variant.clone(),
                worked,
                failure,
            }
        })
        .collect();
    let judgements = judge_task(&fates);
    let variants: Vec<VariantStatus> = report
        .variants
        .iter()
        .zip(&fates)
        .map(|(v, fate)| VariantStatus {
            variant: v.variant.clone(),
            n_attempts: v.n_attempts,
            n_ok: v.n_ok,
            worked: fate.worked,
            status: v.status,
            statuses: v.statuses.clone(),
            provenance: v.provenance.clone(),
            median: v.median,
            failure: fate.failure.clone(),
            judgement: judgements.iter().find(|j| j.variant == v.variant).cloned(),
        })
        .collect();

    let baseline = find_variant(report, &VariantKind::Baseline);
    let human = find_variant(report, &VariantKind::Human);
    let images = TaskImages {
        baseline: variant_image(
            task,
            &VariantKind::Baseline,
            &attempts,
            input.suite,
            index,
            baseline,
        ),
        human: variant_image(
            task,
            &VariantKind::Human,
            &attempts,
            input.suite,
            index,
            human,
        ),
    };

    let facts = Facts::new(&variants, &images, model.is_some());
    let (category, category_reason) = categorize(&facts, &variants, &images);
    let (finding, finding_reason) = find(&facts, &variants, &images);
    let evidence = evidence(&facts, &variants, &images);
    let permanently_failed = permanently_failed(input.suite, task);
    let recoverability = recoverability(
        task,
        category,
        &facts,
        &variants,
        &images,
        triage,
        permanently_failed,
    );
    let candidates = candidate_outcomes(report, &variants, category, settings.direction, legacy);

    TaskStatus {
        commit: task.commit.clone(),
        parent: task.parent.clone(),
        short: task.short_id().to_string(),
        subject: task.subject.clone(),
        pr_url: task.pr_url.clone(),
        model,
        model_source,
        bench_kind: task.bench_kind(),
        category,
        category_reason,
        finding,
        finding_reason,
        evidence,
        images,
        variants,
        recoverability,
        candidates,
    }
}

/// The facts the rules below are written in.
struct Facts {
    baseline_attempted: bool,
    human_attempted: bool,
    baseline_worked: bool,
    human_worked: bool,
    /// Candidates with attempts.
    n_candidates: usize,
    n_candidates_worked: usize,
    baseline_image_missing: bool,
    human_image_missing: bool,
    model_known: bool,
}

impl Facts {
    fn new(variants: &[VariantStatus], images: &TaskImages, model_known: bool) -> Facts {
        let get = |kind: &VariantKind| variants.iter().find(|v| &v.variant == kind);
        let baseline = get(&VariantKind::Baseline);
        let human = get(&VariantKind::Human);
        let baseline_worked = baseline.is_some_and(|v| v.worked);
        let human_worked = human.is_some_and(|v| v.worked);
        // An image that an attempt ran in existed then; its failure, not its absence, is the
        // story (the images table still shows it missing now).
        let ran = |v: Option<&VariantStatus>| {
            v.is_some_and(|v| {
                v.statuses.keys().any(|s| {
                    matches!(
                        s,
                        AttemptStatus::Ok
                            | AttemptStatus::Crashed
                            | AttemptStatus::Timeout
                            | AttemptStatus::NoMetrics
                    )
                })
            })
        };
        Facts {
            baseline_attempted: baseline.is_some(),
            human_attempted: human.is_some(),
            baseline_worked,
            human_worked,
            n_candidates: variants
                .iter()
                .filter(|v| v.variant.candidate().is_some())
                .count(),
            n_candidates_worked: variants
                .iter()
                .filter(|v| v.variant.candidate().is_some() && v.worked)
                .count(),
            baseline_image_missing: !ran(baseline) && images.baseline.presence == Presence::Missing,
            human_image_missing: !ran(human) && images.human.presence == Presence::Missing,
            model_known,
        }
    }

    fn usable(&self) -> bool {
        self.baseline_worked && self.human_worked
    }
}

fn signature_of(variant: &VariantStatus) -> String {
    variant
        .failure
        .as_ref()
        .map(|f| format!("`{}`", f.signature))
        .unwrap_or_else(|| format!("status {}", variant.status))
}

fn failed_candidates(variants: &[VariantStatus]) -> Vec<&VariantStatus> {
    variants
        .iter()
        .filter(|v| v.variant.candidate().is_some() && !v.worked)
        .collect()
}

fn categorize(
    facts: &Facts,
    variants: &[VariantStatus],
    images: &TaskImages,
) -> (Category, String) {
    let get = |kind: VariantKind| variants.iter().find(|v| v.variant == kind);
    if facts.usable() {
        let failed = failed_candidates(variants);
        if failed.is_empty() {
            return (
                Category::Complete,
                format!(
                    "baseline, human and {} candidate(s) measured ({}-way)",
                    facts.n_candidates,
                    2 + facts.n_candidates
                ),
            );
        }
        let list: Vec<String> = failed
            .iter()
            .map(|v| format!("{} failed with {}", v.variant, signature_of(v)))
            .collect();
        return (
            Category::Complete,
            format!("baseline and human measured; {}", list.join("; ")),
        );
    }
    if !facts.model_known {
        return (
            Category::UnknownModel,
            "no model: the task row names none, its perf_command has no --model, no result row names one and bench.default_model is empty".into(),
        );
    }
    let baseline_failed_running =
        facts.baseline_attempted && !facts.baseline_worked && !facts.baseline_image_missing;
    if facts.human_worked && !baseline_failed_running {
        let why = if facts.baseline_image_missing {
            format!(
                "the baseline image {} is missing",
                images.baseline.image_ref.as_deref().unwrap_or("?")
            )
        } else {
            "the baseline has no attempts".to_string()
        };
        return (
            Category::HumanOnly,
            format!("only the human is measured: {why}"),
        );
    }
    if facts.baseline_image_missing || facts.human_image_missing {
        let mut missing = Vec::new();
        if facts.baseline_image_missing {
            missing.push(format!(
                "baseline image {} is missing",
                images.baseline.image_ref.as_deref().unwrap_or("?")
            ));
        }
        if facts.human_image_missing {
            missing.push(format!(
                "human image {} is missing",
                images.human.image_ref.as_deref().unwrap_or("?")
            ));
        }
        return (Category::MissingImage, missing.join("; "));
    }
    if baseline_failed_running {
        let baseline = get(VariantKind::Baseline);
        let n = baseline.map(|b| b.n_attempts).unwrap_or(0);
        let sig = baseline.map(signature_of).unwrap_or_default();
        return (
            Category::BaselineFailedEverywhere,
            format!("the baseline failed in all {n} attempt(s) ({sig})"),
        );
    }
    let reason = match (facts.baseline_attempted, facts.human_attempted) {
        (false, false) => "not run: no attempts for the baseline or the human".to_string(),
        (false, true) => "the baseline has no attempts".to_string(),
        (true, false) => "the human has no attempts".to_string(),
        (true, true) => {
            let sig = get(VariantKind::Human)
                .map(signature_of)
                .unwrap_or_default();
            format!("the baseline works but the human fails ({sig})")
        }
    };
    (Category::OtherFailed, reason)
}

fn find(facts: &Facts, variants: &[VariantStatus], images: &TaskImages) -> (Finding, String) {
    let get = |kind: VariantKind| variants.iter().find(|v| v.variant == kind);
    let image = |i: &VariantImage| i.image_ref.clone().unwrap_or_else(|| "?".into());
    if facts.baseline_image_missing && facts.human_image_missing {
        return (
            Finding::NoImages,
            format!(
                "neither the baseline image {} nor the human image {} exists",
                image(&images.baseline),
                image(&images.human)
            ),
        );
    }
    if facts.baseline_image_missing {
        return (
            Finding::MissingBaselineImage,
            format!("the baseline image {} is missing", image(&images.baseline)),
        );
    }
    if facts.human_image_missing {
        return (
            Finding::HumanImageBroken,
            format!("the human image {} is missing", image(&images.human)),
        );
    }
    let human = get(VariantKind::Human);
    if let Some(j) = human
        .and_then(|h| h.judgement.as_ref())
        .filter(|j| j.finding == "human_image_broken")
    {
        return (Finding::HumanImageBroken, j.reason.clone());
    }
    if !facts.baseline_attempted || !facts.human_attempted {
        let which = match (facts.baseline_attempted, facts.human_attempted) {
            (false, false) => "neither the baseline nor the human has attempts",
            (false, true) => "the baseline has no attempts",
            _ => "the human has no attempts",
        };
        return (Finding::NotRun, which.to_string());
    }
    let candidates_all_failed = facts.n_candidates > 0 && facts.n_candidates_worked == 0;
    if !facts.human_worked
        && (candidates_all_failed || (facts.n_candidates == 0 && !facts.baseline_worked))
    {
        let others = if facts.n_candidates > 0 {
            "every candidate"
        } else {
            "the baseline"
        };
        let sig = human.map(signature_of).unwrap_or_default();
        return (
            Finding::BothFailed,
            format!("the human ({sig}) and {others} failed: nothing to compare"),
        );
    }
    if !facts.baseline_worked && facts.human_worked {
        let sig = get(VariantKind::Baseline)
            .map(signature_of)
            .unwrap_or_default();
        return (
            Finding::BaselineFailed,
            format!("the baseline fails ({sig}) while the human works"),
        );
    }
    if !facts.human_worked {
        let sig = human.map(signature_of).unwrap_or_default();
        return (
            Finding::HumanFailed,
            format!("the human change fails ({sig}) while code on the baseline image works"),
        );
    }
    // From here on both baseline and human worked.
    let failed = failed_candidates(variants);
    let crashed: Vec<&&VariantStatus> = failed
        .iter()
        .filter(|v| blame(v) != Some(FailureKind::Infra))
        .collect();
    if !crashed.is_empty() {
        let list: Vec<String> = crashed
            .iter()
            .map(|v| format!("{} ({})", v.variant, signature_of(v)))
            .collect();
        return (
            Finding::CandidateCrashed,
            format!(
                "the human works; the candidate broke it: {}",
                list.join(", ")
            ),
        );
    }
    if !failed.is_empty() {
        let list: Vec<String> = failed
            .iter()
            .map(|v| format!("{} ({})", v.variant, signature_of(v)))
            .collect();
        return (
            Finding::CandidateInfraFailed,
            format!(
                "candidate(s) not measured because of infrastructure: {}",
                list.join(", ")
            ),
        );
    }
    (
        Finding::Working,
        format!("{}-way measured", 2 + facts.n_candidates),
    )
}

/// Who is to blame for a failed variant: the judgement's, else its failure class's.
fn blame(variant: &VariantStatus) -> Option<FailureKind> {
    variant
        .judgement
        .as_ref()
        .map(|j| j.blame)
        .or_else(|| variant.failure.as_ref().map(|f| f.kind))
}

fn evidence(facts: &Facts, variants: &[VariantStatus], images: &TaskImages) -> Vec<Evidence> {
    let mut out = Vec::new();
    if !facts.model_known {
        out.push(Evidence {
            kind: EvidenceKind::UnknownModel,
            variant: None,
            blame: None,
            signature: None,
            line: Some(
                "no model in the task row, its perf_command, the result rows or the suite".into(),
            ),
            image: None,
        });
    }
    for (kind, image, missing) in [
        (
            VariantKind::Baseline,
            &images.baseline,
            facts.baseline_image_missing,
        ),
        (VariantKind::Human, &images.human, facts.human_image_missing),
    ] {
        if missing {
            out.push(Evidence {
                kind: EvidenceKind::MissingImage,
                variant: Some(kind),
                blame: Some(FailureKind::Infra),
                signature: Some("missing-image".into()),
                line: image
                    .source
                    .as_ref()
                    .map(|s| format!("missing according to {s}")),
                image: image.image_ref.clone(),
            });
        }
    }
    for (kind, attempted) in [
        (VariantKind::Baseline, facts.baseline_attempted),
        (VariantKind::Human, facts.human_attempted),
    ] {
        if !attempted {
            out.push(Evidence {
                kind: EvidenceKind::NotRun,
                variant: Some(kind),
                blame: None,
                signature: None,
                line: Some("no attempts".into()),
                image: None,
            });
        }
    }
    for variant in variants.iter().filter(|v| !v.worked) {
        let Some(failure) = &variant.failure else {
            continue;
        };
        out.push(Evidence {
            kind: EvidenceKind::Failure,
            variant: Some(variant.variant.clone()),
            blame: blame(variant),
            signature: Some(failure.signature.clone()),
            line: Some(failure.evidence.clone()),
            image: None,
        });
    }
    out
}

fn permanently_failed(suite: &Suite, task: &Task) -> Option<String> {
    let keys = std::iter::once(&task.commit).chain(task.parent.as_ref());
    keys.filter_map(|commit| suite.build_override(commit.as_str()))
        .find_map(|o| o.permanently_failed.clone())
}

fn recoverability(
    task: &Task,
    category: Category,
    facts: &Facts,
    variants: &[VariantStatus],
    images: &TaskImages,
    triage: &Triage,
    permanently_failed: Option<String>,
) -> Option<Recoverability> {
    let mut actions = Vec::new();
    if let Some(reason) = permanently_failed.filter(|_| !category.is_usable()) {
        actions.push(RecoveryAction::NonePermanentlyFailed { reason });
        return Some(finish(actions));
    }
    let fix_of = |signature: &str| {
        triage
            .rule(signature)
            .map(|r| r.fix.clone())
            .filter(|f| !f.is_empty())
    };
    if category.is_usable() {
        // The candidates' own failures are results; only infrastructure gaps are recoverable.
        for v in failed_candidates(variants) {
            if blame(v) == Some(FailureKind::Infra) {
                let candidate = v
                    .variant
                    .candidate()
                    .cloned()
                    .expect("failed_candidates returns candidates");
                let cause = v
                    .failure
                    .as_ref()
                    .map(|f| f.signature.clone())
                    .unwrap_or_else(|| "failed".into());
                actions.push(RecoveryAction::RebuildCandidateImage { candidate, cause });
            }
        }
        return (!actions.is_empty()).then(|| finish(actions));
    }
    if !facts.model_known {
        actions.push(RecoveryAction::SupplyModel {
            hint: "add `models` to the task row, `--model` to its perf_command, or set bench.default_model".into(),
        });
    }
    let get = |kind: VariantKind| variants.iter().find(|v| v.variant == kind);
    if facts.baseline_image_missing {
        actions.push(RecoveryAction::BuildBaselineImage {
            parent: task.parent.clone(),
            image: images.baseline.image_ref.clone(),
            cause: "missing".into(),
        });
    }
    if facts.human_image_missing {
        actions.push(RecoveryAction::RebuildHumanImage {
            commit: task.commit.clone(),
            image: images.human.image_ref.clone(),
            cause: "missing".into(),
            fix: None,
        });
    }
    let mut rerun = Vec::new();
    for (kind, attempted, image_missing) in [
        (
            VariantKind::Baseline,
            facts.baseline_attempted,
            facts.baseline_image_missing,
        ),
        (
            VariantKind::Human,
            facts.human_attempted,
            facts.human_image_missing,
        ),
    ] {
        if image_missing {
            continue;
        }
        if !attempted {
            rerun.push(kind);
            continue;
        }
        let Some(v) = get(kind.clone()).filter(|v| !v.worked) else {
            continue;
        };
        let Some(failure) = &v.failure else {
            rerun.push(kind);
            continue;
        };
        let fix = fix_of(&failure.signature);
        let action = match (blame(v).unwrap_or(failure.kind), &kind) {
            (FailureKind::Infra, _)
                if failure.signature == "not-run" || failure.signature == "infra-error" =>
            {
                rerun.push(kind);
                continue;
            }
            (FailureKind::Infra, VariantKind::Baseline) => RecoveryAction::BuildBaselineImage {
                parent: task.parent.clone(),
                image: images.baseline.image_ref.clone(),
                cause: failure.signature.clone(),
            },
            (FailureKind::Infra, _) => RecoveryAction::RebuildHumanImage {
                commit: task.commit.clone(),
                image: images.human.image_ref.clone(),
                cause: failure.signature.clone(),
                fix,
            },
            (FailureKind::Resource, _) => RecoveryAction::FixResources {
                variant: kind,
                signature: failure.signature.clone(),
                fix: fix.unwrap_or_else(|| "give the job more of the exhausted resource".into()),
            },
            (FailureKind::Harness, _) => RecoveryAction::FixHarness {
                variant: kind,
                signature: failure.signature.clone(),
                fix: fix.unwrap_or_else(|| "use a benchmark harness that fits this code".into()),
            },
            (FailureKind::Candidate, _) => RecoveryAction::Investigate {
                variant: kind,
                signature: failure.signature.clone(),
                evidence: failure.evidence.clone(),
            },
        };
        if !actions.contains(&action) {
            actions.push(action);
        }
    }
    if !rerun.is_empty() {
        actions.push(RecoveryAction::Rerun {
            reason: format!(
                "{} not run (or stopped by infrastructure)",
                join_variants(&rerun)
            ),
            variants: rerun,
        });
    }
    if actions.is_empty() {
        actions.push(RecoveryAction::Investigate {
            variant: VariantKind::Human,
            signature: "unknown".into(),
            evidence: "no failure recorded".into(),
        });
    }
    Some(finish(actions))
}

fn join_variants(variants: &[VariantKind]) -> String {
    variants
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" and ")
}

fn finish(actions: Vec<RecoveryAction>) -> Recoverability {
    let recoverable = !actions.is_empty() && actions.iter().all(RecoveryAction::is_recovery);
    let summary = actions.iter().map(describe).collect::<Vec<_>>().join("; ");
    Recoverability {
        recoverable,
        actions,
        summary,
    }
}

/// One line for an action.
pub fn describe(action: &RecoveryAction) -> String {
    let short = |c: &CommitId| c.short(12).to_string();
    match action {
        RecoveryAction::BuildBaselineImage { parent, cause, .. } => {
            let parent = parent.as_ref().map(short).unwrap_or_else(|| "?".into());
            if cause == "missing" {
                format!("build baseline image for parent {parent}")
            } else {
                format!("rebuild baseline image for parent {parent} (`{cause}`)")
            }
        }
        RecoveryAction::RebuildHumanImage { commit, cause, .. } => {
            if cause == "missing" {
                format!("build human image for {}", short(commit))
            } else {
                format!("rebuild human image for {} (`{cause}`)", short(commit))
            }
        }
        RecoveryAction::RebuildCandidateImage { candidate, cause } => {
            format!("rebuild candidate:{candidate} image (`{cause}`)")
        }
        RecoveryAction::SupplyModel { .. } => "supply the model".into(),
        RecoveryAction::FixResources {
            variant,
            signature,
            fix,
        } => format!("{variant}: {fix} (`{signature}`)"),
        RecoveryAction::FixHarness {
            variant,
            signature,
            fix,
        } => format!("{variant}: {fix} (`{signature}`)"),
        RecoveryAction::Rerun { reason, .. } => format!("run: {reason}"),
        RecoveryAction::Investigate {
            variant, signature, ..
        } => format!("investigate {variant} failure (`{signature}`)"),
        RecoveryAction::NonePermanentlyFailed { reason } => {
            format!("none: permanently failed ({reason})")
        }
    }
}

fn candidate_outcomes(
    report: &TaskReport,
    variants: &[VariantStatus],
    category: Category,
    direction: Direction,
    legacy: Option<&LegacyView>,
) -> Vec<CandidateOutcome> {
    let median = |kind: &VariantKind| find_variant(report, kind).and_then(|v| v.median);
    variants
        .iter()
        .filter_map(|v| v.variant.candidate().map(|name| (v, name)))
        .map(|(v, name)| {
            let comparison = |control: VariantKind| {
                report
                    .comparisons
                    .iter()
                    .find(|c| c.treatment == v.variant && c.control == control)
                    .map(|c| c.comparison.clone())
            };
            let failed_outcome = if blame(v) == Some(FailureKind::Infra) {
                Outcome::NotMeasured
            } else {
                Outcome::CandidateCrashed
            };
            let usable = category.is_usable();
            let (comparison_vs_human, comparison_vs_baseline) = (
                comparison(VariantKind::Human),
                comparison(VariantKind::Baseline),
            );
            let statistical = |c: &Option<Comparison>| {
                usable.then(|| {
                    if v.worked {
                        c.as_ref()
                            .map(|c| Outcome::from_verdict(c.verdict))
                            .unwrap_or(Outcome::Inconclusive)
                    } else {
                        failed_outcome
                    }
                })
            };
            let legacy_outcome = |control: VariantKind| {
                let view = legacy?;
                usable.then(|| {
                    if !v.worked {
                        return failed_outcome;
                    }
                    match (median(&control), median(&v.variant)) {
                        (Some(c), Some(t)) => Outcome::from_verdict(legacy_verdict(
                            c,
                            t,
                            direction,
                            view.threshold_pct,
                        )),
                        _ => Outcome::Inconclusive,
                    }
                })
            };
            CandidateOutcome {
                candidate: name.clone(),
                worked: v.worked,
                vs_human: statistical(&comparison_vs_human),
                vs_baseline: statistical(&comparison_vs_baseline),
                comparison_vs_human,
                comparison_vs_baseline,
                legacy_vs_human: legacy_outcome(VariantKind::Human),
                legacy_vs_baseline: legacy_outcome(VariantKind::Baseline),
                label: None,
                quadrant: None,
                hard_basis: None,
            }
        })
        .collect()
}

fn zero_map<K: Ord + Copy, V: Default>(keys: &[K]) -> BTreeMap<K, V> {
    keys.iter().map(|k| (*k, V::default())).collect()
}

fn percentages(counts: &BTreeMap<Outcome, usize>, total: usize) -> BTreeMap<Outcome, f64> {
    counts
        .iter()
        .map(|(k, n)| {
            (
                *k,
                if total == 0 {
                    0.0
                } else {
                    (*n as f64 * 1000.0 / total as f64).round() / 10.0
                },
            )
        })
        .collect()
}

fn outcome_tables(
    tasks: &[TaskStatus],
    candidates: &[CandidateName],
    legacy_on: bool,
) -> Vec<OutcomeTable> {
    let mut tables = Vec::new();
    for candidate in candidates {
        for control in [VariantKind::Human, VariantKind::Baseline] {
            let mut counts: BTreeMap<Outcome, usize> = zero_map(&Outcome::ALL);
            let mut legacy_counts: BTreeMap<Outcome, usize> = zero_map(&Outcome::ALL);
            let mut total = 0;
            for outcome in tasks
                .iter()
                .flat_map(|t| &t.candidates)
                .filter(|c| &c.candidate == candidate)
            {
                let (statistical, legacy) = match control {
                    VariantKind::Human => (outcome.vs_human, outcome.legacy_vs_human),
                    _ => (outcome.vs_baseline, outcome.legacy_vs_baseline),
                };
                let Some(statistical) = statistical else {
                    continue;
                };
                total += 1;
                *counts.entry(statistical).or_default() += 1;
                if let Some(legacy) = legacy {
                    *legacy_counts.entry(legacy).or_default() += 1;
                }
            }
            tables.push(OutcomeTable {
                candidate: candidate.clone(),
                control,
                total,
                percent: percentages(&counts, total),
                counts,
                legacy_percent: legacy_on.then(|| percentages(&legacy_counts, total)),
                legacy_counts: legacy_on.then_some(legacy_counts),
            });
        }
    }
    tables
}

fn quadrant_tables(
    tasks: &[TaskStatus],
    candidates: &[CandidateName],
    labels: &[JudgeLabel],
) -> Vec<QuadrantTable> {
    if labels.is_empty() {
        return Vec::new();
    }
    candidates
        .iter()
        .map(|candidate| {
            let mut table = QuadrantTable {
                candidate: candidate.clone(),
                counts: zero_map(&Quadrant::ALL),
                undetermined: 0,
                unlabelled: 0,
            };
            for task in tasks {
                let outcome = task.candidates.iter().find(|c| &c.candidate == candidate);
                let label = labels
                    .iter()
                    .any(|l| l.task == task.commit && &l.candidate == candidate);
                match (outcome.and_then(|o| o.quadrant), label) {
                    (Some(q), _) => *table.counts.entry(q).or_default() += 1,
                    (None, true) => table.undetermined += 1,
                    (None, false) if outcome.is_some() && task.category.is_usable() => {
                        table.unlabelled += 1
                    }
                    (None, false) => {}
                }
            }
            table
        })
        .collect()
}

/// One recommendation being gathered: action name, title, items, tasks.
type Group = (&'static str, String, BTreeSet<String>, Vec<String>);

fn recommendations(tasks: &[TaskStatus]) -> Vec<Recommendation> {
    // Grouped by (order, sub-key) in a stable order; items and tasks deduplicated.
    let mut groups: BTreeMap<(usize, String), Group> = BTreeMap::new();
    for task in tasks {
        let Some(recoverability) = &task.recoverability else {
            continue;
        };
        for action in &recoverability.actions {
            let (order, key, title, item) = match action {
                RecoveryAction::BuildBaselineImage {
                    parent,
                    image,
                    cause,
                } => {
                    let parent = parent
                        .as_ref()
                        .map(|p| p.short(12).to_string())
                        .unwrap_or_else(|| "?".into());
                    let item = match image {
                        Some(image) => format!("{parent} ({image})"),
                        None => parent,
                    };
                    if cause == "missing" {
                        (
                            0,
                            String::new(),
                            "build baseline images for these parents".to_string(),
                            item,
                        )
                    } else {
                        (
                            1,
                            cause.clone(),
                            format!("rebuild these baseline images: infra failure (`{cause}`)"),
                            item,
                        )
                    }
                }
                RecoveryAction::RebuildHumanImage {
                    commit,
                    image,
                    cause,
                    fix,
                } => {
                    let item = image
                        .clone()
                        .unwrap_or_else(|| commit.short(12).to_string());
                    if cause == "missing" {
                        (
                            2,
                            String::new(),
                            "build these missing human images".to_string(),
                            item,
                        )
                    } else {
                        let fix = fix.as_ref().map(|f| format!(" — {f}")).unwrap_or_default();
                        (
                            3,
                            cause.clone(),
                            format!("rebuild these human images: infra failure (`{cause}`){fix}"),
                            item,
                        )
                    }
                }
                RecoveryAction::RebuildCandidateImage { candidate, cause } => (
                    4,
                    cause.clone(),
                    format!("rebuild candidate images: infra failure (`{cause}`)"),
                    format!("{} candidate:{candidate}", task.short),
                ),
                RecoveryAction::SupplyModel { .. } => (
                    5,
                    String::new(),
                    "supply the model for these tasks".to_string(),
                    task.short.clone(),
                ),
                RecoveryAction::FixResources {
                    signature,
                    fix,
                    variant,
                } => (
                    6,
                    signature.clone(),
                    format!("resource limit `{signature}`: {fix}"),
                    format!("{} {variant}", task.short),
                ),
                RecoveryAction::FixHarness {
                    signature,
                    fix,
                    variant,
                } => (
                    7,
                    signature.clone(),
                    format!("harness mismatch `{signature}`: {fix}"),
                    format!("{} {variant}", task.short),
                ),
                RecoveryAction::Rerun { variants, .. } => (
                    8,
                    String::new(),
                    "run these variants (no attempts yet, or stopped by infrastructure)"
                        .to_string(),
                    format!("{} {}", task.short, join_variants(variants)),
                ),
                RecoveryAction::Investigate {
                    variant, signature, ..
                } => (
                    9,
                    String::new(),
                    "investigate these failures (no known fix)".to_string(),
                    format!("{} {variant} `{signature}`", task.short),
                ),
                RecoveryAction::NonePermanentlyFailed { reason } => (
                    10,
                    String::new(),
                    "leave out: permanently failed".to_string(),
                    format!("{} ({reason})", task.short),
                ),
            };
            let entry = groups
                .entry((order, key))
                .or_insert_with(|| (action.name(), title, BTreeSet::new(), Vec::new()));
            entry.2.insert(item);
            if !entry.3.contains(&task.short) {
                entry.3.push(task.short.clone());
            }
        }
    }
    groups
        .into_values()
        .map(|(action, title, items, tasks)| Recommendation {
            action: action.to_string(),
            title,
            items: items.into_iter().collect(),
            tasks,
        })
        .collect()
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

#[cfg(test)]
mod tests;
