//! The persisted formats of a run: its plan (what it was asked to do, stored with the run so that
//! `--resume` replays it) and its state (what the adaptive decisions asked for so far, and how
//! it stopped). Both carry a `version`; they are read through private wire structs so that an
//! older version is migrated and a newer one is a clear error.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{CandidateName, CommitId, VariantKind};
use crate::stats::RoundsDecision;

/// The version of [`RunPlan`] this build writes. Version 0 is the plan written before plans
/// carried a version (the same fields, no `version`).
pub const PLAN_VERSION: u32 = 1;

/// The version of [`RunState`] this build writes.
pub const RUN_STATE_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "{what} version {found} is newer than this perfarena understands ({supported}); upgrade perfarena"
    )]
    TooNew {
        what: &'static str,
        found: u64,
        supported: u32,
    },
    #[error("{what}: {message}")]
    Invalid { what: &'static str, message: String },
}

/// How many measured rounds each variant gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Repeats {
    Fixed {
        rounds: u32,
    },
    /// Adaptive: `min` rounds, more (up to `max`) only while a comparison is inconclusive.
    Auto {
        min: u32,
        max: u32,
    },
}

impl Repeats {
    pub fn max_rounds(self) -> u32 {
        match self {
            Repeats::Fixed { rounds } => rounds,
            Repeats::Auto { max, .. } => max,
        }
    }

    pub fn initial_rounds(self) -> u32 {
        match self {
            Repeats::Fixed { rounds } => rounds,
            Repeats::Auto { min, .. } => min,
        }
    }
}

/// A candidate of one task: its name and the sha256 of its patch (the text is in the store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedCandidate {
    pub task: CommitId,
    pub name: CandidateName,
    pub patch_sha: String,
}

/// What a run was asked to do; stored with the run so that `--resume` replays it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PlanWire")]
pub struct RunPlan {
    pub version: u32,
    pub tasks: Vec<CommitId>,
    pub candidates: Vec<PlannedCandidate>,
    pub repeats: Repeats,
    pub warmup: u32,
    pub seed: u64,
}

/// The plan as stored, of any known version (0 had no `version` field).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanWire {
    #[serde(default)]
    version: u32,
    tasks: Vec<CommitId>,
    candidates: Vec<PlannedCandidate>,
    repeats: Repeats,
    warmup: u32,
    seed: u64,
}

impl TryFrom<PlanWire> for RunPlan {
    type Error = PlanError;

    fn try_from(wire: PlanWire) -> Result<RunPlan, PlanError> {
        if wire.version > PLAN_VERSION {
            return Err(PlanError::TooNew {
                what: "run plan",
                found: wire.version.into(),
                supported: PLAN_VERSION,
            });
        }
        // 0 → 1: the version field was added; nothing else changed.
        Ok(RunPlan::new(
            wire.tasks,
            wire.candidates,
            wire.repeats,
            wire.warmup,
            wire.seed,
        ))
    }
}

impl RunPlan {
    pub fn new(
        tasks: Vec<CommitId>,
        candidates: Vec<PlannedCandidate>,
        repeats: Repeats,
        warmup: u32,
        seed: u64,
    ) -> RunPlan {
        RunPlan {
            version: PLAN_VERSION,
            tasks,
            candidates,
            repeats,
            warmup,
            seed,
        }
    }

    /// Reads a stored plan: version 0 (no `version`) is migrated (its fields are those of
    /// version 1); a newer version than [`PLAN_VERSION`] is an error.
    pub fn from_json(value: &serde_json::Value) -> Result<RunPlan, PlanError> {
        // First the version: a newer plan may have fields this build does not know.
        check_version("run plan", value, PLAN_VERSION)?;
        serde_json::from_value(value.clone()).map_err(|e| PlanError::Invalid {
            what: "run plan",
            message: e.to_string(),
        })
    }

    pub fn to_json(&self) -> serde_json::Value {
        // A plan is made of strings and numbers only: it always serialises.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// The variants of a task, in the fixed order the shuffled rounds permute.
    pub fn variants(&self, task: &CommitId) -> Vec<VariantKind> {
        let mut variants = vec![VariantKind::Baseline, VariantKind::Human];
        variants.extend(
            self.candidates
                .iter()
                .filter(|c| &c.task == task)
                .map(|c| VariantKind::Candidate(c.name.clone())),
        );
        variants
    }

    /// Planned attempts before any adaptive extension.
    pub fn initial_attempts(&self) -> u64 {
        let rounds = (self.warmup + self.repeats.initial_rounds()) as u64;
        self.tasks
            .iter()
            .map(|t| self.variants(t).len() as u64 * rounds)
            .sum()
    }
}

/// Why a run stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunStopReason {
    /// Every planned attempt is recorded (and every adaptive decision made).
    Completed,
    /// Stopped by a signal (`SIGINT`, `SIGTERM`, `SIGHUP`) or another cancellation; `--resume`
    /// continues.
    Interrupted { signal: Option<String> },
    /// Stopped by an error nothing after it could work around (the daemon gone, the disk
    /// full…); `--resume` continues once it is mended.
    Error { message: String },
}

impl RunStopReason {
    /// The run's status in the store: `finished`, `interrupted` or `failed`.
    pub fn run_status(&self) -> &'static str {
        match self {
            RunStopReason::Completed => "finished",
            RunStopReason::Interrupted { .. } => "interrupted",
            RunStopReason::Error { .. } => "failed",
        }
    }
}

/// Where a task stands in an adaptive run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRounds {
    /// Rounds (warm-up included) the task gets, as the last decision set them.
    pub target_rounds: u32,
    /// The last adaptive decision.
    pub decision: RoundsDecision,
}

