//! Earlier pipelines' results and soft-judge labels as perfarena data: result rows become
//! imported attempts (triaged like measured ones), label rows become [`JudgeLabel`]s. Pure:
//! the caller reads the files, and hands in the text of the logs the rows name.
//!
//! The row shapes are documented field by field in `docs/import.md`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::attempt::{AttemptRecord, AttemptStatus, Provenance};
use crate::categorize::{HardOutcome, JudgeLabel};
use crate::ids::{CandidateName, CommitId, VariantKind};
use crate::import::{RawRow, RowError, find_task};
use crate::task::Task;
use crate::triage::Triage;

/// The fields that name a result row's task, first found wins.
const COMMIT_KEYS: &[&str] = &[
    "commit",
    "commit_hash",
    "hash",
    "sha",
    "human_commit_full",
    "human_commit",
];

/// The fields of a result row perfarena reads besides [`COMMIT_KEYS`]; the others are kept in
/// `metadata.extra`.
const KNOWN: &[&str] = &[
    "parent",
    "parent_commit",
    "model",
    "variant",
    "status",
    "metrics",
    "image",
    "error",
    "log",
    "round",
    "repetition",
    "rep",
    "duration_s",
    "exit_code",
    "started_at",
    "timestamp",
];

/// What reading a log named by a row gave.
pub enum LogText {
    Text(String),
    /// Only the end of a large log was read; `skipped` bytes before it were left out.
    Tail {
        text: String,
        skipped: u64,
    },
    /// The file could not be read; the row is imported without it and the reason noted.
    Unreadable(String),
}

/// The result of converting a batch of result rows.
#[derive(Debug, Default)]
pub struct ResultsImport {
    pub attempts: Vec<AttemptRecord>,
    pub errors: Vec<RowError>,
    /// Things the user should know (logs that could not be read…), one line each.
    pub notes: Vec<String>,
}

/// How metric names of a results file become perfarena's: the user's `--map old=new` first,
/// then the names other pipelines use (see [`crate::parse::FOREIGN_METRICS`]); the rest are
/// kept as they are.
#[derive(Debug, Clone, Default)]
pub struct MetricMap {
    user: BTreeMap<String, String>,
}

impl MetricMap {
    /// `old=new` pairs as given on the command line.
    pub fn parse(pairs: &[String]) -> Result<MetricMap, String> {
        let mut user = BTreeMap::new();
        for pair in pairs {
            let (old, new) = pair
                .split_once('=')
                .map(|(old, new)| (old.trim(), new.trim()))
                .filter(|(old, new)| !old.is_empty() && !new.is_empty())
                .ok_or_else(|| {
                    format!("--map `{pair}`: expected OLD=NEW, e.g. tput=output_throughput_tok_s")
                })?;
            user.insert(old.to_string(), new.to_string());
        }
        Ok(MetricMap { user })
    }

    /// The name (and unit factor) a metric is recorded under.
    pub fn map(&self, name: &str) -> (String, f64) {
        if let Some(new) = self.user.get(name) {
            return (new.clone(), 1.0);
        }
        crate::parse::foreign_metric(name).unwrap_or_else(|| (name.to_string(), 1.0))
    }
}

/// Converts the rows of one results file into imported attempts. `read_log` gets the `log`
/// field as written in the row; the caller decides what may be read (see `docs/import.md`).
pub fn import_results(
    rows: &[RawRow],
    tasks: &[Task],
    triage: &Triage,
    source: &str,
    map: &MetricMap,
    read_log: &mut dyn FnMut(&str) -> LogText,
) -> ResultsImport {
    let mut out = ResultsImport::default();
    // Identical rows are repetitions: the n-th copy gets its own key.
    let mut seen_rows: BTreeMap<String, u32> = BTreeMap::new();
    let mut rounds: BTreeMap<(CommitId, VariantKind), u32> = BTreeMap::new();
    for row in rows {
        let canonical = Value::Object(row.fields.clone()).to_string();
        let occurrence = seen_rows.entry(canonical.clone()).or_insert(0);
        let key = hex_sha256(&format!("{canonical}\n#{occurrence}"));
        *occurrence += 1;
        match result_row(row, tasks, triage, source, map, &key, read_log) {
            Ok((mut attempt, note)) => {
                let next = rounds
                    .entry((attempt.task.clone(), attempt.variant.clone()))
                    .or_insert(0);
                if attempt.round_idx == u32::MAX {
                    attempt.round_idx = *next;
                }
                *next = (*next).max(attempt.round_idx.saturating_add(1));
                out.notes.extend(note);
                out.attempts.push(attempt);
            }
            Err(e) => out.errors.push(e),
        }
    }
    out
}

