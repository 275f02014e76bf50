//! The status analysis of a suite: per task its category, finding, evidence and recoverability;
//! per candidate its outcome against the human change and the baseline; soft-judge quadrants;
//! and recommendations derived from all of it. A pure function of the tasks, the attempts
//! (measured and imported alike), image availability, judge labels and the suite.
//!
//! One file per concept, each depending only on those listed before it:
//! `vocabulary` (the words), `variants` (per-variant judgement and images), `findings`
//! (categories, findings, evidence), `recoverability` (actions and recommendations), `outcomes`
//! (candidates against the human and the baseline), `judge` (judge rows and one pair's
//! quadrant), `task_status` (one task), `quadrants` (the per-candidate quadrant tables),
//! `status` (the model and its computation).
//!
//! Renderers (Markdown status report, JSON, HTML) format [`StatusModel`]; they compute nothing.
//! The vocabulary and the exact rules are documented in `docs/analysis.md`.

mod findings;
mod judge;
mod outcomes;
mod quadrants;
mod recoverability;
mod status;
mod task_status;
mod variants;
mod vocabulary;

pub use findings::Evidence;
pub use judge::{JudgeLabel, PairQuadrant};
pub use outcomes::{CandidateOutcome, DEFAULT_LEGACY_THRESHOLD_PCT, LegacyView, OutcomeTable};
pub use quadrants::QuadrantTable;
pub use recoverability::{Recommendation, Recoverability, RecoveryAction, describe};
pub use status::{
    PresenceCounts, ProvenanceSummary, STATUS_VERSION, StatusInput, StatusModel, StatusSummary,
    settings_from_suite, status_model,
};
pub use task_status::TaskStatus;
pub use variants::{TaskImages, VariantImage, VariantStatus};
pub use vocabulary::{
    Category, EvidenceKind, Finding, HardOutcome, NoDataAs, Outcome, Quadrant, SoftLabel,
    UnknownHardOutcome, UnknownLabel, hard_from_judge_note, parse_soft_label,
};

#[cfg(test)]
mod tests;
