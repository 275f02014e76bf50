//! Tests of the status analysis: one small fixture per category and finding, then outcomes,
//! the legacy view, quadrants and recommendations.

use std::collections::BTreeSet;

use super::*;
use crate::attempt::{AttemptRecord, AttemptStatus, FailureKind, Provenance};
use crate::availability::{ImageAvailability, ImageListing, Presence};
use crate::ids::{CandidateName, CommitId, VariantKind};
use crate::suite::Suite;
use crate::task::Task;
use crate::triage::Triage;

const SUITE: &str = r#"
[suite]
name = "fixture"
[images]
registry = "docker.io"
repo = "org/vllm"
baseline = "{registry}/{repo}-baseline:{parent:12}"
human = "{registry}/{repo}:{commit}"
[build.overrides."dddd"]
permanently_failed = "needs CUDA 11.8 only"
"#;

fn suite() -> Suite {
    Suite::from_toml_str(SUITE, "fixture.toml").unwrap()
}

fn task(c: char) -> Task {
    let mut task = Task::new(CommitId::parse(&c.to_string().repeat(40)).unwrap());
    task.parent = Some(CommitId::parse(&format!("{c}0{}", "0".repeat(38))).unwrap());
    task.models = vec!["meta-llama/Meta-Llama-3-8B-Instruct".into()];
    task.pr_url = Some(format!(
        "https://github.com/vllm-project/vllm/pull/{}",
        c as u32
    ));
    task
}

fn cand(name: &str) -> VariantKind {
    VariantKind::Candidate(CandidateName::parse(name).unwrap())
}

/// An imported attempt, triaged the way `results import` triages it.
fn attempt(
    task: &Task,
    variant: &VariantKind,
    round: u32,
    status: AttemptStatus,
    value: Option<f64>,
    error: &str,
) -> AttemptRecord {
    let mut a = AttemptRecord::new(task.commit.clone(), variant.clone(), round, status);
    a.provenance = Provenance::Imported {
        source: "fixture".into(),
    };
    a.message = error.into();
    a.failure = Triage::builtin().classify_attempt(status, error, &[]);
    if let Some(v) = value {
        a.samples.push(("output_throughput_tok_s".into(), v));
    }
    a
}

fn ok(task: &Task, variant: &VariantKind, value: f64) -> AttemptRecord {
    attempt(task, variant, 0, AttemptStatus::Ok, Some(value), "")
}

fn fail(task: &Task, variant: &VariantKind, status: AttemptStatus, error: &str) -> AttemptRecord {
    attempt(task, variant, 0, status, None, error)
}

struct Fixture {
    suite: Suite,
    tasks: Vec<Task>,
    attempts: Vec<AttemptRecord>,
    images: Vec<ImageAvailability>,
    listings: Vec<ImageListing>,
    labels: Vec<JudgeLabel>,
    legacy: Option<f64>,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            suite: suite(),
            tasks: Vec::new(),
            attempts: Vec::new(),
            images: Vec::new(),
            listings: Vec::new(),
            labels: Vec::new(),
            legacy: None,
        }
    }

    fn model(&self) -> StatusModel {
        status_model(&StatusInput {
            suite: &self.suite,
            tasks: &self.tasks,
            attempts: &self.attempts,
            images: &self.images,
            listings: &self.listings,
            labels: &self.labels,
            legacy_threshold_pct: self.legacy,
            no_data_as: NoDataAs::Undetermined,
        })
    }
}