/// A status as perfarena writes it, or as other pipelines do: `success` is `ok`, `error` and
/// `failed` are `crashed` (triage then reads the error), `exception` (the harness's own) is
/// `infra_error`, `timed_out` is `timeout`.
fn parse_status(text: &str) -> Result<AttemptStatus, String> {
    let text = text.trim();
    let alias = match text.to_ascii_lowercase().as_str() {
        "success" | "succeeded" | "passed" => Some(AttemptStatus::Ok),
        "error" | "failed" | "failure" => Some(AttemptStatus::Crashed),
        "exception" => Some(AttemptStatus::InfraError),
        "timed_out" | "timedout" => Some(AttemptStatus::Timeout),
        _ => None,
    };
    match alias {
        Some(status) => Ok(status),
        None => text
            .parse()
            .map_err(|e: crate::attempt::UnknownStatus| e.to_string()),
    }
}

fn hex_sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// `baseline`, `human`, `agent` (the candidate `agent`), `agent:<name>`, `candidate:<name>`.
pub fn parse_variant(text: &str) -> Result<VariantKind, String> {
    let text = text.trim();
    let bad = || {
        format!(
            "`{text}` is not a variant: expected baseline, human, agent, agent:<name> or candidate:<name>"
        )
    };
    match text {
        "baseline" | "human" => text.parse().map_err(|_| bad()),
        "agent" => Ok(VariantKind::Candidate(
            CandidateName::parse("agent").map_err(|_| bad())?,
        )),
        _ => match text.strip_prefix("agent:") {
            Some(name) => CandidateName::parse(name)
                .map(VariantKind::Candidate)
                .map_err(|_| bad()),
            None => text.parse().map_err(|_| bad()),
        },
    }
}

/// A candidate named in a label row: `agent`, `agent:<name>`, `candidate:<name>` or `<name>`.
fn parse_candidate(text: &str) -> Result<CandidateName, String> {
    match parse_variant(text) {
        Ok(VariantKind::Candidate(name)) => Ok(name),
        Ok(other) => Err(format!("`{other}` is not a candidate")),
        Err(_) => CandidateName::parse(text.trim()).map_err(|e| e.to_string()),
    }
}

fn field<'a>(
    fields: &'a Map<String, Value>,
    keys: &[&'static str],
) -> Option<(&'static str, &'a Value)> {
    keys.iter()
        .find_map(|k| fields.get(*k).filter(|v| !v.is_null()).map(|v| (*k, v)))
}

fn opt_str<'a>(
    fields: &'a Map<String, Value>,
    keys: &[&'static str],
    err: &dyn Fn(&str, String) -> RowError,
) -> Result<Option<&'a str>, RowError> {
    match field(fields, keys) {
        None => Ok(None),
        Some((_, Value::String(s))) if s.trim().is_empty() => Ok(None),
        Some((_, Value::String(s))) => Ok(Some(s.as_str())),
        Some((key, _)) => Err(err(key, "expected a string".into())),
    }
}

/// The commit a row names, resolved against the task list.
fn resolve_commit<'a>(
    fields: &Map<String, Value>,
    tasks: &'a [Task],
    err: &dyn Fn(&str, String) -> RowError,
) -> Result<&'a Task, RowError> {
    let (key, value) = field(fields, COMMIT_KEYS).ok_or_else(|| {
        err(
            "commit",
            "missing: every row needs the task's commit (a prefix is enough)".into(),
        )
    })?;
    let text = value
        .as_str()
        .ok_or_else(|| err(key, "expected a string".into()))?;
    CommitId::parse(text).map_err(|e| err(key, e.to_string()))?;
    find_task(tasks, text).map_err(|e| match e {
        crate::import::ResolveError::NotFound(_) => {
            err(key, format!("no imported task has commit `{text}`: import the task list first (`perfarena tasks import`)"))
        }
        crate::import::ResolveError::Ambiguous { .. } => err(key, format!("{e}: give more characters of the hash")),
        crate::import::ResolveError::Other(message) => err(key, message),
    })
}