/// What a run decided so far, beyond its recorded attempts: each task's rounds, and how the run
/// last stopped. Stored with the run and read back by `--resume`, so that a resumed adaptive
/// run keeps the decisions it made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RunStateWire")]
pub struct RunState {
    pub version: u32,
    pub tasks: BTreeMap<CommitId, TaskRounds>,
    pub stopped: Option<RunStopReason>,
}

impl Default for RunState {
    fn default() -> RunState {
        RunState {
            version: RUN_STATE_VERSION,
            tasks: BTreeMap::new(),
            stopped: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunStateWire {
    version: u32,
    #[serde(default)]
    tasks: BTreeMap<CommitId, TaskRounds>,
    #[serde(default)]
    stopped: Option<RunStopReason>,
}

impl TryFrom<RunStateWire> for RunState {
    type Error = PlanError;

    fn try_from(wire: RunStateWire) -> Result<RunState, PlanError> {
        if wire.version > RUN_STATE_VERSION {
            return Err(PlanError::TooNew {
                what: "run state",
                found: wire.version.into(),
                supported: RUN_STATE_VERSION,
            });
        }
        Ok(RunState {
            version: RUN_STATE_VERSION,
            tasks: wire.tasks,
            stopped: wire.stopped,
        })
    }
}

impl RunState {
    /// Reads a stored state; a newer version than [`RUN_STATE_VERSION`] is an error.
    pub fn from_json(value: &serde_json::Value) -> Result<RunState, PlanError> {
        check_version("run state", value, RUN_STATE_VERSION)?;
        serde_json::from_value(value.clone()).map_err(|e| PlanError::Invalid {
            what: "run state",
            message: e.to_string(),
        })
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

fn check_version(
    what: &'static str,
    value: &serde_json::Value,
    supported: u32,
) -> Result<(), PlanError> {
    match value.get("version") {
        None => Ok(()),
        Some(v) => match v.as_u64() {
            Some(found) if found > supported as u64 => Err(PlanError::TooNew {
                what,
                found,
                supported,
            }),
            Some(_) => Ok(()),
            None => Err(PlanError::Invalid {
                what,
                message: format!("`version` must be a number, not {v}"),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::StopReason;

    fn commit(c: char) -> CommitId {
        CommitId::parse(&c.to_string().repeat(40)).unwrap()
    }

    #[test]
    fn a_plan_round_trips_with_its_version() {
        let plan = RunPlan::new(
            vec![commit('a')],
            vec![PlannedCandidate {
                task: commit('a'),
                name: CandidateName::parse("agent").unwrap(),
                patch_sha: "ff".repeat(32),
            }],
            Repeats::Auto { min: 3, max: 9 },
            1,
            42,
        );
        let json = plan.to_json();
        assert_eq!(json["version"], PLAN_VERSION);
        assert_eq!(RunPlan::from_json(&json).unwrap(), plan);
        assert_eq!(plan.initial_attempts(), 3 * 4);
    }

    /// The plan as perfarena wrote it before plans had a version (the `runs.config` column of
    /// stores written by then): the same fields, no `version`.
    #[test]
    fn an_unversioned_plan_is_migrated() {
        let old = serde_json::json!({
            "tasks": ["a".repeat(40)],
            "candidates": [],
            "repeats": {"mode": "fixed", "rounds": 2},
            "warmup": 0,
            "seed": 7
        });
        let plan = RunPlan::from_json(&old).unwrap();
        assert_eq!(plan.version, PLAN_VERSION);
        assert_eq!(plan.repeats, Repeats::Fixed { rounds: 2 });
        assert_eq!(plan.seed, 7);
    }

    #[test]
    fn a_newer_plan_is_a_clear_error() {
        let newer = serde_json::json!({
            "version": PLAN_VERSION + 1,
            "tasks": [],
            "candidates": [],
            "repeats": {"mode": "fixed", "rounds": 2},
            "warmup": 0,
            "seed": 7,
            "gpu_pools": {}
        });
        let err = RunPlan::from_json(&newer).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "run plan version {} is newer than this perfarena understands ({PLAN_VERSION}); upgrade perfarena",
                PLAN_VERSION + 1
            )
        );
    }

    #[test]
    fn a_damaged_plan_names_what_is_wrong() {
        let damaged = serde_json::json!({"version": 1, "tasks": [], "candidates": []});
        let err = RunPlan::from_json(&damaged).unwrap_err().to_string();
        assert!(err.starts_with("run plan: missing field"), "{err}");
        let text_version = serde_json::json!({"version": "one"});
        assert!(
            RunPlan::from_json(&text_version)
                .unwrap_err()
                .to_string()
                .contains("`version` must be a number")
        );
    }

    #[test]
    fn run_state_round_trips_and_refuses_newer_versions() {
        let mut state = RunState::default();
        state.tasks.insert(
            commit('a'),
            TaskRounds {
                target_rounds: 6,
                decision: RoundsDecision::Continue { until_round: 6 },
            },
        );
        state.tasks.insert(
            commit('c'),
            TaskRounds {
                target_rounds: 3,
                decision: RoundsDecision::Stop {
                    reason: StopReason::Conclusive,
                },
            },
        );
        state.stopped = Some(RunStopReason::Interrupted {
            signal: Some("SIGTERM".into()),
        });
        let json = state.to_json();
        assert_eq!(RunState::from_json(&json).unwrap(), state);
        let mut newer = json.clone();
        newer["version"] = serde_json::json!(RUN_STATE_VERSION + 1);
        assert!(matches!(
            RunState::from_json(&newer),
            Err(PlanError::TooNew { .. })
        ));
    }
}
