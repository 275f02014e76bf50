//! perfarena's pure core: the model (tasks, variants, attempts, suites), image and command
//! naming, metric parsers, statistics, failure triage and the report model.
//!
//! Nothing in this crate performs I/O, reads a clock or starts a process: every function takes
//! data and returns data, which is why most of perfarena's tests live here.

pub mod analysis;
pub mod attempt;
pub mod availability;
pub mod builtin;
pub mod categorize;
pub mod eras;
pub mod events;
pub mod ids;
pub mod images;
pub mod import;
pub mod import_results;
pub mod parse;
pub mod patch;
pub mod plan;
pub mod report;
pub mod stats;
pub mod suite;
pub mod suite_docker;
pub mod task;
pub mod template;
pub mod triage;

pub use attempt::{
    AttemptRecord, AttemptStage, AttemptStatus, FailureClass, FailureKind, Provenance,
};
pub use ids::{CandidateName, CommitId, IdError, RunId, VariantKind};
pub use suite::Suite;
pub use task::Task;
