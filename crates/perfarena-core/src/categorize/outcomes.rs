//! Outcomes: each candidate against the human change and against the baseline, by the
//! statistical verdict and, when the legacy view is on, by the old single-threshold rule; and
//! the per-candidate tables that count them.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::analysis::TaskMeasurement;
use crate::attempt::FailureKind;
use crate::ids::{CandidateName, VariantKind};
use crate::stats::{Comparison, Direction, legacy_verdict};

use super::variants::{VariantStatus, blame, find_variant, worked};
use super::vocabulary::{Category, Outcome, Quadrant, SoftLabel, zero_map};

/// The legacy band used when the data has one value per variant and no threshold was given.
pub const DEFAULT_LEGACY_THRESHOLD_PCT: f64 = 2.0;

/// The legacy view: one value per variant and a fixed ±threshold band.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LegacyView {
    pub threshold_pct: f64,
    /// `true` when perfarena turned it on because the data has one value per variant.
    pub automatic: bool,
    pub reason: String,
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

/// The legacy view is on when asked for, or when every usable task's measured variants have at
/// most one value each (then no interval can be computed and only the old rule can say anything).
pub(super) fn legacy_view(
    reports: &[TaskMeasurement],
    threshold: Option<f64>,
) -> Option<LegacyView> {
    if let Some(threshold_pct) = threshold {
        return Some(LegacyView {
            threshold_pct,
            automatic: false,
            reason: format!(
                "asked for with --legacy-threshold {threshold_pct}: medians compared with a fixed ±{threshold_pct} % band"
            ),
        });
    }
    let usable: Vec<&TaskMeasurement> = reports
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

pub(super) fn candidate_outcomes(
    report: &TaskMeasurement,
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

/// Per candidate and control, the counts of the candidates' outcomes over all tasks.
pub(super) fn outcome_tables(
    outcomes: &[&CandidateOutcome],
    candidates: &[CandidateName],
    legacy_on: bool,
) -> Vec<OutcomeTable> {
    let mut tables = Vec::new();
    for candidate in candidates {
        for control in [VariantKind::Human, VariantKind::Baseline] {
            let mut counts: BTreeMap<Outcome, usize> = zero_map(&Outcome::ALL);
            let mut legacy_counts: BTreeMap<Outcome, usize> = zero_map(&Outcome::ALL);
            let mut total = 0;
            for outcome in outcomes.iter().filter(|c| &c.candidate == candidate) {
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
