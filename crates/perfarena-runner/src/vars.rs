//! The template values a task's commands share (`{model}`, `{commit}`, `{parent}`,
//! `{perf_command}`, `{source_dir}`): one place, for the attempts and for `images build
//! --dry-run`'s description of them.

use std::collections::BTreeMap;

use perfarena_core::{Suite, Task};

/// The template values every command of a task shares: `model` (the task's, else the suite's
/// default), `commit`, `parent`, `perf_command`, `source_dir`.
pub(crate) fn insert_task_vars(
    vars: &mut BTreeMap<&'static str, String>,
    suite: &Suite,
    task: &Task,
) {
    let model = task
        .model()
        .or_else(|| Some(suite.bench.default_model.clone()).filter(|m| !m.is_empty()));
    if let Some(model) = model {
        vars.insert("model", model);
    }
    vars.insert("commit", task.commit.to_string());
    vars.insert(
        "parent",
        task.parent
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_default(),
    );
    vars.insert(
        "perf_command",
        task.perf_command.clone().unwrap_or_default(),
    );
    vars.insert("source_dir", suite.repo.source_dir.clone());
}
