//! Reading what imports are given: row files (JSON, JSONL, Parquet) with their bad lines kept
//! apart, other input files as UTF-8 text (an error names line and column), and the logs that
//! result rows name, confined to the results file's directory or `--logs-root`, regular files
//! only, and read size-capped from the end.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use perfarena_core::import::{self, Rows};
use perfarena_core::import_results::LogText;

/// The most of one imported log that is read: its last 4 MiB, where a failure's traceback is.
pub const LOG_TAIL_BYTES: u64 = 4 * 1024 * 1024;

/// Reads the rows of a file, choosing the reader by extension (`.parquet`, else JSON/JSONL).
/// Lines that are not rows come back in `errors`; only an unreadable file is an error here.
pub fn read_rows(path: &Path) -> Result<Rows> {
    if super::parquet_rows::is_parquet(path) {
        return Ok(Rows {
            rows: super::parquet_rows::read_parquet_rows(path)?,
            errors: Vec::new(),
        });
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(import::read_rows(&path.display().to_string(), &bytes)?)
}

/// Reads a whole input file as bytes, naming it when it cannot be read.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Reads an input file as UTF-8 text; invalid UTF-8 is an error naming its line and column.
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = read_bytes(path)?;
    import::decode_utf8(&path.display().to_string(), &bytes)?;
    // Checked just above; `from_utf8` cannot fail now, and gives the owned string for free.
    String::from_utf8(bytes).context("invalid UTF-8")
}

/// Where the logs named by result rows may be: the results file's directory, and the
/// `--logs-root` directories. Paths are compared after every symlink is resolved.
pub struct LogRoots {
    extra: Vec<PathBuf>,
}

impl LogRoots {
    /// The `--logs-root` directories (each must exist).
    pub fn new(logs_roots: &[PathBuf]) -> Result<LogRoots> {
        let extra = logs_roots
            .iter()
            .map(|root| {
                std::fs::canonicalize(root)
                    .with_context(|| format!("--logs-root {}: cannot open it", root.display()))
            })
            .collect::<Result<_>>()?;
        Ok(LogRoots { extra })
    }

    /// Reads the log a row of the results file in `base` names. Anything but a regular file
    /// inside the allowed directories is `Unreadable` with the reason; a large one is read from
    /// its last [`LOG_TAIL_BYTES`].
    pub fn read(&self, base: &Path, written: &str) -> LogText {
        match self.open(base, written) {
            Ok(file) => read_tail(file, LOG_TAIL_BYTES),
            Err(reason) => LogText::Unreadable(reason),
        }
    }

    fn open(&self, base: &Path, written: &str) -> Result<File, String> {
        if written.contains('\0') {
            return Err("the path contains a NUL byte".into());
        }
        let base = std::fs::canonicalize(if base.as_os_str().is_empty() {
            Path::new(".")
        } else {
            base
        })
        .map_err(|e| format!("the results file's directory: {e}"))?;
        let given = Path::new(written);
        // A relative path is relative to the results file; failing that, to a --logs-root.
        let candidates: Vec<PathBuf> = if given.is_absolute() {
            vec![given.to_path_buf()]
        } else {
            std::iter::once(&base)
                .chain(&self.extra)
                .map(|root| root.join(given))
                .collect()
        };
        let found = candidates
            .iter()
            .find(|c| c.symlink_metadata().is_ok())
            .ok_or_else(|| "no such file".to_string())?;
        let real = std::fs::canonicalize(found).map_err(|e| format!("{e}"))?;
        if !std::iter::once(&base)
            .chain(&self.extra)
            .any(|root| real.starts_with(root))
        {
            return Err(format!(
                "it resolves to {}, outside the results file's directory {}{}: logs are read only from there (add --logs-root DIR to allow another directory)",
                real.display(),
                base.display(),
                if self.extra.is_empty() {
                    String::new()
                } else {
                    " and --logs-root".to_string()
                }
            ));
        }
        // Non-blocking so that a FIFO cannot hang the import, no symlink in the last component
        // (one swapped in after the check above is refused); the type is checked on the open file.
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
            .open(&real)
            .map_err(|e| format!("{}: {e}", real.display()))?;
        let meta = file.metadata().map_err(|e| e.to_string())?;
        if !meta.is_file() {
            return Err(format!(
                "{} is not a regular file ({})",
                real.display(),
                file_kind(&meta)
            ));
        }
        Ok(file)
    }
}

fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    let kind = meta.file_type();
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

/// The last `cap` bytes of a regular file (all of it when smaller), decoded lossily: a log is
/// content to triage, not input to validate.
fn read_tail(mut file: File, cap: u64) -> LogText {
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let skipped = len.saturating_sub(cap);
    if skipped > 0
        && let Err(e) = file.seek(SeekFrom::Start(skipped))
    {
        return LogText::Unreadable(e.to_string());
    }
    let mut bytes = Vec::new();
    // `take`: a file that grows while it is read still yields at most `cap` bytes.
    if let Err(e) = file.take(cap).read_to_end(&mut bytes) {
        return LogText::Unreadable(e.to_string());
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if skipped > 0 {
        LogText::Tail { text, skipped }
    } else {
        LogText::Text(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(roots: &LogRoots, base: &Path, written: &str) -> Result<String, String> {
        match roots.read(base, written) {
            LogText::Text(text) => Ok(text),
            LogText::Tail { text, .. } => Ok(text),
            LogText::Unreadable(reason) => Err(reason),
        }
    }

    #[test]
    fn logs_inside_the_directory_are_read_and_others_refused() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("run");
        std::fs::create_dir_all(base.join("logs")).unwrap();
        std::fs::write(base.join("logs/a.log"), "hello\n").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "secret\n").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), base.join("logs/out.log"))
            .unwrap();
        std::os::unix::fs::symlink("a.log", base.join("logs/in.log")).unwrap();
        let roots = LogRoots::new(&[]).unwrap();
        assert_eq!(read(&roots, &base, "logs/a.log").unwrap(), "hello\n");
        assert_eq!(read(&roots, &base, "logs/in.log").unwrap(), "hello\n");
        let abs = base.join("logs/a.log").display().to_string();
        assert_eq!(read(&roots, &base, &abs).unwrap(), "hello\n");
        for bad in [
            "../secret.txt",
            "logs/../../secret.txt",
            "logs/out.log",
            "/etc/shadow",
            "/etc/passwd",
            "/dev/zero",
            "/proc/self/environ",
        ] {
            let err = read(&roots, &base, bad).unwrap_err();
            assert!(
                err.contains("outside the results file's directory") || err.contains("no such"),
                "{bad}: {err}"
            );
        }
        assert!(
            read(&roots, &base, "logs")
                .unwrap_err()
                .contains("directory")
        );
        assert!(read(&roots, &base, "a\0b").unwrap_err().contains("NUL"));
        // A --logs-root allows its own tree, and resolves relative paths too.
        let roots = LogRoots::new(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(read(&roots, &base, "logs/out.log").unwrap(), "secret\n");
        assert_eq!(read(&roots, &base, "secret.txt").unwrap(), "secret\n");
        assert!(read(&roots, &base, "/etc/passwd").is_err());
    }

    #[test]
    fn fifos_and_devices_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.log");
        let c_path = std::ffi::CString::new(fifo.display().to_string()).unwrap();
        // SAFETY: mkfifo reads a NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.log")).unwrap();
        let roots = LogRoots::new(&[PathBuf::from("/dev")]).unwrap();
        let err = read(&roots, dir.path(), "pipe.log").unwrap_err();
        assert!(err.contains("not a regular file (a FIFO)"), "{err}");
        let err = read(&roots, dir.path(), "zero.log").unwrap_err();
        assert!(err.contains("not a regular file (a device)"), "{err}");
    }

    #[test]
    fn large_logs_are_read_from_their_end() {
        let dir = tempfile::tempdir().unwrap();
        let mut body = "x".repeat(100);
        body.push_str("\nTraceback (most recent call last):\n");
        std::fs::write(dir.path().join("big.log"), &body).unwrap();
        let file = File::open(dir.path().join("big.log")).unwrap();
        match read_tail(file, 40) {
            LogText::Tail { text, skipped } => {
                assert_eq!(skipped, body.len() as u64 - 40);
                assert!(text.ends_with("Traceback (most recent call last):\n"));
                assert_eq!(text.len(), 40);
            }
            _ => panic!("expected a tail"),
        }
    }
}
