//! Measurements: per task, what each variant measured and how the variants compare (Welch on
//! logs, Holm across the task's comparisons). A pure function of the tasks, the attempts and the
//! metric settings; the status analysis (`categorize`) and the report model
//! (`report`) are built on it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Serialize, Serializer};

use crate::attempt::{AttemptRecord, AttemptStatus, FailureClass, FailureKind};
use crate::ids::VariantKind;
use crate::stats::{
    Comparison, DEFAULT_NOISE_FLOOR, DEFAULT_NOISE_MULTIPLIER, Direction, SamplePair, StatsConfig,
    Verdict, compare_family, noise_delta,
};
use crate::task::Task;

/// What one variant of one task measured.
#[derive(Debug, Clone, Serialize)]
pub struct VariantSummary {
    pub variant: VariantKind,
    /// Attempts counted (warm-ups excluded).
    pub n_attempts: usize,
    pub n_ok: usize,
    /// Warm-up attempts recorded and discarded (not in any other count).
    pub n_warmup: usize,
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
    /// Files of the benchmark harness (suite `harness_globs`) that the variant's patch touches,
    /// from the attempts' metadata. Not empty: the variant may have edited what measures it,
    /// and its numbers are flagged.
    pub harness_paths: Vec<String>,
}

/// Which side of a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Treatment,
    Control,
}

/// A side of a comparison that has attempts but no ok one: it failed, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailedSide {
    pub side: Side,
    pub variant: VariantKind,
    /// The variant's status (its most frequent failure status).
    pub status: AttemptStatus,
    /// The failure class of its most recent failure, if triage classified it.
    pub class: Option<FailureKind>,
    pub signature: Option<String>,
}

/// The verdict a report shows for a comparison: the statistical verdict, or — when the
/// treatment has attempts but none measured — the way it failed (`crashed`, `timeout`…),
/// because "inconclusive" would hide that the treatment broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShownVerdict {
    Statistical(Verdict),
    Failed(AttemptStatus),
}

impl ShownVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            ShownVerdict::Statistical(verdict) => verdict.as_str(),
            ShownVerdict::Failed(status) => status.as_str(),
        }
    }
}

impl fmt::Display for ShownVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ShownVerdict {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// One comparison of a task: treatment against control.
#[derive(Debug, Clone, Serialize)]
pub struct NamedComparison {
    pub treatment: VariantKind,
    pub control: VariantKind,
    /// What the reports show (see [`ShownVerdict`]).
    pub verdict: ShownVerdict,
    /// The side that failed (treatment first), when one did.
    pub failed: Option<FailedSide>,
    /// The legacy single-threshold verdict on the medians, when the legacy view is on.
    pub legacy: Option<Verdict>,
    /// The statistics: ratio, interval, p-values and the statistical verdict.
    #[serde(rename = "statistics")]
    pub comparison: Comparison,
}

impl NamedComparison {
    /// The verdict with its failure class, for tables: `better`, `crashed (candidate)`,
    /// `inconclusive (human crashed)`.
    pub fn verdict_label(&self) -> String {
        match (&self.verdict, &self.failed) {
            (ShownVerdict::Failed(status), Some(failed)) => match failed.class {
                Some(class) => format!("{status} ({class})"),
                None => status.to_string(),
            },
            (verdict, Some(failed)) => format!("{verdict} ({} {})", failed.variant, failed.status),
            (verdict, None) => verdict.to_string(),
        }
    }
}

/// Where a task's equivalence margin δ came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeltaSource {
    /// The suite's `stats.delta`.
    Suite,
    /// `stats.delta = 0`: the baseline's measured run-to-run noise (A/A), see
    /// [`crate::stats::noise_delta`].
    Noise,
}

/// One task's measurements and comparisons.
#[derive(Debug, Clone, Serialize)]
pub struct TaskMeasurement {
    pub task: Task,
    pub model: Option<String>,
    /// The equivalence margin δ of this task's comparisons (a fraction) and where it came from.
    pub delta: f64,
    pub delta_source: DeltaSource,
    pub variants: Vec<VariantSummary>,
    pub comparisons: Vec<NamedComparison>,
}

