//! Store tests on real SQLite files.

use super::*;
use perfarena_core::{AttemptStage, AttemptStatus, FailureClass, FailureKind, VariantKind};

fn commit(c: char) -> CommitId {
    CommitId::parse(&c.to_string().repeat(40)).unwrap()
}

fn task(c: char) -> Task {
    let mut t = Task::new(commit(c));
    t.parent = Some(commit('0'));
    t.models = vec!["m".into()];
    t
}

#[test]
fn tasks_round_trip_and_upsert() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    store
        .upsert_tasks(&[task('a'), task('b')], "t.jsonl", "2026-01-01T00:00:00Z")
        .unwrap();
    let mut changed = task('a');
    changed.models = vec!["other".into()];
    store
        .upsert_tasks(&[changed.clone()], "t2.jsonl", "2026-01-02T00:00:00Z")
        .unwrap();
    let tasks = store.tasks().unwrap();
    assert_eq!(tasks.len(), 2);
    assert_eq!(tasks[0], changed);
    assert!(store.has_task(&commit('b')).unwrap());
    assert!(!store.has_task(&commit('c')).unwrap());
}

#[test]
fn attempts_and_samples_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let mut attempt =
        AttemptRecord::new(commit('a'), VariantKind::Human, 2, AttemptStatus::Crashed);
    attempt.run_id = Some("r1".into());
    attempt.exit_code = Some(1);
    attempt.failure = Some(FailureClass {
        kind: FailureKind::Infra,
        signature: "missing-C".into(),
        evidence: "No module named 'x._C'".into(),
    });
    attempt.samples = vec![
        ("ttft_ms.mean".into(), 12.5),
        ("output_throughput_tok_s".into(), 800.0),
    ];
    let id = store.insert_attempt(&attempt).unwrap();
    let read = store
        .attempts(&AttemptFilter {
            run_id: Some("r1".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].id, id);
    assert_eq!(read[0].failure, attempt.failure);
    assert_eq!(read[0].sample("output_throughput_tok_s"), Some(800.0));
    assert_eq!(read[0].variant, VariantKind::Human);
    assert_eq!(store.count_attempts(Some("r1")).unwrap(), 1);
    assert_eq!(store.count_attempts(Some("r2")).unwrap(), 0);
    let filtered = store
        .attempts(&AttemptFilter {
            variant: Some(VariantKind::Baseline),
            ..Default::default()
        })
        .unwrap();
    assert!(filtered.is_empty());
}

#[test]
fn import_keys_are_unique() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let mut attempt = AttemptRecord::new(commit('a'), VariantKind::Baseline, 0, AttemptStatus::Ok);
    attempt.provenance = Provenance::Imported {
        source: "old.jsonl".into(),
    };
    attempt.import_key = Some("k1".into());
    store.insert_attempt(&attempt).unwrap();
    assert!(store.has_import_key("k1").unwrap());
    assert!(store.insert_attempt(&attempt).is_err());
    let read = store.attempts(&AttemptFilter::default()).unwrap();
    assert_eq!(
        read[0].provenance,
        Provenance::Imported {
            source: "old.jsonl".into()
        }
    );
}

#[test]
fn runs_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let run = RunRecord {
        run_id: "r1".into(),
        suite_hash: "h".into(),
        backend: "local".into(),
        started_at: "2026-01-01T00:00:00Z".into(),
        finished_at: None,
        status: "running".into(),
        config: serde_json::json!({"repeats": 3}),
    };
    store.create_run(&run).unwrap();
    store
        .set_run_status("r1", "finished", Some("2026-01-01T01:00:00Z"))
        .unwrap();
    let read = store.run("r1").unwrap().unwrap();
    assert_eq!(read.status, "finished");
    assert_eq!(read.config["repeats"], 3);
    assert!(store.run("nope").unwrap().is_none());
    assert_eq!(store.runs().unwrap().len(), 1);
}

#[test]
fn migrations_upgrade_an_old_store_without_losing_rows() {
    let dir = tempfile::tempdir().unwrap();
    let db = Store::db_path(dir.path());
    {
        let mut conn = Connection::open(&db).unwrap();
        migrations::migrate_to(&mut conn, "old", 1).unwrap();
        conn.execute(
            "INSERT INTO tasks (commit_hash, parent, data, source, imported_at) VALUES (?1, NULL, ?2, 'x', 't')",
            params![commit('a').as_str(), serde_json::to_string(&task('a')).unwrap()],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO attempts (run_id, task, variant, round_idx, status, started_at, duration_s) VALUES ('r', ?1, 'human', 0, 'ok', 't', 1.5)",
            [commit('a').as_str()],
        )
        .unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 1);
    }
    let store = Store::open_existing(dir.path()).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(store.tasks().unwrap().len(), 1);
    let attempts = store.attempts(&AttemptFilter::default()).unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].provenance, Provenance::Measured);
    assert_eq!(attempts[0].backend, "local");
}

