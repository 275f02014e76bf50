//! The report model: per task, what each variant measured and how the variants compare. A pure
//! function of the tasks, the attempts and the suite; renderers only format it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::attempt::{AttemptRecord, AttemptStatus, FailureClass};
use crate::ids::VariantKind;
use crate::stats::{compare_family, Comparison, Direction, SamplePair, StatsConfig};
use crate::task::Task;

/// Version of the report model (and of `perfarena report --format json`).
pub const REPORT_VERSION: u32 = 1;

/// What one variant of one task measured.
#[derive(Debug, Clone, Serialize)]
pub struct VariantSummary {
    pub variant: VariantKind,
    /// Attempts counted (warm-ups excluded).
    pub n_attempts: usize,
    pub n_ok: usize,
    /// Attempts per status.
    pub statuses: BTreeMap<AttemptStatus, usize>,
    /// `ok` when any attempt measured; otherwise the most frequent failure status.
    pub status: AttemptStatus,
    /// The primary metric of each ok attempt, in attempt order.
    pub values: Vec<f64>,
    pub median: Option<f64>,
    /// Median against the baseline's median, direction-aware percent (+ = better).
    pub change_vs_baseline_pct: Option<f64>,
    /// The most recent failure's message and class.
    pub message: Option<String>,
    pub failure: Option<FailureClass>,
    /// `measured`, `imported` or `mixed`.
    pub provenance: String,
}