/// Every category and every finding, one task each (some share).
fn all_cases() -> (Fixture, Vec<(char, Category, Finding)>) {
    let (b, h, a) = (VariantKind::Baseline, VariantKind::Human, cand("agent"));
    let mut f = Fixture::new();
    let mut expected = Vec::new();
    let mut add = |f: &mut Fixture, c: char, category, finding, attempts: Vec<AttemptRecord>| {
        f.tasks.push(task(c));
        f.attempts.extend(attempts);
        expected.push((c, category, finding));
    };
    let t = task('1');
    add(
        &mut f,
        '1',
        Category::Complete,
        Finding::Working,
        vec![ok(&t, &b, 100.0), ok(&t, &h, 110.0), ok(&t, &a, 120.0)],
    );
    let t = task('2');
    add(
        &mut f,
        '2',
        Category::Complete,
        Finding::CandidateCrashed,
        vec![
            ok(&t, &b, 100.0),
            ok(&t, &h, 110.0),
            fail(
                &t,
                &a,
                AttemptStatus::Crashed,
                "Traceback (most recent call last):\nValueError: shapes do not match",
            ),
        ],
    );
    let t = task('3');
    add(
        &mut f,
        '3',
        Category::Complete,
        Finding::CandidateInfraFailed,
        vec![
            ok(&t, &b, 100.0),
            ok(&t, &h, 110.0),
            fail(&t, &a, AttemptStatus::BuildFailed, "docker build failed"),
        ],
    );
    let t = task('4');
    add(
        &mut f,
        '4',
        Category::OtherFailed,
        Finding::HumanImageBroken,
        vec![
            ok(&t, &b, 100.0),
            fail(
                &t,
                &h,
                AttemptStatus::Crashed,
                "ModuleNotFoundError: No module named 'vllm._C'",
            ),
            ok(&t, &a, 105.0),
        ],
    );
    let t = task('5');
    add(
        &mut f,
        '5',
        Category::HumanOnly,
        Finding::MissingBaselineImage,
        vec![
            fail(&t, &b, AttemptStatus::MissingImage, "manifest unknown"),
            ok(&t, &h, 110.0),
        ],
    );
    let t = task('6');
    add(
        &mut f,
        '6',
        Category::MissingImage,
        Finding::NoImages,
        vec![
            fail(&t, &b, AttemptStatus::MissingImage, ""),
            fail(&t, &h, AttemptStatus::MissingImage, ""),
        ],
    );
    let t = task('7');
    add(
        &mut f,
        '7',
        Category::MissingImage,
        Finding::HumanImageBroken,
        vec![
            ok(&t, &b, 100.0),
            fail(&t, &h, AttemptStatus::MissingImage, ""),
        ],
    );
    let t = task('8');
    add(
        &mut f,
        '8',
        Category::BaselineFailedEverywhere,
        Finding::BaselineFailed,
        vec![
            fail(
                &t,
                &b,
                AttemptStatus::Crashed,
                "benchmark_serving.py: error: unrecognized arguments: --backend vllm",
            ),
            attempt(
                &t,
                &b,
                1,
                AttemptStatus::Crashed,
                None,
                "benchmark_serving.py: error: unrecognized arguments: --backend vllm",
            ),
            ok(&t, &h, 110.0),
        ],
    );
    let t = task('9');
    add(
        &mut f,
        '9',
        Category::OtherFailed,
        Finding::BothFailed,
        vec![
            ok(&t, &b, 100.0),
            fail(&t, &h, AttemptStatus::Crashed, "RuntimeError: bad"),
            fail(&t, &a, AttemptStatus::Crashed, "RuntimeError: bad"),
        ],
    );
    let t = task('b');
    add(
        &mut f,
        'b',
        Category::OtherFailed,
        Finding::HumanFailed,
        vec![
            ok(&t, &b, 100.0),
            fail(&t, &h, AttemptStatus::Crashed, "RuntimeError: bad"),
        ],
    );
    add(&mut f, 'c', Category::OtherFailed, Finding::NotRun, vec![]);
    // Permanently failed: the baseline fails on an infra signature, the suite says why it never will work.
    let t = task('d');
    add(
        &mut f,
        'd',
        Category::BaselineFailedEverywhere,
        Finding::BothFailed,
        vec![
            fail(
                &t,
                &b,
                AttemptStatus::Crashed,
                "RuntimeError: CUDA error: no kernel image is available for execution on the device",
            ),
            fail(
                &t,
                &h,
                AttemptStatus::Crashed,
                "RuntimeError: CUDA error: no kernel image is available for execution on the device",
            ),
        ],
    );
    // Baseline image missing according to an imported registry listing; nothing attempted there.
    let t = task('e');
    add(
        &mut f,
        'e',
        Category::HumanOnly,
        Finding::MissingBaselineImage,
        vec![ok(&t, &h, 110.0)],
    );
    // No model anywhere (the perf command has no --model), nothing run.
    let mut t = task('a');
    t.models.clear();
    t.perf_command = Some("python benchmarks/benchmark_latency.py --batch-size 8".into());
    f.tasks.push(t);
    expected.push(('a', Category::UnknownModel, Finding::NotRun));
    // The registry listing of the baseline repository has every parent's image but those of
    // 5, 6 and e.
    f.listings.push(ImageListing {
        repository: "org/vllm-baseline".into(),
        source: "import:tags.json".into(),
        listed_at: "t".into(),
        n_tags: 3,
    });
    for t in f
        .tasks
        .iter()
        .filter(|t| !"56e".contains(&t.commit.as_str()[..1]))
    {
        f.images.push(ImageAvailability {
            image_ref: format!("org/vllm-baseline:{}", t.parent.as_ref().unwrap().short(12)),
            local: Presence::Unknown,
            registry: Presence::Present,
            digest: None,
            source: "import:tags.json".into(),
            checked_at: "t".into(),
        });
    }
    (f, expected)
}

