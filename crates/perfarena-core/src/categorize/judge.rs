//! Judge rows and the quadrant of one task × candidate pair: its soft label, its hard outcome
//! (perfarena's measurement first, the judge file's published one otherwise) and the quadrant
//! they make under a [`NoDataAs`] convention.

use serde::{Deserialize, Serialize};

use crate::ids::{CandidateName, CommitId};

use super::outcomes::CandidateOutcome;
use super::vocabulary::{HardOutcome, NoDataAs, Quadrant, SoftLabel};

/// One soft-judge row (a row of the store's `judge_labels` table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JudgeLabel {
    pub task: CommitId,
    pub candidate: CandidateName,
    /// `None` when the judge said `unknown`, or the row only carries a hard outcome.
    pub label: Option<SoftLabel>,
    /// The published hard outcome, used when perfarena has no measurement of its own.
    pub hard: Option<HardOutcome>,
    /// The judge's `approach` category, kept as metadata.
    pub approach: Option<String>,
    pub source: String,
}

/// One task × candidate pair of the quadrant view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairQuadrant {
    pub candidate: CandidateName,
    pub label: Option<SoftLabel>,
    /// The judge's `approach`, when it gave one.
    pub approach: Option<String>,
    /// Whether the hard outcome passes; `None` when nothing says.
    pub hard_pass: Option<bool>,
    /// Where the hard outcome came from: `statistical`, `legacy` (perfarena's measurements) or
    /// `judge` (the judge file's published outcome).
    pub hard_basis: Option<String>,
    pub quadrant: Option<Quadrant>,
    /// Whether the candidate has attempts on the task.
    pub measured: bool,
}

/// The quadrant of one pair under a convention, with the hard outcome's basis.
pub(super) fn pair_quadrant(
    candidate: &CandidateName,
    outcome: Option<&CandidateOutcome>,
    judge: Option<&JudgeLabel>,
    no_data_as: NoDataAs,
) -> PairQuadrant {
    let label = judge.and_then(|j| j.label);
    let measured = outcome.and_then(|o| {
        let statistical = o
            .vs_human
            .and_then(|h| h.hard_pass())
            .map(|p| (p, "statistical"));
        statistical.or_else(|| {
            o.legacy_vs_human
                .and_then(|h| h.hard_pass())
                .map(|p| (p, "legacy"))
        })
    });
    let published = judge
        .and_then(|j| j.hard)
        .and_then(|h| h.passes())
        .map(|p| (p, "judge"));
    let hard = measured.or(published);
    let quadrant = match (label, hard, no_data_as) {
        (Some(label), Some((hard, _)), _) => Some(Quadrant::of_passes(label.passes(), hard)),
        (_, _, NoDataAs::Undetermined) => None,
        (label, hard, NoDataAs::Q4) => Some(Quadrant::of_passes(
            label.is_some_and(SoftLabel::passes),
            hard.is_some_and(|(pass, _)| pass),
        )),
    };
    PairQuadrant {
        candidate: candidate.clone(),
        label,
        approach: judge.and_then(|j| j.approach.clone()),
        hard_pass: hard.map(|(pass, _)| pass),
        hard_basis: hard.map(|(_, basis)| basis.to_string()),
        quadrant,
        measured: outcome.is_some(),
    }
}
