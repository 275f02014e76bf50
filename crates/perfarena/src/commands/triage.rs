//! `perfarena triage`: every failed attempt with its class, signature and evidence line, then
//! per task the cross-variant judgement (who is to blame) and the candidates whose patch touches
//! the benchmark harness.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use serde::Serialize;

use perfarena_core::triage::{Judgement, Triage, VariantFate, judge_task};
use perfarena_core::{AttemptRecord, VariantKind};
use perfarena_store::{AttemptFilter, Store};

use crate::context::Ctx;

/// Version of the `--json` output.
pub const TRIAGE_JSON_VERSION: u32 = 1;

#[derive(clap::Args, Debug)]
pub struct TriageArgs {
    /// Only this run (default: the most recent run; `--all` for every attempt in the store).
    #[arg(long)]
    pub run_id: Option<String>,
    /// Every attempt in the store, all runs and imports.
    #[arg(long, conflicts_with = "run_id")]
    pub all: bool,
    /// Machine-readable output (schema version `version`).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
pub struct TriageReport {
    pub version: u32,
    pub run_id: Option<String>,
    pub failed: Vec<FailedAttempt>,
    pub tasks: Vec<TaskTriage>,
}

#[derive(Debug, Serialize)]
pub struct FailedAttempt {
    pub task: String,
    pub variant: String,
    pub round_idx: u32,
    pub status: String,
    /// `infra`, `candidate`, `resource` or `harness` (none for an untriaged import).
    pub class: Option<String>,
    pub signature: Option<String>,
    pub evidence: Option<String>,
    pub description: Option<String>,
    pub fix: Option<String>,
    pub message: String,
    pub log_dir: Option<String>,
    /// Cut short by a fatal backend error: `--resume` reruns its round.
    pub rerun_on_resume: bool,
}

#[derive(Debug, Serialize)]
pub struct TaskTriage {
    pub task: String,
    pub judgements: Vec<Judgement>,
    /// Candidates whose patch touches `bench.harness_globs`, with the paths.
    pub harness_touched: BTreeMap<String, Vec<String>>,
}

/// The triage of `attempts` (pure over the records).
pub fn triage_report(
    attempts: &[AttemptRecord],
    run_id: Option<String>,
    triage: &Triage,
) -> TriageReport {
    let mut failed = Vec::new();
    let mut by_task: BTreeMap<String, Vec<&AttemptRecord>> = BTreeMap::new();
    for attempt in attempts {
        by_task
            .entry(attempt.task.to_string())
            .or_default()
            .push(attempt);
        if attempt.status.is_ok() {
            continue;
        }
        let rule = attempt
            .failure
            .as_ref()
            .and_then(|f| triage.rule(&f.signature));
        failed.push(FailedAttempt {
            task: attempt.task.to_string(),
            variant: attempt.variant.to_string(),
            round_idx: attempt.round_idx,
            status: attempt.status.to_string(),
            class: attempt.failure.as_ref().map(|f| f.kind.to_string()),
            signature: attempt.failure.as_ref().map(|f| f.signature.clone()),
            evidence: attempt.failure.as_ref().map(|f| f.evidence.clone()),
            description: rule
                .map(|r| r.description.clone())
                .filter(|d| !d.is_empty()),
            fix: rule.map(|r| r.fix.clone()).filter(|f| !f.is_empty()),
            message: attempt.message.clone(),
            log_dir: attempt.log_dir.clone(),
            rerun_on_resume: attempt.rerun_on_resume,
        });
    }
    let mut tasks = Vec::new();
    for (task, attempts) in by_task {
        let mut fates: BTreeMap<VariantKind, VariantFate> = BTreeMap::new();
        let mut harness_touched = BTreeMap::new();
        for attempt in &attempts {
            let fate = fates
                .entry(attempt.variant.clone())
                .or_insert_with(|| VariantFate {
                    variant: attempt.variant.clone(),
                    worked: false,
                    failure: None,
                });
            if attempt.status.is_ok() {
                fate.worked = true;
            } else if attempt.failure.is_some() {
                fate.failure = attempt.failure.clone();
            }
            let paths: Vec<String> = attempt
                .metadata
                .get("harness_paths")
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|p| p.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            if !paths.is_empty() {
                harness_touched.insert(attempt.variant.to_string(), paths);
            }
        }
        // Baseline first, then human, then candidates: the judgement reads them in this order.
        let fates: Vec<VariantFate> = fates.into_values().collect();
        let judgements = judge_task(&fates);
        if !judgements.is_empty() || !harness_touched.is_empty() {
            tasks.push(TaskTriage {
                task,
                judgements,
                harness_touched,
            });
        }
    }
    TriageReport {
        version: TRIAGE_JSON_VERSION,
        run_id,
        failed,
        tasks,
    }
}

pub fn run(ctx: &Ctx, args: &TriageArgs) -> Result<ExitCode> {
    let suite = ctx.suite()?;
    let store = Store::open_existing(&ctx.state_dir)?;
    let run_id = match (&args.run_id, args.all) {
        (Some(id), _) => Some(
            store
                .run(id)?
                .with_context(|| format!("no run {id} in the store"))?
                .run_id,
        ),
        (None, true) => None,
        (None, false) => store.runs()?.first().map(|r| r.run_id.clone()),
    };
    let attempts = store.attempts(&AttemptFilter {
        run_id: run_id.clone(),
        ..Default::default()
    })?;
    let triage = Triage::new(&suite.triage.rules)?;
    let report = triage_report(&attempts, run_id, &triage);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", render_text(&report));
    Ok(ExitCode::SUCCESS)
}

/// The human-readable triage.
pub fn render_text(report: &TriageReport) -> String {
    let mut out = String::new();
    let scope = report
        .run_id
        .as_deref()
        .map(|r| format!("run {r}"))
        .unwrap_or_else(|| "all runs".into());
    if report.failed.is_empty() {
        out.push_str(&format!("{scope}: no failed attempts\n"));
    } else {
        out.push_str(&format!(
            "{scope}: {} failed attempt(s)\n",
            report.failed.len()
        ));
    }
    for f in &report.failed {
        let short = &f.task[..f.task.len().min(12)];
        out.push_str(&format!(
            "\n{short} {} round {}: {} — {} `{}`{}\n",
            f.variant,
            f.round_idx,
            f.status,
            f.class.as_deref().unwrap_or("unclassified"),
            f.signature.as_deref().unwrap_or("-"),
            if f.rerun_on_resume {
                " (rerun on --resume)"
            } else {
                ""
            }
        ));
        if let Some(evidence) = f.evidence.as_deref().filter(|e| !e.is_empty()) {
            out.push_str(&format!("  evidence: {evidence}\n"));
        }
        if let Some(description) = &f.description {
            out.push_str(&format!("  meaning:  {description}\n"));
        }
        if let Some(fix) = &f.fix {
            out.push_str(&format!("  fix:      {fix}\n"));
        }
        if !f.message.is_empty() && f.evidence.as_deref() != Some(f.message.as_str()) {
            out.push_str(&format!(
                "  message:  {}\n",
                f.message.lines().next().unwrap_or("")
            ));
        }
        out.push_str(&format!(
            "  logs:     perfarena logs {short} {} {}\n",
            f.variant, f.round_idx
        ));
    }
    for task in &report.tasks {
        let short = &task.task[..task.task.len().min(12)];
        out.push_str(&format!("\ntask {short}:\n"));
        for j in &task.judgements {
            out.push_str(&format!(
                "  {}: {} ({}): {}\n",
                j.variant, j.finding, j.blame, j.reason
            ));
        }
        for (variant, paths) in &task.harness_touched {
            out.push_str(&format!(
                "  {variant}: patch touches the benchmark harness ({}): flagged\n",
                paths.join(", ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use perfarena_core::{AttemptStatus, CandidateName, CommitId, FailureClass, FailureKind};

    fn attempt(
        variant: VariantKind,
        status: AttemptStatus,
        failure: Option<(FailureKind, &str, &str)>,
    ) -> AttemptRecord {
        let mut a = AttemptRecord::new(
            CommitId::parse("35fad35a485eac9195c510731ba4a9d297dfd963").unwrap(),
            variant,
            0,
            status,
        );
        a.failure = failure.map(|(kind, signature, evidence)| FailureClass {
            kind,
            signature: signature.into(),
            evidence: evidence.into(),
        });
        a
    }

    #[test]
    fn failed_attempts_and_judgements() {
        let cand = VariantKind::Candidate(CandidateName::parse("agent").unwrap());
        let mut touched = attempt(
            cand.clone(),
            AttemptStatus::Crashed,
            Some((
                FailureKind::Candidate,
                "module-not-found",
                "ModuleNotFoundError: No module named 'x'",
            )),
        );
        touched.metadata = serde_json::json!({"harness_paths": ["benchmarks/bench.sh"]});
        let attempts = vec![
            attempt(VariantKind::Baseline, AttemptStatus::Ok, None),
            attempt(
                VariantKind::Human,
                AttemptStatus::Crashed,
                Some((
                    FailureKind::Infra,
                    "missing-compiled-extension",
                    "No module named 'vllm._C'",
                )),
            ),
            touched,
        ];
        let report = triage_report(&attempts, Some("r1".into()), &Triage::builtin());
        assert_eq!(report.failed.len(), 2);
        assert_eq!(
            report.failed[0].fix.as_deref(),
            Some("rebuild the image with its compile step")
        );
        let findings: Vec<(&str, &str)> = report.tasks[0]
            .judgements
            .iter()
            .map(|j| (j.finding.as_str(), j.signature.as_str()))
            .collect();
        assert!(
            findings.contains(&("human_image_broken", "missing-compiled-extension")),
            "{findings:?}"
        );
        assert!(
            findings.contains(&("candidate_broke_it", "module-not-found")),
            "{findings:?}"
        );
        assert_eq!(
            report.tasks[0].harness_touched["candidate:agent"],
            vec!["benchmarks/bench.sh"]
        );
        let text = render_text(&report);
        assert!(
            text.contains("evidence: No module named 'vllm._C'"),
            "{text}"
        );
        assert!(
            text.contains("patch touches the benchmark harness (benchmarks/bench.sh): flagged"),
            "{text}"
        );
        assert!(
            text.contains("perfarena logs 35fad35a485e human 0"),
            "{text}"
        );
    }
}
