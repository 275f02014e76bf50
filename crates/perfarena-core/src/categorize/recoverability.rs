//! Recoverability: what exactly it would take to get a task benchmarked, as data
//! ([`RecoveryAction`]s), one line per action, and the [`Recommendation`]s that group the tasks
//! needing the same step.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::attempt::FailureKind;
use crate::ids::{CandidateName, CommitId, VariantKind};
use crate::suite::Suite;
use crate::task::Task;
use crate::triage::Triage;

use super::findings::Facts;
use super::variants::{TaskImages, VariantStatus, blame, failed_candidates};
use super::vocabulary::Category;

/// What it would take to get a task benchmarked, as data.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum RecoveryAction {
    /// Build (or rebuild) the baseline image of the parent commit.
    BuildBaselineImage {
        parent: Option<CommitId>,
        image: Option<String>,
        /// `missing`, or the failure signature that says the image is broken.
        cause: String,
    },
    /// Build (or rebuild) the human image.
    RebuildHumanImage {
        commit: CommitId,
        image: Option<String>,
        cause: String,
        fix: Option<String>,
    },
    /// Rebuild a candidate's image (its failure was infrastructure, not the candidate).
    RebuildCandidateImage {
        candidate: CandidateName,
        cause: String,
    },
    /// Name the model: in the task row, the perf command's `--model`, or `bench.default_model`.
    SupplyModel { hint: String },
    /// A resource limit (OOM, disk): rerun with more of it.
    FixResources {
        variant: VariantKind,
        signature: String,
        fix: String,
    },
    /// The benchmark harness does not fit this code: use a harness of its era.
    FixHarness {
        variant: VariantKind,
        signature: String,
        fix: String,
    },
    /// Nothing is known to be wrong: run (or rerun) these variants.
    Rerun {
        variants: Vec<VariantKind>,
        reason: String,
    },
    /// A failure with no known fix (the code itself crashes): a person must look. Not recoverable.
    Investigate {
        variant: VariantKind,
        signature: String,
        evidence: String,
    },
    /// The suite marks the commit `permanently_failed`: nothing to do. Not recoverable.
    NonePermanentlyFailed { reason: String },
}

impl RecoveryAction {
    /// The action's name as serialised (`build_baseline_image`…).
    pub fn name(&self) -> &'static str {
        match self {
            RecoveryAction::BuildBaselineImage { .. } => "build_baseline_image",
            RecoveryAction::RebuildHumanImage { .. } => "rebuild_human_image",
            RecoveryAction::RebuildCandidateImage { .. } => "rebuild_candidate_image",
            RecoveryAction::SupplyModel { .. } => "supply_model",
            RecoveryAction::FixResources { .. } => "fix_resources",
            RecoveryAction::FixHarness { .. } => "fix_harness",
            RecoveryAction::Rerun { .. } => "rerun",
            RecoveryAction::Investigate { .. } => "investigate",
            RecoveryAction::NonePermanentlyFailed { .. } => "none_permanently_failed",
        }
    }

    /// Whether this action is a known step that gets the task benchmarked.
    pub fn is_recovery(&self) -> bool {
        !matches!(
            self,
            RecoveryAction::Investigate { .. } | RecoveryAction::NonePermanentlyFailed { .. }
        )
    }
}

/// Whether a task that is not complete can be made so, and how.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recoverability {
    /// Every action is a known recovery step (no `investigate`, not permanently failed).
    pub recoverable: bool,
    pub actions: Vec<RecoveryAction>,
    /// One line for tables, e.g. "build baseline image for parent 733e7c9e95f5".
    pub summary: String,
}

/// A step derived from the recoverability data, grouping tasks that need the same thing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommendation {
    /// The [`RecoveryAction`] name it groups.
    pub action: String,
    /// E.g. "build baseline images for these parents".
    pub title: String,
    /// What to act on: parents, image refs, models…
    pub items: Vec<String>,
    /// The tasks (short commits) it would unblock.
    pub tasks: Vec<String>,
}

pub(super) fn permanently_failed(suite: &Suite, task: &Task) -> Option<String> {
    let keys = std::iter::once(&task.commit).chain(task.parent.as_ref());
    keys.filter_map(|commit| suite.build_override(commit.as_str()))
        .find_map(|o| o.permanently_failed.clone())
}

