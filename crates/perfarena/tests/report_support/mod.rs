//! A fixed store for the report tests: five tasks that between them cover every section of the
//! status report (complete, candidate crash, missing baseline image, broken human image,
//! unknown model), imported and measured attempts, warm-ups, a harness-touching patch, image
//! rows and soft-judge labels. Built with the real store from fixed records.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use perfarena_core::attempt::{
    AttemptRecord, AttemptStatus, FailureClass, FailureKind, Provenance,
};
use perfarena_core::{CandidateName, CommitId, Task, VariantKind};
use perfarena_store::{RunRecord, Store};

pub const RUN_ID: &str = "20261128-120000-fixture";
pub const SUITE: &str = r#"[suite]
name = "fixture"

[images]
registry = "reg.example:5000"
repo = "vllm"

[metric]
primary = "output_throughput_tok_s"
direction = "higher"
"#;

pub fn commit(c: char) -> CommitId {
    CommitId::parse(&c.to_string().repeat(40)).expect("commit")
}

fn candidate(name: &str) -> VariantKind {
    VariantKind::Candidate(CandidateName::parse(name).expect("candidate"))
}

fn task(c: char, parent: char, subject: &str, model: Option<&str>) -> Task {
    let mut task = Task::new(commit(c));
    task.parent = Some(commit(parent));
    task.subject = Some(subject.into());
    task.pr_url = Some(format!(
        "https://github.com/vllm-project/vllm/pull/{}",
        1000 + (c as u32 - 'a' as u32)
    ));
    task.models = model.map(|m| vec![m.to_string()]).unwrap_or_default();
    task.perf_command = Some("python benchmarks/benchmark_serving.py --num-prompts 100".into());
    task.has_serving = true;
    task
}

struct Builder {
    attempts: Vec<AttemptRecord>,
    second: u32,
}

impl Builder {
    fn push(
        &mut self,
        task: char,
        variant: VariantKind,
        round: u32,
        status: AttemptStatus,
        value: Option<f64>,
    ) -> &mut AttemptRecord {
        let mut attempt = AttemptRecord::new(commit(task), variant, round, status);
        attempt.run_id = Some(RUN_ID.into());
        attempt.started_at = format!(
            "2026-11-28T12:{:02}:{:02}Z",
            self.second / 60,
            self.second % 60
        );
        self.second += 7;
        attempt.duration_s = 6.5;
        if let Some(value) = value {
            attempt.samples = vec![
                ("output_throughput_tok_s".into(), value),
                ("mean_ttft_ms".into(), 10_000.0 / value),
            ];
        } else if status != AttemptStatus::Ok {
            attempt.exit_code = Some(1);
        }
        self.attempts.push(attempt);
        self.attempts.last_mut().expect("just pushed")
    }

    fn ok_series(&mut self, task: char, variant: VariantKind, values: &[f64]) {
        for (round, value) in values.iter().enumerate() {
            self.push(
                task,
                variant.clone(),
                round as u32,
                AttemptStatus::Ok,
                Some(*value),
            );
        }
    }

    fn failed_series(
        &mut self,
        task: char,
        variant: VariantKind,
        n: u32,
        status: AttemptStatus,
        failure: FailureClass,
        message: &str,
    ) {
        for round in 0..n {
            let attempt = self.push(task, variant.clone(), round, status, None);
            attempt.failure = Some(failure.clone());
            attempt.message = message.into();
        }
    }
}

fn class(kind: FailureKind, signature: &str, evidence: &str) -> FailureClass {
    FailureClass {
        kind,
        signature: signature.into(),
        evidence: evidence.into(),
    }
}