/// Metric values: numbers (or numeric strings); nested objects flatten to `a.b`; nulls are left out.
fn metrics(value: &Value, prefix: &str, out: &mut Vec<(String, f64)>) -> Result<(), String> {
    match value {
        Value::Object(map) => {
            for (name, inner) in map {
                let full = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}.{name}")
                };
                metrics(inner, &full, out)?;
            }
            Ok(())
        }
        Value::Null => Ok(()),
        Value::Number(n) => match n.as_f64().filter(|v| v.is_finite()) {
            Some(v) => {
                out.push((prefix.to_string(), v));
                Ok(())
            }
            None => Err(format!("`{prefix}` is not a finite number")),
        },
        Value::String(s) => match s.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => {
                out.push((prefix.to_string(), v));
                Ok(())
            }
            _ => Err(format!("`{prefix}` = {s:?} is not a number")),
        },
        other => Err(format!("`{prefix}` = {other} is not a number")),
    }
}

fn result_row(
    row: &RawRow,
    tasks: &[Task],
    triage: &Triage,
    source: &str,
    map: &MetricMap,
    key: &str,
    read_log: &mut dyn FnMut(&str) -> LogText,
) -> Result<(AttemptRecord, Option<String>), RowError> {
    let err = |field: &str, message: String| RowError::field(&row.loc, field, message);
    let fields = &row.fields;
    let task = resolve_commit(fields, tasks, &err)?;
    if let Some(parent) = opt_str(fields, &["parent", "parent_commit"], &err)? {
        let given = CommitId::parse(parent).map_err(|e| err("parent", e.to_string()))?;
        if let Some(known) = &task.parent
            && !given.is_prefix_of(known)
            && !known.is_prefix_of(&given)
        {
            return Err(err(
                "parent",
                format!(
                    "the row says {given} but task {} has parent {known}",
                    task.short_id()
                ),
            ));
        }
    }
    let variant_text = opt_str(fields, &["variant"], &err)?.ok_or_else(|| {
        err(
            "variant",
            "missing: baseline, human, agent or agent:<name>".into(),
        )
    })?;
    let variant = parse_variant(variant_text).map_err(|m| err("variant", m))?;
    let status_text =
        opt_str(fields, &["status"], &err)?.ok_or_else(|| err("status", "missing".into()))?;
    let status = parse_status(status_text).map_err(|m| err("status", m))?;
    let mut samples = Vec::new();
    if let Some((_, value)) = field(fields, &["metrics"]) {
        if !value.is_object() {
            return Err(err(
                "metrics",
                "expected an object of metric name → number".into(),
            ));
        }
        metrics(value, "", &mut samples).map_err(|m| err("metrics", m))?;
        let mut mapped: Vec<(String, f64)> = Vec::with_capacity(samples.len());
        for (name, value) in samples {
            let (name, factor) = map.map(&name);
            if let Some(first) = mapped.iter().find(|(seen, _)| *seen == name) {
                return Err(err(
                    "metrics",
                    format!(
                        "two metrics are `{name}` here (one of them under another pipeline's name, {} and {value}); keep one, or rename one with --map",
                        first.1
                    ),
                ));
            }
            mapped.push((name, value * factor));
        }
        samples = mapped;
    }
    if status.is_ok() && samples.is_empty() {
        return Err(err(
            "metrics",
            "status `ok` needs at least one metric; use `no_metrics` for a run that printed none"
                .into(),
        ));
    }
    let error = opt_str(fields, &["error"], &err)?.unwrap_or("").to_string();
    let mut note = None;
    let mut metadata = Map::new();
    let log = opt_str(fields, &["log"], &err)?;
    let log_text = match log {
        None => None,
        Some(path) => {
            metadata.insert("log".into(), Value::String(path.to_string()));
            match read_log(path) {
                LogText::Text(text) => Some(text),
                LogText::Tail { text, skipped } => {
                    metadata.insert("log_skipped_bytes".into(), Value::from(skipped));
                    note = Some(format!(
                        "{}: log {path} is large: triaged from its last {} bytes",
                        row.loc,
                        text.len()
                    ));
                    Some(text)
                }
                LogText::Unreadable(reason) => {
                    metadata.insert("log_unreadable".into(), Value::String(reason.clone()));
                    note = Some(format!(
                        "{}: log {path} not read ({reason}): triaged from `error` alone",
                        row.loc
                    ));
                    None
                }
            }
        }
    };
    let logs: Vec<&str> = log_text.as_deref().into_iter().collect();
    let failure = triage.classify_attempt(status, &error, &logs);
    let model = opt_str(fields, &["model"], &err)?;
    if let Some(model) = model {
        metadata.insert("model".into(), Value::String(model.to_string()));
    }
    let round = match field(fields, &["round", "repetition", "rep"]) {
        None => u32::MAX,
        Some((key, value)) => value
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| err(key, "expected a whole number >= 0".into()))?,
    };
    let duration_s = match field(fields, &["duration_s"]) {
        None => 0.0,
        Some((key, value)) => value
            .as_f64()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| err(key, "expected seconds >= 0".into()))?,
    };
    let exit_code = match field(fields, &["exit_code"]) {
        None => None,
        Some((key, value)) => Some(
            value
                .as_i64()
                .and_then(|v| i32::try_from(v).ok())
                .ok_or_else(|| err(key, "expected a whole number".into()))?,
        ),
    };
    let extra: Map<String, Value> = fields
        .iter()
        .filter(|(k, _)| !KNOWN.contains(&k.as_str()) && !COMMIT_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !extra.is_empty() {
        metadata.insert("extra".into(), Value::Object(extra));
    }
    metadata.insert("row".into(), Value::String(row.loc.to_string()));
    let mut attempt = AttemptRecord::new(task.commit.clone(), variant, round, status);
    attempt.provenance = Provenance::Imported {
        source: source.to_string(),
    };
    attempt.backend = "imported".into();
    attempt.started_at = opt_str(fields, &["started_at", "timestamp"], &err)?
        .unwrap_or("")
        .to_string();
    attempt.duration_s = duration_s;
    attempt.exit_code = exit_code;
    attempt.failure = failure;
    attempt.message = error;
    attempt.image = opt_str(fields, &["image"], &err)?.map(str::to_string);
    // The row's log path stays in `metadata.log` only: `log_dir` is under the project's state
    // directory, and a path from a results file must never be read from there later.
    attempt.metadata = Value::Object(metadata);
    attempt.import_key = Some(key.to_string());
    attempt.samples = samples;
    Ok((attempt, note))
}

