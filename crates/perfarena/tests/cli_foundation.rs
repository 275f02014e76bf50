//! End-to-end tests of the foundation commands, spawning the built binary: init, tasks import
//! (good and bad files), tasks list, report on an empty store.

mod common;

use common::{bin, perfarena, stderr, stdout};

#[test]
fn init_writes_a_suite_that_parses_and_refuses_to_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let out = perfarena(tmp.path(), &["init"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(tmp.path().join("perfarena.toml")).unwrap();
    assert!(text.contains("[bench.readiness]") && text.contains("# "));
    let again = perfarena(tmp.path(), &["init"]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    assert!(perfarena(tmp.path(), &["init", "--force"]).status.success());
}

#[test]
fn a_bad_suite_names_the_key_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("perfarena.toml"),
        "[bench]\nclient = \"x\"\nrepeatz = 3\n",
    )
    .unwrap();
    let out = perfarena(tmp.path(), &["tasks", "list"]);
    // tasks list does not need the suite; run does.
    assert!(out.status.success());
    let out = perfarena(tmp.path(), &["run"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("perfarena.toml:3") && err.contains("bench.repeatz"),
        "{err}"
    );
}

#[test]
fn tasks_import_good_rows_and_report_bad_ones() {
    let (_tmp, dir) = common::toy_project();
    let repo = dir.join("repo");
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let head = git(&["rev-parse", "HEAD"]);
    let parent = git(&["rev-parse", "HEAD~1"]);
    let root = git(&["rev-list", "--max-parents=0", "HEAD"]);
    let file = dir.join("more.jsonl");
    std::fs::write(
        &file,
        format!(
            "{{\"commit_hash\": \"{}\", \"models\": \"m1\", \"perf_command\": \"python x.py --model m1\"}}\n\
             {{\"commit_hash\": \"zzzz\"}}\n\
             {{\"commit_hash\": \"ffffffff\"}}\n\
             {{\"commit_hash\": \"{root}\"}}\n\
             {{\"commit_hash\": \"{}\", \"parent_commit\": \"{}\"}}\n",
            &parent[..10],
            &head[..8],
            &root[..8],
        ),
    )
    .unwrap();
    let out = perfarena(&dir, &["tasks", "import", file.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        stdout(&out).contains("skipped 3 row(s)"),
        "{}",
        stdout(&out)
    );
    assert!(err.contains("more.jsonl:2: field `commit_hash`"), "{err}");
    assert!(
        err.contains("more.jsonl:3") && err.contains("not in the repository"),
        "{err}"
    );
    assert!(
        err.contains("more.jsonl:4") && err.contains("root commit"),
        "{err}"
    );

    let list = perfarena(&dir, &["tasks", "list", "--json"]);
    let tasks: serde_json::Value = serde_json::from_str(&stdout(&list)).unwrap();
    let tasks = tasks.as_array().unwrap();
    let toy_task: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(dir.join("tasks.jsonl"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    let mut expected = vec![
        head.clone(),
        parent.clone(),
        toy_task["commit_hash"].as_str().unwrap().to_string(),
    ];
    expected.sort();
    expected.dedup();
    let mut found: Vec<String> = tasks
        .iter()
        .map(|t| t["commit"].as_str().unwrap().to_string())
        .collect();
    found.sort();
    assert_eq!(found, expected, "the toy task and the two good rows");
    let imported = tasks
        .iter()
        .find(|t| t["commit"] == parent.as_str())
        .expect("short hash resolved");
    assert_eq!(
        imported["parent"],
        git(&["rev-parse", "HEAD~2"]).as_str(),
        "parent resolved with git"
    );
    let human = tasks.iter().find(|t| t["commit"] == head.as_str()).unwrap();
    assert_eq!(
        human["parent"],
        root.as_str(),
        "explicit parent (short) resolved and kept"
    );

    // Re-import is idempotent; --strict imports nothing on a bad row.
    let again = perfarena(&dir, &["tasks", "import", "--json", file.to_str().unwrap()]);
    let summary: serde_json::Value = serde_json::from_str(&stdout(&again)).unwrap();
    assert_eq!(summary["imported"], 0);
    assert_eq!(summary["unchanged"], 2, "{summary}");
    let strict = perfarena(
        &dir,
        &["tasks", "import", "--strict", file.to_str().unwrap()],
    );
    assert!(!strict.status.success());
    assert!(
        stderr(&strict).contains("nothing imported"),
        "{}",
        stderr(&strict)
    );
}

#[test]
fn tasks_import_reads_arrays_objects_and_mappings() {
    let (_tmp, dir) = common::toy_project();
    let repo = dir.join("repo");
    let rev = |r: &str| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(["rev-parse", r])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let (head, mid, root) = (rev("HEAD"), rev("HEAD~1"), rev("HEAD~2"));
    let array = dir.join("tasks.json");
    std::fs::write(
        &array,
        format!("[{{\"commit_hash\": \"{head}\", \"models\": [\"a\", \"b\"]}}]"),
    )
    .unwrap();
    let keyed = dir.join("keyed.json");
    std::fs::write(
        &keyed,
        format!("{{\"{}\": {{\"has_latency\": true}}}}", &mid[..12]),
    )
    .unwrap();
    let mapping = dir.join("parents.json");
    std::fs::write(
        &mapping,
        format!("{{\"{}\": \"{}\"}}", &head[..9], &root[..9]),
    )
    .unwrap();
    let out = perfarena(
        &dir,
        &[
            "tasks",
            "import",
            array.to_str().unwrap(),
            keyed.to_str().unwrap(),
            "--mapping",
            mapping.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let list: serde_json::Value =
        serde_json::from_str(&stdout(&perfarena(&dir, &["tasks", "list", "--json"]))).unwrap();
    let head_task = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["commit"] == head.as_str())
        .unwrap();
    assert_eq!(
        head_task["parent"],
        root.as_str(),
        "the mapping supplies the parent"
    );
    assert_eq!(head_task["models"], serde_json::json!(["a", "b"]));
    let mid_task = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["commit"] == mid.as_str())
        .unwrap();
    assert_eq!(mid_task["has_latency"], true);
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = bin()
        .arg("-C")
        .arg(tmp.path())
        .args(["tasks", "import", "nope.jsonl"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot read nope.jsonl"),
        "{}",
        stderr(&out)
    );
    let out = perfarena(tmp.path(), &["report"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no store here"), "{}", stderr(&out));
}
