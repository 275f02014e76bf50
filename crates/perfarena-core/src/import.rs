//! Reading task lists (JSONL, a JSON array, or a JSON object of rows) and parent mappings into
//! checked [`Task`]s. Pure: the caller reads the files and supplies a [`CommitResolver`] (git,
//! or none for analysis-only use).

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use crate::ids::CommitId;
use crate::task::Task;

/// Where a row came from: file and line (JSONL) or file and row index (JSON); the column where a
/// line could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowLoc {
    pub file: String,
    pub line: Option<usize>,
    pub row: usize,
    pub column: Option<usize>,
}

impl RowLoc {
    /// Line `line` of a JSONL file, the `row`-th row read.
    pub fn line(file: &str, line: usize, row: usize) -> RowLoc {
        RowLoc {
            file: file.into(),
            line: Some(line),
            row,
            column: None,
        }
    }

    /// The `row`-th row of a JSON document or a table.
    pub fn row(file: &str, row: usize) -> RowLoc {
        RowLoc {
            file: file.into(),
            line: None,
            row,
            column: None,
        }
    }
}

impl fmt::Display for RowLoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "{}:{line}:{column}", self.file),
            (Some(line), None) => write!(f, "{}:{line}", self.file),
            _ => write!(f, "{}: row {}", self.file, self.row),
        }
    }
}

/// A row that could not be imported, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{loc}: {}{message}", field.as_ref().map(|f| format!("field `{f}`: ")).unwrap_or_default())]
pub struct RowError {
    pub loc: RowLoc,
    /// The field at fault; `None` when the whole line is (malformed JSON, invalid UTF-8).
    pub field: Option<String>,
    pub message: String,
}

impl RowError {
    /// An error about one field of a row.
    pub fn field(loc: &RowLoc, field: &str, message: String) -> RowError {
        RowError {
            loc: loc.clone(),
            field: Some(field.to_string()),
            message,
        }
    }
}

/// A file that could not be read as rows at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default(), column.map(|c| format!(":{c}")).unwrap_or_default())]
pub struct FileError {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

/// One row as read, before validation.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRow {
    pub loc: RowLoc,
    pub fields: Map<String, Value>,
}

/// The rows of a file and the lines that could not be read as rows (malformed JSON, invalid
/// UTF-8, not an object): each names its line, and the other rows are still read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    pub rows: Vec<RawRow>,
    pub errors: Vec<RowError>,
}

/// The text of an input file, or an error naming the line and column (in characters) of the
/// first byte that is not UTF-8.
pub fn decode_utf8<'a>(file: &str, bytes: &'a [u8]) -> Result<&'a str, FileError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let (line, column) = utf8_position(bytes, e.valid_up_to());
        FileError {
            file: file.into(),
            line: Some(line),
            column: Some(column),
            message: utf8_message(bytes, e.valid_up_to()),
        }
    })
}

/// Line and column (1-based, the column in characters) of byte `at`, all of whose prefix is UTF-8.
fn utf8_position(bytes: &[u8], at: usize) -> (usize, usize) {
    let before = &bytes[..at];
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

fn utf8_message(bytes: &[u8], at: usize) -> String {
    format!(
        "invalid UTF-8 (byte 0x{:02X}): save the file as UTF-8",
        bytes.get(at).copied().unwrap_or(0)
    )
}

/// Reads the rows of a JSONL file, a JSON array of objects, or a JSON object whose values are
/// rows (keyed by commit) or which holds an array under `rows`, `tasks`, `data` or `items`.
/// A JSONL line that is not a JSON object is an error for that line; a JSON document that does
/// not parse (or is not UTF-8) is an error for the whole file.
pub fn read_rows(file: &str, bytes: &[u8]) -> Result<Rows, FileError> {
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace());
    let Some(start) = start else {
        return Ok(Rows::default());
    };
    if matches!(bytes[start], b'[' | b'{') {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Array(items)) => return rows_from_array(file, items),
            Ok(Value::Object(object)) => return rows_from_object(file, object),
            Ok(_) => {}
            // A JSONL file also starts with `{`: fall through when the whole text is not one value.
            Err(e) if bytes[start] == b'[' => {
                decode_utf8(file, bytes)?;
                return Err(FileError {
                    file: file.into(),
                    line: Some(e.line()),
                    column: Some(e.column()),
                    message: format!("invalid JSON: {e}"),
                });
            }
            Err(_) => {}
        }
    }
    let mut out = Rows::default();
    for (idx, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let line_no = idx + 1;
        let bad = |column: Option<usize>, message: String| RowError {
            loc: RowLoc {
                column,
                ..RowLoc::line(file, line_no, 0)
            },
            field: None,
            message,
        };
        let line = match std::str::from_utf8(raw) {
            Ok(line) => line,
            Err(e) => {
                let (_, column) = utf8_position(raw, e.valid_up_to());
                out.errors
                    .push(bad(Some(column), utf8_message(raw, e.valid_up_to())));
                continue;
            }
        };
        let line = line.trim().trim_start_matches('\u{feff}');
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(fields)) => out.rows.push(RawRow {
                loc: RowLoc::line(file, line_no, out.rows.len() + 1),
                fields,
            }),
            Ok(_) => out.errors.push(bad(
                None,
                "expected a JSON object: the line is skipped".into(),
            )),
            Err(e) => out.errors.push(bad(
                None,
                format!(
                    "invalid JSON: {e} (expected one JSON object per line): the line is skipped"
                ),
            )),
        }
    }
    Ok(out)
}

fn rows_from_array(file: &str, items: Vec<Value>) -> Result<Rows, FileError> {
    let mut out = Rows::default();
    for (idx, item) in items.into_iter().enumerate() {
        let loc = RowLoc::row(file, idx + 1);
        match item {
            Value::Object(fields) => out.rows.push(RawRow { loc, fields }),
            _ => out.errors.push(RowError {
                loc,
                field: None,
                message: "expected a JSON object: the row is skipped".into(),
            }),
        }
    }
    Ok(out)
}

