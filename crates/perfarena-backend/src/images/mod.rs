//! Images of a task's variants: what they should be called, whether they exist (in the local
//! Docker Engine and in an OCI registry) and how to build, label and push them.
//!
//! - [`reference`]: image references, split as Docker does (`registry/repository:tag`).
//! - [`registry`] and [`auth`]: the OCI distribution API (a `HEAD` on the manifest) with
//!   credentials from the docker config, credential helpers or the environment.
//! - [`engine`]: the Docker Engine API through bollard (inspect, build, tag, push, remove).
//! - [`plan`]: pure planning: which image of which task, from which commit, with which build args,
//!   in which order (`--dry-run` prints it).
//! - [`context`]: build contexts exported from git at a commit (never the working tree), with a
//!   one-commit `.git` when asked.
//! - [`dockerfile`]: what only BuildKit reads in a Dockerfile: the builder to use, and heredocs
//!   an old engine cannot parse.
//! - [`trace`]: BuildKit's progress as `docker build --progress=plain` text.
//! - [`signature`]: reading a failed build's log: out of memory, disk full, or another error.
//! - [`builder`]: runs a plan: the retry ladder, timeouts, candidate layers, push and digest check.

pub mod auth;
pub mod builder;
pub mod context;
pub mod dockerfile;
pub mod engine;
pub mod plan;
pub mod reference;
pub mod registry;
pub mod signature;
pub mod trace;

use serde::Serialize;

/// Why an image operation failed (not a build failing: that is a [`BuildStatus`]).
#[derive(Debug, thiserror::Error)]
pub enum ImagesError {
    #[error("image reference {reference:?}: {message}")]
    Reference { reference: String, message: String },
    #[error(
        "docker engine: {0}; is the daemon running (`docker info`)? For the tests: `bash scripts/docker-env.sh up`"
    )]
    Engine(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("git: {0}")]
    Git(String),
    #[error("{0}")]
    Other(String),
    #[error("cancelled")]
    Cancelled,
    #[error(
        "only {free_gib:.1} GiB free on {path} (build.min_free_disk_gib = {min_gib}): not starting a build that may fill the disk; free space (e.g. `docker image prune`) or lower build.min_free_disk_gib"
    )]
    LowDisk {
        path: String,
        free_gib: f64,
        min_gib: f64,
    },
}

impl ImagesError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> ImagesError {
        ImagesError::Io {
            context: context.into(),
            source,
        }
    }
}

impl From<crate::BackendError> for ImagesError {
    fn from(err: crate::BackendError) -> ImagesError {
        match err {
            crate::BackendError::Cancelled => ImagesError::Cancelled,
            crate::BackendError::Git(message) => ImagesError::Git(message),
            other => ImagesError::Other(other.to_string()),
        }
    }
}

/// Whether an image is somewhere: `unknown` when that place could not be asked (a registry that
/// is down, or refuses us) — never reported as `missing`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Availability {
    Present {
        #[serde(skip_serializing_if = "Option::is_none")]
        digest: Option<String>,
    },
    Missing,
    Unknown {
        reason: String,
    },
}

impl Availability {
    pub fn as_str(&self) -> &'static str {
        match self {
            Availability::Present { .. } => "present",
            Availability::Missing => "missing",
            Availability::Unknown { .. } => "unknown",
        }
    }
    pub fn is_present(&self) -> bool {
        matches!(self, Availability::Present { .. })
    }
    pub fn digest(&self) -> Option<&str> {
        match self {
            Availability::Present { digest } => digest.as_deref(),
            _ => None,
        }
    }
}

/// How building one image ended (one row per try in the store's `builds` table).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum BuildStatus {
    Success,
    AlreadyExists,
    HumanImageMissing,
    BuildFailed,
    PushFailed,
    Timeout,
    PermanentlyFailed,
    PatchFailed,
}

impl BuildStatus {
    pub const ALL: [BuildStatus; 8] = [
        BuildStatus::Success,
        BuildStatus::AlreadyExists,
        BuildStatus::HumanImageMissing,
        BuildStatus::BuildFailed,
        BuildStatus::PushFailed,
        BuildStatus::Timeout,
        BuildStatus::PermanentlyFailed,
        BuildStatus::PatchFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BuildStatus::Success => "success",
            BuildStatus::AlreadyExists => "already_exists",
            BuildStatus::HumanImageMissing => "human_image_missing",
            BuildStatus::BuildFailed => "build_failed",
            BuildStatus::PushFailed => "push_failed",
            BuildStatus::Timeout => "timeout",
            BuildStatus::PermanentlyFailed => "permanently_failed",
            BuildStatus::PatchFailed => "patch_failed",
        }
    }

    pub fn parse(text: &str) -> Option<BuildStatus> {
        BuildStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the image exists (locally, and pushed when asked) after this status.
    pub fn is_ok(self) -> bool {
        matches!(self, BuildStatus::Success | BuildStatus::AlreadyExists)
    }
}

impl std::fmt::Display for BuildStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
