//! Quadrants: a soft judge's label of a candidate (did it target the human change's bottleneck?)
//! crossed with its hard outcome against the human change, per task and counted per candidate.
//! The hard outcome is perfarena's own measurement when it has one (statistical, else the legacy
//! rule), else the judge file's published `hard` outcome; pairs without data count as the
//! [`NoDataAs`] convention says.

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

use crate::ids::{CandidateName, CommitId};

use super::judge::{JudgeLabel, pair_quadrant};
use super::task_status::TaskStatus;
use super::vocabulary::{NoDataAs, Quadrant, zero_map};

/// Quadrant counts of one candidate (in one repository, when the tasks span several).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuadrantTable {
    pub candidate: CandidateName,
    /// The tasks' `repo`, when the data spans several repositories (vLLM and SGLang): published
    /// tables count each apart.
    pub repository: Option<String>,
    pub counts: BTreeMap<Quadrant, usize>,
    /// Labelled pairs whose hard outcome cannot say (inconclusive, not measured, `NO_DATA`).
    pub undetermined: usize,
    /// Pairs with a hard outcome but no label (the candidate measured on a usable task, or a
    /// judge row without a label).
    pub unlabelled: usize,
    /// Counted pairs whose hard outcome is the judge file's, perfarena having none of its own.
    pub hard_from_judge: usize,
}

/// Every task's quadrant pairs (a candidate with attempts on the task, or a judge row for it),
/// with the candidate outcomes' `label`, `quadrant` and `hard_basis` filled in.
pub(super) fn label_quadrants(
    tasks: &mut [TaskStatus],
    labels: &[JudgeLabel],
    candidates: &[CandidateName],
    no_data_as: NoDataAs,
) {
    let mut by_pair: BTreeMap<(&CommitId, &CandidateName), &JudgeLabel> = BTreeMap::new();
    for label in labels {
        by_pair.insert((&label.task, &label.candidate), label);
    }
    for task in tasks {
        let mut pairs = Vec::new();
        for candidate in candidates {
            let judge = by_pair.get(&(&task.commit, candidate)).copied();
            let outcome = task.candidates.iter().find(|c| &c.candidate == candidate);
            if judge.is_none() && outcome.is_none() {
                continue;
            }
            pairs.push(pair_quadrant(candidate, outcome, judge, no_data_as));
        }
        for outcome in &mut task.candidates {
            if let Some(pair) = pairs.iter().find(|p| p.candidate == outcome.candidate) {
                outcome.label = pair.label;
                outcome.quadrant = pair.quadrant;
                outcome.hard_basis = pair.hard_basis.clone().filter(|_| pair.quadrant.is_some());
            }
        }
        task.quadrants = pairs;
    }
}

/// Per candidate (and repository, when the tasks span several), the quadrant counts over
/// every task; none when there are no judge rows.
pub(super) fn quadrant_tables(
    tasks: &[TaskStatus],
    candidates: &[CandidateName],
    labels: &[JudgeLabel],
) -> Vec<QuadrantTable> {
    if labels.is_empty() {
        return Vec::new();
    }
    let repositories: BTreeSet<Option<&str>> = tasks.iter().map(|t| t.repo.as_deref()).collect();
    let groups: Vec<Option<&str>> = if repositories.len() > 1 {
        repositories.into_iter().collect()
    } else {
        vec![None]
    };
    let mut tables = Vec::new();
    for repository in groups {
        let in_group =
            |task: &&TaskStatus| repository.is_none() || task.repo.as_deref() == repository;
        for candidate in candidates {
            let mut table = QuadrantTable {
                candidate: candidate.clone(),
                repository: repository.map(str::to_string),
                counts: zero_map(&Quadrant::ALL),
                undetermined: 0,
                unlabelled: 0,
                hard_from_judge: 0,
            };
            for task in tasks.iter().filter(in_group) {
                let Some(pair) = task.quadrants.iter().find(|p| &p.candidate == candidate) else {
                    continue;
                };
                match pair.quadrant {
                    Some(quadrant) => {
                        *table.counts.entry(quadrant).or_default() += 1;
                        if pair.hard_basis.as_deref() == Some("judge") {
                            table.hard_from_judge += 1;
                        }
                    }
                    None if pair.label.is_some() => table.undetermined += 1,
                    None if (pair.measured && task.category.is_usable())
                        || pair.hard_basis.as_deref() == Some("judge") =>
                    {
                        table.unlabelled += 1
                    }
                    None => {}
                }
            }
            tables.push(table);
        }
    }
    tables
}