fn rows_from_object(file: &str, mut object: Map<String, Value>) -> Result<Rows, FileError> {
    for key in ["rows", "tasks", "data", "items"] {
        if let Some(Value::Array(_)) = object.get(key) {
            if let Some(Value::Array(items)) = object.remove(key) {
                return rows_from_array(file, items);
            }
        }
    }
    if object.values().all(Value::is_object) && !object.is_empty() {
        let mut rows = Vec::new();
        for (idx, (key, value)) in object.into_iter().enumerate() {
            let Value::Object(mut fields) = value else {
                continue;
            };
            if !fields.contains_key("commit_hash") && !fields.contains_key("commit") {
                fields.insert("commit_hash".into(), Value::String(key));
            }
            rows.push(RawRow {
                loc: RowLoc::row(file, idx + 1),
                fields,
            });
        }
        return Ok(Rows {
            rows,
            errors: Vec::new(),
        });
    }
    // A single row (also what a one-line JSONL file looks like).
    Ok(Rows {
        rows: vec![RawRow {
            loc: RowLoc::line(file, 1, 1),
            fields: object,
        }],
        errors: Vec::new(),
    })
}

/// Field names accepted for each task attribute (first is the documented one).
const COMMIT_KEYS: &[&str] = &["commit_hash", "commit", "hash", "sha"];
const PARENT_KEYS: &[&str] = &["parent_commit", "parent", "parent_hash", "base_commit"];

fn take<'a>(
    fields: &'a Map<String, Value>,
    keys: &[&'static str],
) -> Option<(&'static str, &'a Value)> {
    keys.iter().find_map(|k| {
        fields
            .get(*k)
            .filter(|v| !v.is_null())
            .map(|v| (static_key(k, keys), v))
    })
}

fn static_key(key: &str, keys: &[&'static str]) -> &'static str {
    keys.iter().copied().find(|k| *k == key).unwrap_or("?")
}

/// Turns a raw row into a task with unresolved (possibly short) hashes.
pub fn row_to_task(row: &RawRow) -> Result<Task, RowError> {
    let err = |field: &str, message: String| RowError::field(&row.loc, field, message);
    let fields = &row.fields;
    let (commit_key, commit_value) = take(fields, COMMIT_KEYS).ok_or_else(|| {
        err(
            "commit_hash",
            "missing: every row needs the commit's hash".into(),
        )
    })?;
    let commit_text = commit_value
        .as_str()
        .ok_or_else(|| err(commit_key, "expected a string".into()))?;
    let commit = CommitId::parse(commit_text).map_err(|e| err(commit_key, e.to_string()))?;
    let mut task = Task::new(commit);
    if let Some((key, value)) = take(fields, PARENT_KEYS) {
        let text = value
            .as_str()
            .ok_or_else(|| err(key, "expected a string".into()))?;
        if !text.trim().is_empty() {
            task.parent = Some(CommitId::parse(text).map_err(|e| err(key, e.to_string()))?);
        }
    }
    task.repo = opt_string(fields, "repo").map_err(|m| err("repo", m))?;
    task.models = match take(fields, &["models", "model"]) {
        None => Vec::new(),
        Some((_, Value::String(s))) => parse_model_list(s),
        Some((key, Value::Array(items))) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| err(key, "expected an array of strings".into()))
            })
            .collect::<Result<_, _>>()?,
        Some((key, _)) => return Err(err(key, "expected a string or an array of strings".into())),
    };
    task.perf_command = opt_string(fields, "perf_command")
        .and_then(|command| command.map(checked_perf_command).transpose())
        .map_err(|m| err("perf_command", m))?;
    task.has_serving = opt_bool(fields, "has_serving").map_err(|m| err("has_serving", m))?;
    task.has_latency = opt_bool(fields, "has_latency").map_err(|m| err("has_latency", m))?;
    task.has_throughput =
        opt_bool(fields, "has_throughput").map_err(|m| err("has_throughput", m))?;
    task.uses_lm_eval = opt_bool(fields, "uses_lm_eval").map_err(|m| err("uses_lm_eval", m))?;
    task.pr_url = opt_string(fields, "pr_url").map_err(|m| err("pr_url", m))?;
    task.pr_date = opt_string(fields, "pr_date").map_err(|m| err("pr_date", m))?;
    task.subject = match take(fields, &["commit_subject", "subject", "message"]) {
        None => None,
        Some((_, Value::String(s))) => Some(s.lines().next().unwrap_or("").to_string()),
        Some((key, _)) => return Err(err(key, "expected a string".into())),
    };
    task.files_changed = match fields.get("files_changed") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                Value::Object(o) => o
                    .get("filename")
                    .or_else(|| o.get("path"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| err("files_changed", "expected file names".into())),
                _ => Err(err(
                    "files_changed",
                    "expected an array of file names".into(),
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(Value::String(s)) => parse_model_list(s),
        Some(_) => {
            return Err(err(
                "files_changed",
                "expected an array of file names".into(),
            ));
        }
    };
    let known: &[&str] = &[
        "repo",
        "models",
        "model",
        "perf_command",
        "has_serving",
        "has_latency",
        "has_throughput",
        "uses_lm_eval",
        "pr_url",
        "pr_date",
        "commit_subject",
        "subject",
        "message",
        "files_changed",
    ];
    for (key, value) in fields {
        if !known.contains(&key.as_str())
            && !COMMIT_KEYS.contains(&key.as_str())
            && !PARENT_KEYS.contains(&key.as_str())
        {
            task.extra.insert(key.clone(), value.clone());
        }
    }
    Ok(task)
}

/// A list of names written as one string: `"a, b"`, a JSON array (`"[\"a\", \"b\"]"`), a Python
/// list (`"['a', 'b']"`) or a numpy array's repr (`"['a/b' 'c/d'\n 'e/f']"`, no commas) printed
/// into a CSV/Parquet cell, `"[]"`, or one name.
pub fn parse_model_list(text: &str) -> Vec<String> {
    let trimmed = text.trim();
    if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(trimmed) {
        return items
            .iter()
            .filter_map(Value::as_str)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
    }
    let inner = trimmed
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(trimmed);
    if inner.contains(['\'', '"']) {
        // Quoted items, separated by commas or (numpy) by whitespace: take what is quoted.
        let mut out = Vec::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\'' || c == '"' {
                let item: String = chars.by_ref().take_while(|d| *d != c).collect();
                let item = item.trim();
                if !item.is_empty() {
                    out.push(item.to_string());
                }
            }
        }
        return out;
    }
    inner
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn opt_string(fields: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err("expected a string".into()),
    }
}

