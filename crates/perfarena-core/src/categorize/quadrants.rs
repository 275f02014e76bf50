//! Quadrants: a soft judge's label of a candidate (did it target the human change's bottleneck?)
//! crossed with its hard outcome against the human change, per task and counted per candidate.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::ids::{CandidateName, CommitId};

use super::task_status::TaskStatus;
use super::vocabulary::{Quadrant, SoftLabel, zero_map};

/// One soft-judge label (a row of the store's `judge_labels` table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JudgeLabel {
    pub task: CommitId,
    pub candidate: CandidateName,
    pub label: SoftLabel,
    pub source: String,
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

pub(super) fn quadrant_tables(
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

/// Gives each candidate outcome its judge label and the quadrant that label and its hard
/// outcome make: the statistical outcome when it can say, else the legacy one.
pub(super) fn label_quadrants(tasks: &mut [TaskStatus], labels: &[JudgeLabel]) {
    for task in tasks {
        for outcome in &mut task.candidates {
            outcome.label = labels
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
}
