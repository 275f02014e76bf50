//! Categories and findings: the rules that give a task its [`Category`] (is it usable?) and its
//! [`Finding`] (the one thing to know, most upstream cause first), with the evidence behind them.
//! `docs/analysis.md` states the same rules in words.

use serde::Serialize;

use crate::attempt::{AttemptStatus, FailureKind};
use crate::availability::Presence;
use crate::ids::VariantKind;

use super::variants::{
    TaskImages, VariantImage, VariantStatus, blame, failed_candidates, signature_of,
};
use super::vocabulary::{Category, EvidenceKind, Finding};

/// One piece of evidence behind a category or finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    pub kind: EvidenceKind,
    /// The variant it is about (`None` for task-wide evidence such as an unknown model).
    pub variant: Option<VariantKind>,
    /// Who is to blame after the cross-variant judgement.
    pub blame: Option<FailureKind>,
    /// The triage signature (e.g. `missing-compiled-extension`).
    pub signature: Option<String>,
    /// The log line (or error text) that matched, or a sentence for non-failure evidence.
    pub line: Option<String>,
    /// The image ref, for missing images.
    pub image: Option<String>,
}

/// The facts the rules below are written in.
pub(super) struct Facts {
    pub(super) baseline_attempted: bool,
    pub(super) human_attempted: bool,
    pub(super) baseline_worked: bool,
    pub(super) human_worked: bool,
    /// Candidates with attempts.
    pub(super) n_candidates: usize,
    pub(super) n_candidates_worked: usize,
    pub(super) baseline_image_missing: bool,
    pub(super) human_image_missing: bool,
    pub(super) model_known: bool,
}

impl Facts {
    pub(super) fn new(variants: &[VariantStatus], images: &TaskImages, model_known: bool) -> Facts {
        let get = |kind: &VariantKind| variants.iter().find(|v| &v.variant == kind);
        let baseline = get(&VariantKind::Baseline);
        let human = get(&VariantKind::Human);
        let baseline_worked = baseline.is_some_and(|v| v.worked);
        let human_worked = human.is_some_and(|v| v.worked);
        // An image that an attempt ran in existed then; its failure, not its absence, is the
        // story (the images table still shows it missing now).
        let ran = |v: Option<&VariantStatus>| {
            v.is_some_and(|v| {
                v.statuses.keys().any(|s| {
                    matches!(
                        s,
                        AttemptStatus::Ok
                            | AttemptStatus::Crashed
                            | AttemptStatus::Timeout
                            | AttemptStatus::NoMetrics
                    )
                })
            })
        };
        Facts {
            baseline_attempted: baseline.is_some(),
            human_attempted: human.is_some(),
            baseline_worked,
            human_worked,
            n_candidates: variants
                .iter()
                .filter(|v| v.variant.candidate().is_some())
                .count(),
            n_candidates_worked: variants
                .iter()
                .filter(|v| v.variant.candidate().is_some() && v.worked)
                .count(),
            baseline_image_missing: !ran(baseline) && images.baseline.presence == Presence::Missing,
            human_image_missing: !ran(human) && images.human.presence == Presence::Missing,
            model_known,
        }
    }

    pub(super) fn usable(&self) -> bool {
        self.baseline_worked && self.human_worked
    }
}

pub(super) fn categorize(
    facts: &Facts,
    variants: &[VariantStatus],
    images: &TaskImages,
) -> (Category, String) {
    let get = |kind: VariantKind| variants.iter().find(|v| v.variant == kind);
    if facts.usable() {
        let failed = failed_candidates(variants);
        if failed.is_empty() {
            return (
                Category::Complete,
                format!(
                    "baseline, human and {} candidate(s) measured ({}-way)",
                    facts.n_candidates,
                    2 + facts.n_candidates
                ),
            );
        }
        let list: Vec<String> = failed
            .iter()
            .map(|v| format!("{} failed with {}", v.variant, signature_of(v)))
            .collect();
        return (
            Category::Complete,
            format!("baseline and human measured; {}", list.join("; ")),
        );
    }
    if !facts.model_known {
        return (
            Category::UnknownModel,
            // The task's own reason (what was looked at, and why it is no model) replaces this.
            "no model is known".into(),
        );
    }
    let baseline_failed_running =
        facts.baseline_attempted && !facts.baseline_worked && !facts.baseline_image_missing;
    if facts.human_worked && !baseline_failed_running {
        let why = if facts.baseline_image_missing {
            format!(
                "the baseline image {} is missing",
                images.baseline.image_ref.as_deref().unwrap_or("?")
            )
        } else {
            "the baseline has no attempts".to_string()
        };
        return (
            Category::HumanOnly,
            format!("only the human is measured: {why}"),
        );
    }
    if facts.baseline_image_missing || facts.human_image_missing {
        let mut missing = Vec::new();
        if facts.baseline_image_missing {
            missing.push(format!(
                "baseline image {} is missing",
                images.baseline.image_ref.as_deref().unwrap_or("?")
            ));
        }
        if facts.human_image_missing {
            missing.push(format!(
                "human image {} is missing",
                images.human.image_ref.as_deref().unwrap_or("?")
            ));
        }
        return (Category::MissingImage, missing.join("; "));
    }
    if baseline_failed_running {
        let baseline = get(VariantKind::Baseline);
        let n = baseline.map(|b| b.n_attempts).unwrap_or(0);
        let sig = baseline.map(signature_of).unwrap_or_default();
        return (
            Category::BaselineFailedEverywhere,
            format!("the baseline failed in all {n} attempt(s) ({sig})"),
        );
    }
    let reason = match (facts.baseline_attempted, facts.human_attempted) {
        (false, false) => "not run: no attempts for the baseline or the human".to_string(),
        (false, true) => "the baseline has no attempts".to_string(),
        (true, false) => "the human has no attempts".to_string(),
        (true, true) => {
            let sig = get(VariantKind::Human)
                .map(signature_of)
                .unwrap_or_default();
            format!("the baseline works but the human fails ({sig})")
        }
    };
    (Category::OtherFailed, reason)
}