fn opt_bool(fields: &Map<String, Value>, key: &str) -> Result<bool, String> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::Number(n)) if n.as_i64() == Some(0) || n.as_i64() == Some(1) => {
            Ok(n.as_i64() == Some(1))
        }
        Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" | "" => Ok(false),
            _ => Err(format!("expected true or false, found `{s}`")),
        },
        Some(other) => Err(format!("expected true or false, found {other}")),
    }
}

/// Reads a parent mapping: a JSON object `{commit: parent}` or rows with `commit`/`parent`.
pub fn read_mapping(
    file: &str,
    bytes: &[u8],
) -> Result<Vec<(RowLoc, CommitId, CommitId)>, FileError> {
    let text = decode_utf8(file, bytes)?;
    let trimmed = text.trim();
    if let Ok(Value::Object(object)) = serde_json::from_str::<Value>(trimmed) {
        let is_row = object
            .keys()
            .any(|k| COMMIT_KEYS.contains(&k.as_str()) || PARENT_KEYS.contains(&k.as_str()));
        if !is_row && object.values().all(Value::is_string) {
            let mut out = Vec::new();
            for (idx, (commit, parent)) in object.iter().enumerate() {
                let loc = RowLoc::row(file, idx + 1);
                let bad = |message: String| FileError {
                    file: file.into(),
                    line: None,
                    column: None,
                    message: format!("row {}: {message}", idx + 1),
                };
                let commit = CommitId::parse(commit).map_err(|e| bad(e.to_string()))?;
                let parent = CommitId::parse(parent.as_str().unwrap_or(""))
                    .map_err(|e| bad(e.to_string()))?;
                out.push((loc, commit, parent));
            }
            return Ok(out);
        }
    }
    let read = read_rows(file, bytes)?;
    // A parent mapping is all or nothing: a task with a wrong parent would be measured wrongly.
    if let Some(first) = read.errors.first() {
        return Err(FileError {
            file: file.into(),
            line: first.loc.line,
            column: first.loc.column,
            message: first.message.clone(),
        });
    }
    let mut out = Vec::new();
    for row in read.rows {
        let bad = |message: String| FileError {
            file: file.into(),
            line: row.loc.line,
            column: None,
            message: match row.loc.line {
                Some(_) => message,
                None => format!("row {}: {message}", row.loc.row),
            },
        };
        let (_, commit) =
            take(&row.fields, COMMIT_KEYS).ok_or_else(|| bad("missing field `commit`".into()))?;
        let (_, parent) =
            take(&row.fields, PARENT_KEYS).ok_or_else(|| bad("missing field `parent`".into()))?;
        let commit = CommitId::parse(commit.as_str().unwrap_or(""))
            .map_err(|e| bad(format!("field `commit`: {e}")))?;
        let parent = CommitId::parse(parent.as_str().unwrap_or(""))
            .map_err(|e| bad(format!("field `parent`: {e}")))?;
        out.push((row.loc.clone(), commit, parent));
    }
    Ok(out)
}

/// Why a hash could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("commit `{0}` is not in the repository")]
    NotFound(String),
    #[error("`{prefix}` is ambiguous: it matches {}", candidates.join(", "))]
    Ambiguous {
        prefix: String,
        candidates: Vec<String>,
    },
    #[error("{0}")]
    Other(String),
}

/// Answers questions about commits; implemented over git by the CLI, or by [`NoRepository`].
pub trait CommitResolver {
    /// The full hash a (possibly short) hash names.
    fn resolve(&self, commit: &CommitId) -> Result<CommitId, ResolveError>;
    /// The commit's first parent (`None` for a root commit).
    fn first_parent(&self, commit: &CommitId) -> Result<Option<CommitId>, ResolveError>;
    /// Whether hashes are checked at all (false for analysis-only use without a repository).
    fn checks(&self) -> bool {
        true
    }
}

/// Analysis-only use: no repository; hashes are taken as given and parents must be in the rows.
pub struct NoRepository;

impl CommitResolver for NoRepository {
    fn resolve(&self, commit: &CommitId) -> Result<CommitId, ResolveError> {
        Ok(commit.clone())
    }
    fn first_parent(&self, _commit: &CommitId) -> Result<Option<CommitId>, ResolveError> {
        Ok(None)
    }
    fn checks(&self) -> bool {
        false
    }
}

/// The result of an import: tasks to store (new or unchanged) and the rows skipped.
#[derive(Debug, Default)]
pub struct ImportOutcome {
    pub tasks: Vec<Task>,
    pub unchanged: usize,
    pub errors: Vec<RowError>,
    pub notes: Vec<String>,
    /// Stored tasks known by a short hash that this import names in full: `(short, full)`. The
    /// store renames them (and everything recorded under them) before storing `tasks`.
    pub upgrades: Vec<(CommitId, CommitId)>,
}

/// Where a task the import already knows came from, for messages.
#[derive(Debug, Clone)]
enum Known {
    Stored,
    Row(RowLoc),
}

impl fmt::Display for Known {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Known::Stored => f.write_str("an already imported task"),
            Known::Row(loc) => write!(f, "the row at {loc}"),
        }
    }
}

