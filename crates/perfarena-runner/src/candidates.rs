//! Candidate patches named on the command line: `NAME=PATH`, where PATH is one patch for every
//! task or a directory of `<commit prefix>*.patch|.diff` files, one per task.

use std::path::{Path, PathBuf};

use perfarena_core::plan::PlannedCandidate;
use perfarena_core::{CandidateName, CommitId, Task};
use perfarena_store::Store;

use crate::{Result, RunError};

/// Reads `NAME=PATH` candidate arguments; returns `(task, name, patch text)`.
pub fn read_candidate_args(
    args: &[String],
    tasks: &[Task],
) -> Result<Vec<(CommitId, CandidateName, String)>> {
    let mut out = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for arg in args {
        let (name, path) = arg.split_once('=').ok_or_else(|| {
            RunError::Input(format!(
                "--candidates {arg:?}: expected NAME=PATCH (a patch file or a directory of <commit>.patch files)"
            ))
        })?;
        let name = CandidateName::parse(name)
            .map_err(|e| RunError::Input(format!("--candidates {arg:?}: {e}")))?;
        if seen.contains(&name.as_str()) {
            return Err(RunError::Input(format!(
                "--candidates: the name `{name}` is given twice; each candidate needs its own name"
            )));
        }
        seen.push(arg.split_once('=').map_or("", |(n, _)| n));
        let path = PathBuf::from(path);
        for task in tasks {
            let file = if path.is_dir() {
                find_task_patch(&path, task)?
            } else {
                Some(path.clone())
            };
            let Some(file) = file else { continue };
            let bytes = std::fs::read(&file).map_err(|e| {
                RunError::io(
                    format!("--candidates {name}: cannot read {}", file.display()),
                    e,
                )
            })?;
            let text = perfarena_core::import::decode_utf8(&file.display().to_string(), &bytes)
                .map_err(|e| RunError::Input(format!("--candidates {name}: {e}")))?
                .to_string();
            if text.trim().is_empty() {
                return Err(RunError::Input(format!(
                    "--candidates {name}: {} is empty",
                    file.display()
                )));
            }
            out.push((task.commit.clone(), name.clone(), text));
        }
    }
    Ok(out)
}

/// Reads the candidate arguments and keeps each patch in the store, by its sha256.
pub fn load_candidates(
    args: &[String],
    tasks: &[Task],
    store: &Store,
) -> Result<Vec<PlannedCandidate>> {
    let mut out = Vec::new();
    for (task, name, text) in read_candidate_args(args, tasks)? {
        let patch_sha = perfarena_core::patch::sha256_hex(&text);
        store.put_patch(&patch_sha, &text)?;
        out.push(PlannedCandidate {
            task,
            name,
            patch_sha,
        });
    }
    Ok(out)
}

fn find_task_patch(dir: &Path, task: &Task) -> Result<Option<PathBuf>> {
    let mut hits = Vec::new();
    let entries = std::fs::read_dir(dir)
        .map_err(|e| RunError::io(format!("cannot read {}", dir.display()), e))?;
    for entry in entries {
        let path = entry
            .map_err(|e| RunError::io(format!("cannot read {}", dir.display()), e))?
            .path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let is_patch = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("patch" | "diff")
        );
        let prefix: String = stem.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
        if is_patch
            && prefix.len() >= 7
            && task
                .commit
                .as_str()
                .starts_with(&prefix.to_ascii_lowercase())
        {
            hits.push(path);
        }
    }
    match hits.len() {
        0 => Ok(None),
        1 => Ok(hits.pop()),
        _ => Err(RunError::Input(format!(
            "{}: several patches for task {}: {:?}",
            dir.display(),
            task.short_id(),
            hits
        ))),
    }
}
