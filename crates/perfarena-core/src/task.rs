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

    /// The model to benchmark: the first listed, else the model of the perf command (see
    /// [`model_from_command`]), else `None` (the task is then categorised `unknown_model`).
    pub fn model(&self) -> Option<String> {
        if let Some(model) = self
            .models
            .iter()
            .map(|m| m.trim())
            .find(|m| !is_placeholder(m))
        {
            return Some(model.to_string());
        }
        model_from_command(self.perf_command.as_deref()?).ok()
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

/// The model a benchmark command line names, or why none can be taken from it.
///
/// The command may be several commands (joined by newlines, `;`, `&&`, `||`, `|` or `&`): a
/// server and its client. The server's model wins (`vllm serve MODEL`, `--model` of
/// `vllm.entrypoints.openai.api_server`, `--model-path` of `sglang.launch_server`); otherwise the
/// first command that names one (`--model X`, `--model=X`, `--model-path X`). Environment
/// prefixes (`VLLM_USE_V1=1 python …`) and quotes are read through. Placeholders — `MODEL`,
/// `$MODEL`, `${MODEL}`, `<model>`, `{model}`, any all-caps word — are not models.
pub fn model_from_command(command: &str) -> Result<String, String> {
    let mut found: Vec<(bool, String)> = Vec::new();
    let mut placeholders: Vec<String> = Vec::new();
    for words in split_commands(command) {
        let words = strip_env_prefix(&words);
        let server = is_server(words);
        let Some(value) = model_argument(words) else {
            continue;
        };
        if is_placeholder(&value) {
            placeholders.push(value);
        } else {
            found.push((server, value));
        }
    }
    if let Some((_, model)) = found
        .iter()
        .find(|(server, _)| *server)
        .or_else(|| found.first())
    {
        return Ok(model.clone());
    }
    Err(match placeholders.first() {
        Some(placeholder) => {
            format!("its perf_command names the placeholder `{placeholder}`, not a model")
        }
        None => {
            "its perf_command names no model (no `--model`, `--model-path` or `vllm serve MODEL`)"
                .to_string()
        }
    })
}

/// Whether a value is a template placeholder rather than a model name.
pub fn is_placeholder(value: &str) -> bool {
    let value = value.trim();
    if value.is_empty()
        || value.contains('$')
        || (value.starts_with('<') && value.ends_with('>'))
        || (value.starts_with('{') && value.ends_with('}'))
    {
        return true;
    }
    // `MODEL`, `MODEL_NAME`, `YOUR_MODEL_PATH`: shouting words are variables, not hub names.
    value.chars().any(|c| c.is_ascii_alphabetic())
        && value
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// The words after leading `NAME=value` environment assignments (and `env`).
fn strip_env_prefix(words: &[String]) -> &[String] {
    let mut rest = words;
    while let Some((first, tail)) = rest.split_first() {
        let assignment = first
            .split_once('=')
            .is_some_and(|(name, _)| is_env_name(name));
        if assignment || first == "env" {
            rest = tail;
        } else {
            break;
        }
    }
    rest
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether a command starts an inference server (whose model is the one benchmarked).
fn is_server(words: &[String]) -> bool {
    let joined = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    let program = joined(0).rsplit('/').next().unwrap_or("");
    if program == "vllm" && joined(1) == "serve" {
        return true;
    }
    let module = words
        .windows(2)
        .find(|pair| pair[0] == "-m")
        .map(|pair| pair[1].as_str())
        .unwrap_or("");
    module.starts_with("vllm.entrypoints") || module == "sglang.launch_server"
}

/// The model argument of one command: `--model X`, `--model=X`, `--model-path X`,
/// `--model-path=X` or the positional model of `vllm serve`.
fn model_argument(words: &[String]) -> Option<String> {
    let program = words.first()?.rsplit('/').next().unwrap_or("");
    if program == "vllm" && words.get(1).map(String::as_str) == Some("serve") {
        if let Some(model) = words.get(2).filter(|w| !w.starts_with('-')) {
            return Some(model.clone());
        }
    }
    let mut iter = words.iter();
    while let Some(word) = iter.next() {
        for flag in ["--model", "--model-path"] {
            if let Some(value) = word.strip_prefix(flag).and_then(|v| v.strip_prefix('=')) {
                return Some(value.to_string()).filter(|v| !v.is_empty());
            }
            if word == flag {
                return iter.next().filter(|v| !v.starts_with('-')).cloned();
            }
        }
    }
    None
}

/// Splits a command string into commands, each into words, honouring single and double quotes
/// and backslash-newline continuations. Written here rather than with a shell-words crate
/// because reading the model back needs the command separators (`\n`, `;`, `&&`, `||`, `|`,
/// `&`) that such crates treat as ordinary characters; commands are run by a shell, never by
/// this function.
fn split_commands(command: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    let mut chars = command.chars().peekable();
    let end_word = |words: &mut Vec<String>, current: &mut String, in_word: &mut bool| {
        if *in_word {
            words.push(std::mem::take(current));
            *in_word = false;
        }
    };
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => current.push(c),
            (None, '\\') if chars.peek() == Some(&'\n') => {
                chars.next();
                end_word(&mut words, &mut current, &mut in_word);
            }
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '\n' | ';' | '&' | '|') => {
                end_word(&mut words, &mut current, &mut in_word);
                if !words.is_empty() {
                    commands.push(std::mem::take(&mut words));
                }
            }
            (None, c) if c.is_whitespace() => end_word(&mut words, &mut current, &mut in_word),
            (None, c) => {
                current.push(c);
                in_word = true;
            }
        }
    }
    end_word(&mut words, &mut current, &mut in_word);
    if !words.is_empty() {
        commands.push(words);
    }
    commands
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

    /// Command shapes from the ISO-Bench / OmniPerf-Bench task mappings
    /// (thekernelcompany/OmniPerf-Bench `data/mappings/vllm_oh_mapping.json`, `perf_command`),
    /// SGLang's `launch_server` + `bench_serving` pairs, and placeholders seen in dataset rows.
    #[test]
    fn models_are_found_not_invented() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            (
                "python benchmarks/benchmark_serving.py --model meta-llama/Llama-3.1-8B-Instruct --num-prompts 100",
                Ok("meta-llama/Llama-3.1-8B-Instruct"),
            ),
            (
                "VLLM_USE_V1=1 python benchmarks/benchmark_latency.py --model meta-llama/Meta-Llama-3-8B --tensor-parallel-size 1 --input-len 1000 --batch-size 32",
                Ok("meta-llama/Meta-Llama-3-8B"),
            ),
            (
                "vllm bench serve --dataset-name random --model facebook/opt-125m --served-model-name facebook/opt-125m --random-input-len 700",
                Ok("facebook/opt-125m"),
            ),
            (
                "python3 -m sglang.bench_serving --backend sglang --model=\"Qwen/Qwen2-7B\" --num-prompts 10",
                Ok("Qwen/Qwen2-7B"),
            ),
            (
                "vllm serve 'mistralai/Mixtral-8x7B-Instruct-v0.1' --tensor-parallel-size 2",
                Ok("mistralai/Mixtral-8x7B-Instruct-v0.1"),
            ),
            // A server and its client: the server's model wins, whatever the client says.
            (
                "python -m sglang.launch_server --model-path deepseek-ai/DeepSeek-V3 --tp 8 &\nsleep 60 && python3 -m sglang.bench_serving --model deepseek-ai/DeepSeek-R1",
                Ok("deepseek-ai/DeepSeek-V3"),
            ),
            (
                "python3 -m vllm.entrypoints.openai.api_server --model Qwen/Qwen2.5-7B ; python benchmarks/benchmark_serving.py --model x/y",
                Ok("Qwen/Qwen2.5-7B"),
            ),
            (
                "env CUDA_VISIBLE_DEVICES=0 python3 -m sglang.bench_one_batch --model-path meta-llama/Llama-2-7b-hf \\\n  --batch-size 1",
                Ok("meta-llama/Llama-2-7b-hf"),
            ),
            // `python -m module` is not a model flag.
            (
                "python -m sglang.bench_serving --num-prompts 10",
                Err("names no model"),
            ),
            (
                "python benchmarks/benchmark_serving.py --model $MODEL",
                Err("placeholder `$MODEL`"),
            ),
            (
                "python benchmarks/benchmark_serving.py --model ${MODEL_NAME}",
                Err("placeholder"),
            ),
            (
                "python benchmarks/benchmark_serving.py --model MODEL --num-prompts 100",
                Err("placeholder `MODEL`"),
            ),
            (
                "vllm serve <model> --port 8000",
                Err("placeholder `<model>`"),
            ),
            (
                "python benchmarks/benchmark_throughput.py --model {model}",
                Err("placeholder"),
            ),
            (
                "python benchmarks/benchmark_latency.py --model",
                Err("names no model"),
            ),
            ("pytest tests/test_sampler.py", Err("names no model")),
        ];
        for (command, want) in cases {
            let got = model_from_command(command);
            match want {
                Ok(model) => assert_eq!(got.as_deref(), Ok(*model), "{command}"),
                Err(needle) => {
                    let err = got.expect_err(command);
                    assert!(err.contains(needle), "{command}: {err}");
                }
            }
        }
        let mut t = task();
        t.models = vec!["MODEL".into()];
        t.perf_command = Some("python benchmarks/benchmark_serving.py --model $MODEL".into());
        assert_eq!(t.model(), None);
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