/// Validates rows, applies parent mappings, resolves hashes and parents, and compares with what
/// is already stored. Rows that fail are reported in `errors`; the rest are in `tasks`.
///
/// One task per commit: a commit first seen by a short hash and later in full (or the reverse,
/// in this import or an earlier one) is the same task, upgraded in place to the full hash with
/// the rows' fields merged (the later row's non-empty fields win). A short hash that two known
/// full hashes share is an error naming both.
pub fn import_tasks(
    rows: &[RawRow],
    mappings: &[(RowLoc, CommitId, CommitId)],
    resolver: &dyn CommitResolver,
    existing: &[Task],
) -> ImportOutcome {
    let mut outcome = ImportOutcome::default();
    if !resolver.checks() {
        outcome.notes.push(
            "no repository in the suite: commit hashes are taken as given and not checked against git".into(),
        );
    }
    // Mappings: resolve both sides once.
    let mut parents: BTreeMap<CommitId, (RowLoc, CommitId)> = BTreeMap::new();
    for (loc, commit, parent) in mappings {
        let resolved = resolver
            .resolve(commit)
            .and_then(|c| resolver.resolve(parent).map(|p| (c, p)));
        match resolved {
            Ok((commit, parent)) => {
                parents.insert(commit, (loc.clone(), parent));
            }
            Err(e) => outcome
                .errors
                .push(RowError::field(loc, "commit", e.to_string())),
        }
    }
    // Every task known so far, by commit: the stored ones, replaced by this import's rows.
    let mut known: BTreeMap<CommitId, (Known, Task)> = existing
        .iter()
        .map(|t| (t.commit.clone(), (Known::Stored, t.clone())))
        .collect();
    let mut imported: Vec<CommitId> = Vec::new();
    let mut upgraded: Vec<String> = Vec::new();
    for row in rows {
        let task = match row_to_task(row).and_then(|task| resolve_commit_of(task, row, resolver)) {
            Ok(task) => task,
            Err(e) => {
                outcome.errors.push(e);
                continue;
            }
        };
        let given = task.commit.clone();
        let mut task = match reconcile(task, row, &known) {
            Ok(task) => task,
            Err(e) => {
                outcome.errors.push(e);
                continue;
            }
        };
        // A shorter hash of the same commit known before: one task, upgraded to this hash.
        let shorter: Vec<CommitId> = known
            .keys()
            .filter(|k| *k != &task.commit && k.is_prefix_of(&task.commit))
            .cloned()
            .collect();
        for short in shorter {
            if let Some((was, earlier)) = known.remove(&short) {
                task = merged(earlier, task);
                imported.retain(|c| c != &short);
                if existing.iter().any(|t| t.commit == short) {
                    outcome.upgrades.push((short.clone(), task.commit.clone()));
                }
                upgraded.push(format!("{short} ({was}) → {} ({})", task.commit, row.loc));
            }
        }
        let task = match apply_parent(task, row, &parents, resolver) {
            Ok(task) => task,
            Err(e) => {
                outcome.errors.push(e);
                continue;
            }
        };
        let commit = task.commit.clone();
        match known.get(&commit) {
            // The same commit given by a shorter hash in this row: one task, the fields merged.
            Some((Known::Row(first_loc), first)) if given != commit => {
                upgraded.push(format!("{given} ({}) → {commit} ({first_loc})", row.loc));
                let task = merged(first.clone(), task);
                let loc = first_loc.clone();
                known.insert(commit.clone(), (Known::Row(loc), task));
                continue;
            }
            Some((Known::Row(first_loc), first)) => {
                if first != &task {
                    outcome.errors.push(RowError::field(
                        &row.loc,
                        "commit_hash",
                        format!(
                            "duplicate of the row at {first_loc} with different data; keep one of them"
                        ),
                    ));
                }
                continue;
            }
            Some((Known::Stored, stored)) => {
                let task = merged(stored.clone(), task);
                known.insert(commit.clone(), (Known::Row(row.loc.clone()), task));
            }
            None => {
                known.insert(commit.clone(), (Known::Row(row.loc.clone()), task));
            }
        }
        imported.push(commit);
    }
    if !upgraded.is_empty() {
        outcome.notes.push(format!(
            "{} task(s) first known by a short hash are now known by the full hash (one task per commit): {}",
            upgraded.len(),
            upgraded.join("; ")
        ));
    }
    let mut without_parent = Vec::new();
    for commit in imported {
        let Some((_, task)) = known.get(&commit) else {
            continue;
        };
        if task.parent.is_none() {
            without_parent.push(task.short_id().to_string());
        }
        let upgraded = outcome.upgrades.iter().any(|(_, full)| full == &commit);
        match existing.iter().find(|t| t.commit == commit) {
            Some(stored) if stored == task && !upgraded => outcome.unchanged += 1,
            _ => outcome.tasks.push(task.clone()),
        }
    }
    if !without_parent.is_empty() {
        outcome.notes.push(format!(
            "{} task(s) have no parent commit (analysable, not runnable until a parent is given, e.g. with --mapping): {}",
            without_parent.len(),
            without_parent.join(", ")
        ));
    }
    outcome
}

/// `newer` over `older`: the same task, the newer row's non-empty fields winning, the longer
/// commit hash kept.
fn merged(older: Task, newer: Task) -> Task {
    let pick = |a: Option<String>, b: Option<String>| b.or(a);
    let list = |a: Vec<String>, b: Vec<String>| if b.is_empty() { a } else { b };
    let commit = if newer.commit.as_str().len() >= older.commit.as_str().len() {
        newer.commit.clone()
    } else {
        older.commit.clone()
    };
    let mut extra = older.extra;
    extra.extend(newer.extra);
    Task {
        commit,
        parent: newer.parent.or(older.parent),
        repo: pick(older.repo, newer.repo),
        models: list(older.models, newer.models),
        perf_command: pick(older.perf_command, newer.perf_command),
        has_serving: older.has_serving || newer.has_serving,
        has_latency: older.has_latency || newer.has_latency,
        has_throughput: older.has_throughput || newer.has_throughput,
        uses_lm_eval: older.uses_lm_eval || newer.uses_lm_eval,
        pr_url: pick(older.pr_url, newer.pr_url),
        pr_date: pick(older.pr_date, newer.pr_date),
        subject: pick(older.subject, newer.subject),
        files_changed: list(older.files_changed, newer.files_changed),
        extra,
    }
}

