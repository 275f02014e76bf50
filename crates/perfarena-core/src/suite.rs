//! The suite (`perfarena.toml`): what to build, how to benchmark and how to judge.
//!
//! The embedded, commented `defaults.toml` is read first and the user's file laid on top, key by
//! key; the merged document is then deserialised with unknown keys rejected, and errors name
//! the key's path (and the line, when the key is in the user's file).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::eras::{BenchCommands, Facts, select};
use crate::parse::CustomPattern;
use crate::stats::Direction;

/// The embedded defaults: every setting, commented.
pub const DEFAULTS_TOML: &str = include_str!("defaults.toml");

#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error("{origin}: invalid TOML: {message}")]
    Syntax { origin: String, message: String },
    #[error("{origin}{line}: `{path}`: {message}", line = line.map(|l| format!(":{l}")).unwrap_or_default())]
    Field {
        origin: String,
        path: String,
        line: Option<usize>,
        message: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    pub suite: SuiteMeta,
    pub repo: RepoConfig,
    pub images: ImagesConfig,
    pub build: BuildConfig,
    pub bench: BenchConfig,
    pub metric: MetricConfig,
    pub stats: StatsSection,
    pub triage: TriageSection,
    pub slurm: SlurmSection,
    pub docker: crate::suite_docker::DockerSection,
    pub secrets: crate::suite_docker::SecretsSection,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriageSection {
    pub rules: Vec<crate::triage::SignatureRule>,
}

/// The `slurm` backend: job resources, the launcher and the shared log directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmSection {
    pub launcher: SlurmLauncher,
    pub job_unit: SlurmJobUnit,
    pub setup_on: SlurmSetupOn,
    pub partition: String,
    pub account: String,
    pub qos: String,
    pub gpus: u32,
    pub gpu_type: String,
    pub cpus: u32,
    pub mem: String,
    pub time_limit: String,
    pub log_dir: String,
    pub same_node: bool,
    pub array_limit: u32,
    pub image: String,
    pub mounts: Vec<String>,
    pub launcher_args: Vec<String>,
    pub sbatch_args: Vec<String>,
    pub prologue: String,
    pub poll_interval_ms: u64,
}

/// How an attempt's commands run on a Slurm node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SlurmLauncher {
    Plain,
    Docker,
    Pyxis,
    Apptainer,
}

/// Where `bench.setup` runs for a checkout the slurm backend prepares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SlurmSetupOn {
    /// As a Slurm job on a node (the compilers, CUDA and GPUs the benchmark will use).
    Node,
    /// On the submit host, like the local backend.
    Submit,
}