fn status(model: &StatusModel, c: char) -> &TaskStatus {
    model
        .tasks
        .iter()
        .find(|t| t.commit.as_str().starts_with(c))
        .unwrap()
}

#[test]
fn every_category_and_finding() {
    let (fixture, expected) = all_cases();
    let model = fixture.model();
    for (c, category, finding) in &expected {
        let t = status(&model, *c);
        assert_eq!(
            (t.category, t.finding),
            (*category, *finding),
            "task {c}: {} / {}",
            t.category_reason,
            t.finding_reason
        );
        assert!(!t.category_reason.is_empty() && !t.finding_reason.is_empty());
    }
    let categories: BTreeSet<Category> = expected.iter().map(|e| e.1).collect();
    assert_eq!(
        categories.len(),
        Category::ALL.len(),
        "the fixture covers every category"
    );
    let findings: BTreeSet<Finding> = expected.iter().map(|e| e.2).collect();
    assert_eq!(
        findings.len(),
        Finding::ALL.len(),
        "the fixture covers every finding"
    );
    assert_eq!(model.summary.n_tasks, expected.len());
    assert_eq!(
        model.summary.categories.values().sum::<usize>(),
        expected.len()
    );
    assert_eq!(model.summary.categories[&Category::MissingImage], 2);
    assert_eq!(model.summary.categories[&Category::Complete], 3);
    assert_eq!(model.summary.complete_n_way, 1);
}

#[test]
fn evidence_names_signatures_and_images() {
    let (fixture, _) = all_cases();
    let model = fixture.model();
    let broken = status(&model, '4');
    let line = broken
        .evidence
        .iter()
        .find(|e| e.variant == Some(VariantKind::Human))
        .unwrap();
    assert_eq!(
        line.signature.as_deref(),
        Some("missing-compiled-extension")
    );
    assert_eq!(
        line.line.as_deref(),
        Some("ModuleNotFoundError: No module named 'vllm._C'")
    );
    assert_eq!(line.blame, Some(FailureKind::Infra));
    let listed = status(&model, 'e');
    let missing = listed
        .evidence
        .iter()
        .find(|e| e.kind == EvidenceKind::MissingImage)
        .unwrap();
    assert_eq!(
        missing.image.as_deref(),
        Some("org/vllm-baseline:e00000000000")
    );
    assert_eq!(
        listed.images.baseline.source.as_deref(),
        Some("import:tags.json")
    );
    assert_eq!(listed.images.human.presence, Presence::Present);
    let crashed = status(&model, '2');
    let c = crashed
        .evidence
        .iter()
        .find(|e| e.variant == Some(cand("agent")))
        .unwrap();
    assert_eq!(
        (c.blame, c.signature.as_deref()),
        (Some(FailureKind::Candidate), Some("python-exception"))
    );
    let unknown = status(&model, 'a');
    assert_eq!(unknown.evidence[0].kind, EvidenceKind::UnknownModel);
    assert_eq!(unknown.model, None);
}

fn actions(t: &TaskStatus) -> Vec<&'static str> {
    t.recoverability
        .as_ref()
        .map(|r| r.actions.iter().map(RecoveryAction::name).collect())
        .unwrap_or_default()
}