/// With a repository, the commit and the parent are resolved to full hashes by git.
fn resolve_commit_of(
    mut task: Task,
    row: &RawRow,
    resolver: &dyn CommitResolver,
) -> Result<Task, RowError> {
    let err = |field: &str, message: String| RowError::field(&row.loc, field, message);
    task.commit = resolver
        .resolve(&task.commit)
        .map_err(|e| err("commit_hash", e.to_string()))?;
    if let Some(parent) = task.parent.take() {
        task.parent = Some(
            resolver
                .resolve(&parent)
                .map_err(|e| err("parent_commit", e.to_string()))?,
        );
    }
    Ok(task)
}

/// A short hash that names exactly one longer known commit becomes that commit; one that two
/// known commits share is an error naming both.
fn reconcile(
    mut task: Task,
    row: &RawRow,
    known: &BTreeMap<CommitId, (Known, Task)>,
) -> Result<Task, RowError> {
    let longer: Vec<(&CommitId, &Known)> = known
        .iter()
        .filter(|(k, _)| *k != &task.commit && task.commit.is_prefix_of(k))
        .map(|(k, (was, _))| (k, was))
        .collect();
    match longer.as_slice() {
        [] => Ok(task),
        [(full, _)] => {
            task.commit = (*full).clone();
            Ok(task)
        }
        [(a, a_was), (b, b_was), ..] => Err(RowError::field(
            &row.loc,
            "commit_hash",
            format!(
                "`{}` is ambiguous: it is the start of both {a} ({a_was}) and {b} ({b_was}); give more characters of the hash",
                task.commit
            ),
        )),
    }
}

/// Applies a parent mapping (keyed by the full hash or any prefix of it) and, with a
/// repository, finds the first parent git knows.
fn apply_parent(
    mut task: Task,
    row: &RawRow,
    parents: &BTreeMap<CommitId, (RowLoc, CommitId)>,
    resolver: &dyn CommitResolver,
) -> Result<Task, RowError> {
    let err = |field: &str, message: String| RowError::field(&row.loc, field, message);
    let mapped = parents.get(&task.commit).or_else(|| {
        parents
            .iter()
            .find(|(key, _)| key.is_prefix_of(&task.commit) || task.commit.is_prefix_of(key))
            .map(|(_, value)| value)
    });
    if let Some((_, mapped)) = mapped {
        if let Some(given) = &task.parent {
            if !given.is_prefix_of(mapped) && !mapped.is_prefix_of(given) {
                return Err(err(
                    "parent_commit",
                    format!("row says {given} but the mapping says {mapped}"),
                ));
            }
        }
        task.parent = Some(mapped.clone());
    }
    if task.parent.is_none() && resolver.checks() {
        task.parent = resolver
            .first_parent(&task.commit)
            .map_err(|e| err("parent_commit", e.to_string()))?;
        if task.parent.is_none() {
            return Err(err(
                "parent_commit",
                "the commit has no parent (a root commit cannot be a task)".into(),
            ));
        }
    }
    Ok(task)
}

/// Resolves a (short) commit against a task list: exactly one task must match.
pub fn find_task<'a>(tasks: &'a [Task], prefix: &str) -> Result<&'a Task, ResolveError> {
    let wanted = CommitId::parse(prefix).map_err(|e| ResolveError::Other(e.to_string()))?;
    let matches: Vec<&Task> = tasks
        .iter()
        .filter(|t| wanted.is_prefix_of(&t.commit) || t.commit.is_prefix_of(&wanted))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(ResolveError::NotFound(prefix.to_string())),
        many => Err(ResolveError::Ambiguous {
            prefix: prefix.to_string(),
            candidates: many.iter().map(|t| t.short_id().to_string()).collect(),
        }),
    }
}

