//! One task's status: its model, variants, images, category, finding, evidence,
//! recoverability and candidate outcomes, each from the module that owns the rule.

use serde::Serialize;

use crate::analysis::{AnalysisSettings, TaskMeasurement};
use crate::attempt::AttemptRecord;
use crate::availability::ImageIndex;
use crate::ids::{CommitId, VariantKind};
use crate::suite::Suite;
use crate::task::{BenchKind, Task, is_placeholder, model_from_command};
use crate::triage::Triage;

use super::findings::{Evidence, Facts, categorize, evidence, find};
use super::judge::PairQuadrant;
use super::outcomes::{CandidateOutcome, LegacyView, candidate_outcomes};
use super::recoverability::{Recoverability, permanently_failed, recoverability};
use super::variants::{TaskImages, VariantStatus, find_variant, variant_image, variant_statuses};
use super::vocabulary::{Category, Finding};

/// One task's status.
#[derive(Debug, Clone, Serialize)]
pub struct TaskStatus {
    pub commit: CommitId,
    pub parent: Option<CommitId>,
    /// The first 12 characters of the commit.
    pub short: String,
    pub subject: Option<String>,
    pub pr_url: Option<String>,
    /// The task's repository as its row names it (`vllm`, `sgl-project/sglang`…).
    pub repo: Option<String>,
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
    /// The quadrant view of every candidate with attempts or a judge row on this task.
    pub quadrants: Vec<PairQuadrant>,
}

/// The model and where it came from; when none is found, why not (for `unknown_model`).
fn task_model(task: &Task, attempts: &[&AttemptRecord], suite: &Suite) -> ModelSource {
    let found = |model: String, source: &str| ModelSource {
        model: Some(model),
        source: Some(source.to_string()),
        why_unknown: String::new(),
    };
    let listed: Vec<&str> = task
        .models
        .iter()
        .map(|m| m.trim())
        .filter(|m| !m.is_empty())
        .collect();
    if let Some(model) = listed.iter().find(|m| !is_placeholder(m)) {
        return found((*model).to_string(), "task");
    }
    let from_command = task.perf_command.as_deref().map(model_from_command);
    if let Some(Ok(model)) = &from_command {
        return found(model.clone(), "perf_command");
    }
    let from_results = attempts.iter().find_map(|a| {
        a.metadata
            .get("model")
            .and_then(|m| m.as_str())
            .map(str::trim)
            .filter(|m| !m.is_empty() && !is_placeholder(m))
            .map(str::to_string)
    });
    if let Some(model) = from_results {
        return found(model, "results");
    }
    if !suite.bench.default_model.trim().is_empty() {
        return found(
            suite.bench.default_model.trim().to_string(),
            "suite_default",
        );
    }
    let mut why = vec![match listed.first() {
        Some(placeholder) => {
            format!("the task row's `models` holds only the placeholder `{placeholder}`")
        }
        None => "the task row names none".to_string(),
    }];
    why.push(match from_command {
        Some(Err(reason)) => reason,
        _ => "it has no perf_command".to_string(),
    });
    why.push("no result row names one and bench.default_model is empty".to_string());
    ModelSource {
        model: None,
        source: None,
        why_unknown: format!("no model: {}", why.join("; ")),
    }
}

struct ModelSource {
    model: Option<String>,
    source: Option<String>,
    why_unknown: String,
}

pub(super) fn task_status(
    report: &TaskMeasurement,
    suite: &Suite,
    all_attempts: &[AttemptRecord],
    triage: &Triage,
    index: &ImageIndex,
    settings: &AnalysisSettings,
    legacy: Option<&LegacyView>,
) -> TaskStatus {
    let task = &report.task;
    let attempts: Vec<&AttemptRecord> = all_attempts
        .iter()
        .filter(|a| a.task == task.commit && !a.is_warmup)
        .collect();
    let ModelSource {
        model,
        source: model_source,
        why_unknown,
    } = task_model(task, &attempts, suite);

    let variants = variant_statuses(report, triage);

    let baseline = find_variant(report, &VariantKind::Baseline);
    let human = find_variant(report, &VariantKind::Human);
    let images = TaskImages {
        baseline: variant_image(
            task,
            &VariantKind::Baseline,
            &attempts,
            suite,
            index,
            baseline,
        ),
        human: variant_image(task, &VariantKind::Human, &attempts, suite, index, human),
    };

    let facts = Facts::new(&variants, &images, model.is_some());
    let (category, mut category_reason) = categorize(&facts, &variants, &images);
    if category == Category::UnknownModel {
        category_reason = why_unknown;
    }
    let (finding, finding_reason) = find(&facts, &variants, &images);
    let evidence = evidence(&facts, &variants, &images);
    let permanently_failed = permanently_failed(suite, task);
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
        repo: task.repo.clone(),
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
        quadrants: Vec::new(),
    }
}