#[test]
fn recoverability_as_data() {
    let (fixture, _) = all_cases();
    let model = fixture.model();
    assert!(
        status(&model, '1').recoverability.is_none(),
        "complete: nothing to recover"
    );
    assert!(
        status(&model, '2').recoverability.is_none(),
        "a candidate's own crash is a result"
    );
    assert_eq!(actions(status(&model, '3')), ["rebuild_candidate_image"]);
    let human_broken = status(&model, '4').recoverability.as_ref().unwrap();
    assert!(human_broken.recoverable);
    match &human_broken.actions[0] {
        RecoveryAction::RebuildHumanImage {
            cause, fix, image, ..
        } => {
            assert_eq!(cause, "missing-compiled-extension");
            assert_eq!(
                fix.as_deref(),
                Some("rebuild the image with its compile step")
            );
            assert_eq!(
                image.as_deref(),
                Some(format!("org/vllm:{}", "4".repeat(40)).as_str())
            );
        }
        other => panic!("{other:?}"),
    }
    let missing = status(&model, 'e').recoverability.as_ref().unwrap();
    assert_eq!(
        missing.actions,
        vec![RecoveryAction::BuildBaselineImage {
            parent: Some(CommitId::parse(&format!("e0{}", "0".repeat(38))).unwrap()),
            image: Some("org/vllm-baseline:e00000000000".into()),
            cause: "missing".into(),
        }]
    );
    assert_eq!(
        actions(status(&model, '6')),
        ["build_baseline_image", "rebuild_human_image"]
    );
    assert_eq!(actions(status(&model, 'a')), ["supply_model", "rerun"]);
    assert_eq!(actions(status(&model, '8')), ["fix_harness"]);
    let investigate = status(&model, 'b').recoverability.as_ref().unwrap();
    assert_eq!(actions(status(&model, 'b')), ["investigate"]);
    assert!(!investigate.recoverable);
    let permanent = status(&model, 'd').recoverability.as_ref().unwrap();
    assert!(!permanent.recoverable);
    assert_eq!(
        permanent.actions,
        vec![RecoveryAction::NonePermanentlyFailed {
            reason: "needs CUDA 11.8 only".into()
        }]
    );
    assert_eq!(actions(status(&model, 'c')), ["rerun"]);
    // 11 tasks are not usable: all but 9 and b (the human change's own crash) and d
    // (permanently failed) are recoverable.
    assert_eq!(actions(status(&model, '9')), ["investigate"]);
    assert_eq!(
        (model.summary.recoverable, model.summary.not_recoverable),
        (8, 3)
    );
}

#[test]
fn recommendations_group_tasks() {
    let (fixture, _) = all_cases();
    let model = fixture.model();
    let baseline = model
        .recommendations
        .iter()
        .find(|r| r.title == "build baseline images for these parents")
        .unwrap();
    assert_eq!(baseline.action, "build_baseline_image");
    assert_eq!(
        baseline.tasks,
        vec!["555555555555", "666666666666", "eeeeeeeeeeee"]
    );
    assert!(
        baseline
            .items
            .contains(&"e00000000000 (org/vllm-baseline:e00000000000)".to_string()),
        "{:?}",
        baseline.items
    );
    let human = model
        .recommendations
        .iter()
        .find(|r| {
            r.title.starts_with(
                "rebuild these human images: infra failure (`missing-compiled-extension`)",
            )
        })
        .unwrap();
    assert_eq!(human.tasks, vec!["444444444444"]);
    assert!(
        model
            .recommendations
            .iter()
            .any(|r| r.action == "none_permanently_failed")
    );
}