/// What one benchmark job holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SlurmJobUnit {
    /// One task's interleaved round: every variant's attempt of that round, one after the
    /// other on one node; the rounds of many tasks go as one job array.
    Round,
    /// One attempt per job.
    Attempt,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteMeta {
    pub name: String,
    pub description: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoConfig {
    pub path: String,
    pub url: String,
    pub source_dir: String,
}

impl RepoConfig {
    /// Whether the suite names a repository at all (analysis-only suites do not).
    pub fn is_set(&self) -> bool {
        !self.path.is_empty() || !self.url.is_empty()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagesConfig {
    pub registry: String,
    pub repo: String,
    pub baseline: String,
    pub human: String,
    pub candidate: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildConfig {
    pub dockerfile: String,
    pub timeout_s: u64,
    pub min_free_disk_gib: f64,
    pub min_max_jobs: u32,
    pub rebuild_globs: Vec<String>,
    /// The compile step a candidate image reruns (in `repo.source_dir`) when its patch touches
    /// `rebuild_globs`.
    pub rebuild_command: String,
    pub builder: BuilderChoice,
    /// Full builds get a `.git` (the commit alone) in their context.
    pub context_git: bool,
    pub args: BTreeMap<String, String>,
    pub overrides: BTreeMap<String, BuildOverride>,
}

/// Which builder of the engine runs image builds (`build.builder`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BuilderChoice {
    /// BuildKit when the Dockerfile uses syntax only BuildKit reads, else the classic builder.
    #[default]
    Auto,
    Buildkit,
    Classic,
}

impl BuilderChoice {
    pub fn as_str(self) -> &'static str {
        match self {
            BuilderChoice::Auto => "auto",
            BuilderChoice::Buildkit => "buildkit",
            BuilderChoice::Classic => "classic",
        }
    }
}

/// Per-commit build settings, keyed in the suite by a commit prefix.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildOverride {
    #[serde(default)]
    pub max_jobs: Option<u32>,
    #[serde(default)]
    pub pre_build_patch: Option<String>,
    #[serde(default)]
    pub args: BTreeMap<String, String>,
    #[serde(default)]
    pub permanently_failed: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchConfig {
    pub setup: String,
    pub server: String,
    pub client: String,
    pub default_model: String,
    pub harness_globs: Vec<String>,
    pub port: u16,
    pub timeout_s: u64,
    pub setup_timeout_s: u64,
    pub repeats: u32,
    pub warmup: u32,
    pub kill_grace_s: u64,
    /// Per-era overrides of the commands (`[[bench.eras]]`, see `eras.rs`).
    pub eras: Vec<crate::eras::Era>,
    pub env: BTreeMap<String, String>,
    pub readiness: Readiness,
}

impl BenchConfig {
    /// The commands of a task: the plain `[bench]` ones with the chosen era's overrides.
    pub fn commands(&self, facts: &Facts) -> BenchCommands {
        let selection = select(&self.eras, facts);
        let era = selection.as_ref().map(|s| s.era);
        let pick = |over: Option<&Option<String>>, plain: &str| {
            over.and_then(|o| o.clone())
                .unwrap_or_else(|| plain.to_string())
        };
        BenchCommands {
            era: era.map(|e| e.name.clone()),
            reason: selection.as_ref().map(|s| s.reason.clone()),
            setup: pick(era.map(|e| &e.setup), &self.setup),
            server: pick(era.map(|e| &e.server), &self.server),
            client: pick(era.map(|e| &e.client), &self.client),
            readiness_url: pick(era.map(|e| &e.readiness_url), &self.readiness.url),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadinessKind {
    Http,
    Tcp,
    None,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Readiness {
    pub kind: ReadinessKind,
    pub url: String,
    pub interval_ms: u64,
    pub timeout_s: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricConfig {
    pub primary: String,
    pub direction: Direction,
    pub parser: String,
    pub custom: Vec<CustomPattern>,
    /// Set when `primary` was written with an old metric name and has been renamed: says so.
    #[serde(skip)]
    pub primary_note: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsSection {
    pub confidence: f64,
    pub delta: f64,
    pub min_repeats: u32,
    pub max_repeats: u32,
}

impl Suite {
    /// The defaults alone (what an empty `perfarena.toml` means).
    pub fn defaults() -> Suite {
        Suite::from_toml_str("", "<defaults>").expect("the embedded defaults are valid")
    }

    /// Parses a user's suite file laid over the embedded defaults. `origin` names the file in
    /// errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Suite, SuiteError> {
        let defaults: toml::Table =
            toml::from_str(DEFAULTS_TOML).map_err(|e| SuiteError::Syntax {
                origin: "<embedded defaults>".into(),
                message: e.to_string(),
            })?;
        let user: toml::Table = toml::from_str(text).map_err(|e| SuiteError::Syntax {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        let direction_given = user
            .get("metric")
            .and_then(|m| m.get("direction"))
            .is_some();
        let mut merged = toml::Value::Table(defaults);
        merge(&mut merged, toml::Value::Table(user));
        let mut suite: Suite = serde_path_to_error::deserialize(merged).map_err(|err| {
            let path = err.path().to_string();
            let message = err.into_inner().to_string();
            SuiteError::Field {
                line: locate_key(text, &path),
                origin: origin.to_string(),
                path,
                message,
            }
        })?;
        // A built-in metric (wall_s, max_rss_mb…) is a cost: its direction is known.
        if let Some(known) = crate::builtin::direction(&suite.metric.primary) {
            if direction_given && suite.metric.direction != known {
                return Err(SuiteError::Field {
                    origin: origin.to_string(),
                    path: "metric.direction".into(),
                    line: locate_key(text, "metric.direction"),
                    message: format!(
                        "`{}` is measured by perfarena and lower is better: remove metric.direction or set it to \"lower\"",
                        suite.metric.primary
                    ),
                });
            }
            suite.metric.direction = known;
        }
        suite.validate(text, origin)?;
        if let Some(current) = crate::parse::canonical_metric(&suite.metric.primary) {
            suite.metric.primary_note = Some(format!(
                "{origin}: metric.primary = \"{}\" is the old name of `{current}`, which every parser now reports; using `{current}` (rename it to silence this note)",
                suite.metric.primary
            ));
            suite.metric.primary = current.to_string();
        }
        Ok(suite)
    }

    fn validate(&self, text: &str, origin: &str) -> Result<(), SuiteError> {
        let field = |path: &str, message: String| SuiteError::Field {
            origin: origin.to_string(),
            path: path.to_string(),
            line: locate_key(text, path),
            message,
        };
        if !(0.5..1.0).contains(&self.stats.confidence) {
            return Err(field(
                "stats.confidence",
                "must be in [0.5, 1), e.g. 0.95".into(),
            ));
        }
        if !(0.0..0.5).contains(&self.stats.delta) {
            return Err(field(
                "stats.delta",
                "must be a fraction in [0, 0.5), e.g. 0.02 for ±2 %".into(),
            ));
        }
        if self.stats.min_repeats == 0 || self.stats.min_repeats > self.stats.max_repeats {
            return Err(field(
                "stats.min_repeats",
                "must be at least 1 and at most stats.max_repeats".into(),
            ));
        }
        if self.bench.repeats == 0 {
            return Err(field("bench.repeats", "must be at least 1".into()));
        }
        for (path, value) in [
            ("bench.timeout_s", self.bench.timeout_s),
            ("bench.setup_timeout_s", self.bench.setup_timeout_s),
            ("bench.readiness.timeout_s", self.bench.readiness.timeout_s),
            (
                "bench.readiness.interval_ms",
                self.bench.readiness.interval_ms,
            ),
            ("build.timeout_s", self.build.timeout_s),
        ] {
            if value == 0 {
                return Err(field(
                    path,
                    "must be at least 1 (0 would stop every attempt at once)".into(),
                ));
            }
        }
        if self.metric.primary.trim().is_empty() {
            return Err(field(
                "metric.primary",
                "must name the metric verdicts are taken on, e.g. \"output_throughput_tok_s\" or \"wall_s\"".into(),
            ));
        }
        if self.bench.readiness.kind == ReadinessKind::Http
            && !self.bench.server.is_empty()
            && self.bench.readiness.url.is_empty()
        {
            return Err(field(
                "bench.readiness.url",
                "an http readiness probe needs a url".into(),
            ));
        }
        if !self.repo.path.is_empty() && !self.repo.url.is_empty() {
            return Err(field(
                "repo.url",
                "set either repo.path or repo.url, not both".into(),
            ));
        }
        for (idx, pattern) in self.metric.custom.iter().enumerate() {
            if let Err(e) = regex::Regex::new(&pattern.regex) {
                return Err(field(
                    &format!("metric.custom[{idx}].regex"),
                    format!("invalid regex: {e}"),
                ));
            }
        }
        if let Err(e) = crate::parse::validate_custom_patterns(&self.metric.custom) {
            return Err(field("metric.custom", e.to_string()));
        }
        if let Err(e) = crate::parse::FormatChoice::from_name(&self.metric.parser) {
            return Err(field("metric.parser", e.to_string()));
        }
        for (template_path, template) in [
            ("images.baseline", &self.images.baseline),
            ("images.human", &self.images.human),
            ("images.candidate", &self.images.candidate),
        ] {
            crate::template::check(template, crate::template::IMAGE_VARS)
                .map_err(|e| field(template_path, e.to_string()))?;
        }
        for (template_path, template) in [
            ("bench.setup", &self.bench.setup),
            ("bench.server", &self.bench.server),
            ("bench.client", &self.bench.client),
            ("bench.readiness.url", &self.bench.readiness.url),
        ] {
            crate::template::check(template, crate::template::COMMAND_VARS)
                .map_err(|e| field(template_path, e.to_string()))?;
        }
        crate::eras::validate(&self.bench.eras).map_err(|(path, message)| field(&path, message))?;
        crate::suite_docker::validate(&self.docker, &self.secrets)
            .map_err(|(path, message)| field(&path, message))?;
        if let Err(e) = crate::triage::Triage::new(&self.triage.rules) {
            let idx = self
                .triage
                .rules
                .iter()
                .position(|r| r.id == e.id)
                .unwrap_or(0);
            return Err(field(
                &format!("triage.rules[{idx}].pattern"),
                e.to_string(),
            ));
        }
        for prefix in self.build.overrides.keys() {
            crate::ids::CommitId::parse(prefix)
                .map_err(|e| field(&format!("build.overrides.{prefix}"), e.to_string()))?;
        }
        Ok(())
    }

    /// Checks what running benchmarks needs beyond parsing (a client command).
    pub fn require_runnable(&self) -> Result<(), String> {
        if self.bench.client.trim().is_empty() {
            return Err(
                "bench.client is empty: set the command that runs the benchmark client".into(),
            );
        }
        Ok(())
    }

    /// The build override whose key is a prefix of `commit` (the longest one wins).
    pub fn build_override(&self, commit: &str) -> Option<&BuildOverride> {
        self.build
            .overrides
            .iter()
            .filter(|(prefix, _)| commit.starts_with(prefix.to_ascii_lowercase().as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, over)| over)
    }

    /// A stable hash of the settings that matter for measurements (stored with each run).
    pub fn hash(&self) -> String {
        let canonical = serde_json::to_string(self).unwrap_or_default();
        hex::encode(Sha256::digest(canonical.as_bytes()))
    }
}

/// Lays `top` over `base`: tables merge key by key, anything else is replaced.
fn merge(base: &mut toml::Value, top: toml::Value) {
    match (base, top) {
        (toml::Value::Table(base), toml::Value::Table(top)) => {
            for (key, value) in top {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, top) => *base = top,
    }
}

/// Finds the 1-based line of `path` (e.g. `bench.readiness.url`) in the user's text: the line
/// assigning the last segment inside the right table, or the table header itself. Best effort:
/// a key written in an inline table or with dotted keys may not be found.
fn locate_key(text: &str, path: &str) -> Option<usize> {
    let segments: Vec<&str> = path
        .split('.')
        .map(|s| s.split('[').next().unwrap_or(s))
        .collect();
    let (last, tables) = segments.split_last()?;
    let table = tables.join(".");
    let mut current = String::new();
    for (idx, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(header) = line.strip_prefix('[') {
            let header = header
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim();
            current = header.replace('"', "");
            if current == segments.join(".") {
                return Some(idx + 1);
            }
            continue;
        }
        let key = line
            .split('=')
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches('"');
        if line.contains('=') && current == table && key == *last {
            return Some(idx + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_means_the_defaults() {
        let suite = Suite::from_toml_str("", "perfarena.toml").unwrap();
        assert_eq!(suite.bench.repeats, 3);
        assert_eq!(suite.metric.direction, Direction::Higher);
        assert_eq!(
            suite.images.baseline,
            "{registry}/{repo}:baseline-{parent:12}"
        );
        assert!(suite.require_runnable().is_err());
        assert_eq!(suite.build.builder, BuilderChoice::Auto);
        assert!(!suite.build.context_git);
    }

    #[test]
    fn user_values_override_defaults_key_by_key() {
        let text = "[bench]\nclient = \"python3 bench.py\"\n[bench.readiness]\ntimeout_s = 30\n[build.args]\nmax_jobs = \"4\"\n";
        let suite = Suite::from_toml_str(text, "s.toml").unwrap();
        assert_eq!(suite.bench.client, "python3 bench.py");
        assert_eq!(suite.bench.readiness.timeout_s, 30);
        assert_eq!(suite.bench.readiness.interval_ms, 200);
        assert_eq!(suite.build.args["max_jobs"], "4");
        assert!(suite.require_runnable().is_ok());
    }

    #[test]
    fn unknown_keys_name_their_path_and_line() {
        let text = "[bench]\nclient = \"x\"\n\n[bench.readiness]\ntimeout = 3\n";
        let err = Suite::from_toml_str(text, "perfarena.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("perfarena.toml:5"), "{err}");
        assert!(err.contains("bench.readiness.timeout"), "{err}");
        assert!(err.contains("unknown field"), "{err}");
    }

    #[test]
    fn a_builtin_primary_is_lower_is_better() {
        let wall = Suite::from_toml_str("[metric]\nprimary = \"wall_s\"\n", "a.toml").unwrap();
        assert_eq!(wall.metric.direction, Direction::Lower);
        let lower = "[metric]\nprimary = \"user_s\"\ndirection = \"lower\"\n";
        assert!(Suite::from_toml_str(lower, "a.toml").is_ok());
        let err = Suite::from_toml_str(
            "[metric]\nprimary = \"max_rss_mb\"\ndirection = \"higher\"\n",
            "a.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("a.toml:3") && err.contains("metric.direction"),
            "{err}"
        );
    }

    #[test]
    fn wrong_types_and_values_are_named() {
        let err = Suite::from_toml_str("[bench]\nrepeats = \"three\"\n", "a.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a.toml:2") && err.contains("bench.repeats"),
            "{err}"
        );
        let err = Suite::from_toml_str("[metric]\ndirection = \"up\"\n", "a.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("metric.direction"), "{err}");
        let err = Suite::from_toml_str("[stats]\ndelta = 2.0\n", "a.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a.toml:2") && err.contains("stats.delta"),
            "{err}"
        );
        let err = Suite::from_toml_str("[images]\nhuman = \"{registry}/{repo}:{sha}\"\n", "a.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("images.human") && err.contains("sha"), "{err}");
        let err = Suite::from_toml_str("[[metric.custom]]\nregex = \"(\"\n", "a.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("metric.custom[0].regex"), "{err}");
        let err = Suite::from_toml_str("[build.overrides.zzz]\nmax_jobs = 1\n", "a.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("build.overrides.zzz"), "{err}");
        let err = Suite::from_toml_str("[metric]\nparser = \"vllm-serving-tabel\"\n", "a.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a.toml:2") && err.contains("metric.parser"),
            "{err}"
        );
        let err = Suite::from_toml_str("[build]\nbuilder = \"bildkit\"\n", "a.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a.toml:2") && err.contains("build.builder") && err.contains("buildkit"),
            "{err}"
        );
        let err = Suite::from_toml_str("[bench\n", "a.toml")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("a.toml: invalid TOML"), "{err}");
    }

    #[test]
    fn build_overrides_match_by_longest_prefix() {
        let text = "[build.overrides.abcd]\nmax_jobs = 2\n[build.overrides.abcdef12]\npermanently_failed = \"cuda 11 only\"\n";
        let suite = Suite::from_toml_str(text, "s.toml").unwrap();
        let over = suite.build_override("abcdef1234567").unwrap();
        assert_eq!(over.permanently_failed.as_deref(), Some("cuda 11 only"));
        assert_eq!(suite.build_override("abcd0000").unwrap().max_jobs, Some(2));
        assert!(suite.build_override("ffff").is_none());
    }

    #[test]
    fn the_hash_follows_the_settings() {
        let a = Suite::from_toml_str("", "a").unwrap();
        let b = Suite::from_toml_str("[bench]\nrepeats = 4\n", "b").unwrap();
        assert_eq!(a.hash(), Suite::defaults().hash());
        assert_ne!(a.hash(), b.hash());
    }
}
