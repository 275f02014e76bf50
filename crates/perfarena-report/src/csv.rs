//! CSV of every attempt and its samples: one row per attempt × metric (an attempt without
//! samples gets one row with empty `metric` and `value`), RFC 4180 quoting.

use perfarena_core::attempt::AttemptRecord;

/// The header row, in order (documented in `docs/reports.md`).
pub const CSV_COLUMNS: [&str; 20] = [
    "attempt_id",
    "run_id",
    "task",
    "variant",
    "round_idx",
    "is_warmup",
    "status",
    "exit_code",
    "started_at",
    "duration_s",
    "failure_kind",
    "signature",
    "provenance",
    "source",
    "backend",
    "image",
    "harness_touched",
    "message",
    "metric",
    "value",
];

/// All attempts with their samples, oldest first as given.
pub fn attempts_csv(attempts: &[AttemptRecord]) -> String {
    let mut out = String::new();
    push_row(&mut out, CSV_COLUMNS.iter().map(|c| c.to_string()));
    for attempt in attempts {
        let harness_touched = attempt
            .metadata
            .get("harness_paths")
            .and_then(|p| p.as_array())
            .is_some_and(|paths| !paths.is_empty());
        let fixed = [
            attempt.id.to_string(),
            attempt.run_id.clone().unwrap_or_default(),
            attempt.task.to_string(),
            attempt.variant.to_string(),
            attempt.round_idx.to_string(),
            attempt.is_warmup.to_string(),
            attempt.status.to_string(),
            attempt.exit_code.map(|c| c.to_string()).unwrap_or_default(),
            attempt.started_at.clone(),
            attempt.duration_s.to_string(),
            attempt
                .failure
                .as_ref()
                .map(|f| f.kind.to_string())
                .unwrap_or_default(),
            attempt
                .failure
                .as_ref()
                .map(|f| f.signature.clone())
                .unwrap_or_default(),
            attempt.provenance.kind().to_string(),
            attempt.provenance.source().unwrap_or_default().to_string(),
            attempt.backend.clone(),
            attempt.image.clone().unwrap_or_default(),
            harness_touched.to_string(),
            attempt.message.clone(),
        ];
        if attempt.samples.is_empty() {
            push_row(
                &mut out,
                fixed.iter().cloned().chain([String::new(), String::new()]),
            );
        }
        for (metric, value) in &attempt.samples {
            push_row(
                &mut out,
                fixed
                    .iter()
                    .cloned()
                    .chain([metric.clone(), value.to_string()]),
            );
        }
    }
    out
}

fn push_row(out: &mut String, fields: impl Iterator<Item = String>) {
    let mut first = true;
    for field in fields {
        if !first {
            out.push(',');
        }
        first = false;
        if field.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&field.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&field);
        }
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use perfarena_core::attempt::AttemptStatus;
    use perfarena_core::{CommitId, VariantKind};

    #[test]
    fn one_row_per_attempt_and_metric_with_quoting() {
        let commit = CommitId::parse(&"a".repeat(40)).unwrap();
        let mut ok =
            AttemptRecord::new(commit.clone(), VariantKind::Baseline, 0, AttemptStatus::Ok);
        ok.samples = vec![("tput".into(), 100.5), ("ttft_ms".into(), 12.0)];
        let mut crashed = AttemptRecord::new(commit, VariantKind::Human, 0, AttemptStatus::Crashed);
        crashed.message = "exit 1, \"boom\"\nsecond line".into();
        crashed.metadata = serde_json::json!({"harness_paths": ["bench.py"]});
        let text = attempts_csv(&[ok, crashed]);
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], CSV_COLUMNS.join(","));
        assert!(lines[1].ends_with(",tput,100.5"), "{}", lines[1]);
        assert!(lines[2].ends_with(",ttft_ms,12"), "{}", lines[2]);
        assert!(
            lines[3].contains(",crashed,")
                && lines[3].contains(",true,\"exit 1, \"\"boom\"\"\nsecond line\",,"),
            "{}",
            lines[3]
        );
        assert_eq!(lines.len(), 5, "header, 3 rows and the final empty split");
    }
}