pub(super) fn recoverability(
    task: &Task,
    category: Category,
    facts: &Facts,
    variants: &[VariantStatus],
    images: &TaskImages,
    triage: &Triage,
    permanently_failed: Option<String>,
) -> Option<Recoverability> {
    let mut actions = Vec::new();
    if let Some(reason) = permanently_failed.filter(|_| !category.is_usable()) {
        actions.push(RecoveryAction::NonePermanentlyFailed { reason });
        return Some(finish(actions));
    }
    let fix_of = |signature: &str| {
        triage
            .rule(signature)
            .map(|r| r.fix.clone())
            .filter(|f| !f.is_empty())
    };
    if category.is_usable() {
        // The candidates' own failures are results; only infrastructure gaps are recoverable.
        for v in failed_candidates(variants) {
            if blame(v) == Some(FailureKind::Infra) {
                let candidate = v
                    .variant
                    .candidate()
                    .cloned()
                    .expect("failed_candidates returns candidates");
                let cause = v
                    .failure
                    .as_ref()
                    .map(|f| f.signature.clone())
                    .unwrap_or_else(|| "failed".into());
                actions.push(RecoveryAction::RebuildCandidateImage { candidate, cause });
            }
        }
        return (!actions.is_empty()).then(|| finish(actions));
    }
    if !facts.model_known {
        actions.push(RecoveryAction::SupplyModel {
            hint: "add `models` to the task row, `--model` to its perf_command, or set bench.default_model".into(),
        });
    }
    let get = |kind: VariantKind| variants.iter().find(|v| v.variant == kind);
    if facts.baseline_image_missing {
        actions.push(RecoveryAction::BuildBaselineImage {
            parent: task.parent.clone(),
            image: images.baseline.image_ref.clone(),
            cause: "missing".into(),
        });
    }
    if facts.human_image_missing {
        actions.push(RecoveryAction::RebuildHumanImage {
            commit: task.commit.clone(),
            image: images.human.image_ref.clone(),
            cause: "missing".into(),
            fix: None,
        });
    }
    let mut rerun = Vec::new();
    for (kind, attempted, image_missing) in [
        (
            VariantKind::Baseline,
            facts.baseline_attempted,
            facts.baseline_image_missing,
        ),
        (
            VariantKind::Human,
            facts.human_attempted,
            facts.human_image_missing,
        ),
    ] {
        if image_missing {
            continue;
        }
        if !attempted {
            rerun.push(kind);
            continue;
        }
        let Some(v) = get(kind.clone()).filter(|v| !v.worked) else {
            continue;
        };
        let Some(failure) = &v.failure else {
            rerun.push(kind);
            continue;
        };
        let fix = fix_of(&failure.signature);
        let action = match (blame(v).unwrap_or(failure.kind), &kind) {
            (FailureKind::Infra, _)
                if failure.signature == "not-run" || failure.signature == "infra-error" =>
            {
                rerun.push(kind);
                continue;
            }
            (FailureKind::Infra, VariantKind::Baseline) => RecoveryAction::BuildBaselineImage {
                parent: task.parent.clone(),
                image: images.baseline.image_ref.clone(),
                cause: failure.signature.clone(),
            },
            (FailureKind::Infra, _) => RecoveryAction::RebuildHumanImage {
                commit: task.commit.clone(),
                image: images.human.image_ref.clone(),
                cause: failure.signature.clone(),
                fix,
            },
            (FailureKind::Resource, _) => RecoveryAction::FixResources {
                variant: kind,
                signature: failure.signature.clone(),
                fix: fix.unwrap_or_else(|| "give the job more of the exhausted resource".into()),
            },
            (FailureKind::Harness, _) => RecoveryAction::FixHarness {
                variant: kind,
                signature: failure.signature.clone(),
                fix: fix.unwrap_or_else(|| "use a benchmark harness that fits this code".into()),
            },
            (FailureKind::Candidate, _) => RecoveryAction::Investigate {
                variant: kind,
                signature: failure.signature.clone(),
                evidence: failure.evidence.clone(),
            },
        };
        if !actions.contains(&action) {
            actions.push(action);
        }
    }
    if !rerun.is_empty() {
        actions.push(RecoveryAction::Rerun {
            reason: format!(
                "{} not run (or stopped by infrastructure)",
                join_variants(&rerun)
            ),
            variants: rerun,
        });
    }
    if actions.is_empty() {
        actions.push(RecoveryAction::Investigate {
            variant: VariantKind::Human,
            signature: "unknown".into(),
            evidence: "no failure recorded".into(),
        });
    }
    Some(finish(actions))
}

fn join_variants(variants: &[VariantKind]) -> String {
    variants
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" and ")
}

fn finish(actions: Vec<RecoveryAction>) -> Recoverability {
    let recoverable = !actions.is_empty() && actions.iter().all(RecoveryAction::is_recovery);
    let summary = actions.iter().map(describe).collect::<Vec<_>>().join("; ");
    Recoverability {
        recoverable,
        actions,
        summary,
    }
}

