//! Where a command works: the project directory, its suite file and its `.perfarena` store.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use perfarena_backend::git::GitRepo;
use perfarena_core::Suite;
use perfarena_runner::lock::StoreLock;
use perfarena_store::Store;

pub struct Ctx {
    pub suite_path: PathBuf,
    pub state_dir: PathBuf,
}

impl Ctx {
    pub fn new(dir: &Path, suite: Option<&Path>) -> Ctx {
        // Absolute, so that paths handed to git (run in the repository) and to children
        // (run in their checkouts) mean the same place.
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let dir = dir.as_path();
        let suite_path = match suite {
            Some(path) => path.to_path_buf(),
            None => dir.join("perfarena.toml"),
        };
        Ctx {
            suite_path,
            state_dir: dir.join(".perfarena"),
        }
    }

    /// The suite: the user's file over the defaults; the defaults alone when there is no file.
    /// The suite file's directory: relative paths in the suite are resolved against it.
    pub fn suite_dir(&self) -> PathBuf {
        match self.suite_path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    pub fn suite(&self) -> Result<Suite> {
        if !self.suite_path.exists() {
            return Ok(Suite::defaults());
        }
        let bytes = std::fs::read(&self.suite_path)
            .with_context(|| format!("cannot read {}", self.suite_path.display()))?;
        let origin = self.suite_path.display().to_string();
        let text = perfarena_core::import::decode_utf8(&origin, &bytes)?;
        let suite = Suite::from_toml_str(text, &origin)?;
        // Said once per process, however many times a command loads the suite.
        static NOTED: std::sync::Once = std::sync::Once::new();
        if let Some(note) = &suite.metric.primary_note {
            NOTED.call_once(|| eprintln!("note: {note}"));
        }
        Ok(suite)
    }

    /// The suite, which must exist (commands that run benchmarks).
    pub fn suite_required(&self) -> Result<Suite> {
        if !self.suite_path.exists() {
            bail!(
                "{} not found: run `perfarena init` to write one (or pass --suite FILE)",
                self.suite_path.display()
            );
        }
        self.suite()
    }

    /// Takes the project's one-writer lock for this command (what the user typed); an error
    /// naming the holder when another perfarena writes. A lock left by a process that died is
    /// taken over, said once.
    pub fn lock_store(&self) -> Result<StoreLock> {
        let command: Vec<String> = std::env::args().collect();
        let lock = StoreLock::acquire(&self.state_dir, &command.join(" "))?;
        if let Some(dead) = lock.taken_over() {
            crate::progress::note(&format!(
                "note: taking over the lock of pid {} (`{}`, started {}), which ended without releasing it",
                dead.pid, dead.command, dead.started_at
            ));
        }
        Ok(lock)
    }

    pub fn store(&self) -> Result<Store> {
        Ok(Store::open(&self.state_dir)?)
    }

    /// The repository under test: `repo.path`, or a clone of `repo.url` kept in the store
    /// directory (cloned on first use); `None` for analysis-only suites.
    pub fn repo(&self, suite: &Suite) -> Result<Option<GitRepo>> {
        if !suite.repo.url.is_empty() {
            let clone = self.state_dir.join("repo");
            if !clone.join(".git").exists() {
                std::fs::create_dir_all(&self.state_dir)
                    .with_context(|| format!("cannot create {}", self.state_dir.display()))?;
                eprintln!("cloning {} into {}", suite.repo.url, clone.display());
                let status = std::process::Command::new("git")
                    .arg("clone")
                    .arg("--quiet")
                    .arg(&suite.repo.url)
                    .arg(&clone)
                    .env("GIT_TERMINAL_PROMPT", "0")
                    .status()
                    .context("cannot run git clone: is git installed?")?;
                if !status.success() {
                    bail!(
                        "{}: cannot clone repo.url {:?}; check the URL or clone it yourself and set repo.path",
                        self.suite_path.display(),
                        suite.repo.url
                    );
                }
            }
            return Ok(Some(GitRepo::open(&clone)?));
        }
        if suite.repo.path.is_empty() {
            return Ok(None);
        }
        let base = self
            .suite_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let path = base.join(&suite.repo.path);
        if !path.exists() {
            bail!(
                "{}: repo.path {:?} does not exist ({})",
                self.suite_path.display(),
                suite.repo.path,
                path.display()
            );
        }
        Ok(Some(GitRepo::open(&path)?))
    }
}

/// The current time, RFC 3339, UTC.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
