//! The words of the status analysis: a task's [`Category`] and [`Finding`], the kinds of
//! evidence, a candidate's [`Outcome`], a soft judge's [`SoftLabel`] and the [`Quadrant`] they
//! make together. Each has a fixed order (`ALL`) and the snake_case name it is serialised as.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ids::VariantKind;
use crate::stats::Verdict;

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

    /// Whether the outcome passes the hard judgement (the candidate better than or equivalent
    /// to the control); `None` when it cannot say (inconclusive, not measured).
    pub fn hard_pass(self) -> Option<bool> {
        match self {
            Outcome::CandidateBetter | Outcome::Equivalent => Some(true),
            Outcome::ControlBetter | Outcome::CandidateCrashed => Some(false),
            Outcome::Inconclusive | Outcome::NotMeasured => None,
        }
    }

    pub(super) fn from_verdict(verdict: Verdict) -> Outcome {
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
#[error(
    "unknown judge label `{0}`: expected one of same, related, different, no_optimization (or the published same_target, related_target, different_target, other, unknown)"
)]
pub struct UnknownLabel(pub String);

impl FromStr for SoftLabel {
    type Err = UnknownLabel;

    /// perfarena's words and the published judge vocabulary (`same_target`, `related_target`,
    /// `different_target`, `no_optimization`; `other` is a judgement that is neither same nor
    /// related, like `different`). `unknown` is no label: see [`parse_soft_label`].
    fn from_str(text: &str) -> Result<SoftLabel, UnknownLabel> {
        let wanted = text.trim().to_ascii_lowercase().replace('-', "_");
        let wanted = wanted.strip_suffix("_target").unwrap_or(&wanted);
        if wanted == "other" {
            return Ok(SoftLabel::Different);
        }
        SoftLabel::ALL
            .into_iter()
            .find(|l| l.as_str() == wanted)
            .ok_or_else(|| UnknownLabel(text.to_string()))
    }
}

/// A label as a judge file writes it: `unknown` (or empty) is no label.
pub fn parse_soft_label(text: &str) -> Result<Option<SoftLabel>, UnknownLabel> {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.eq_ignore_ascii_case("unknown") {
        return Ok(None);
    }
    trimmed.parse().map(Some)
}

/// A published hard outcome of a candidate against the human change: `beats` and `similar`
/// pass, `worse` fails, `NO_DATA` says nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HardOutcome {
    Beats,
    Similar,
    Worse,
    NoData,
}

impl HardOutcome {
    pub const ALL: [HardOutcome; 4] = [
        HardOutcome::Beats,
        HardOutcome::Similar,
        HardOutcome::Worse,
        HardOutcome::NoData,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HardOutcome::Beats => "beats",
            HardOutcome::Similar => "similar",
            HardOutcome::Worse => "worse",
            HardOutcome::NoData => "no_data",
        }
    }

    /// Whether it passes the hard judgement; `None` for `NO_DATA`.
    pub fn passes(self) -> Option<bool> {
        match self {
            HardOutcome::Beats | HardOutcome::Similar => Some(true),
            HardOutcome::Worse => Some(false),
            HardOutcome::NoData => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown hard outcome `{0}`: expected one of beats, similar, worse, NO_DATA")]
pub struct UnknownHardOutcome(pub String);

impl FromStr for HardOutcome {
    type Err = UnknownHardOutcome;

    fn from_str(text: &str) -> Result<HardOutcome, UnknownHardOutcome> {
        let wanted = text.trim().to_ascii_lowercase().replace('-', "_");
        HardOutcome::ALL
            .into_iter()
            .find(|h| h.as_str() == wanted)
            .ok_or_else(|| UnknownHardOutcome(text.to_string()))
    }
}

/// How a pair without data counts in the quadrant tables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoDataAs {
    /// A pair without a label or a hard outcome is left out of the counts (`undetermined` or
    /// `unlabelled`).
    #[default]
    Undetermined,
    /// A missing label is a soft failure and a missing hard outcome a hard failure, as the
    /// published ISO-Bench commit explorer counts them: a pair with neither is Q4.
    Q4,
}

impl NoDataAs {
    pub fn as_str(self) -> &'static str {
        match self {
            NoDataAs::Undetermined => "undetermined",
            NoDataAs::Q4 => "q4",
        }
    }

    /// One sentence for reports: how pairs without data were counted.
    pub fn describe(self) -> &'static str {
        match self {
            NoDataAs::Undetermined => {
                "Convention `--no-data-as undetermined`: a pair without a label or a hard outcome is not counted in Q1–Q4 (it is undetermined or unlabelled)."
            }
            NoDataAs::Q4 => {
                "Convention `--no-data-as q4`: a missing label counts as a soft failure and a missing hard outcome (NO_DATA, not measured) as a hard failure, as published tables that count such pairs as failures do; a pair with neither is Q4."
            }
        }
    }
}

/// One sentence for reports when some pairs' hard outcome came from the judge file.
pub fn hard_from_judge_note(n_pairs: usize) -> Option<String> {
    (n_pairs > 0).then(|| {
        format!(
            "{n_pairs} pair(s) use the judge file's published hard outcome (beats/similar pass, worse fails): perfarena has no measurement of its own for them."
        )
    })
}

impl FromStr for NoDataAs {
    type Err = String;

    fn from_str(text: &str) -> Result<NoDataAs, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "undetermined" => Ok(NoDataAs::Undetermined),
            "q4" | "failure" => Ok(NoDataAs::Q4),
            _ => Err(format!("`{text}`: expected undetermined or q4")),
        }
    }
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

    /// The quadrant of a soft pass and a hard pass.
    pub fn of_passes(soft_pass: bool, hard_pass: bool) -> Quadrant {
        match (soft_pass, hard_pass) {
            (true, true) => Quadrant::Q1TrueSuccess,
            (true, false) => Quadrant::Q2GoodIntent,
            (false, true) => Quadrant::Q3LuckyWin,
            (false, false) => Quadrant::Q4Failure,
        }
    }

    /// The mapping: soft pass × hard pass. `None` when the hard outcome cannot say
    /// (inconclusive, not measured).
    pub fn of(label: SoftLabel, hard: Outcome) -> Option<Quadrant> {
        Some(Quadrant::of_passes(label.passes(), hard.hard_pass()?))
    }
}

/// Every key of a vocabulary with a default value, so tables show zero counts too.
pub(super) fn zero_map<K: Ord + Copy, V: Default>(keys: &[K]) -> BTreeMap<K, V> {
    keys.iter().map(|k| (*k, V::default())).collect()
}
