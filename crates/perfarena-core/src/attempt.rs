//! The outcome vocabulary of one attempt: its status and, for failures, the failure class.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ids::{CommitId, VariantKind};

/// How one execution of one variant ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    /// The client finished and its output held a complete result.
    Ok,
    /// The server or the client exited with an error (or the server exited before it was ready).
    Crashed,
    /// Readiness, the client or the whole attempt ran past its time limit.
    Timeout,
    /// The client exited successfully but printed no complete result.
    NoMetrics,
    /// The candidate's patch does not apply to the parent (`git apply --check` failed).
    PatchFailed,
    /// The variant's image does not exist.
    MissingImage,
    /// The variant's build (image build, or the local setup step) failed.
    BuildFailed,
    /// Something outside the code under test failed (daemon unreachable, disk full…).
    InfraError,
    /// Not run (cancelled, or imported as such).
    NotRun,
}

impl AttemptStatus {
    pub const ALL: [AttemptStatus; 9] = [
        AttemptStatus::Ok,
        AttemptStatus::Crashed,
        AttemptStatus::Timeout,
        AttemptStatus::NoMetrics,
        AttemptStatus::PatchFailed,
        AttemptStatus::MissingImage,
        AttemptStatus::BuildFailed,
        AttemptStatus::InfraError,
        AttemptStatus::NotRun,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AttemptStatus::Ok => "ok",
            AttemptStatus::Crashed => "crashed",
            AttemptStatus::Timeout => "timeout",
            AttemptStatus::NoMetrics => "no_metrics",
            AttemptStatus::PatchFailed => "patch_failed",
            AttemptStatus::MissingImage => "missing_image",
            AttemptStatus::BuildFailed => "build_failed",
            AttemptStatus::InfraError => "infra_error",
            AttemptStatus::NotRun => "not_run",
        }
    }

    pub fn is_ok(self) -> bool {
        self == AttemptStatus::Ok
    }
}

impl fmt::Display for AttemptStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown attempt status `{0}`: expected one of ok, crashed, timeout, no_metrics, patch_failed, missing_image, build_failed, infra_error, not_run"
)]
pub struct UnknownStatus(pub String);

impl FromStr for AttemptStatus {
    type Err = UnknownStatus;

    fn from_str(text: &str) -> Result<Self, UnknownStatus> {
        AttemptStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| UnknownStatus(text.to_string()))
    }
}

/// Who is to blame for a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The image, build or environment failed before the change under test mattered.
    Infra,
    /// The change under test broke it.
    Candidate,
    /// Out of memory (host or GPU), disk full or a similar resource limit.
    Resource,
    /// The benchmark harness does not fit the code (e.g. `unrecognized arguments`).
    Harness,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Infra => "infra",
            FailureKind::Candidate => "candidate",
            FailureKind::Resource => "resource",
            FailureKind::Harness => "harness",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FailureKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "infra" => Ok(FailureKind::Infra),
            "candidate" => Ok(FailureKind::Candidate),
            "resource" => Ok(FailureKind::Resource),
            "harness" => Ok(FailureKind::Harness),
            other => Err(format!("unknown failure class `{other}`")),
        }
    }
}

/// A classified failure: who is to blame, which rule said so and the log line that shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureClass {
    pub kind: FailureKind,
    /// The id of the signature rule that matched (e.g. `vllm-missing-C`).
    pub signature: String,
    /// The line of the log (or the error text) that matched.
    pub evidence: String,
}

/// Where an attempt's numbers come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Provenance {
    /// Measured by perfarena in a run.
    Measured,
    /// Imported from an earlier pipeline's results file.
    Imported { source: String },
}

impl Provenance {
    pub fn kind(&self) -> &'static str {
        match self {
            Provenance::Measured => "measured",
            Provenance::Imported { .. } => "imported",
        }
    }

    pub fn source(&self) -> Option<&str> {
        match self {
            Provenance::Measured => None,
            Provenance::Imported { source } => Some(source),
        }
    }
}

/// What an attempt row stands for: a measurement, or a variant that could not be prepared
/// (recorded once, at the round where it was to run first; the variant is skipped after it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStage {
    #[default]
    Attempt,
    Prepare,
}

impl AttemptStage {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptStage::Attempt => "attempt",
            AttemptStage::Prepare => "prepare",
        }
    }
}

impl FromStr for AttemptStage {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "attempt" => Ok(AttemptStage::Attempt),
            "prepare" => Ok(AttemptStage::Prepare),
            other => Err(format!("unknown attempt stage `{other}`")),
        }
    }
}

/// One execution of one variant of one task, with its samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// Set by the store.
    pub id: i64,
    pub run_id: Option<String>,
    pub task: CommitId,
    pub variant: VariantKind,
    pub round_idx: u32,
    pub is_warmup: bool,
    pub status: AttemptStatus,
    pub exit_code: Option<i32>,
    pub started_at: String,
    pub duration_s: f64,
    pub log_dir: Option<String>,
    pub failure: Option<FailureClass>,
    pub message: String,
    pub provenance: Provenance,
    pub backend: String,
    pub image: Option<String>,
    pub metadata: serde_json::Value,
    /// For imported attempts: a key that makes importing the same row twice a no-op.
    pub import_key: Option<String>,
    pub samples: Vec<(String, f64)>,
    /// What `--resume` keys on: a preparation failure skips the variant for the rest of the run.
    #[serde(default)]
    pub stage: AttemptStage,
    /// Cut short by an error that stopped the run (daemon gone, disk full): the attempt stays
    /// recorded, but `--resume` runs its round again.
    #[serde(default)]
    pub rerun_on_resume: bool,
}

impl AttemptRecord {
    /// A measured attempt with nothing but its key and status filled in.
    pub fn new(
        task: CommitId,
        variant: VariantKind,
        round_idx: u32,
        status: AttemptStatus,
    ) -> AttemptRecord {
        AttemptRecord {
            id: 0,
            run_id: None,
            task,
            variant,
            round_idx,
            is_warmup: false,
            status,
            exit_code: None,
            started_at: String::new(),
            duration_s: 0.0,
            log_dir: None,
            failure: None,
            message: String::new(),
            provenance: Provenance::Measured,
            backend: "local".into(),
            image: None,
            metadata: serde_json::Value::Object(Default::default()),
            import_key: None,
            samples: Vec::new(),
            stage: AttemptStage::Attempt,
            rerun_on_resume: false,
        }
    }

    /// The value of one metric, if this attempt has it.
    /// The value of `metric`; a sample stored under an old name of it (before the metric
    /// vocabulary was unified) counts too.
    pub fn sample(&self, metric: &str) -> Option<f64> {
        let find = |name: &str| {
            self.samples
                .iter()
                .find(|(m, _)| m == name)
                .map(|(_, v)| *v)
        };
        find(metric).or_else(|| crate::parse::old_names(metric).find_map(find))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for status in AttemptStatus::ALL {
            assert_eq!(status.as_str().parse::<AttemptStatus>().unwrap(), status);
            assert_eq!(
                serde_json::to_string(&status).unwrap(),
                format!("\"{}\"", status.as_str())
            );
        }
        assert!("fine".parse::<AttemptStatus>().is_err());
    }
}