/// `{perf_command}` is run as a command (the one placeholder that is code by design), so it is
/// checked here: CRLF line ends become LF (several commands on lines are a known shape), and
/// any other control character (NUL, ESC, a lone CR, …) is refused.
fn checked_perf_command(command: String) -> Result<String, String> {
    let command = command.replace("\r\n", "\n");
    match command
        .char_indices()
        .find(|(_, c)| c.is_control() && !matches!(c, '\n' | '\t'))
    {
        Some((at, c)) => Err(format!(
            "control character U+{:04X} at byte {at}: a perf_command must be printable text (commands may be separated by newlines)",
            u32::from(c)
        )),
        None => Ok(command),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C1: &str = "1111111111111111111111111111111111111111";
    const P1: &str = "0000000000000000000000000000000000000001";
    const C2: &str = "2222222222222222222222222222222222222222";
    const C3: &str = "2222333333333333333333333333333333333333";

    /// A small in-memory "repository": commit → first parent.
    struct FakeRepo(Vec<(&'static str, Option<&'static str>)>);

    impl CommitResolver for FakeRepo {
        fn resolve(&self, commit: &CommitId) -> Result<CommitId, ResolveError> {
            let hits: Vec<&str> = self
                .0
                .iter()
                .map(|(c, _)| *c)
                .filter(|c| c.starts_with(commit.as_str()))
                .collect();
            match hits.as_slice() {
                [one] => Ok(CommitId::parse(one).unwrap()),
                [] => Err(ResolveError::NotFound(commit.to_string())),
                many => Err(ResolveError::Ambiguous {
                    prefix: commit.to_string(),
                    candidates: many.iter().map(|s| s.to_string()).collect(),
                }),
            }
        }
        fn first_parent(&self, commit: &CommitId) -> Result<Option<CommitId>, ResolveError> {
            let entry = self
                .0
                .iter()
                .find(|(c, _)| *c == commit.as_str())
                .ok_or_else(|| ResolveError::NotFound(commit.to_string()))?;
            Ok(entry.1.map(|p| CommitId::parse(p).unwrap()))
        }
    }

    /// The rows of a file that has no bad lines (the tests' files are text).
    fn read_rows(file: &str, text: &str) -> Result<Vec<RawRow>, FileError> {
        let read = super::read_rows(file, text.as_bytes())?;
        assert_eq!(read.errors, [], "{file}");
        Ok(read.rows)
    }

    fn read_mapping(
        file: &str,
        text: &str,
    ) -> Result<Vec<(RowLoc, CommitId, CommitId)>, FileError> {
        super::read_mapping(file, text.as_bytes())
    }

    fn repo() -> FakeRepo {
        FakeRepo(vec![
            (C1, Some(P1)),
            (P1, None),
            (C2, Some(C1)),
            (C3, Some(C1)),
        ])
    }

    #[test]
    fn reads_jsonl_arrays_and_objects() {
        let jsonl = format!(
            "{{\"commit_hash\": \"{C1}\"}}\n\n{{\"commit_hash\": \"{C2}\", \"models\": \"a, b\"}}\n"
        );
        let rows = read_rows("t.jsonl", &jsonl).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].loc.to_string(), "t.jsonl:3");
        let array = format!("[{{\"commit_hash\": \"{C1}\"}}, {{\"commit_hash\": \"{C2}\"}}]");
        let rows = read_rows("t.json", &array).unwrap();
        assert_eq!(rows[1].loc.to_string(), "t.json: row 2");
        let keyed = format!("{{\"{C1}\": {{\"models\": [\"m\"]}}, \"{C2}\": {{}}}}");
        let rows = read_rows("t.json", &keyed).unwrap();
        assert_eq!(row_to_task(&rows[0]).unwrap().commit.as_str(), C1);
        let wrapped = format!("{{\"rows\": [{{\"commit\": \"{C1}\"}}]}}");
        assert_eq!(read_rows("t.json", &wrapped).unwrap().len(), 1);
        let single = format!("{{\"commit_hash\": \"{C1}\", \"models\": [\"m\"]}}");
        assert_eq!(read_rows("t.json", &single).unwrap().len(), 1);
    }

    #[test]
    fn a_bad_line_is_an_error_for_that_line_and_the_others_are_read() {
        let text =
            format!("{{\"commit_hash\": \"{C1}\"}}\n{{oops\n[1]\n{{\"commit_hash\": \"{C2}\"}}\n");
        let read = super::read_rows("t.jsonl", text.as_bytes()).unwrap();
        assert_eq!(read.rows.len(), 2);
        assert_eq!(read.rows[1].loc.to_string(), "t.jsonl:4");
        let errors: Vec<String> = read.errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 2);
        assert!(
            errors[0].starts_with("t.jsonl:2: invalid JSON"),
            "{}",
            errors[0]
        );
        assert!(
            errors[1].starts_with("t.jsonl:3: expected a JSON object"),
            "{}",
            errors[1]
        );
        assert_eq!(read.errors[0].field, None);
        // A JSON document is one value: a syntax error is the file's, with line and column.
        let err = super::read_rows("t.json", b"[{\"a\": 1},\n {oops}]").unwrap_err();
        assert_eq!((err.line, err.column), (Some(2), Some(3)));
        // Array items that are not objects are skipped one by one.
        let read = super::read_rows("t.json", b"[1, {\"a\": 2}]").unwrap();
        assert_eq!(read.rows.len(), 1);
        assert_eq!(
            read.errors[0].to_string(),
            "t.json: row 1: expected a JSON object: the row is skipped"
        );
    }

    #[test]
    fn invalid_utf8_names_file_line_and_column() {
        // Latin-1 "é" (0xE9) in the second line, after "  {\"x\": \"caf" (12 characters).
        let mut jsonl =
            format!("{{\"commit_hash\": \"{C1}\", \"subject\": \"ça\"}}\n").into_bytes();
        jsonl.extend_from_slice(b"  {\"x\": \"caf\xE9\"}\n");
        jsonl.extend_from_slice(format!("{{\"commit_hash\": \"{C2}\"}}\n").as_bytes());
        let read = super::read_rows("t.jsonl", &jsonl).unwrap();
        assert_eq!(read.rows.len(), 2);
        assert_eq!(
            read.errors[0].to_string(),
            "t.jsonl:2:13: invalid UTF-8 (byte 0xE9): save the file as UTF-8"
        );
        let err = decode_utf8("m.txt", b"ok\n\xC3\xA7a\xFF").unwrap_err();
        assert_eq!(
            err.to_string(),
            "m.txt:2:3: invalid UTF-8 (byte 0xFF): save the file as UTF-8"
        );
        let err = super::read_rows("t.json", b"[{\"a\": \"\xFF\"}, oops]").unwrap_err();
        assert_eq!((err.line, err.column), (Some(1), Some(9)), "{err}");
    }

    #[test]
    fn rows_become_tasks_with_all_fields() {
        let text = format!(
            "{{\"commit_hash\": \"{C1}\", \"parent_commit\": \"{P1}\", \"repo\": \"vllm-project/vllm\", \"models\": [\"m1\"], \
             \"perf_command\": \"python benchmarks/benchmark_serving.py --model m1\", \"has_serving\": true, \"has_latency\": \"false\", \
             \"uses_lm_eval\": 0, \"pr_url\": \"https://x/pull/1\", \"pr_date\": \"2024-05-01\", \"commit_subject\": \"Speed up\\nbody\", \
             \"files_changed\": [\"vllm/a.py\", {{\"filename\": \"csrc/b.cu\"}}], \"difficulty\": 3}}"
        );
        let rows = read_rows("t.jsonl", &text).unwrap();
        let task = row_to_task(&rows[0]).unwrap();
        assert_eq!(task.parent.as_ref().unwrap().as_str(), P1);
        assert_eq!(task.models, vec!["m1"]);
        assert!(task.has_serving && !task.has_latency && !task.uses_lm_eval);
        assert_eq!(task.subject.as_deref(), Some("Speed up"));
        assert_eq!(task.files_changed, vec!["vllm/a.py", "csrc/b.cu"]);
        assert_eq!(task.extra["difficulty"], 3);
    }

    #[test]
    fn each_bad_row_names_its_field() {
        let cases = [
            ("{\"parent_commit\": \"abcd\"}", "commit_hash", "missing"),
            (
                "{\"commit_hash\": \"xyz\"}",
                "commit_hash",
                "not a commit hash",
            ),
            (
                "{\"commit_hash\": 12345}",
                "commit_hash",
                "expected a string",
            ),
            (
                &format!("{{\"commit_hash\": \"{C1}\", \"parent_commit\": \"zz\"}}") as &str,
                "parent_commit",
                "not a commit hash",
            ),
            (
                &format!("{{\"commit_hash\": \"{C1}\", \"models\": 3}}") as &str,
                "models",
                "expected",
            ),
            (
                &format!("{{\"commit_hash\": \"{C1}\", \"has_serving\": \"maybe\"}}") as &str,
                "has_serving",
                "maybe",
            ),
        ];
        for (line, field, needle) in cases {
            let rows = read_rows("bad.jsonl", line).unwrap();
            let err = row_to_task(&rows[0]).unwrap_err();
            assert_eq!(err.field.as_deref(), Some(field), "{line}");
            assert!(err.to_string().contains(needle), "{err}");
            assert!(err.to_string().starts_with("bad.jsonl:1: field"), "{err}");
        }
    }

    #[test]
    fn import_resolves_short_hashes_and_parents() {
        let rows = read_rows("t.jsonl", "{\"commit_hash\": \"111111\"}\n{\"commit_hash\": \"2222\"}\n{\"commit_hash\": \"ffff\"}\n").unwrap();
        let outcome = import_tasks(&rows, &[], &repo(), &[]);
        assert_eq!(outcome.tasks.len(), 1);
        assert_eq!(outcome.tasks[0].commit.as_str(), C1);
        assert_eq!(outcome.tasks[0].parent.as_ref().unwrap().as_str(), P1);
        assert_eq!(outcome.errors.len(), 2);
        assert!(
            outcome.errors[0].to_string().contains("ambiguous"),
            "{}",
            outcome.errors[0]
        );
        assert_eq!(outcome.errors[0].loc.line, Some(2));
        assert!(
            outcome.errors[1]
                .to_string()
                .contains("not in the repository")
        );
    }

    #[test]
    fn mappings_supply_parents_and_conflicts_are_errors() {
        let rows = read_rows("t.jsonl", &format!("{{\"commit_hash\": \"{C2}\"}}\n")).unwrap();
        let mapping = read_mapping("m.json", &format!("{{\"222222\": \"{P1}\"}}")).unwrap();
        let outcome = import_tasks(&rows, &mapping, &repo(), &[]);
        assert_eq!(outcome.tasks[0].parent.as_ref().unwrap().as_str(), P1);
        let mapping_rows = read_mapping(
            "m.jsonl",
            &format!("{{\"commit\": \"{C2}\", \"parent\": \"{C1}\"}}\n"),
        )
        .unwrap();
        let outcome = import_tasks(&rows, &mapping_rows, &repo(), &[]);
        assert_eq!(outcome.tasks[0].parent.as_ref().unwrap().as_str(), C1);
        let conflicting = read_rows(
            "t.jsonl",
            &format!("{{\"commit_hash\": \"{C2}\", \"parent_commit\": \"{C1}\"}}\n"),
        )
        .unwrap();
        let outcome = import_tasks(&conflicting, &mapping, &repo(), &[]);
        assert_eq!(outcome.errors.len(), 1);
        assert!(outcome.errors[0].to_string().contains("mapping says"));
    }

    #[test]
    fn duplicates_and_reimport() {
        let text = format!(
            "{{\"commit_hash\": \"{C1}\", \"models\": [\"a\"]}}\n{{\"commit_hash\": \"{C1}\", \"models\": [\"a\"]}}\n{{\"commit_hash\": \"{C1}\", \"models\": [\"b\"]}}\n"
        );
        let rows = read_rows("t.jsonl", &text).unwrap();
        let outcome = import_tasks(&rows, &[], &repo(), &[]);
        assert_eq!(outcome.tasks.len(), 1);
        assert_eq!(outcome.errors.len(), 1);
        assert!(
            outcome.errors[0].to_string().contains("t.jsonl:3")
                && outcome.errors[0].to_string().contains("t.jsonl:1")
        );
        let again = import_tasks(&rows[..1], &[], &repo(), &outcome.tasks);
        assert!(again.tasks.is_empty());
        assert_eq!(again.unchanged, 1);
    }

    #[test]
    fn without_a_repository_hashes_are_taken_as_given() {
        let rows = read_rows(
            "t.jsonl",
            &format!("{{\"commit_hash\": \"35fad35a\", \"parent_commit\": \"733e7c9e\"}}\n"),
        )
        .unwrap();
        let outcome = import_tasks(&rows, &[], &NoRepository, &[]);
        assert_eq!(outcome.tasks[0].commit.as_str(), "35fad35a");
        assert_eq!(outcome.notes.len(), 1);
        let stored = vec![Task::new(CommitId::parse(C1).unwrap())];
        let rows = read_rows(
            "t.jsonl",
            "{\"commit_hash\": \"1111\", \"models\": [\"m\"]}\n",
        )
        .unwrap();
        let outcome = import_tasks(&rows, &[], &NoRepository, &stored);
        assert_eq!(outcome.tasks[0].commit.as_str(), C1);
        assert_eq!(outcome.tasks[0].models, vec!["m"]);
    }

    /// Shapes from the published datasets: the OmniPerf-Bench/ISO-Bench task mapping
    /// (`data/mappings/vllm_oh_mapping.json`: an object keyed by the 8-character hash, with
    /// `human_commit_full` and `parent_commit`) and the HF dataset rows (`commit_hash` in full,
    /// no parent), imported in either order.
    #[test]
    fn one_task_per_commit_whichever_hash_comes_first() {
        let full = "fc542144c4477ffec1d3de6fa43e54f8fb5351e8";
        let short_row = r#"{"commit_hash": "fc542144", "parent_commit": "eb5741ad422f04d0bac60c9b6c07183e0431ce8c", "models": ["meta-llama/Llama-3.1-8B-Instruct"]}"#;
        let full_row = format!(
            r#"{{"commit_hash": "{full}", "commit_subject": "[V1] Async bitmask", "perf_command": "python benchmarks/benchmark_serving.py --model meta-llama/Llama-3.1-8B-Instruct --num-prompts 100"}}"#
        );
        for text in [
            format!("{short_row}\n{full_row}\n"),
            format!("{full_row}\n{short_row}\n"),
        ] {
            let rows = read_rows("t.jsonl", &text).unwrap();
            let outcome = import_tasks(&rows, &[], &NoRepository, &[]);
            assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
            assert_eq!(outcome.tasks.len(), 1, "{text}");
            let task = &outcome.tasks[0];
            assert_eq!(task.commit.as_str(), full);
            assert_eq!(task.models, ["meta-llama/Llama-3.1-8B-Instruct"]);
            assert_eq!(task.subject.as_deref(), Some("[V1] Async bitmask"));
            assert!(task.parent.is_some());
            assert!(outcome.upgrades.is_empty());
        }
        // Across imports: the stored short task is upgraded in place, never duplicated.
        let rows = read_rows("m.jsonl", &format!("{short_row}\n")).unwrap();
        let first = import_tasks(&rows, &[], &NoRepository, &[]);
        let rows = read_rows("d.jsonl", &format!("{full_row}\n")).unwrap();
        let second = import_tasks(&rows, &[], &NoRepository, &first.tasks);
        assert_eq!(second.tasks.len(), 1);
        assert_eq!(second.tasks[0].commit.as_str(), full);
        assert_eq!(second.upgrades.len(), 1);
        assert_eq!(second.upgrades[0].0.as_str(), "fc542144");
        assert!(
            second
                .notes
                .iter()
                .any(|n| n.contains("one task per commit")),
            "{:?}",
            second.notes
        );
        // Importing the same file again changes nothing.
        let rows = read_rows("d.jsonl", &format!("{full_row}\n")).unwrap();
        let again = import_tasks(&rows, &[], &NoRepository, &second.tasks);
        assert!(again.tasks.is_empty() && again.upgrades.is_empty());
        assert_eq!(again.unchanged, 1);
    }

    #[test]
    fn a_short_hash_two_full_hashes_share_is_an_error_naming_both() {
        let text = format!(
            "{{\"commit_hash\": \"{C2}\"}}\n{{\"commit_hash\": \"{C3}\"}}\n{{\"commit_hash\": \"2222\"}}\n"
        );
        let rows = read_rows("t.jsonl", &text).unwrap();
        let outcome = import_tasks(&rows, &[], &NoRepository, &[]);
        assert_eq!(outcome.tasks.len(), 2);
        let error = outcome.errors[0].to_string();
        assert!(
            error.starts_with("t.jsonl:3: field `commit_hash`: `2222` is ambiguous"),
            "{error}"
        );
        assert!(
            error.contains("t.jsonl:1") && error.contains("t.jsonl:2"),
            "{error}"
        );
    }

    #[test]
    fn rows_without_a_parent_are_imported_with_one_warning() {
        let text = format!("{{\"commit_hash\": \"{C1}\"}}\n{{\"commit_hash\": \"{C2}\"}}\n");
        let rows = read_rows("t.jsonl", &text).unwrap();
        let outcome = import_tasks(&rows, &[], &NoRepository, &[]);
        assert_eq!(outcome.tasks.len(), 2);
        let warnings: Vec<&String> = outcome
            .notes
            .iter()
            .filter(|n| n.contains("no parent"))
            .collect();
        assert_eq!(warnings.len(), 1, "{:?}", outcome.notes);
        assert!(
            warnings[0].starts_with("2 task(s) have no parent commit (analysable, not runnable"),
            "{}",
            warnings[0]
        );
    }

    /// `models` as the published datasets write it: a list, a JSON string, a Python list, a
    /// numpy array's repr (Parquet exports of ISO-Bench print arrays that way), or empty.
    #[test]
    fn model_lists_in_every_published_spelling() {
        let cases: &[(&str, &[&str])] = &[
            (
                "meta-llama/Llama-3.1-8B-Instruct",
                &["meta-llama/Llama-3.1-8B-Instruct"],
            ),
            ("a/b, c/d", &["a/b", "c/d"]),
            (
                r#"["Qwen/Qwen3-30B-A3B", "Qwen/Qwen3-30B-A3B-FP8"]"#,
                &["Qwen/Qwen3-30B-A3B", "Qwen/Qwen3-30B-A3B-FP8"],
            ),
            (
                "['Qwen/Qwen3-30B-A3B', 'ibm-granite/granite-4.0-tiny-preview']",
                &["Qwen/Qwen3-30B-A3B", "ibm-granite/granite-4.0-tiny-preview"],
            ),
            (
                "['Qwen/Qwen3-30B-A3B' 'Qwen/Qwen3-30B-A3B-FP8'\n 'ibm-granite/granite-4.0-tiny-preview']",
                &[
                    "Qwen/Qwen3-30B-A3B",
                    "Qwen/Qwen3-30B-A3B-FP8",
                    "ibm-granite/granite-4.0-tiny-preview",
                ],
            ),
            ("[]", &[]),
            ("", &[]),
        ];
        for (text, want) in cases {
            assert_eq!(parse_model_list(text), *want, "{text:?}");
        }
    }

    #[test]
    fn find_task_by_prefix() {
        let tasks: Vec<Task> = [C1, C2, C3]
            .iter()
            .map(|c| Task::new(CommitId::parse(c).unwrap()))
            .collect();
        assert_eq!(find_task(&tasks, "1111").unwrap().commit.as_str(), C1);
        assert!(matches!(
            find_task(&tasks, "2222"),
            Err(ResolveError::Ambiguous { .. })
        ));
        assert!(matches!(
            find_task(&tasks, "abcd"),
            Err(ResolveError::NotFound(_))
        ));
    }

    #[test]
    fn perf_commands_with_control_characters_are_refused() {
        assert_eq!(
            checked_perf_command("a\r\nb\tc".into()),
            Ok("a\nb\tc".into())
        );
        for bad in ["rm -rf /\u{1b}[2K", "a\0b", "a\rb", "x\u{7f}"] {
            let message = checked_perf_command(bad.into()).unwrap_err();
            assert!(message.contains("control character U+"), "{message}");
        }
    }
}
