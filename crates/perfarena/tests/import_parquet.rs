//! End-to-end: a task list as a Parquet file (what a dataset hub serves), written here with the
//! parquet crate (snappy-compressed, a LIST column of models), imported without a repository;
//! a task without a model takes `--model` from its perf command, else is `unknown_model`.

mod import_support;

use std::path::Path;
use std::sync::Arc;

use parquet::basic::Compression;
use parquet::data_type::{BoolType, ByteArray, ByteArrayType};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

use import_support::{analyze, ok, project};

const SCHEMA: &str = "
message tasks {
  REQUIRED BYTE_ARRAY commit_hash (UTF8);
  REQUIRED BYTE_ARRAY parent_commit (UTF8);
  OPTIONAL group models (LIST) {
    REPEATED group list {
      OPTIONAL BYTE_ARRAY element (UTF8);
    }
  }
  OPTIONAL BYTE_ARRAY perf_command (UTF8);
  REQUIRED BOOLEAN has_serving;
  OPTIONAL BYTE_ARRAY pr_url (UTF8);
}";

const C1: &str = "1a2b3c4d5e6f1a2b3c4d5e6f1a2b3c4d5e6f1a2b";
const C2: &str = "2b3c4d5e6f1a2b3c4d5e6f1a2b3c4d5e6f1a2b3c";
const C3: &str = "3c4d5e6f1a2b3c4d5e6f1a2b3c4d5e6f1a2b3c4d";

fn bytes(values: &[&str]) -> Vec<ByteArray> {
    values.iter().map(|v| ByteArray::from(*v)).collect()
}

/// Three tasks: a model in the list; an empty list and `--model` in the perf command; no model.
fn write_tasks(path: &Path) {
    let schema = Arc::new(parse_message_type(SCHEMA).unwrap());
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build(),
    );
    let mut writer =
        SerializedFileWriter::new(std::fs::File::create(path).unwrap(), schema, props).unwrap();
    let mut group = writer.next_row_group().unwrap();
    let mut column =
        |write: &mut dyn FnMut(&mut parquet::file::writer::SerializedColumnWriter<'_>)| {
            let mut col = group
                .next_column()
                .unwrap()
                .expect("a column left to write");
            write(&mut col);
            col.close().unwrap();
        };
    column(&mut |c| {
        c.typed::<ByteArrayType>()
            .write_batch(&bytes(&[C1, C2, C3]), None, None)
            .unwrap();
    });
    column(&mut |c| {
        c.typed::<ByteArrayType>()
            .write_batch(
                &bytes(&[
                    "0".repeat(40).as_str(),
                    "1".repeat(40).as_str(),
                    "2".repeat(40).as_str(),
                ]),
                None,
                None,
            )
            .unwrap();
    });
    // models: ["Qwen/Qwen2-7B-Instruct"], [], null — definition levels 3, 1, 0.
    column(&mut |c| {
        c.typed::<ByteArrayType>()
            .write_batch(
                &bytes(&["Qwen/Qwen2-7B-Instruct"]),
                Some(&[3, 1, 0]),
                Some(&[0, 0, 0]),
            )
            .unwrap();
    });
    column(&mut |c| {
        let commands = bytes(&[
            "python benchmarks/benchmark_serving.py --model Qwen/Qwen2-7B-Instruct",
            "python benchmarks/benchmark_serving.py --model meta-llama/Meta-Llama-3-8B-Instruct --num-prompts 100",
            "python benchmarks/benchmark_latency.py --batch-size 8",
        ]);
        c.typed::<ByteArrayType>()
            .write_batch(&commands, Some(&[1, 1, 1]), None)
            .unwrap();
    });
    column(&mut |c| {
        c.typed::<BoolType>()
            .write_batch(&[true, true, false], None, None)
            .unwrap();
    });
    column(&mut |c| {
        c.typed::<ByteArrayType>()
            .write_batch(
                &bytes(&["https://github.com/vllm-project/vllm/pull/1"]),
                Some(&[1, 0, 0]),
                None,
            )
            .unwrap();
    });
    group.close().unwrap();
    writer.close().unwrap();
}

#[test]
fn parquet_tasks_import_and_models() {
    let dir = project();
    let file = dir.path().join("tasks.parquet");
    write_tasks(&file);
    let (stdout, stderr) = ok(dir.path(), &["tasks", "import", file.to_str().unwrap()]);
    assert!(
        stdout.contains("imported 3 task(s) (3 new or changed, 0 unchanged); skipped 0 row(s)"),
        "{stdout}"
    );
    assert!(stderr.contains("no repository in the suite"), "{stderr}");
    let (list, _) = ok(dir.path(), &["tasks", "list", "--json"]);
    let tasks: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(tasks[0]["commit"], C1);
    assert_eq!(tasks[0]["parent"], "0".repeat(40));
    assert_eq!(
        tasks[0]["models"],
        serde_json::json!(["Qwen/Qwen2-7B-Instruct"])
    );
    assert_eq!(
        tasks[0]["pr_url"],
        "https://github.com/vllm-project/vllm/pull/1"
    );
    assert_eq!(tasks[1]["models"], serde_json::json!([]));
    assert_eq!(tasks[2]["has_serving"], false);
    // Importing the same file again changes nothing.
    let (again, _) = ok(dir.path(), &["tasks", "import", file.to_str().unwrap()]);
    assert!(again.contains("(0 new or changed, 3 unchanged)"), "{again}");

    let model = analyze(dir.path());
    let task = |commit: &str| {
        model["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["commit"] == commit)
            .unwrap()
            .clone()
    };
    assert_eq!(
        (
            task(C1)["model"].as_str(),
            task(C1)["model_source"].as_str()
        ),
        (Some("Qwen/Qwen2-7B-Instruct"), Some("task"))
    );
    assert_eq!(
        (
            task(C2)["model"].as_str(),
            task(C2)["model_source"].as_str()
        ),
        (
            Some("meta-llama/Meta-Llama-3-8B-Instruct"),
            Some("perf_command")
        )
    );
    let unknown = task(C3);
    assert_eq!(unknown["category"], "unknown_model");
    assert!(
        unknown["category_reason"]
            .as_str()
            .unwrap()
            .contains("its perf_command names no model"),
        "{}",
        unknown["category_reason"]
    );
    assert_eq!(unknown["bench_kind"], "latency");
}

#[test]
fn a_file_that_is_not_parquet_is_an_error_naming_it() {
    let dir = project();
    let file = dir.path().join("tasks.parquet");
    std::fs::write(&file, "{\"commit_hash\": \"abcd\"}\n").unwrap();
    let out = import_support::perfarena(dir.path(), &["tasks", "import", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tasks.parquet: not a readable Parquet file"),
        "{stderr}"
    );
}