/// Settings the model is computed with.
#[derive(Debug, Clone)]
pub struct AnalysisSettings {
    pub primary: String,
    pub direction: Direction,
    /// `stats.delta = 0` derives each task's δ from its baseline's noise.
    pub stats: StatsConfig,
}

/// Builds each task's summary and comparisons from its attempts.
pub fn task_measurements(
    tasks: &[Task],
    attempts: &[AttemptRecord],
    settings: &AnalysisSettings,
) -> Vec<TaskMeasurement> {
    tasks
        .iter()
        .map(|task| {
            let mut by_variant: BTreeMap<VariantKind, Vec<&AttemptRecord>> = BTreeMap::new();
            let mut warmups: BTreeMap<VariantKind, usize> = BTreeMap::new();
            for attempt in attempts.iter().filter(|a| a.task == task.commit) {
                if attempt.is_warmup {
                    *warmups.entry(attempt.variant.clone()).or_default() += 1;
                } else {
                    by_variant
                        .entry(attempt.variant.clone())
                        .or_default()
                        .push(attempt);
                }
            }
            let mut variants: Vec<VariantSummary> = by_variant
                .iter()
                .map(|(variant, list)| summarize(variant, list, &settings.primary))
                .collect();
            // A variant with nothing but warm-ups is not shown: it has nothing to compare.
            for summary in &mut variants {
                summary.n_warmup = warmups.get(&summary.variant).copied().unwrap_or(0);
            }
            let baseline = variants.iter().find(|v| v.variant == VariantKind::Baseline);
            let baseline_median = baseline.and_then(|v| v.median);
            let (delta, delta_source) = if settings.stats.delta == 0.0 {
                let values = baseline.map(|v| v.values.as_slice()).unwrap_or(&[]);
                (
                    noise_delta(values, DEFAULT_NOISE_FLOOR, DEFAULT_NOISE_MULTIPLIER),
                    DeltaSource::Noise,
                )
            } else {
                (settings.stats.delta, DeltaSource::Suite)
            };
            for summary in &mut variants {
                if summary.variant != VariantKind::Baseline {
                    summary.change_vs_baseline_pct = match (summary.median, baseline_median) {
                        (Some(value), Some(base)) if base > 0.0 && value > 0.0 => {
                            Some(match settings.direction {
                                Direction::Higher => (value / base - 1.0) * 100.0,
                                Direction::Lower => (base / value - 1.0) * 100.0,
                            })
                        }
                        _ => None,
                    };
                }
            }
            let stats = StatsConfig {
                delta,
                ..settings.stats
            };
            let comparisons = compare_variants(&variants, settings.direction, &stats);
            TaskMeasurement {
                model: task.model(),
                task: task.clone(),
                delta,
                delta_source,
                variants,
                comparisons,
            }
        })
        .collect()
}

fn summarize(variant: &VariantKind, attempts: &[&AttemptRecord], primary: &str) -> VariantSummary {
    let mut statuses: BTreeMap<AttemptStatus, usize> = BTreeMap::new();
    let mut values = Vec::new();
    let mut harness_paths: BTreeSet<String> = BTreeSet::new();
    for attempt in attempts {
        *statuses.entry(attempt.status).or_default() += 1;
        if attempt.status.is_ok()
            && let Some(value) = attempt.sample(primary)
        {
            values.push(value);
        }
        if let Some(paths) = attempt
            .metadata
            .get("harness_paths")
            .and_then(|p| p.as_array())
        {
            harness_paths.extend(paths.iter().filter_map(|p| p.as_str()).map(str::to_string));
        }
    }
    let n_ok = statuses.get(&AttemptStatus::Ok).copied().unwrap_or(0);
    let status = if n_ok > 0 {
        AttemptStatus::Ok
    } else {
        statuses
            .iter()
            .max_by_key(|(status, count)| (**count, std::cmp::Reverse(**status)))
            .map(|(s, _)| *s)
            .unwrap_or(AttemptStatus::NotRun)
    };
    let last_failure = attempts.iter().rev().find(|a| !a.status.is_ok());
    let measured = attempts
        .iter()
        .filter(|a| a.provenance.kind() == "measured")
        .count();
    let provenance = match (measured, attempts.len() - measured) {
        (_, 0) => "measured",
        (0, _) => "imported",
        _ => "mixed",
    };
    VariantSummary {
        variant: variant.clone(),
        n_attempts: attempts.len(),
        n_ok,
        n_warmup: 0,
        statuses,
        status,
        median: median(&values),
        values,
        change_vs_baseline_pct: None,
        message: last_failure
            .map(|a| a.message.clone())
            .filter(|m| !m.is_empty()),
        failure: last_failure.and_then(|a| a.failure.clone()),
        provenance: provenance.to_string(),
        harness_paths: harness_paths.into_iter().collect(),
    }
}