#[test]
fn statistical_outcomes_with_counts_and_percentages() {
    let (b, h, a) = (VariantKind::Baseline, VariantKind::Human, cand("agent"));
    let mut f = Fixture::new();
    // Four usable tasks with five rounds each: candidate better, human better, equivalent, crashed.
    let cases: [(char, f64, Option<f64>); 4] = [
        ('1', 110.0, Some(130.0)),
        ('2', 130.0, Some(110.0)),
        ('3', 120.0, Some(120.0)),
        ('4', 120.0, None),
    ];
    for (c, human, candidate) in cases {
        let t = task(c);
        for round in 0..5u32 {
            let jitter = [0.0, 0.4, -0.4, 0.2, -0.2][round as usize];
            f.attempts.push(attempt(
                &t,
                &b,
                round,
                AttemptStatus::Ok,
                Some(100.0 + jitter),
                "",
            ));
            f.attempts.push(attempt(
                &t,
                &h,
                round,
                AttemptStatus::Ok,
                Some(human + jitter),
                "",
            ));
            match candidate {
                Some(v) => f.attempts.push(attempt(
                    &t,
                    &a,
                    round,
                    AttemptStatus::Ok,
                    Some(v - jitter),
                    "",
                )),
                None => f.attempts.push(attempt(
                    &t,
                    &a,
                    round,
                    AttemptStatus::Crashed,
                    None,
                    "ValueError: x",
                )),
            }
        }
        f.tasks.push(t);
    }
    let model = f.model();
    assert!(
        model.legacy.is_none(),
        "several values per variant: no automatic legacy view"
    );
    let vs_human = model
        .outcomes
        .iter()
        .find(|o| o.control == VariantKind::Human)
        .unwrap();
    assert_eq!(vs_human.total, 4);
    for outcome in [
        Outcome::CandidateBetter,
        Outcome::ControlBetter,
        Outcome::Equivalent,
        Outcome::CandidateCrashed,
    ] {
        assert_eq!(
            vs_human.counts[&outcome], 1,
            "{outcome:?}: {:?}",
            vs_human.counts
        );
        assert_eq!(vs_human.percent[&outcome], 25.0);
    }
    let vs_baseline = model
        .outcomes
        .iter()
        .find(|o| o.control == VariantKind::Baseline)
        .unwrap();
    assert_eq!(vs_baseline.counts[&Outcome::CandidateBetter], 3);
    assert_eq!(model.summary.candidate_crashes, 1);
    assert_eq!(
        Outcome::ControlBetter.label(&VariantKind::Human),
        "human better"
    );
}

#[test]
fn legacy_view_when_one_value_per_variant() {
    let (b, h, a) = (VariantKind::Baseline, VariantKind::Human, cand("agent"));
    let mut f = Fixture::new();
    for (c, human, candidate) in [
        ('1', 110.0, 112.5),
        ('2', 110.0, 111.0),
        ('3', 110.0, 100.0),
    ] {
        let t = task(c);
        f.attempts
            .extend([ok(&t, &b, 100.0), ok(&t, &h, human), ok(&t, &a, candidate)]);
        f.tasks.push(t);
    }
    let model = f.model();
    let legacy = model.legacy.as_ref().unwrap();
    assert!(legacy.automatic);
    assert_eq!(legacy.threshold_pct, 2.0);
    let vs_human = model
        .outcomes
        .iter()
        .find(|o| o.control == VariantKind::Human)
        .unwrap();
    assert_eq!(
        vs_human.counts[&Outcome::Inconclusive],
        3,
        "one value each: the statistics cannot tell"
    );
    let legacy_counts = vs_human.legacy_counts.as_ref().unwrap();
    assert_eq!(
        (
            legacy_counts[&Outcome::CandidateBetter],
            legacy_counts[&Outcome::Equivalent],
            legacy_counts[&Outcome::ControlBetter]
        ),
        (1, 1, 1)
    );
    // An explicit threshold wins and is not automatic.
    f.legacy = Some(0.5);
    let model = f.model();
    assert!(!model.legacy.as_ref().unwrap().automatic);
    let vs_human = model
        .outcomes
        .iter()
        .find(|o| o.control == VariantKind::Human)
        .unwrap();
    assert_eq!(
        vs_human.legacy_counts.as_ref().unwrap()[&Outcome::CandidateBetter],
        2
    );
}