/// The fixture's attempts (ids are given by the store).
pub fn attempts() -> Vec<AttemptRecord> {
    let mut b = Builder {
        attempts: Vec::new(),
        second: 0,
    };
    // a: complete 4-way. A warm-up on the baseline; agent-b's patch touches the harness.
    let warm = b.push('a', VariantKind::Baseline, 0, AttemptStatus::Ok, Some(50.0));
    warm.is_warmup = true;
    b.ok_series(
        'a',
        VariantKind::Baseline,
        &[100.0, 101.0, 99.5, 100.4, 99.8],
    );
    b.ok_series(
        'a',
        VariantKind::Human,
        &[110.2, 111.0, 109.5, 110.4, 110.9],
    );
    b.ok_series(
        'a',
        candidate("agent-a"),
        &[112.0, 111.2, 112.9, 111.8, 112.3],
    );
    b.ok_series(
        'a',
        candidate("agent-b"),
        &[100.2, 100.9, 99.6, 100.1, 100.5],
    );
    for attempt in b
        .attempts
        .iter_mut()
        .filter(|a| a.variant == candidate("agent-b"))
    {
        attempt.metadata =
            serde_json::json!({"harness_paths": ["benchmarks/benchmark_serving.py"]});
    }
    // b: human worked, agent-a crashed (its own failure), agent-b no different from baseline.
    b.ok_series(
        'b',
        VariantKind::Baseline,
        &[200.0, 202.0, 199.0, 201.0, 198.5],
    );
    b.ok_series(
        'b',
        VariantKind::Human,
        &[230.0, 228.5, 231.0, 229.0, 230.5],
    );
    b.failed_series(
        'b',
        candidate("agent-a"),
        3,
        AttemptStatus::Crashed,
        class(
            FailureKind::Candidate,
            "python-exception",
            "ValueError: fused kernel got shape (4, 0)",
        ),
        "server exited with 1 before it was ready",
    );
    b.ok_series(
        'b',
        candidate("agent-b"),
        &[200.5, 201.5, 198.0, 200.0, 199.5],
    );
    // c: the baseline image is missing; the human image works.
    b.failed_series(
        'c',
        VariantKind::Baseline,
        2,
        AttemptStatus::MissingImage,
        class(
            FailureKind::Infra,
            "missing-image",
            "No such image: reg.example:5000/vllm:baseline-bbbbbbbbbbbb",
        ),
        "image reg.example:5000/vllm:baseline-bbbbbbbbbbbb not found",
    );
    b.ok_series('c', VariantKind::Human, &[80.0, 81.0, 79.5]);
    // d: the human image is broken (infra signature) while the candidate on the baseline image
    // works; the baseline's numbers were imported from an earlier pipeline.
    let imported_start = b.attempts.len();
    b.ok_series('d', VariantKind::Baseline, &[150.0, 151.5, 149.0]);
    for attempt in &mut b.attempts[imported_start..] {
        attempt.provenance = Provenance::Imported {
            source: "legacy-results.jsonl".into(),
        };
        attempt.run_id = None;
        attempt.backend = "import".into();
        attempt.import_key = Some(format!("legacy-results.jsonl#{}", attempt.round_idx));
    }
    b.failed_series(
        'd',
        VariantKind::Human,
        3,
        AttemptStatus::Crashed,
        class(
            FailureKind::Infra,
            "missing-compiled-extension",
            "ModuleNotFoundError: No module named 'vllm._C'",
        ),
        "server exited with 1 before it was ready",
    );
    b.ok_series('d', candidate("agent-a"), &[160.0, 158.5, 161.0]);
    // e: no model anywhere, nothing run.
    b.attempts
}

pub fn tasks() -> Vec<Task> {
    vec![
        task(
            'a',
            '1',
            "[Perf] Fuse the decode kernels",
            Some("meta-llama/Llama-3.1-8B-Instruct"),
        ),
        task(
            'b',
            '2',
            "[Perf] Cache the block tables",
            Some("Qwen/Qwen2.5-7B-Instruct"),
        ),
        task(
            'c',
            'b',
            "[Perf] Faster sampler",
            Some("mistralai/Mistral-7B-Instruct-v0.3"),
        ),
        task(
            'd',
            '4',
            "[Perf] Overlap scheduling",
            Some("meta-llama/Llama-3.1-8B-Instruct"),
        ),
        task('e', '5', "[Perf] Smaller all-reduce", None),
    ]
}

/// Writes the suite and the store into `dir` (a project directory).
pub fn build(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("project dir");
    std::fs::write(dir.join("perfarena.toml"), SUITE).expect("suite");
    let state = dir.join(".perfarena");
    let mut store = Store::open(&state).expect("store");
    store
        .upsert_tasks(&tasks(), "fixture-tasks.jsonl", "2026-11-28T11:59:00Z")
        .expect("tasks");
    store
        .create_run(&RunRecord {
            run_id: RUN_ID.into(),
            suite_hash: "0".repeat(64),
            backend: "local".into(),
            started_at: "2026-11-28T12:00:00Z".into(),
            finished_at: Some("2026-11-28T12:30:00Z".into()),
            status: "finished".into(),
            config: serde_json::json!({}),
        })
        .expect("run");
    for attempt in attempts() {
        store.insert_attempt(&attempt).expect("attempt");
    }
    let images = [
        (
            "reg.example:5000/vllm:baseline-bbbbbbbbbbbb",
            "missing",
            "missing",
        ),
        (
            "reg.example:5000/vllm:cccccccccccccccccccccccccccccccccccccccc",
            "unknown",
            "present",
        ),
        (
            "reg.example:5000/vllm:baseline-111111111111",
            "unknown",
            "present",
        ),
        (
            "reg.example:5000/vllm:dddddddddddddddddddddddddddddddddddddddd",
            "unknown",
            "present",
        ),
    ];
    for (image, local, registry) in images {
        store
            .connection()
            .execute(
                "INSERT INTO images (image_ref, local, registry, source, checked_at) VALUES (?1, ?2, ?3, 'registry', '2026-11-28T11:00:00Z')",
                [image, local, registry],
            )
            .expect("image row");
    }
    let labels = [
        ('a', "agent-a", "same"),
        ('a', "agent-b", "different"),
        ('b', "agent-a", "related"),
        ('d', "agent-a", "same"),
    ];
    for (task, candidate, label) in labels {
        store
            .connection()
            .execute(
                "INSERT INTO judge_labels (task, candidate, label, source) VALUES (?1, ?2, ?3, 'judge.jsonl')",
                [commit(task).as_str(), candidate, label],
            )
            .expect("label row");
    }
    state
}

/// insta filters for what changes between machines and runs: the temporary directory and
/// timestamps.
pub fn filters(dir: &Path) -> Vec<(String, String)> {
    vec![
        (
            regex_escape(&dir.display().to_string()),
            "[DIR]".to_string(),
        ),
        (
            r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?".to_string(),
            "[TIME]".to_string(),
        ),
    ]
}

fn regex_escape(text: &str) -> String {
    text.chars().fold(String::new(), |mut out, c| {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
        out
    })
}
