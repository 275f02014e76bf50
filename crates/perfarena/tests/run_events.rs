//! `perfarena run --json` on the toy example (local backend): every line is an event of the
//! documented, versioned stream (docs/events.md), the run is announced first and its stop last,
//! and the store holds exactly the attempts the stream carried.

mod common;

use common::{bin, stderr, toy_candidates, toy_project};
use perfarena_core::events::{EVENTS_VERSION, Event, RunStopReason};
use perfarena_store::{AttemptFilter, Store};

#[test]
fn json_events_follow_the_documented_schema_and_match_the_store() {
    let (_tmp, dir) = toy_project();
    let out = bin()
        .arg("-C")
        .arg(&dir)
        .args([
            "run",
            "--json",
            "--repeats",
            "1",
            "--seed",
            "3",
            "--candidates",
        ])
        .args(toy_candidates(&dir))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut events = Vec::new();
    for line in text.lines() {
        let value: serde_json::Value = serde_json::from_str(line).expect("one JSON object a line");
        assert_eq!(value["version"], EVENTS_VERSION, "{line}");
        let event = Event::from_json_line(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        // What is read back writes the same line: no field is lost or invented.
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&event.to_json_line()).unwrap(),
            value
        );
        events.push(event);
    }
    let Some(Event::RunPlanned {
        run_id,
        resumed: false,
        recorded: 0,
        ..
    }) = events.first()
    else {
        panic!("the run is announced first: {:?}", events.first());
    };
    let Some(Event::RunStopped {
        reason: RunStopReason::Completed,
        recorded,
        ..
    }) = events.last()
    else {
        panic!("the run's stop comes last: {:?}", events.last());
    };
    let carried: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::AttemptFinished { record, .. } => Some((**record).clone()),
            _ => None,
        })
        .collect();
    assert_eq!(carried.len() as u64, *recorded);
    let store = Store::open_existing(&dir.join(".perfarena")).unwrap();
    let stored = store
        .attempts(&AttemptFilter {
            run_id: Some(run_id.clone()),
            ..AttemptFilter::default()
        })
        .unwrap();
    assert_eq!(stored, carried);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::PrepareFinished { .. } | Event::ServerReady { .. })),
        "backend events are in the stream too"
    );
}