pub(super) fn find(
    facts: &Facts,
    variants: &[VariantStatus],
    images: &TaskImages,
) -> (Finding, String) {
    let get = |kind: VariantKind| variants.iter().find(|v| v.variant == kind);
    let image = |i: &VariantImage| i.image_ref.clone().unwrap_or_else(|| "?".into());
    if facts.baseline_image_missing && facts.human_image_missing {
        return (
            Finding::NoImages,
            format!(
                "neither the baseline image {} nor the human image {} exists",
                image(&images.baseline),
                image(&images.human)
            ),
        );
    }
    if facts.baseline_image_missing {
        return (
            Finding::MissingBaselineImage,
            format!("the baseline image {} is missing", image(&images.baseline)),
        );
    }
    if facts.human_image_missing {
        return (
            Finding::HumanImageBroken,
            format!("the human image {} is missing", image(&images.human)),
        );
    }
    let human = get(VariantKind::Human);
    if let Some(j) = human
        .and_then(|h| h.judgement.as_ref())
        .filter(|j| j.finding == "human_image_broken")
    {
        return (Finding::HumanImageBroken, j.reason.clone());
    }
    if !facts.baseline_attempted || !facts.human_attempted {
        let which = match (facts.baseline_attempted, facts.human_attempted) {
            (false, false) => "neither the baseline nor the human has attempts",
            (false, true) => "the baseline has no attempts",
            _ => "the human has no attempts",
        };
        return (Finding::NotRun, which.to_string());
    }
    let candidates_all_failed = facts.n_candidates > 0 && facts.n_candidates_worked == 0;
    if !facts.human_worked
        && (candidates_all_failed || (facts.n_candidates == 0 && !facts.baseline_worked))
    {
        let others = if facts.n_candidates > 0 {
            "every candidate"
        } else {
            "the baseline"
        };
        let sig = human.map(signature_of).unwrap_or_default();
        return (
            Finding::BothFailed,
            format!("the human ({sig}) and {others} failed: nothing to compare"),
        );
    }
    if !facts.baseline_worked && facts.human_worked {
        let sig = get(VariantKind::Baseline)
            .map(signature_of)
            .unwrap_or_default();
        return (
            Finding::BaselineFailed,
            format!("the baseline fails ({sig}) while the human works"),
        );
    }
    if !facts.human_worked {
        let sig = human.map(signature_of).unwrap_or_default();
        return (
            Finding::HumanFailed,
            format!("the human change fails ({sig}) while code on the baseline image works"),
        );
    }
    // From here on both baseline and human worked.
    let failed = failed_candidates(variants);
    let crashed: Vec<&&VariantStatus> = failed
        .iter()
        .filter(|v| blame(v) != Some(FailureKind::Infra))
        .collect();
    if !crashed.is_empty() {
        let list: Vec<String> = crashed
            .iter()
            .map(|v| format!("{} ({})", v.variant, signature_of(v)))
            .collect();
        return (
            Finding::CandidateCrashed,
            format!(
                "the human works; the candidate broke it: {}",
                list.join(", ")
            ),
        );
    }
    if !failed.is_empty() {
        let list: Vec<String> = failed
            .iter()
            .map(|v| format!("{} ({})", v.variant, signature_of(v)))
            .collect();
        return (
            Finding::CandidateInfraFailed,
            format!(
                "candidate(s) not measured because of infrastructure: {}",
                list.join(", ")
            ),
        );
    }
    (
        Finding::Working,
        format!("{}-way measured", 2 + facts.n_candidates),
    )
}

pub(super) fn evidence(
    facts: &Facts,
    variants: &[VariantStatus],
    images: &TaskImages,
) -> Vec<Evidence> {
    let mut out = Vec::new();
    if !facts.model_known {
        out.push(Evidence {
            kind: EvidenceKind::UnknownModel,
            variant: None,
            blame: None,
            signature: None,
            line: Some(
                "no model in the task row, its perf_command, the result rows or the suite".into(),
            ),
            image: None,
        });
    }
    for (kind, image, missing) in [
        (
            VariantKind::Baseline,
            &images.baseline,
            facts.baseline_image_missing,
        ),
        (VariantKind::Human, &images.human, facts.human_image_missing),
    ] {
        if missing {
            out.push(Evidence {
                kind: EvidenceKind::MissingImage,
                variant: Some(kind),
                blame: Some(FailureKind::Infra),
                signature: Some("missing-image".into()),
                line: image
                    .source
                    .as_ref()
                    .map(|s| format!("missing according to {s}")),
                image: image.image_ref.clone(),
            });
        }
    }
    for (kind, attempted) in [
        (VariantKind::Baseline, facts.baseline_attempted),
        (VariantKind::Human, facts.human_attempted),
    ] {
        if !attempted {
            out.push(Evidence {
                kind: EvidenceKind::NotRun,
                variant: Some(kind),
                blame: None,
                signature: None,
                line: Some("no attempts".into()),
                image: None,
            });
        }
    }
    for variant in variants.iter().filter(|v| !v.worked) {
        let Some(failure) = &variant.failure else {
            continue;
        };
        out.push(Evidence {
            kind: EvidenceKind::Failure,
            variant: Some(variant.variant.clone()),
            blame: blame(variant),
            signature: Some(failure.signature.clone()),
            line: Some(failure.evidence.clone()),
            image: None,
        });
    }
    out
}