/// A field by dotted path (`patch_quality.bottleneck_target.category`), non-null.
fn at_path<'a>(fields: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut value = fields.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    (!value.is_null()).then_some(value)
}

/// The first of `paths` that holds a string (empty strings count as absent).
fn text_at<'a>(
    fields: &'a Map<String, Value>,
    paths: &[&'static str],
    err: &dyn Fn(&str, String) -> RowError,
) -> Result<Option<(&'static str, &'a str)>, RowError> {
    for path in paths {
        match at_path(fields, path) {
            None => continue,
            Some(Value::String(s)) if s.trim().is_empty() => continue,
            Some(Value::String(s)) => return Ok(Some((path, s.as_str()))),
            // `bottleneck_target` is an object in the judge's own files; its `category` is read
            // through another path.
            Some(Value::Object(_)) => continue,
            Some(_) => return Err(err(path, "expected a string".into())),
        }
    }
    Ok(None)
}

/// Judge files as published: the ISO-Bench commit explorer's data
/// (`{"vllm": {"commits": [{"hash", "agents": {"claude_code": {"hard", "bottleneck",
/// "approach", …}}}]}}`) has one row per commit with its agents inside; each becomes one row
/// per commit × agent. Other rows are kept as they are.
pub fn expand_judge_rows(rows: &[RawRow]) -> Vec<RawRow> {
    let mut out = Vec::new();
    for row in rows {
        let Some(Value::Array(commits)) = row.fields.get("commits") else {
            out.push(row.clone());
            continue;
        };
        for (idx, commit) in commits.iter().enumerate() {
            let Some(hash) = commit.get("hash").filter(|h| h.is_string()) else {
                continue;
            };
            let Some(Value::Object(agents)) = commit.get("agents") else {
                continue;
            };
            for (agent, judged) in agents {
                let mut fields = judged.as_object().cloned().unwrap_or_default();
                fields.insert("commit".into(), hash.clone());
                fields.insert("candidate".into(), Value::String(agent.clone()));
                out.push(RawRow {
                    loc: crate::import::RowLoc {
                        row: idx + 1,
                        ..row.loc.clone()
                    },
                    fields,
                });
            }
        }
    }
    out
}

