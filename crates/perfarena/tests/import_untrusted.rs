//! End-to-end, as an attacker: results files whose rows name logs outside the results file's
//! directory (`/etc/shadow`, `/dev/zero`, `..`, symlinks out, a FIFO, a huge file), malformed
//! lines and invalid UTF-8. Each bad log is a warning for its row, each bad line an error naming
//! `file:line`; the other rows are imported and the exit code says some failed.

mod import_support;

use std::path::Path;

use import_support::{ok, path, perfarena, project};

const SECRET: &str = "root:$6$do-not-leak$";

fn row(variant: &str, log: &str) -> String {
    serde_json::json!({
        "commit": "35fad35a",
        "variant": variant,
        "status": "crashed",
        "error": "exit 1",
        "log": log,
    })
    .to_string()
}

fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = project();
    ok(dir.path(), &["tasks", "import", &path("tasks.jsonl")]);
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.log"), format!("{SECRET}\n")).unwrap();
    let results = dir.path().join("results");
    std::fs::create_dir_all(results.join("logs")).unwrap();
    (dir, results)
}

/// The failed attempts in the store, as `perfarena triage --all --json` lists them.
fn failed_attempts(project: &Path) -> Vec<serde_json::Value> {
    let out = perfarena(project, &["triage", "--all", "--json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["failed"].as_array().cloned().unwrap_or_default()
}

#[test]
fn logs_outside_the_results_directory_are_never_read() {
    let (dir, results) = setup();
    let logs = results.join("logs");
    std::fs::write(
        logs.join("ok.log"),
        "Traceback (most recent call last):\nModuleNotFoundError: No module named 'vllm._C'\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(dir.path().join("outside/secret.log"), logs.join("link.log"))
        .unwrap();
    let fifo = std::ffi::CString::new(logs.join("pipe.log").display().to_string()).unwrap();
    // SAFETY: mkfifo reads a NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    // 12 MiB of noise, then the traceback: only the tail is read, and it is what triage needs.
    let mut huge = vec![b'.'; 12 * 1024 * 1024];
    huge.extend_from_slice(
        b"\ntorch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n",
    );
    std::fs::write(logs.join("huge.log"), &huge).unwrap();
    let secret_abs = dir.path().join("outside/secret.log").display().to_string();
    let lines = [
        row("human", "logs/ok.log"),
        row("agent:a1", "/etc/shadow"),
        row("agent:a2", "/dev/zero"),
        row("agent:a3", "../outside/secret.log"),
        row("agent:a4", "logs/link.log"),
        row("agent:a5", "logs/pipe.log"),
        row("agent:a6", &secret_abs),
        row("agent:a7", "logs/huge.log"),
        row("agent:a8", "logs/$(touch marker).log"),
    ];
    std::fs::write(results.join("results.jsonl"), lines.join("\n") + "\n").unwrap();

    let out = perfarena(
        dir.path(),
        &[
            "results",
            "import",
            &results.join("results.jsonl").display().to_string(),
        ],
    )
    .timeout(std::time::Duration::from_secs(60))
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Every row is imported; the unreadable logs are warnings, not failures.
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("imported 9 attempt(s)"), "{stdout}");
    for (line, what) in [
        (2, "outside the results file's directory"),
        (3, "outside the results file's directory"),
        (4, "outside the results file's directory"),
        (5, "outside the results file's directory"),
        (6, "not a regular file (a FIFO)"),
        (7, "outside the results file's directory"),
        (9, "no such file"),
    ] {
        let needle = format!(
            "warning: {}:{line}: log",
            results.join("results.jsonl").display()
        );
        let note = stderr
            .lines()
            .find(|l| l.contains(&needle))
            .unwrap_or_else(|| panic!("no warning for line {line}:\n{stderr}"));
        assert!(note.contains(what), "line {line}: {note}");
    }
    assert!(
        stderr.contains(
            "results.jsonl:8: log logs/huge.log is large: triaged from its last 4194304 bytes"
        ),
        "{stderr}"
    );
    assert!(!dir.path().join("marker").exists());
    assert!(!results.join("logs/marker").exists());

    // Nothing of the secret reached the store or any output; triage saw the readable logs.
    let attempts = failed_attempts(dir.path());
    assert_eq!(attempts.len(), 9);
    let text = serde_json::to_string(&attempts).unwrap();
    assert!(
        !text.contains("do-not-leak")
            && !stdout.contains("do-not-leak")
            && !stderr.contains("do-not-leak")
    );
    let signature = |variant: &str| {
        attempts
            .iter()
            .find(|a| a["variant"] == variant)
            .and_then(|a| a["signature"].as_str().map(str::to_string))
            .unwrap_or_default()
    };
    assert_eq!(signature("human"), "missing-compiled-extension");
    assert_eq!(signature("candidate:a7"), "cuda-oom");
    // `perfarena logs` of an imported attempt never reads the row's path.
    let logs_out = perfarena(dir.path(), &["logs", "35fad35a", "candidate:a6"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&logs_out.stdout).contains("do-not-leak"));

    // With --logs-root the outside directory is allowed, and its log is read (and triaged).
    let again = perfarena(
        dir.path(),
        &[
            "results",
            "import",
            &results.join("results.jsonl").display().to_string(),
            "--logs-root",
            &dir.path().join("outside").display().to_string(),
            "--json",
        ],
    )
    .output()
    .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(json["already_imported"], 9, "{json}");
    let notes = json["notes"].to_string();
    assert!(
        !notes.contains("results.jsonl:4: log") && !notes.contains("results.jsonl:5: log"),
        "{notes}"
    );
    assert!(
        notes.contains("results.jsonl:2: log /etc/shadow not read"),
        "{notes}"
    );
}

#[test]
fn a_malformed_line_is_an_error_naming_it_and_the_other_rows_are_imported() {
    let (dir, results) = setup();
    let good = |variant: &str| {
        serde_json::json!({"commit": "35fad35a", "variant": variant, "status": "ok", "metrics": {"output_throughput_tok_s": 100.0}})
            .to_string()
    };
    let mut bytes = Vec::new();
    bytes.extend_from_slice(format!("{}\n", good("baseline")).as_bytes());
    bytes.extend_from_slice(b"{\"commit\": \"35fad35a\", \"variant\": \"human\", oops\n");
    bytes.extend_from_slice(b"{\"commit\": \"35fad35a\", \"variant\": \"caf\xE9\"}\n");
    bytes.extend_from_slice(format!("{}\r\n", good("human")).as_bytes());
    let file = results.join("results.jsonl");
    std::fs::write(&file, &bytes).unwrap();
    let file = file.display().to_string();

    let out = perfarena(dir.path(), &["results", "import", &file])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("imported 2 attempt(s)") && stdout.contains("skipped 2 row(s)"),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!("skipped: {file}:2: invalid JSON")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("skipped: {file}:3:39: invalid UTF-8 (byte 0xE9)")),
        "{stderr}"
    );
    // --strict imports nothing more, and what is recorded stays.
    let strict = perfarena(dir.path(), &["results", "import", &file, "--strict"])
        .output()
        .unwrap();
    assert_eq!(strict.status.code(), Some(1));
    let (json, _) = ok(dir.path(), &["analyze", "--json"]);
    let model: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(model["provenance"]["imported_attempts"], 2);

    // The same for task lists and judge files.
    let tasks = results.join("tasks.jsonl");
    std::fs::write(
        &tasks,
        b"{\"commit_hash\": \"35fad35a485eac9195c510731ba4a9d297dfd963\", \"parent_commit\": \"733e7c9e95f5b066ac420b00701eef7ea164a79e\"}\n{not json\n",
    )
    .unwrap();
    let out = perfarena(
        dir.path(),
        &["tasks", "import", &tasks.display().to_string()],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:2: invalid JSON", tasks.display())),
        "{stderr}"
    );
    let judge = results.join("judge.jsonl");
    std::fs::write(
        &judge,
        b"{\"commit\": \"35fad35a\", \"candidate\": \"agent\", \"label\": \"same\"}\n\xFF\n",
    )
    .unwrap();
    let out = perfarena(
        dir.path(),
        &["judge", "import", &judge.display().to_string()],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("imported 1 label(s)"), "{stdout}");
    assert!(
        stderr.contains(&format!(
            "{}:2:1: invalid UTF-8 (byte 0xFF)",
            judge.display()
        )),
        "{stderr}"
    );
}
