//! A task: one optimisation commit to benchmark, with its parent and how to benchmark it.

use serde::{Deserialize, Serialize};

use crate::ids::CommitId;

/// What kind of benchmark a task's `perf_command` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BenchKind {
    Serving,
    Latency,
    Throughput,
    Unknown,
}

impl BenchKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BenchKind::Serving => "serving",
            BenchKind::Latency => "latency",
            BenchKind::Throughput => "throughput",
            BenchKind::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// The optimisation commit (the human variant).
    pub commit: CommitId,
    /// Its parent (the baseline variant); `None` until resolved.
    pub parent: Option<CommitId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perf_command: Option<String>,
    #[serde(default)]
    pub has_serving: bool,
    #[serde(default)]
    pub has_latency: bool,
    #[serde(default)]
    pub has_throughput: bool,
    #[serde(default)]
    pub uses_lm_eval: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pr_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pr_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default)]
    pub files_changed: Vec<String>,
    /// Fields of the imported row that perfarena has no column for, kept as they were.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Task {
    pub fn new(commit: CommitId) -> Task {
        Task {
            commit,
            parent: None,
            repo: None,
            models: Vec::new(),
            perf_command: None,
            has_serving: false,
            has_latency: false,
            has_throughput: false,
            uses_lm_eval: false,
            pr_url: None,
            pr_date: None,
            subject: None,
            files_changed: Vec::new(),
            extra: serde_json::Map::new(),
        }
    }

    /// The model to benchmark: the first listed, else the `--model` argument of the perf
    /// command, else `None` (the task is then categorised `unknown_model`).
    pub fn model(&self) -> Option<String> {
        if let Some(model) = self.models.iter().find(|m| !m.trim().is_empty()) {
            return Some(model.trim().to_string());
        }
        model_from_command(self.perf_command.as_deref()?)
    }

    /// The benchmark kind, from the flags or, failing that, the perf command.
    pub fn bench_kind(&self) -> BenchKind {
        if self.has_serving {
            return BenchKind::Serving;
        }
        if self.has_throughput {
            return BenchKind::Throughput;
        }
        if self.has_latency {
            return BenchKind::Latency;
        }
        let command = self.perf_command.as_deref().unwrap_or("");
        if command.contains("serving") || command.contains("bench serve") {
            BenchKind::Serving
        } else if command.contains("throughput") {
            BenchKind::Throughput
        } else if command.contains("latency") {
            BenchKind::Latency
        } else {
            BenchKind::Unknown
        }
    }

    /// A short id for tables and paths: the first 12 characters of the commit.
    pub fn short_id(&self) -> &str {
        self.commit.short(12)
    }
}

/// The value of `--model X`, `--model=X` or `-m X` in a command line.
pub fn model_from_command(command: &str) -> Option<String> {
    let words = shell_split(command);
    let mut iter = words.iter();
    while let Some(word) = iter.next() {
        if let Some(value) = word.strip_prefix("--model=") {
            return Some(value.to_string()).filter(|v| !v.is_empty());
        }
        if word == "--model" || word == "-m" || word == "--model-path" {
            if let Some(value) = iter.next() {
                if !value.starts_with('-') {
                    return Some(value.clone());
                }
            }
        }
    }
    None
}

/// Splits a command line into words, honouring single and double quotes (enough for reading
/// arguments back; commands are run by a shell, not by this function).
fn shell_split(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for c in command.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => current.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            (None, c) => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(current);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> Task {
        Task::new(CommitId::parse("35fad35a485eac9195c510731ba4a9d297dfd963").unwrap())
    }

    #[test]
    fn model_comes_from_models_then_the_perf_command() {
        let mut t = task();
        assert_eq!(t.model(), None);
        t.perf_command = Some("python benchmarks/benchmark_serving.py --model 'meta-llama/Llama-3-8B' --num-prompts 100".into());
        assert_eq!(t.model().as_deref(), Some("meta-llama/Llama-3-8B"));
        t.perf_command = Some("vllm bench serve --model=Qwen/Qwen2-7B".into());
        assert_eq!(t.model().as_deref(), Some("Qwen/Qwen2-7B"));
        t.models = vec!["  ".into(), "mistralai/Mistral-7B".into()];
        assert_eq!(t.model().as_deref(), Some("mistralai/Mistral-7B"));
    }

    #[test]
    fn bench_kind_from_flags_or_command() {
        let mut t = task();
        assert_eq!(t.bench_kind(), BenchKind::Unknown);
        t.perf_command = Some("python benchmarks/benchmark_latency.py --model x".into());
        assert_eq!(t.bench_kind(), BenchKind::Latency);
        t.has_serving = true;
        assert_eq!(t.bench_kind(), BenchKind::Serving);
    }
}
