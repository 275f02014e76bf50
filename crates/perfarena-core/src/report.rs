//! The report model: per task, what each variant measured and how the variants compare
//! ([`crate::analysis`]), with the task's status analysis ([`crate::categorize`]: category,
//! finding, recoverability, outcomes, quadrants) embedded as it is. Renderers only format it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::analysis::{TaskMeasurement, task_measurements};
use crate::categorize::{
    LegacyView, NoDataAs, OutcomeTable, ProvenanceSummary, QuadrantTable, Recommendation,
    StatusInput, StatusSummary, TaskStatus, settings_from_suite, status_model,
};
use crate::ids::VariantKind;
use crate::stats::{Direction, legacy_verdict};

/// Version of the report model (and of `perfarena report --format json`); `docs/report-schema.md`
/// describes it and what changed from the previous one.
pub const REPORT_VERSION: u32 = 3;

/// Everything a report shows: the model the renderers format.
#[derive(Debug, Clone, Serialize)]
pub struct ReportModel {
    pub version: u32,
    pub suite: String,
    pub primary_metric: String,
    pub direction: Direction,
    /// The (family-wise) confidence level of the intervals.
    pub confidence: f64,
    /// The suite's δ; 0 means each task's δ comes from its baseline's noise.
    pub delta: f64,
    /// The runs whose attempts are included (empty: all attempts in the store).
    pub runs: Vec<String>,
    /// The legacy single-threshold view, when on.
    pub legacy: Option<LegacyView>,
    pub provenance: ProvenanceSummary,
    /// Where image availability came from (`registry`, `import:<name>`…).
    pub image_sources: Vec<String>,
    /// The executive summary's counts.
    pub summary: StatusSummary,
    /// Per candidate, against the human change and against the baseline (usable tasks).
    pub outcomes: Vec<OutcomeTable>,
    pub quadrants: Vec<QuadrantTable>,
    /// How quadrant pairs without data were counted.
    pub quadrant_convention: NoDataAs,
    /// Steps derived from the recoverability data.
    pub recommendations: Vec<Recommendation>,
    pub tasks: Vec<TaskReport>,
}

/// One task in a report: its measurements (serialised inline) and its status analysis.
#[derive(Debug, Clone, Serialize)]
pub struct TaskReport {
    #[serde(flatten)]
    pub measured: TaskMeasurement,
    /// The task's status analysis (category, finding, images, recoverability, candidate
    /// outcomes).
    pub status: Option<TaskStatus>,
}

/// Builds the report model: the status analysis of `input` (computed once, by
/// [`crate::categorize::status_model`]) with each task's measurements and comparisons.
pub fn report_model(input: &StatusInput<'_>, runs: Vec<String>) -> ReportModel {
    let settings = settings_from_suite(input.suite);
    let status = status_model(input);
    let legacy_pct = status.legacy.as_ref().map(|view| view.threshold_pct);
    let mut by_commit: BTreeMap<_, TaskStatus> = status
        .tasks
        .into_iter()
        .map(|t| (t.commit.clone(), t))
        .collect();
    let mut tasks: Vec<TaskReport> = task_measurements(input.tasks, input.attempts, &settings)
        .into_iter()
        .map(|measured| TaskReport {
            status: by_commit.remove(&measured.task.commit),
            measured,
        })
        .collect();
    for task in &mut tasks {
        if let Some(pct) = legacy_pct {
            let medians: BTreeMap<&VariantKind, Option<f64>> = task
                .measured
                .variants
                .iter()
                .map(|v| (&v.variant, v.median))
                .collect();
            for comparison in &mut task.measured.comparisons {
                let median = |kind: &VariantKind| medians.get(kind).copied().flatten();
                comparison.legacy =
                    match (median(&comparison.control), median(&comparison.treatment)) {
                        (Some(control), Some(treatment)) => {
                            Some(legacy_verdict(control, treatment, settings.direction, pct))
                        }
                        _ => None,
                    };
            }
        }
    }
    ReportModel {
        version: REPORT_VERSION,
        suite: input.suite.suite.name.clone(),
        primary_metric: settings.primary.clone(),
        direction: settings.direction,
        confidence: settings.stats.confidence,
        delta: settings.stats.delta,
        runs,
        legacy: status.legacy,
        provenance: status.provenance,
        image_sources: status.image_sources,
        summary: status.summary,
        outcomes: status.outcomes,
        quadrants: status.quadrants,
        quadrant_convention: status.quadrant_convention,
        recommendations: status.recommendations,
        tasks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attempt::{AttemptRecord, AttemptStatus};
    use crate::ids::CommitId;
    use crate::stats::Verdict;
    use crate::task::Task;

    fn attempt(task: &Task, variant: VariantKind, round: u32, value: f64) -> AttemptRecord {
        let mut a = AttemptRecord::new(task.commit.clone(), variant, round, AttemptStatus::Ok);
        a.samples.push(("tput".into(), value));
        a
    }

    #[test]
    fn report_model_embeds_the_status_analysis_and_the_legacy_view() {
        let suite = crate::Suite::defaults();
        let task = Task::new(CommitId::parse(&"d".repeat(40)).unwrap());
        let mut attempts = Vec::new();
        for round in 0..3 {
            attempts.push(attempt(
                &task,
                VariantKind::Baseline,
                round,
                100.0 + round as f64,
            ));
            attempts.push(attempt(
                &task,
                VariantKind::Human,
                round,
                110.0 + round as f64,
            ));
        }
        for attempt in &mut attempts {
            attempt.samples[0].0 = suite.metric.primary.clone();
        }
        let input = StatusInput {
            suite: &suite,
            tasks: std::slice::from_ref(&task),
            attempts: &attempts,
            images: &[],
            listings: &[],
            labels: &[],
            legacy_threshold_pct: Some(2.0),
            no_data_as: NoDataAs::Undetermined,
        };
        let model = report_model(&input, vec!["r1".into()]);
        assert_eq!(model.version, REPORT_VERSION);
        assert_eq!(model.summary.n_tasks, 1);
        let report = &model.tasks[0];
        assert!(report.status.is_some());
        assert_eq!(report.measured.comparisons[0].legacy, Some(Verdict::Better));
        assert_eq!(model.legacy.as_ref().map(|l| l.threshold_pct), Some(2.0));
    }
}