/// One comparison of a task: treatment against control.
#[derive(Debug, Clone, Serialize)]
pub struct NamedComparison {
    pub treatment: VariantKind,
    pub control: VariantKind,
    #[serde(flatten)]
    pub comparison: Comparison,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskReport {
    pub task: Task,
    pub model: Option<String>,
    pub variants: Vec<VariantSummary>,
    pub comparisons: Vec<NamedComparison>,
}

/// Everything a report shows: the model the renderers format.
#[derive(Debug, Clone, Serialize)]
pub struct ReportModel {
    pub version: u32,
    pub suite: String,
    pub primary_metric: String,
    pub direction: Direction,
    /// The runs whose attempts are included (empty: all attempts in the store).
    pub runs: Vec<String>,
    pub tasks: Vec<TaskReport>,
}

/// Builds the report model.
pub fn report_model(suite_name: &str, runs: Vec<String>, tasks: &[Task], attempts: &[AttemptRecord], settings: &AnalysisSettings) -> ReportModel {
    ReportModel {
        version: REPORT_VERSION,
        suite: suite_name.to_string(),
        primary_metric: settings.primary.clone(),
        direction: settings.direction,
        runs,
        tasks: task_reports(tasks, attempts, settings),
    }
}

/// Settings the model is computed with.
#[derive(Debug, Clone)]
pub struct AnalysisSettings {
    pub primary: String,
    pub direction: Direction,
    pub stats: StatsConfig,
}

/// The order variants are shown in: baseline, human, then candidates by name.
pub fn variant_order(a: &VariantKind, b: &VariantKind) -> std::cmp::Ordering {
    a.cmp(b)
}

/// Builds each task's summary and comparisons from its attempts.
pub fn task_reports(tasks: &[Task], attempts: &[AttemptRecord], settings: &AnalysisSettings) -> Vec<TaskReport> {
    tasks
        .iter()
        .map(|task| {
            let mut by_variant: BTreeMap<VariantKind, Vec<&AttemptRecord>> = BTreeMap::new();
            for attempt in attempts.iter().filter(|a| a.task == task.commit && !a.is_warmup) {
                by_variant.entry(attempt.variant.clone()).or_default().push(attempt);
            }
            let mut variants: Vec<VariantSummary> =
                by_variant.iter().map(|(variant, list)| summarize(variant, list, &settings.primary)).collect();
            let baseline_median = variants.iter().find(|v| v.variant == VariantKind::Baseline).and_then(|v| v.median);
            for summary in &mut variants {
                if summary.variant != VariantKind::Baseline {
                    summary.change_vs_baseline_pct = match (summary.median, baseline_median) {
                        (Some(value), Some(base)) if base > 0.0 && value > 0.0 => Some(match settings.direction {
                            Direction::Higher => (value / base - 1.0) * 100.0,
                            Direction::Lower => (base / value - 1.0) * 100.0,
                        }),
                        _ => None,
                    };
                }
            }
            let comparisons = compare_variants(&variants, settings);
            TaskReport { model: task.model(), task: task.clone(), variants, comparisons }
        })
        .collect()
}

fn summarize(variant: &VariantKind, attempts: &[&AttemptRecord], primary: &str) -> VariantSummary {
    let mut statuses: BTreeMap<AttemptStatus, usize> = BTreeMap::new();
    let mut values = Vec::new();
    for attempt in attempts {
        *statuses.entry(attempt.status).or_default() += 1;
        if attempt.status.is_ok() {
            if let Some(value) = attempt.sample(primary) {
                values.push(value);
            }
        }
    }
    let n_ok = statuses.get(&AttemptStatus::Ok).copied().unwrap_or(0);
    let status = if n_ok > 0 {
        AttemptStatus::Ok
    } else {
        statuses.iter().max_by_key(|(status, count)| (**count, std::cmp::Reverse(**status))).map(|(s, _)| *s).unwrap_or(AttemptStatus::NotRun)
    };
    let last_failure = attempts.iter().rev().find(|a| !a.status.is_ok());
    let measured = attempts.iter().filter(|a| a.provenance.kind() == "measured").count();
    let provenance = match (measured, attempts.len() - measured) {
        (_, 0) => "measured",
        (0, _) => "imported",
        _ => "mixed",
    };
    VariantSummary {
        variant: variant.clone(),
        n_attempts: attempts.len(),
        n_ok,
        statuses,
        status,
        median: median(&values),
        values,
        change_vs_baseline_pct: None,
        message: last_failure.map(|a| a.message.clone()).filter(|m| !m.is_empty()),
        failure: last_failure.and_then(|a| a.failure.clone()),
        provenance: provenance.to_string(),
    }
}

/// Human vs baseline, each candidate vs baseline, each candidate vs human — as one family
/// under Holm's correction.
fn compare_variants(variants: &[VariantSummary], settings: &AnalysisSettings) -> Vec<NamedComparison> {
    let find = |kind: &VariantKind| variants.iter().find(|v| &v.variant == kind);
    let mut pairs: Vec<(VariantKind, VariantKind)> = Vec::new();
    if find(&VariantKind::Baseline).is_some() && find(&VariantKind::Human).is_some() {
        pairs.push((VariantKind::Human, VariantKind::Baseline));
    }
    for candidate in variants.iter().filter(|v| v.variant.candidate().is_some()) {
        if find(&VariantKind::Baseline).is_some() {
            pairs.push((candidate.variant.clone(), VariantKind::Baseline));
        }
        if find(&VariantKind::Human).is_some() {
            pairs.push((candidate.variant.clone(), VariantKind::Human));
        }
    }
    let samples: Vec<(&[f64], &[f64])> = pairs
        .iter()
        .map(|(treatment, control)| {
            let values = |kind: &VariantKind| find(kind).map(|v| v.values.as_slice()).unwrap_or(&[]);
            (values(control), values(treatment))
        })
        .collect();
    let sample_pairs: Vec<SamplePair<'_>> =
        samples.iter().map(|(control, treatment)| SamplePair { control, treatment }).collect();
    let comparisons = compare_family(&sample_pairs, settings.direction, &settings.stats);
    pairs
        .into_iter()
        .zip(comparisons)
        .map(|((treatment, control), comparison)| NamedComparison { treatment, control, comparison })
        .collect()
}

/// The median of `values` (`None` when empty).
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 0 { (sorted[mid - 1] + sorted[mid]) / 2.0 } else { sorted[mid] })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{CandidateName, CommitId};
    use crate::stats::Verdict;

    fn attempt(task: &Task, variant: VariantKind, round: u32, status: AttemptStatus, value: Option<f64>) -> AttemptRecord {
        let mut a = AttemptRecord::new(task.commit.clone(), variant, round, status);
        if let Some(v) = value {
            a.samples.push(("tput".into(), v));
        }
        a
    }

    fn settings() -> AnalysisSettings {
        AnalysisSettings { primary: "tput".into(), direction: Direction::Higher, stats: StatsConfig::default() }
    }

    #[test]
    fn summaries_and_comparisons() {
        let task = Task::new(CommitId::parse(&"a".repeat(40)).unwrap());
        let cand = VariantKind::Candidate(CandidateName::parse("agent").unwrap());
        let mut attempts = Vec::new();
        for (round, (b, h)) in [(100.0, 150.0), (101.0, 151.0), (99.0, 149.0), (100.5, 150.5), (99.5, 149.5)].iter().enumerate() {
            attempts.push(attempt(&task, VariantKind::Baseline, round as u32, AttemptStatus::Ok, Some(*b)));
            attempts.push(attempt(&task, VariantKind::Human, round as u32, AttemptStatus::Ok, Some(*h)));
            attempts.push(attempt(&task, cand.clone(), round as u32, AttemptStatus::Crashed, None));
        }
        let mut warm = attempt(&task, VariantKind::Baseline, 9, AttemptStatus::Ok, Some(1.0));
        warm.is_warmup = true;
        attempts.push(warm);
        let reports = task_reports(&[task], &attempts, &settings());
        let report = &reports[0];
        assert_eq!(report.variants.len(), 3);
        let baseline = &report.variants[0];
        assert_eq!(baseline.variant, VariantKind::Baseline);
        assert_eq!(baseline.n_attempts, 5);
        assert_eq!(baseline.median, Some(100.0));
        let human = &report.variants[1];
        assert!((human.change_vs_baseline_pct.unwrap() - 50.0).abs() < 1e-9);
        let candidate = &report.variants[2];
        assert_eq!(candidate.status, AttemptStatus::Crashed);
        assert_eq!(candidate.n_ok, 0);
        let human_vs_base = &report.comparisons[0];
        assert_eq!(human_vs_base.treatment, VariantKind::Human);
        assert_eq!(human_vs_base.comparison.verdict, Verdict::Better);
        assert_eq!(report.comparisons.len(), 3);
        assert_eq!(report.comparisons[1].comparison.verdict, Verdict::Inconclusive);
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }
}
