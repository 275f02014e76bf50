//! Git operations the backends need: resolving hashes, worktrees, `git apply`, exports.
//!
//! This shells out to the `git` program rather than using a library: worktrees and
//! `git apply --check` (with git's own messages, which we record verbatim for `patch_failed`)
//! are not offered by gix, and every machine that builds these images has git.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use perfarena_core::CommitId;
use perfarena_core::import::{CommitResolver, ResolveError};

use crate::BackendError;

/// A git repository on this host.
#[derive(Debug, Clone)]
pub struct GitRepo {
    pub root: PathBuf,
}

fn run(dir: &Path, args: &[&str]) -> Result<Output, BackendError> {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| BackendError::io(format!("cannot run git in {}", dir.display()), e))
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).trim().to_string()
}

/// git's `error:` lines when there are any (the verbose "Checking patch…" lines are noise).
fn errors_of(output: &Output) -> String {
    let text = stderr_of(output);
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("error:") || l.starts_with("fatal:"))
        .collect();
    if errors.is_empty() {
        text
    } else {
        errors.join("; ")
    }
}

impl GitRepo {
    /// Opens the repository containing `path`; an error naming the path when there is none.
    pub fn open(path: &Path) -> Result<GitRepo, BackendError> {
        let output = run(path, &["rev-parse", "--show-toplevel"])?;
        if !output.status.success() {
            return Err(BackendError::Git(format!(
                "{} is not a git repository: {}",
                path.display(),
                stderr_of(&output)
            )));
        }
        Ok(GitRepo {
            root: PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()),
        })
    }

    pub fn run(&self, args: &[&str]) -> Result<Output, BackendError> {
        run(&self.root, args)
    }

    /// `git` must succeed; returns its trimmed stdout.
    pub fn run_ok(&self, args: &[&str]) -> Result<String, BackendError> {
        let output = self.run(args)?;
        if !output.status.success() {
            return Err(BackendError::Git(format!(
                "git {}: {}",
                args.join(" "),
                stderr_of(&output)
            )));
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    /// Adds a detached worktree of `rev` at `path`, replacing one left there earlier.
    pub fn worktree_add(&self, path: &Path, rev: &str) -> Result<(), BackendError> {
        if path.exists() {
            self.worktree_remove(path)?;
        }
        let _ = self.run(&["worktree", "prune"]);
        let path_text = path.to_string_lossy();
        self.run_ok(&["worktree", "add", "--force", "--detach", &path_text, rev])
            .map(|_| ())
    }

    /// Removes a worktree (and its directory, even if git no longer knows it).
    pub fn worktree_remove(&self, path: &Path) -> Result<(), BackendError> {
        let path_text = path.to_string_lossy();
        let _ = self.run(&["worktree", "remove", "--force", &path_text]);
        if path.exists() {
            std::fs::remove_dir_all(path)
                .map_err(|e| BackendError::io(format!("cannot remove {}", path.display()), e))?;
        }
        let _ = self.run(&["worktree", "prune"]);
        Ok(())
    }
}

/// `git apply --check` then `git apply` of `patch_file` in `dir`. `Ok(Err(message))` when the
/// patch does not apply: git's message, verbatim; nothing is changed then.
pub fn apply_patch(dir: &Path, patch_file: &Path) -> Result<Result<(), String>, BackendError> {
    let patch = patch_file.to_string_lossy();
    let check = run(dir, &["apply", "--check", "--verbose", &patch])?;
    if !check.status.success() {
        return Ok(Err(errors_of(&check)));
    }
    let apply = run(dir, &["apply", &patch])?;
    if !apply.status.success() {
        return Ok(Err(errors_of(&apply)));
    }
    Ok(Ok(()))
}

impl CommitResolver for GitRepo {
    fn resolve(&self, commit: &CommitId) -> Result<CommitId, ResolveError> {
        let spec = format!("{}^{{commit}}", commit.as_str());
        let output = self
            .run(&["rev-parse", "--verify", "--quiet", &spec])
            .map_err(|e| ResolveError::Other(e.to_string()))?;
        if output.status.success() {
            let text = String::from_utf8_lossy(&output.stdout);
            return CommitId::parse(text.trim()).map_err(|e| ResolveError::Other(e.to_string()));
        }
        // Ambiguity: list the commits the prefix matches.
        let all = self
            .run(&["rev-list", "--all"])
            .map_err(|e| ResolveError::Other(e.to_string()))?;
        let candidates: Vec<String> = String::from_utf8_lossy(&all.stdout)
            .lines()
            .filter(|line| line.starts_with(commit.as_str()))
            .map(|line| line[..12.min(line.len())].to_string())
            .collect();
        if candidates.len() > 1 {
            Err(ResolveError::Ambiguous {
                prefix: commit.to_string(),
                candidates,
            })
        } else {
            Err(ResolveError::NotFound(commit.to_string()))
        }
    }

    fn first_parent(&self, commit: &CommitId) -> Result<Option<CommitId>, ResolveError> {
        let output = self
            .run(&["rev-list", "--parents", "-n", "1", commit.as_str()])
            .map_err(|e| ResolveError::Other(e.to_string()))?;
        if !output.status.success() {
            return Err(ResolveError::NotFound(commit.to_string()));
        }
        let text = String::from_utf8_lossy(&output.stdout);
        match text.split_whitespace().nth(1) {
            Some(parent) => CommitId::parse(parent)
                .map(Some)
                .map_err(|e| ResolveError::Other(e.to_string())),
            None => Ok(None),
        }
    }
}