#[test]
fn a_newer_store_is_refused_and_a_missing_one_is_named() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Store::open_existing(dir.path()),
        Err(StoreError::Missing { .. })
    ));
    {
        let conn = Connection::open(Store::db_path(dir.path())).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 5)
            .unwrap();
    }
    let err = Store::open(dir.path()).err().unwrap();
    assert!(matches!(err, StoreError::TooNew { .. }), "{err}");
}

/// A store of schema 4 held what `--resume` keys on in `metadata` (as the runner wrote it:
/// `{"stage": "prepare"}` for a preparation failure, `"rerun_on_resume": true` for an attempt
/// cut short by a fatal error); migration 5 moves it into typed columns.
#[test]
fn migration_5_types_what_resume_keys_on() {
    let dir = tempfile::tempdir().unwrap();
    let db = Store::db_path(dir.path());
    {
        let mut conn = Connection::open(&db).unwrap();
        migrations::migrate_to(&mut conn, "old", 4).unwrap();
        for (variant, round, metadata) in [
            ("candidate:bad", 0, r#"{"stage":"prepare"}"#),
            ("human", 0, r#"{"port":8000,"rerun_on_resume":true}"#),
            ("baseline", 0, r#"{"port":8001}"#),
            ("baseline", 1, "not json"),
        ] {
            conn.execute(
                "INSERT INTO attempts (run_id, task, variant, round_idx, status, started_at, duration_s, metadata)
                 VALUES ('r', ?1, ?2, ?3, 'ok', 't', 1.5, ?4)",
                params![commit('a').as_str(), variant, round, metadata],
            )
            .unwrap();
        }
    }
    let store = Store::open_existing(dir.path()).unwrap();
    let attempts = store.attempts(&AttemptFilter::default()).unwrap();
    let typed: Vec<(String, AttemptStage, bool)> = attempts
        .iter()
        .map(|a| (a.variant.to_string(), a.stage, a.rerun_on_resume))
        .collect();
    assert_eq!(
        typed,
        vec![
            ("candidate:bad".into(), AttemptStage::Prepare, false),
            ("human".into(), AttemptStage::Attempt, true),
            ("baseline".into(), AttemptStage::Attempt, false),
            ("baseline".into(), AttemptStage::Attempt, false),
        ]
    );
}

#[test]
fn typed_resume_fields_and_run_state_round_trip() {
    use perfarena_core::plan::{RunState, TaskRounds};
    use perfarena_core::stats::RoundsDecision;

    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let mut attempt = AttemptRecord::new(commit('a'), VariantKind::Human, 0, AttemptStatus::Ok);
    attempt.stage = AttemptStage::Prepare;
    attempt.rerun_on_resume = true;
    let id = store.insert_attempt(&attempt).unwrap();
    let read = store.attempts(&AttemptFilter::default()).unwrap();
    attempt.id = id;
    assert_eq!(read, vec![attempt]);

    store
        .create_run(&RunRecord {
            run_id: "r1".into(),
            suite_hash: "h".into(),
            backend: "local".into(),
            started_at: "t".into(),
            finished_at: None,
            status: "running".into(),
            config: serde_json::json!({}),
        })
        .unwrap();
    assert_eq!(store.run_state("r1").unwrap(), RunState::default());
    let mut state = RunState::default();
    state.tasks.insert(
        commit('a'),
        TaskRounds {
            target_rounds: 5,
            decision: RoundsDecision::Continue { until_round: 5 },
        },
    );
    store.save_run_state("r1", &state).unwrap();
    assert_eq!(store.run_state("r1").unwrap(), state);
    store
        .connection()
        .execute("UPDATE runs SET state = '{\"version\": 99}'", [])
        .unwrap();
    let err = store.run_state("r1").unwrap_err().to_string();
    assert!(err.contains("run state version 99 is newer"), "{err}");
}

#[test]
fn a_short_task_is_upgraded_in_place_with_what_was_recorded_under_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let short = CommitId::parse("aaaaaaaa").unwrap();
    let mut first = Task::new(short.clone());
    first.models = vec!["m".into()];
    store
        .upsert_tasks(&[first, task('b')], "m.json", "2026-01-01T00:00:00Z")
        .unwrap();
    let mut attempt = AttemptRecord::new(short.clone(), VariantKind::Human, 0, AttemptStatus::Ok);
    attempt.import_key = Some("k".into());
    store.insert_attempt(&attempt).unwrap();
    store
        .upgrade_task_commits(&[(short.clone(), commit('a'))])
        .unwrap();
    let tasks = store.tasks().unwrap();
    assert_eq!(tasks.len(), 2);
    // Still first (import order kept), now under the full hash, its data too.
    assert_eq!(tasks[0].commit, commit('a'));
    assert_eq!(tasks[0].models, ["m"]);
    let attempts = store.attempts(&AttemptFilter::default()).unwrap();
    assert_eq!(attempts[0].task, commit('a'));
    assert!(!store.has_task(&short).unwrap());
}