/// The JSON of a JavaScript data file (`// comment` lines, then `window.NAME = {…};`), as the
/// ISO-Bench website publishes its per-commit data (`static/js/commit-data.js`); `None` when the
/// text is not of that shape. Only the literal is read: nothing is evaluated.
pub fn json_of_js_assignment(text: &str) -> Option<&str> {
    let mut rest = text.trim_start_matches('\u{feff}');
    loop {
        let trimmed = rest.trim_start();
        match trimmed.strip_prefix("//") {
            Some(comment) => rest = comment.split_once('\n').map_or("", |(_, after)| after),
            None => {
                rest = trimmed;
                break;
            }
        }
    }
    let rest = rest
        .strip_prefix("window.")
        .or_else(|| rest.strip_prefix("const "))
        .or_else(|| rest.strip_prefix("var "))?;
    let (name, value) = rest.split_once('=')?;
    let name = name.trim();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let value = value.trim();
    Some(value.strip_suffix(';').unwrap_or(value).trim_end())
}

const LABEL_PATHS: &[&str] = &[
    "label",
    "bottleneck",
    "bottleneck_target",
    "bottleneck_target.category",
    "patch_quality.bottleneck_target.category",
];
const HARD_PATHS: &[&str] = &["hard", "hard_classification", "hard_outcome"];
const APPROACH_PATHS: &[&str] = &[
    "approach",
    "approach_comparison.category",
    "patch_quality.approach_comparison.category",
];

