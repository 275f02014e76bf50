//! The one-writer lock of a project: every command that writes to the store holds an exclusive
//! OS file lock (`flock`) on `.perfarena/lock` for its lifetime, so that two writers never
//! interleave (two `run --resume` would record the same attempts twice). The file names its
//! holder (pid, command, start time) for the message a second writer gets. The kernel drops
//! the lock of a process that dies; what it wrote in the file then stays, and the next writer
//! takes over, saying so once. Readers (`report`, `analyze`, `triage`…) take no lock: SQLite's
//! WAL gives them a consistent snapshot while a writer writes.
//!
//! A writer can hand its lock to processes it starts (the `images build --backend slurm` array
//! tasks): they run with [`DELEGATE_ENV`] set to the holder's token and write under its lock.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};
use serde::{Deserialize, Serialize};

/// The environment variable through which a lock holder hands its lock to its children.
pub const DELEGATE_ENV: &str = "PERFARENA_LOCK_TOKEN";

/// Who holds (or held) the lock, as written in the lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub command: String,
    pub started_at: String,
    /// Random: what a delegate must present.
    pub token: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another perfarena writes to this project: pid {} (`{}`), started {}; wait for it to finish, or stop it (its lock is {})",
        holder.pid, holder.command, holder.started_at, path.display()
    )]
    Held { path: PathBuf, holder: Holder },
    #[error(
        "another perfarena writes to this project (its lock {} names no holder); wait for it to finish",
        path.display()
    )]
    HeldUnnamed { path: PathBuf },
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// The lock of a project's store, held until dropped.
#[derive(Debug)]
pub struct StoreLock {
    /// `None`: held by a parent on our behalf (delegated).
    file: Option<File>,
    holder: Holder,
    /// The holder this lock took over from (a process that died holding it).
    taken_over: Option<Holder>,
}

impl StoreLock {
    /// The lock file of a store directory.
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("lock")
    }

    /// Takes the lock of `state_dir` for `command` (what the user typed), at once or not at
    /// all: an error naming the holder when another process has it.
    pub fn acquire(state_dir: &Path, command: &str) -> Result<StoreLock, LockError> {
        let path = Self::path(state_dir);
        let io = |error| LockError::Io {
            path: path.clone(),
            error,
        };
        std::fs::create_dir_all(state_dir).map_err(|error| LockError::Io {
            path: state_dir.to_path_buf(),
            error,
        })?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let before = read_holder(&mut file);
        if let Ok(token) = std::env::var(DELEGATE_ENV)
            && let Some(holder) = before.as_ref().filter(|h| h.token == token)
        {
            return Ok(StoreLock {
                file: None,
                holder: holder.clone(),
                taken_over: None,
            });
        }
        if let Err(errno) = flock(&file, FlockOperation::NonBlockingLockExclusive) {
            if errno == rustix::io::Errno::WOULDBLOCK {
                // The holder may still be writing its name: read it once more.
                return Err(match read_holder(&mut file).or(before) {
                    Some(holder) => LockError::Held { path, holder },
                    None => LockError::HeldUnnamed { path },
                });
            }
            return Err(io(errno.into()));
        }
        let holder = Holder {
            pid: std::process::id(),
            command: command.to_string(),
            started_at: crate::now(),
            token: format!("{:016x}", rand::random::<u64>()),
        };
        // Anything still in the file was left by a holder that died without releasing it.
        let taken_over = read_holder(&mut file);
        let text = serde_json::to_string(&holder).unwrap_or_default();
        (|| {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            file.write_all(text.as_bytes())?;
            file.sync_data()
        })()
        .map_err(io)?;
        Ok(StoreLock {
            file: Some(file),
            holder,
            taken_over,
        })
    }

    pub fn holder(&self) -> &Holder {
        &self.holder
    }

    /// The holder that died holding the lock, when this lock took it over.
    pub fn taken_over(&self) -> Option<&Holder> {
        self.taken_over.as_ref()
    }

    /// The environment that hands this lock to a child process.
    pub fn delegate_env(&self) -> (String, String) {
        (DELEGATE_ENV.to_string(), self.holder.token.clone())
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        if let Some(file) = &self.file {
            // Cleared before the lock goes (with the file, when it closes), so that a holder's
            // name left in the file always means it died.
            let _ = file.set_len(0);
            let _ = flock(file, FlockOperation::Unlock);
        }
    }
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_with_the_holders_name() {
        let dir = tempfile::tempdir().unwrap();
        let first = StoreLock::acquire(dir.path(), "perfarena run --resume").unwrap();
        assert!(first.taken_over().is_none());
        // A second open file description conflicts even within one process.
        let err = StoreLock::acquire(dir.path(), "perfarena tasks import x").unwrap_err();
        let LockError::Held { holder, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!(holder.pid, std::process::id());
        assert_eq!(holder.command, "perfarena run --resume");
        assert!(
            err.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        let again = StoreLock::acquire(dir.path(), "perfarena tasks import x").unwrap();
        assert!(
            again.taken_over().is_none(),
            "a released lock leaves no name"
        );
    }

    #[test]
    fn a_lock_left_by_a_dead_holder_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let dead = Holder {
            pid: 999_999,
            command: "perfarena run".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            token: "00".into(),
        };
        std::fs::write(
            StoreLock::path(dir.path()),
            serde_json::to_string(&dead).unwrap(),
        )
        .unwrap();
        let lock = StoreLock::acquire(dir.path(), "perfarena run --resume").unwrap();
        assert_eq!(lock.taken_over(), Some(&dead));
    }
}