#[test]
fn quadrant_mapping() {
    use Outcome::*;
    use Quadrant::*;
    use SoftLabel::*;
    let cases = [
        (Same, CandidateBetter, Some(Q1TrueSuccess)),
        (Related, Equivalent, Some(Q1TrueSuccess)),
        (Same, ControlBetter, Some(Q2GoodIntent)),
        (Related, CandidateCrashed, Some(Q2GoodIntent)),
        (Different, CandidateBetter, Some(Q3LuckyWin)),
        (NoOptimization, Equivalent, Some(Q3LuckyWin)),
        (Different, ControlBetter, Some(Q4Failure)),
        (NoOptimization, CandidateCrashed, Some(Q4Failure)),
        (Same, Inconclusive, None),
        (Different, NotMeasured, None),
    ];
    for (label, hard, expected) in cases {
        assert_eq!(Quadrant::of(label, hard), expected, "{label} × {hard:?}");
    }
    assert_eq!(
        "No-Optimization".parse::<SoftLabel>().unwrap(),
        NoOptimization
    );
    assert!("maybe".parse::<SoftLabel>().is_err());
}

#[test]
fn quadrants_per_candidate_use_the_legacy_outcome_when_statistics_cannot_tell() {
    let (b, h, a) = (VariantKind::Baseline, VariantKind::Human, cand("agent"));
    let mut f = Fixture::new();
    let label = |t: &Task, label: SoftLabel| JudgeLabel {
        task: t.commit.clone(),
        candidate: CandidateName::parse("agent").unwrap(),
        label: Some(label),
        hard: None,
        approach: None,
        source: "judge.jsonl".into(),
    };
    let t1 = task('1');
    f.attempts
        .extend([ok(&t1, &b, 100.0), ok(&t1, &h, 110.0), ok(&t1, &a, 120.0)]);
    let t2 = task('2');
    f.attempts.extend([
        ok(&t2, &b, 100.0),
        ok(&t2, &h, 110.0),
        fail(&t2, &a, AttemptStatus::Crashed, "ValueError: x"),
    ]);
    let t3 = task('3');
    f.attempts
        .extend([ok(&t3, &b, 100.0), ok(&t3, &h, 110.0), ok(&t3, &a, 100.0)]);
    f.labels = vec![
        label(&t1, SoftLabel::Same),
        label(&t2, SoftLabel::Different),
    ];
    f.tasks = vec![t1, t2, t3];
    let model = f.model();
    let one = &status(&model, '1').candidates[0];
    assert_eq!(
        (one.quadrant, one.hard_basis.as_deref()),
        (Some(Quadrant::Q1TrueSuccess), Some("legacy"))
    );
    let two = &status(&model, '2').candidates[0];
    assert_eq!(
        (two.quadrant, two.hard_basis.as_deref()),
        (Some(Quadrant::Q4Failure), Some("statistical"))
    );
    let table = &model.quadrants[0];
    assert_eq!(
        (
            table.counts[&Quadrant::Q1TrueSuccess],
            table.counts[&Quadrant::Q4Failure],
            table.unlabelled
        ),
        (1, 1, 1)
    );
}

#[test]
fn model_sources_and_provenance() {
    let (b, h) = (VariantKind::Baseline, VariantKind::Human);
    let mut f = Fixture::new();
    let mut from_command = task('1');
    from_command.models.clear();
    from_command.perf_command =
        Some("python benchmarks/benchmark_serving.py --model Qwen/Qwen2-7B".into());
    let mut from_results = task('2');
    from_results.models.clear();
    let mut row = ok(&from_results, &b, 100.0);
    row.metadata = serde_json::json!({"model": "mistralai/Mistral-7B"});
    let mut measured = ok(&from_results, &h, 101.0);
    measured.provenance = Provenance::Measured;
    f.attempts.extend([row, measured]);
    f.tasks = vec![from_command, from_results];
    let model = f.model();
    let one = status(&model, '1');
    assert_eq!(
        (one.model.as_deref(), one.model_source.as_deref()),
        (Some("Qwen/Qwen2-7B"), Some("perf_command"))
    );
    let two = status(&model, '2');
    assert_eq!(
        (two.model.as_deref(), two.model_source.as_deref()),
        (Some("mistralai/Mistral-7B"), Some("results"))
    );
    assert_eq!(
        model.provenance,
        ProvenanceSummary {
            measured_attempts: 1,
            imported_attempts: 1,
            import_sources: vec!["fixture".into()]
        }
    );
    let json = serde_json::to_value(&model).unwrap();
    assert_eq!(json["summary"]["categories"]["complete"], 1);
    assert_eq!(json["tasks"][0]["category"], "other_failed");
}