/// Converts judge rows into labels. A row names its task (`commit`, `hash`, or the soft-metric
/// files' `meta.commits.human`), its candidate (`candidate`, `agent`, `tool`, `variant` or
/// `meta.agent`) and a soft label (`label`, `bottleneck`, `bottleneck_target.category`…), a hard
/// outcome (`hard`, `hard_classification`: beats, similar, worse, NO_DATA) or both, and
/// optionally an `approach`. Rows about the same task × candidate are merged, the later row's
/// values winning; see `docs/import.md`.
pub fn import_labels(
    rows: &[RawRow],
    tasks: &[Task],
    source: &str,
) -> (Vec<JudgeLabel>, Vec<RowError>) {
    let mut labels: Vec<JudgeLabel> = Vec::new();
    let mut errors = Vec::new();
    for row in &expand_judge_rows(rows) {
        let err = |field: &str, message: String| RowError::field(&row.loc, field, message);
        let parsed = (|| {
            let (key, commit) = text_at(
                &row.fields,
                &[
                    "commit",
                    "hash",
                    "commit_hash",
                    "human_commit",
                    "meta.commits.human",
                ],
                &err,
            )?
            .ok_or_else(|| {
                err(
                    "commit",
                    "missing: every row needs the task's commit (a prefix is enough)".into(),
                )
            })?;
            let task = find_task(tasks, commit).map_err(|e| match e {
                crate::import::ResolveError::NotFound(_) => err(key, format!("no imported task has commit `{commit}`: import the task list first (`perfarena tasks import`)")),
                crate::import::ResolveError::Ambiguous { .. } => err(key, format!("{e}: give more characters of the hash")),
                crate::import::ResolveError::Other(message) => err(key, message),
            })?;
            let (_, candidate) = text_at(
                &row.fields,
                &["candidate", "agent", "tool", "variant", "meta.agent"],
                &err,
            )?
            .ok_or_else(|| {
                err(
                    "candidate",
                    "missing: the candidate the label is about (e.g. agent or agent:<name>)".into(),
                )
            })?;
            let candidate = parse_candidate(candidate).map_err(|m| err("candidate", m))?;
            let label = text_at(&row.fields, LABEL_PATHS, &err)?;
            let hard = text_at(&row.fields, HARD_PATHS, &err)?;
            if label.is_none() && hard.is_none() {
                return Err(err(
                    "label",
                    "missing: a label (same, related, different, no_optimization, or same_target… unknown) or a hard outcome (beats, similar, worse, NO_DATA)".into(),
                ));
            }
            let label = match label {
                Some((key, text)) => crate::categorize::parse_soft_label(text)
                    .map_err(|e| err(key, e.to_string()))?,
                None => None,
            };
            let hard = match hard {
                Some((key, text)) => Some(
                    text.parse::<HardOutcome>()
                        .map_err(|e| err(key, e.to_string()))?,
                ),
                None => None,
            };
            let approach = text_at(&row.fields, APPROACH_PATHS, &err)?
                .map(|(_, text)| text.trim().to_string())
                .filter(|a| !a.eq_ignore_ascii_case("unknown"));
            Ok(JudgeLabel {
                task: task.commit.clone(),
                candidate,
                label,
                hard,
                approach,
                source: source.to_string(),
            })
        })();
        match parsed {
            Ok(label) => match labels
                .iter_mut()
                .find(|l| l.task == label.task && l.candidate == label.candidate)
            {
                Some(earlier) => {
                    earlier.label = label.label.or(earlier.label);
                    earlier.hard = label.hard.or(earlier.hard);
                    earlier.approach = label.approach.or(earlier.approach.take());
                }
                None => labels.push(label),
            },
            Err(e) => errors.push(e),
        }
    }
    (labels, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attempt::FailureKind;
    use crate::categorize::SoftLabel;

    fn read_rows(file: &str, text: &str) -> Result<Vec<RawRow>, crate::import::FileError> {
        let read = crate::import::read_rows(file, text.as_bytes())?;
        assert_eq!(read.errors, [], "{file}");
        Ok(read.rows)
    }

    const C1: &str = "35fad35a485eac9195c510731ba4a9d297dfd963";
    const P1: &str = "733e7c9e95f5b066ac420b00701eef7ea164a79e";
    const C2: &str = "35fa000000000000000000000000000000000000";

    fn tasks() -> Vec<Task> {
        let mut one = Task::new(CommitId::parse(C1).unwrap());
        one.parent = Some(CommitId::parse(P1).unwrap());
        vec![one, Task::new(CommitId::parse(C2).unwrap())]
    }

    fn run(text: &str) -> ResultsImport {
        let rows = read_rows("results.jsonl", text).unwrap();
        import_results(
            &rows,
            &tasks(),
            &Triage::builtin(),
            "old-pipeline",
            &MetricMap::default(),
            &mut |path| {
                match path {
            "logs/human.log" => LogText::Text("Traceback (most recent call last):\nModuleNotFoundError: No module named 'vllm._C'\n".into()),
            _ => LogText::Unreadable("no such file".into()),
        }
            },
        )
    }

    #[test]
    fn the_documented_row() {
        let out = run(
            r#"{"commit": "35fad35a", "parent": "733e7c9e95f5", "model": "meta-llama/Meta-Llama-3-8B-Instruct", "variant": "baseline", "status": "ok", "metrics": {"output_throughput_tok_s": 3173.74, "ttft_ms": {"median": 12.5}}, "image": "org/vllm-baseline:733e7c9e95f5", "error": null, "gpu": "H100"}"#,
        );
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        let a = &out.attempts[0];
        assert_eq!(a.task.as_str(), C1);
        assert_eq!(a.variant, VariantKind::Baseline);
        assert_eq!(
            a.samples,
            vec![
                ("output_throughput_tok_s".to_string(), 3173.74),
                ("ttft_ms.median".to_string(), 12.5)
            ]
        );
        assert_eq!(
            a.provenance,
            Provenance::Imported {
                source: "old-pipeline".into()
            }
        );
        assert_eq!(a.metadata["model"], "meta-llama/Meta-Llama-3-8B-Instruct");
        assert_eq!(a.metadata["extra"]["gpu"], "H100");
        assert_eq!(a.image.as_deref(), Some("org/vllm-baseline:733e7c9e95f5"));
        assert!(a.failure.is_none());
        assert_eq!(a.import_key.as_ref().unwrap().len(), 64);
    }

    #[test]
    fn errors_and_logs_are_triaged() {
        let out = run(concat!(
            r#"{"commit": "35fad35a", "variant": "agent:claude", "status": "timeout", "error": "TIMEOUT after 3600s"}"#,
            "\n",
            r#"{"commit": "35fad35a", "variant": "human", "status": "crashed", "log": "logs/human.log"}"#,
            "\n",
            r#"{"commit": "35fad35a", "variant": "agent", "status": "crashed", "error": "RuntimeError: CUDA out of memory", "log": "gone.log"}"#,
            "\n",
        ));
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        let timeout = &out.attempts[0];
        assert_eq!(timeout.variant.to_string(), "candidate:claude");
        assert_eq!(
            timeout.failure.as_ref().unwrap().signature,
            "attempt-timeout"
        );
        let human = out.attempts[1].failure.as_ref().unwrap();
        assert_eq!(
            (human.kind, human.signature.as_str()),
            (FailureKind::Infra, "missing-compiled-extension")
        );
        assert_eq!(
            human.evidence,
            "ModuleNotFoundError: No module named 'vllm._C'"
        );
        assert_eq!(out.attempts[2].variant.to_string(), "candidate:agent");
        assert_eq!(
            out.attempts[2].failure.as_ref().unwrap().signature,
            "cuda-oom"
        );
        assert_eq!(out.notes.len(), 1);
        assert!(
            out.notes[0].starts_with("results.jsonl:3: log gone.log not read"),
            "{}",
            out.notes[0]
        );
    }

    #[test]
    fn repetitions_get_rounds_and_distinct_keys() {
        let row =
            r#"{"commit": "35fad35a", "variant": "human", "status": "ok", "metrics": {"tput": 1}}"#;
        let out = run(&format!(
            "{row}\n{row}\n{}\n",
            r#"{"commit": "35fad35a", "variant": "human", "status": "ok", "metrics": {"tput": 2}, "round": 7}"#
        ));
        let rounds: Vec<u32> = out.attempts.iter().map(|a| a.round_idx).collect();
        assert_eq!(rounds, [0, 1, 7]);
        assert_ne!(out.attempts[0].import_key, out.attempts[1].import_key);
        // The same file again gives the same keys.
        let again = run(&format!("{row}\n{row}\n"));
        assert_eq!(again.attempts[1].import_key, out.attempts[1].import_key);
    }

    #[test]
    fn bad_rows_name_the_row_and_field() {
        let cases = [
            (
                r#"{"commit": "35fa", "variant": "human", "status": "ok", "metrics": {"t": 1}}"#,
                "commit",
                "ambiguous",
            ),
            (
                r#"{"commit": "abcdef12", "variant": "human", "status": "ok", "metrics": {"t": 1}}"#,
                "commit",
                "import the task list first",
            ),
            (
                r#"{"variant": "human", "status": "ok"}"#,
                "commit",
                "missing",
            ),
            (
                r#"{"commit": "35fad35a", "variant": "robot", "status": "ok"}"#,
                "variant",
                "not a variant",
            ),
            (
                r#"{"commit": "35fad35a", "variant": "human", "status": "fine"}"#,
                "status",
                "unknown attempt status",
            ),
            (
                r#"{"commit": "35fad35a", "variant": "human", "status": "ok"}"#,
                "metrics",
                "at least one metric",
            ),
            (
                r#"{"commit": "35fad35a", "variant": "human", "status": "ok", "metrics": {"t": "fast"}}"#,
                "metrics",
                "not a number",
            ),
            (
                r#"{"commit": "35fad35a", "parent": "12345678", "variant": "human", "status": "not_run"}"#,
                "parent",
                "has parent",
            ),
            (
                r#"{"commit": "35fad35a", "variant": "human", "status": "not_run", "round": -1}"#,
                "round",
                "whole number",
            ),
        ];
        for (line, field, needle) in cases {
            let out = run(line);
            assert_eq!(out.errors.len(), 1, "{line}");
            let e = &out.errors[0];
            assert_eq!(e.field.as_deref(), Some(field), "{line}: {e}");
            assert!(e.to_string().starts_with("results.jsonl:1: field"), "{e}");
            assert!(e.to_string().contains(needle), "{e}");
        }
    }

    /// The shape of OmniPerf-Bench's per-variant result files
    /// (`archive/results/2026-01/omniperf_results_3way_claude_code/results/<commit>_<variant>_result.json`:
    /// `human_commit_full`, `status: "success"`, `metrics` named `ttft_mean_ms`,
    /// `request_throughput_req_s`, `output_token_throughput_tok_s`…) and of other pipelines'
    /// rows (`throughput_tok_s`, `latency_avg_ms`), mapped onto the vocabulary.
    #[test]
    fn other_pipelines_names_and_statuses() {
        let rows = read_rows(
            "results.jsonl",
            concat!(
                r#"{"human_commit": "35fad35a", "human_commit_full": "35fad35a485eac9195c510731ba4a9d297dfd963", "parent_commit": "733e7c9e95f5b066ac420b00701eef7ea164a79e", "model": "meta-llama/Llama-3.1-8B-Instruct", "variant": "human", "status": "success", "error": null, "duration_s": 442.23160552978516, "metrics": {"ttft_mean_ms": 574.18, "ttft_median_ms": 533.96, "ttft_p99_ms": 920.66, "itl_p99_ms": 273.01, "request_throughput_req_s": 49.4, "output_token_throughput_tok_s": 3161.47, "total_token_throughput_tok_s": 14572.41}, "timestamp": "2026-01-18 13:01:57"}"#, "\n",
                r#"{"commit": "35fad35a", "variant": "baseline", "status": "success", "metrics": {"throughput_tok_s": 6400.5, "latency_avg_ms": 1250.0, "gpu_mem_gb": 71.5, "tput": 3.0}}"#, "\n",
                r#"{"commit": "35fad35a", "variant": "agent", "status": "error", "error": "BASELINE server failed to start. Logs: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 896.00 MiB."}"#, "\n",
                r#"{"commit": "35fad35a", "variant": "agent:b", "status": "exception", "error": "[Errno 32] Broken pipe"}"#, "\n",
                r#"{"commit": "35fad35a", "variant": "agent:c", "status": "success", "metrics": {"throughput_tok_s": 1.0, "total_throughput_tok_s": 2.0}}"#, "\n",
            ),
        )
        .unwrap();
        let map = MetricMap::parse(&["tput=my_rate".to_string()]).unwrap();
        let out = import_results(
            &rows,
            &tasks(),
            &Triage::builtin(),
            "omniperf",
            &map,
            &mut |_| LogText::Unreadable("no logs".into()),
        );
        let human = &out.attempts[0];
        assert_eq!(human.status, AttemptStatus::Ok);
        assert_eq!(human.sample("ttft_ms.mean"), Some(574.18));
        assert_eq!(human.sample("itl_ms.p99"), Some(273.01));
        assert_eq!(human.sample("request_throughput_rps"), Some(49.4));
        assert_eq!(human.sample("output_throughput_tok_s"), Some(3161.47));
        assert_eq!(human.sample("total_throughput_tok_s"), Some(14572.41));
        let baseline = &out.attempts[1];
        assert_eq!(baseline.sample("total_throughput_tok_s"), Some(6400.5));
        assert_eq!(baseline.sample("latency_s.avg"), Some(1.25));
        assert_eq!(baseline.sample("gpu_mem_gb"), Some(71.5));
        assert_eq!(baseline.sample("my_rate"), Some(3.0));
        let crashed = &out.attempts[2];
        assert_eq!(crashed.status, AttemptStatus::Crashed);
        assert_eq!(
            crashed.failure.as_ref().unwrap().kind,
            FailureKind::Resource
        );
        assert_eq!(out.attempts[3].status, AttemptStatus::InfraError);
        assert_eq!(out.errors.len(), 1);
        assert!(
            out.errors[0]
                .to_string()
                .contains("two metrics are `total_throughput_tok_s`"),
            "{}",
            out.errors[0]
        );
        assert!(MetricMap::parse(&["nope".to_string()]).is_err());
    }

    #[test]
    fn labels() {
        let rows = read_rows(
            "judge.jsonl",
            concat!(
                r#"{"commit": "35fad35a", "candidate": "agent", "label": "same"}"#, "\n",
                r#"{"commit": "35fad35a", "candidate": "agent:claude", "label": "no-optimization"}"#, "\n",
                r#"{"commit": "35fad35a", "candidate": "agent", "label": "related"}"#, "\n",
                r#"{"commit": "35fa", "candidate": "agent", "label": "same"}"#, "\n",
                r#"{"commit": "35fad35a", "candidate": "human", "label": "same"}"#, "\n",
                r#"{"commit": "35fad35a", "candidate": "x", "label": "meh"}"#, "\n",
            ),
        )
        .unwrap();
        let (labels, errors) = import_labels(&rows, &tasks(), "judge.jsonl");
        assert_eq!(labels.len(), 2);
        let of = |name: &str| {
            labels
                .iter()
                .find(|l| l.candidate.as_str() == name)
                .unwrap()
                .label
        };
        assert_eq!(of("claude"), Some(SoftLabel::NoOptimization));
        // The later row about the same pair wins.
        assert_eq!(of("agent"), Some(SoftLabel::Related));
        let fields: Vec<&str> = errors.iter().filter_map(|e| e.field.as_deref()).collect();
        assert_eq!(fields, ["commit", "candidate", "label"]);
    }
}