/// A variant that has attempts and no ok one, as the failed side of a comparison.
fn failed_side(summary: &VariantSummary, side: Side) -> Option<FailedSide> {
    (summary.n_attempts > 0 && summary.n_ok == 0).then(|| FailedSide {
        side,
        variant: summary.variant.clone(),
        status: summary.status,
        class: summary.failure.as_ref().map(|f| f.kind),
        signature: summary.failure.as_ref().map(|f| f.signature.clone()),
    })
}

/// Human vs baseline, each candidate vs baseline, each candidate vs human — as one family
/// under Holm's correction.
fn compare_variants(
    variants: &[VariantSummary],
    direction: Direction,
    stats: &StatsConfig,
) -> Vec<NamedComparison> {
    let find = |kind: &VariantKind| variants.iter().find(|v| &v.variant == kind);
    let mut pairs: Vec<(&VariantSummary, &VariantSummary)> = Vec::new();
    let baseline = find(&VariantKind::Baseline);
    let human = find(&VariantKind::Human);
    if let (Some(baseline), Some(human)) = (baseline, human) {
        pairs.push((human, baseline));
    }
    for candidate in variants.iter().filter(|v| v.variant.candidate().is_some()) {
        if let Some(baseline) = baseline {
            pairs.push((candidate, baseline));
        }
        if let Some(human) = human {
            pairs.push((candidate, human));
        }
    }
    let sample_pairs: Vec<SamplePair<'_>> = pairs
        .iter()
        .map(|(treatment, control)| SamplePair {
            control: &control.values,
            treatment: &treatment.values,
        })
        .collect();
    let comparisons = compare_family(&sample_pairs, direction, stats);
    pairs
        .into_iter()
        .zip(comparisons)
        .map(|((treatment, control), comparison)| {
            let treatment_failed = failed_side(treatment, Side::Treatment);
            let verdict = match &treatment_failed {
                Some(failed) => ShownVerdict::Failed(failed.status),
                None => ShownVerdict::Statistical(comparison.verdict),
            };
            NamedComparison {
                treatment: treatment.variant.clone(),
                control: control.variant.clone(),
                verdict,
                failed: treatment_failed.or_else(|| failed_side(control, Side::Control)),
                legacy: None,
                comparison,
            }
        })
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
    Some(if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{CandidateName, CommitId};
    use crate::stats::Verdict;

    fn attempt(
        task: &Task,
        variant: VariantKind,
        round: u32,
        status: AttemptStatus,
        value: Option<f64>,
    ) -> AttemptRecord {
        let mut a = AttemptRecord::new(task.commit.clone(), variant, round, status);
        if let Some(v) = value {
            a.samples.push(("tput".into(), v));
        }
        a
    }

    fn settings() -> AnalysisSettings {
        AnalysisSettings {
            primary: "tput".into(),
            direction: Direction::Higher,
            stats: StatsConfig::default(),
        }
    }

    #[test]
    fn summaries_and_comparisons() {
        let task = Task::new(CommitId::parse(&"a".repeat(40)).unwrap());
        let cand = VariantKind::Candidate(CandidateName::parse("agent").unwrap());
        let mut attempts = Vec::new();
        for (round, (b, h)) in [
            (100.0, 150.0),
            (101.0, 151.0),
            (99.0, 149.0),
            (100.5, 150.5),
            (99.5, 149.5),
        ]
        .iter()
        .enumerate()
        {
            attempts.push(attempt(
                &task,
                VariantKind::Baseline,
                round as u32,
                AttemptStatus::Ok,
                Some(*b),
            ));
            attempts.push(attempt(
                &task,
                VariantKind::Human,
                round as u32,
                AttemptStatus::Ok,
                Some(*h),
            ));
            attempts.push(attempt(
                &task,
                cand.clone(),
                round as u32,
                AttemptStatus::Crashed,
                None,
            ));
        }
        let mut warm = attempt(
            &task,
            VariantKind::Baseline,
            9,
            AttemptStatus::Ok,
            Some(1.0),
        );
        warm.is_warmup = true;
        attempts.push(warm);
        let reports = task_measurements(&[task], &attempts, &settings());
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
        assert_eq!(
            report.comparisons[1].comparison.verdict,
            Verdict::Inconclusive
        );
        // The report says how the candidate failed, not "inconclusive".
        assert_eq!(
            report.comparisons[1].verdict,
            ShownVerdict::Failed(AttemptStatus::Crashed)
        );
        assert_eq!(
            report.comparisons[1].failed.as_ref().map(|f| f.side),
            Some(Side::Treatment)
        );
        assert_eq!(
            report.comparisons[0].verdict,
            ShownVerdict::Statistical(Verdict::Better)
        );
        assert_eq!(report.comparisons[0].failed, None);
        assert_eq!(baseline.n_warmup, 1);
        assert_eq!(human.n_warmup, 0);
        assert_eq!(
            (report.delta, report.delta_source),
            (0.02, DeltaSource::Suite)
        );
    }

    #[test]
    fn failure_class_in_the_verdict_label() {
        let task = Task::new(CommitId::parse(&"b".repeat(40)).unwrap());
        let cand = VariantKind::Candidate(CandidateName::parse("agent").unwrap());
        let mut attempts = Vec::new();
        for round in 0..3 {
            attempts.push(attempt(
                &task,
                VariantKind::Baseline,
                round,
                AttemptStatus::Ok,
                Some(100.0 + round as f64),
            ));
            let mut human = attempt(
                &task,
                VariantKind::Human,
                round,
                AttemptStatus::Crashed,
                None,
            );
            human.failure = Some(FailureClass {
                kind: FailureKind::Infra,
                signature: "missing-compiled-extension".into(),
                evidence: "x".into(),
            });
            attempts.push(human);
            let mut c = attempt(
                &task,
                cand.clone(),
                round,
                AttemptStatus::Ok,
                Some(101.0 + round as f64),
            );
            c.metadata = serde_json::json!({"harness_paths": ["benchmarks/benchmark_serving.py"]});
            attempts.push(c);
        }
        let report = &task_measurements(&[task], &attempts, &settings())[0];
        let human_vs_base = &report.comparisons[0];
        assert_eq!(human_vs_base.verdict_label(), "crashed (infra)");
        let cand_vs_human = report
            .comparisons
            .iter()
            .find(|c| c.treatment == cand && c.control == VariantKind::Human)
            .unwrap();
        assert_eq!(
            cand_vs_human.verdict_label(),
            "inconclusive (human crashed)"
        );
        assert_eq!(
            cand_vs_human.failed.as_ref().map(|f| f.side),
            Some(Side::Control)
        );
        let candidate = report.variants.iter().find(|v| v.variant == cand).unwrap();
        assert_eq!(
            candidate.harness_paths,
            vec!["benchmarks/benchmark_serving.py".to_string()]
        );
        assert_eq!(
            serde_json::to_value(human_vs_base).unwrap()["verdict"],
            "crashed"
        );
    }

    #[test]
    fn zero_delta_comes_from_the_baseline_noise() {
        let task = Task::new(CommitId::parse(&"c".repeat(40)).unwrap());
        let mut attempts = Vec::new();
        for (round, value) in [97.0, 103.0, 100.0, 96.0, 104.0, 99.0, 101.0]
            .into_iter()
            .enumerate()
        {
            attempts.push(attempt(
                &task,
                VariantKind::Baseline,
                round as u32,
                AttemptStatus::Ok,
                Some(value),
            ));
            attempts.push(attempt(
                &task,
                VariantKind::Human,
                round as u32,
                AttemptStatus::Ok,
                Some(value * 1.001),
            ));
        }
        let mut settings = settings();
        settings.stats.delta = 0.0;
        let report = &task_measurements(&[task], &attempts, &settings)[0];
        assert_eq!(report.delta_source, DeltaSource::Noise);
        assert!(
            report.delta > 0.02 && report.delta < 0.04,
            "{}",
            report.delta
        );
        assert_eq!(report.comparisons[0].comparison.delta, report.delta);
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }
}
