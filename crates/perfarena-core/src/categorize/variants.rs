//! Per-variant judgement: how each variant of a task fared (its attempts, its failure class and
//! the cross-variant judgement of who is to blame) and what is known about the baseline and
//! human images.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::analysis::{TaskMeasurement, VariantSummary};
use crate::attempt::{AttemptRecord, AttemptStatus, FailureClass, FailureKind};
use crate::availability::{ImageIndex, Presence, normalize_ref};
use crate::ids::VariantKind;
use crate::images::image_ref;
use crate::suite::Suite;
use crate::task::Task;
use crate::triage::{Judgement, Triage, VariantFate, judge_task};

/// Availability of a task's baseline and human images.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskImages {
    pub baseline: VariantImage,
    pub human: VariantImage,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariantImage {
    /// The ref looked up (the suite's template, or the one the attempts name).
    pub image_ref: Option<String>,
    pub presence: Presence,
    /// `registry`, `import:<name>`, `attempts`…; `None` when unknown.
    pub source: Option<String>,
}

/// How one variant of a task fared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariantStatus {
    pub variant: VariantKind,
    pub n_attempts: usize,
    pub n_ok: usize,
    pub worked: bool,
    /// `ok` when any attempt measured; otherwise the most frequent failure status.
    pub status: AttemptStatus,
    /// Attempts per status.
    pub statuses: BTreeMap<AttemptStatus, usize>,
    /// `measured`, `imported` or `mixed`.
    pub provenance: String,
    pub median: Option<f64>,
    pub failure: Option<FailureClass>,
    /// The cross-variant judgement of its failure.
    pub judgement: Option<Judgement>,
}

pub(super) fn find_variant<'a>(
    report: &'a TaskMeasurement,
    variant: &VariantKind,
) -> Option<&'a VariantSummary> {
    report.variants.iter().find(|v| &v.variant == variant)
}

pub(super) fn worked(report: &TaskMeasurement, variant: &VariantKind) -> bool {
    find_variant(report, variant).is_some_and(|v| v.n_ok > 0)
}

/// The image state of the baseline or the human: the registry/listing data for the suite's ref
/// and the refs the attempts name; failing that, what the attempts show.
pub(super) fn variant_image(
    task: &Task,
    variant: &VariantKind,
    attempts: &[&AttemptRecord],
    suite: &Suite,
    index: &ImageIndex,
    summary: Option<&VariantSummary>,
) -> VariantImage {
    let mut refs: Vec<String> = Vec::new();
    if let Ok(expected) = image_ref(&suite.images, task, variant, None) {
        refs.push(expected);
    }
    for attempt in attempts.iter().filter(|a| &a.variant == variant) {
        if let Some(image) = attempt
            .image
            .as_deref()
            .map(str::trim)
            .filter(|i| !i.is_empty())
            && !refs.iter().any(|r| r == image)
        {
            refs.push(image.to_string());
        }
    }
    let states: Vec<_> = refs.iter().map(|r| index.state(r)).collect();
    let pick = |presence: Presence| states.iter().find(|s| s.presence == presence);
    if let Some(state) = pick(Presence::Present).or_else(|| pick(Presence::Missing)) {
        return VariantImage {
            image_ref: Some(state.image_ref.clone()),
            presence: state.presence,
            source: state.source.clone(),
        };
    }
    // Nothing in the index: the attempts say what they saw. An image named by the attempts is
    // shown in preference to the suite's template (it is the one that was actually used).
    let shown = refs.last().map(|r| normalize_ref(r));
    let worked = summary.is_some_and(|s| s.n_ok > 0);
    let said_missing = attempts.iter().any(|a| {
        &a.variant == variant
            && (a.status == AttemptStatus::MissingImage
                || a.failure
                    .as_ref()
                    .is_some_and(|f| f.signature == "missing-image"))
    });
    let (presence, source) = if worked {
        (Presence::Present, Some("attempts".to_string()))
    } else if said_missing {
        (Presence::Missing, Some("attempts".to_string()))
    } else {
        (Presence::Unknown, None)
    };
    VariantImage {
        image_ref: shown,
        presence,
        source,
    }
}

pub(super) fn signature_of(variant: &VariantStatus) -> String {
    variant
        .failure
        .as_ref()
        .map(|f| format!("`{}`", f.signature))
        .unwrap_or_else(|| format!("status {}", variant.status))
}

pub(super) fn failed_candidates(variants: &[VariantStatus]) -> Vec<&VariantStatus> {
    variants
        .iter()
        .filter(|v| v.variant.candidate().is_some() && !v.worked)
        .collect()
}

/// Who is to blame for a failed variant: the judgement's, else its failure class's.
pub(super) fn blame(variant: &VariantStatus) -> Option<FailureKind> {
    variant
        .judgement
        .as_ref()
        .map(|j| j.blame)
        .or_else(|| variant.failure.as_ref().map(|f| f.kind))
}

/// Each variant's status with the cross-variant judgement of its failure; a failed variant
/// always gets a failure class (the triage of its status and message when it has none).
pub(super) fn variant_statuses(report: &TaskMeasurement, triage: &Triage) -> Vec<VariantStatus> {
    let fates: Vec<VariantFate> = report
        .variants
        .iter()
        .map(|v| {
            let worked = v.n_ok > 0;
            let failure = if worked {
                None
            } else {
                v.failure.clone().or_else(|| {
                    triage.classify_attempt(v.status, v.message.as_deref().unwrap_or(""), &[])
                })
            };
            VariantFate {
                variant: v.variant.clone(),
                worked,
                failure,
            }
        })
        .collect();
    let judgements = judge_task(&fates);
    report
        .variants
        .iter()
        .zip(&fates)
        .map(|(v, fate)| VariantStatus {
            variant: v.variant.clone(),
            n_attempts: v.n_attempts,
            n_ok: v.n_ok,
            worked: fate.worked,
            status: v.status,
            statuses: v.statuses.clone(),
            provenance: v.provenance.clone(),
            median: v.median,
            failure: fate.failure.clone(),
            judgement: judgements.iter().find(|j| j.variant == v.variant).cloned(),
        })
        .collect()
}