/// One line for an action.
pub fn describe(action: &RecoveryAction) -> String {
    let short = |c: &CommitId| c.short(12).to_string();
    match action {
        RecoveryAction::BuildBaselineImage { parent, cause, .. } => {
            let parent = parent.as_ref().map(short).unwrap_or_else(|| "?".into());
            if cause == "missing" {
                format!("build baseline image for parent {parent}")
            } else {
                format!("rebuild baseline image for parent {parent} (`{cause}`)")
            }
        }
        RecoveryAction::RebuildHumanImage { commit, cause, .. } => {
            if cause == "missing" {
                format!("build human image for {}", short(commit))
            } else {
                format!("rebuild human image for {} (`{cause}`)", short(commit))
            }
        }
        RecoveryAction::RebuildCandidateImage { candidate, cause } => {
            format!("rebuild candidate:{candidate} image (`{cause}`)")
        }
        RecoveryAction::SupplyModel { .. } => "supply the model".into(),
        RecoveryAction::FixResources {
            variant,
            signature,
            fix,
        } => format!("{variant}: {fix} (`{signature}`)"),
        RecoveryAction::FixHarness {
            variant,
            signature,
            fix,
        } => format!("{variant}: {fix} (`{signature}`)"),
        RecoveryAction::Rerun { reason, .. } => format!("run: {reason}"),
        RecoveryAction::Investigate {
            variant, signature, ..
        } => format!("investigate {variant} failure (`{signature}`)"),
        RecoveryAction::NonePermanentlyFailed { reason } => {
            format!("none: permanently failed ({reason})")
        }
    }
}

/// One recommendation being gathered: action name, title, items, tasks.
type Group = (&'static str, String, BTreeSet<String>, Vec<String>);

/// The recommendations for tasks given as (short commit, recoverability).
pub(super) fn recommendations<'a>(
    tasks: impl IntoIterator<Item = (&'a str, &'a Recoverability)>,
) -> Vec<Recommendation> {
    // Grouped by (order, sub-key) in a stable order; items and tasks deduplicated.
    let mut groups: BTreeMap<(usize, String), Group> = BTreeMap::new();
    for (short, recoverability) in tasks {
        for action in &recoverability.actions {
            let (order, key, title, item) = match action {
                RecoveryAction::BuildBaselineImage {
                    parent,
                    image,
                    cause,
                } => {
                    let parent = parent
                        .as_ref()
                        .map(|p| p.short(12).to_string())
                        .unwrap_or_else(|| "?".into());
                    let item = match image {
                        Some(image) => format!("{parent} ({image})"),
                        None => parent,
                    };
                    if cause == "missing" {
                        (
                            0,
                            String::new(),
                            "build baseline images for these parents".to_string(),
                            item,
                        )
                    } else {
                        (
                            1,
                            cause.clone(),
                            format!("rebuild these baseline images: infra failure (`{cause}`)"),
                            item,
                        )
                    }
                }
                RecoveryAction::RebuildHumanImage {
                    commit,
                    image,
                    cause,
                    fix,
                } => {
                    let item = image
                        .clone()
                        .unwrap_or_else(|| commit.short(12).to_string());
                    if cause == "missing" {
                        (
                            2,
                            String::new(),
                            "build these missing human images".to_string(),
                            item,
                        )
                    } else {
                        let fix = fix.as_ref().map(|f| format!(" — {f}")).unwrap_or_default();
                        (
                            3,
                            cause.clone(),
                            format!("rebuild these human images: infra failure (`{cause}`){fix}"),
                            item,
                        )
                    }
                }
                RecoveryAction::RebuildCandidateImage { candidate, cause } => (
                    4,
                    cause.clone(),
                    format!("rebuild candidate images: infra failure (`{cause}`)"),
                    format!("{} candidate:{candidate}", short),
                ),
                RecoveryAction::SupplyModel { .. } => (
                    5,
                    String::new(),
                    "supply the model for these tasks".to_string(),
                    short.to_string(),
                ),
                RecoveryAction::FixResources {
                    signature,
                    fix,
                    variant,
                } => (
                    6,
                    signature.clone(),
                    format!("resource limit `{signature}`: {fix}"),
                    format!("{} {variant}", short),
                ),
                RecoveryAction::FixHarness {
                    signature,
                    fix,
                    variant,
                } => (
                    7,
                    signature.clone(),
                    format!("harness mismatch `{signature}`: {fix}"),
                    format!("{} {variant}", short),
                ),
                RecoveryAction::Rerun { variants, .. } => (
                    8,
                    String::new(),
                    "run these variants (no attempts yet, or stopped by infrastructure)"
                        .to_string(),
                    format!("{} {}", short, join_variants(variants)),
                ),
                RecoveryAction::Investigate {
                    variant, signature, ..
                } => (
                    9,
                    String::new(),
                    "investigate these failures (no known fix)".to_string(),
                    format!("{} {variant} `{signature}`", short),
                ),
                RecoveryAction::NonePermanentlyFailed { reason } => (
                    10,
                    String::new(),
                    "leave out: permanently failed".to_string(),
                    format!("{} ({reason})", short),
                ),
            };
            let entry = groups
                .entry((order, key))
                .or_insert_with(|| (action.name(), title, BTreeSet::new(), Vec::new()));
            entry.2.insert(item);
            if !entry.3.iter().any(|t| t == short) {
                entry.3.push(short.to_string());
            }
        }
    }
    groups
        .into_values()
        .map(|(action, title, items, tasks)| Recommendation {
            action: action.to_string(),
            title,
            items: items.into_iter().collect(),
            tasks,
        })
        .collect()
}
