//! End-to-end: the Markdown status report over imported data alone (tasks, results, registry
//! listings, judge labels; no repository, no registry, no GPU), snapshotted.

mod import_support;

use import_support::{import_all, ok, project};

#[test]
fn status_report_over_imported_data() {
    let dir = project();
    import_all(dir.path());
    let (report, _) = ok(dir.path(), &["report", "--format", "md"]);
    // The sections the hand-written status reports have.
    for section in [
        "## Executive summary",
        "## Categories",
        "## Image availability",
        "## Key findings",
        "## Outcome summary",
        "## Recommendations",
    ] {
        assert!(report.contains(section), "missing {section}:\n{report}");
    }
    assert!(
        report.contains("[PR](https://github.com/vllm-project/vllm/pull/4001)"),
        "{report}"
    );
    assert!(
        report.contains("build baseline images for these parents"),
        "{report}"
    );
    assert!(report.contains("imported"), "{report}");
    insta::assert_snapshot!("status_report_over_imported_data", report);
}
