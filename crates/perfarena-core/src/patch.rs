//! Reading unified diffs: which files a patch touches, and which of those match a set of globs
//! (`rebuild_globs`: needs a compile; harness globs: the benchmark's own files).

use std::collections::BTreeSet;

use globset::{Glob, GlobSetBuilder};
use sha2::{Digest, Sha256};

/// The sha256 of a patch's text, hex.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The repository-relative paths a unified or git diff touches: both sides of a rename, the
/// destination of a copy, added, deleted, mode-only and binary files.
///
/// The diff is parsed, not grepped: `diff --git` headers and their extended lines (`rename
/// from`, `copy to`, `new file mode`, `Binary files … differ`), `---`/`+++` headers with `a/`
/// and `b/` prefixes, `/dev/null` and git's C-quoted names, and hunks consumed by their
/// `@@ -l,s +l,s @@` counts, so a hunk line that reads `+++ b/x` is content. (The diff crates on
/// crates.io parse plain unified diffs but not git's extended headers and quoted names; this
/// reader covers what `git diff` and `diff -u` print.)
pub fn patch_paths(text: &str) -> Vec<String> {
    let mut paths = BTreeSet::new();
    let mut lines = text.lines().peekable();
    // A `diff --git` section whose name is known only from its header so far.
    let mut header_names: Option<(String, String)> = None;
    let mut section_named = false;
    let mut section_copy = false;
    let flush =
        |names: &mut Option<(String, String)>, named: bool, paths: &mut BTreeSet<String>| {
            if let Some((a, b)) = names.take() {
                if !named {
                    paths.insert(a);
                    paths.insert(b);
                }
            }
        };
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix("diff --git ") {
            flush(&mut header_names, section_named, &mut paths);
            header_names = git_header_names(rest);
            section_named = false;
            section_copy = false;
        } else if let Some(rest) = line
            .strip_prefix("rename from ")
            .or_else(|| line.strip_prefix("rename to "))
            .or_else(|| line.strip_prefix("copy to "))
        {
            paths.insert(unquote(rest));
            section_named = true;
        } else if line.starts_with("copy from ") {
            // The source of a copy is read, not changed.
            section_named = true;
            section_copy = true;
        } else if line.starts_with("--- ") && lines.peek().is_some_and(|l| l.starts_with("+++ ")) {
            let old = header_path(&line[4..]).filter(|_| !section_copy);
            let new = lines
                .next()
                .map(|l| header_path(&l[4..]))
                .unwrap_or_default();
            for path in [old, new].into_iter().flatten() {
                paths.insert(path);
            }
            section_named = true;
        } else if let Some(rest) = line.strip_prefix("@@ ") {
            // Consume the hunk body by its counts: whatever it holds is content.
            let (mut old, mut new) = hunk_counts(rest);
            while old > 0 || new > 0 {
                let Some(body) = lines.next() else { break };
                match body.as_bytes().first() {
                    Some(b'-') => old = old.saturating_sub(1),
                    Some(b'+') => new = new.saturating_sub(1),
                    Some(b'\\') => {}
                    // A context line (an empty line is a context line whose space was trimmed).
                    _ => {
                        old = old.saturating_sub(1);
                        new = new.saturating_sub(1);
                    }
                }
            }
        }
    }
    flush(&mut header_names, section_named, &mut paths);
    paths.into_iter().collect()
}

/// `-l,s +l,s @@`: the old and new line counts (a missing count is 1).
fn hunk_counts(rest: &str) -> (usize, usize) {
    let mut words = rest.split_whitespace();
    let count = |word: Option<&str>, sign: char| {
        word.and_then(|w| w.strip_prefix(sign))
            .map(|range| match range.split_once(',') {
                Some((_, n)) => n.parse().unwrap_or(0),
                None => 1,
            })
            .unwrap_or(0)
    };
    let old = count(words.next(), '-');
    let new = count(words.next(), '+');
    (old, new)
}

/// The path of a `---`/`+++` header: `None` for `/dev/null`; a tab ends the name (timestamps).
fn header_path(rest: &str) -> Option<String> {
    let name = if rest.starts_with('"') {
        unquote(rest)
    } else {
        rest.split('\t')
            .next()
            .unwrap_or(rest)
            .trim_end()
            .to_string()
    };
    (name != "/dev/null").then(|| strip_side(&name).to_string())
}

fn strip_side(path: &str) -> &str {
    path.strip_prefix("a/")
        .or_else(|| path.strip_prefix("b/"))
        .unwrap_or(path)
}

/// The two names of `diff --git a/X b/Y`, quoted or not; with unquoted names that contain
/// spaces, the split where both halves name the same file (git only writes such a header when
/// they do; renames say their names on `rename` lines).
fn git_header_names(rest: &str) -> Option<(String, String)> {
    if rest.starts_with('"') {
        let (first, after) = quoted_prefix(rest)?;
        let second = after.trim_start();
        let second = if second.starts_with('"') {
            quoted_prefix(second)?.0
        } else {
            second.to_string()
        };
        return Some((strip_side(&first).into(), strip_side(&second).into()));
    }
    if let Some(idx) = rest.find(" \"") {
        let second = quoted_prefix(&rest[idx + 1..])?.0;
        return Some((strip_side(&rest[..idx]).into(), strip_side(&second).into()));
    }
    let half = rest.len() / 2;
    if rest.len() % 2 == 1 && rest.is_char_boundary(half) && rest.as_bytes()[half] == b' ' {
        let (a, b) = (strip_side(&rest[..half]), strip_side(&rest[half + 1..]));
        if a == b {
            return Some((a.into(), b.into()));
        }
    }
    let idx = rest.rfind(" b/")?;
    Some((strip_side(&rest[..idx]).into(), rest[idx + 3..].into()))
}

/// A name as git prints it: C-quoted (`"a/caf\303\251 x.py"`) or as it is.
fn unquote(text: &str) -> String {
    if text.starts_with('"') {
        if let Some((name, _)) = quoted_prefix(text) {
            return name;
        }
    }
    text.to_string()
}

/// Decodes the C-quoted string at the start of `text`; returns it and the text after it.
fn quoted_prefix(text: &str) -> Option<(String, &str)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut idx = 1;
    while idx < bytes.len() {
        match bytes[idx] {
            b'"' => return Some((String::from_utf8_lossy(&out).into_owned(), &text[idx + 1..])),
            b'\\' => {
                let next = *bytes.get(idx + 1)?;
                idx += 2;
                match next {
                    b'0'..=b'7' => {
                        let digits = &text[idx - 1..(idx + 2).min(text.len())];
                        out.push(u8::from_str_radix(digits, 8).ok()?);
                        idx += 2;
                    }
                    b'a' => out.push(7),
                    b'b' => out.push(8),
                    b't' => out.push(b'\t'),
                    b'n' => out.push(b'\n'),
                    b'v' => out.push(11),
                    b'f' => out.push(12),
                    b'r' => out.push(b'\r'),
                    other => out.push(other),
                }
            }
            other => {
                out.push(other);
                idx += 1;
            }
        }
    }
    None
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid glob `{glob}`: {message}")]
pub struct GlobError {
    pub glob: String,
    pub message: String,
}

/// The paths matching any of `globs` (`**` crosses directories).
pub fn matching(paths: &[String], globs: &[String]) -> Result<Vec<String>, GlobError> {
    let mut builder = GlobSetBuilder::new();
    for glob in globs {
        let compiled = Glob::new(glob).map_err(|e| GlobError {
            glob: glob.clone(),
            message: e.to_string(),
        })?;
        builder.add(compiled);
    }
    let set = builder.build().map_err(|e| GlobError {
        glob: globs.join(", "),
        message: e.to_string(),
    })?;
    Ok(paths
        .iter()
        .filter(|p| set.is_match(p.as_str()))
        .cloned()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATCH: &str = "diff --git a/toyllm/server.py b/toyllm/server.py\nindex 1..2 100644\n--- a/toyllm/server.py\n+++ b/toyllm/server.py\n@@ -1 +1 @@\n-a\n+b\ndiff --git a/csrc/kernels.txt b/csrc/kernels.txt\n--- a/csrc/kernels.txt\n+++ b/csrc/kernels.txt\n@@ -1 +1 @@\n-x\n+y\n--- /dev/null\n+++ b/new file.py\t2024-01-01\n";

    #[test]
    fn finds_touched_paths() {
        assert_eq!(
            patch_paths(PATCH),
            vec!["csrc/kernels.txt", "new file.py", "toyllm/server.py"]
        );
        assert!(patch_paths("").is_empty());
    }

    #[test]
    fn matches_globs() {
        let paths = patch_paths(PATCH);
        let globs = vec!["csrc/**".to_string(), "setup.py".to_string()];
        assert_eq!(matching(&paths, &globs).unwrap(), vec!["csrc/kernels.txt"]);
        assert!(
            matching(&paths, &["benchmarks/**".to_string()])
                .unwrap()
                .is_empty()
        );
        assert!(matching(&paths, &["a[".to_string()]).is_err());
        assert_eq!(sha256_hex("x").len(), 64);
    }

    /// `git diff` output generated here, from a real repository, for every shape a patch takes.
    #[test]
    fn real_git_diffs_are_parsed_not_grepped() {
        let dir = std::env::temp_dir().join(format!(
            "perfarena-patch-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let git = |args: &[&str]| {
            let out = std::process::Command::new("git")
                .args([
                    "-c",
                    "user.name=t",
                    "-c",
                    "user.email=t@t",
                    "-c",
                    "core.quotepath=true",
                ])
                .args(args)
                .current_dir(&dir)
                .output()
                .expect("git runs");
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        };
        let write = |path: &str, text: &[u8]| {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        git(&["init", "-q", "-b", "main"]);
        let body: String = (0..40)
            .map(|i| format!("line {i} of a long enough file\n"))
            .collect();
        write("src/engine.py", b"a = 1\n");
        write("old name.py", body.as_bytes());
        let other: String = (0..40).map(|i| format!("copy source {i}\n")).collect();
        write("copied.py", other.as_bytes());
        write("run.sh", b"echo hi\n");
        write("gone.txt", b"bye\n");
        git(&["add", "-A"]);
        git(&["commit", "-qm", "base"]);
        // A hunk whose content reads like headers: `++ b/evil.py` added is `+++ b/evil.py`.
        write(
            "src/engine.py",
            b"a = 1\n++ b/evil.py\n-- a/other.py\ndiff --git a/x b/x\n",
        );
        git(&["mv", "old name.py", "new name.py"]);
        write("caf\u{e9} d\u{e9}j\u{e0}.py", b"x = 1\n");
        write("copy of copied.py", format!("{other}one more\n").as_bytes());
        write("weights.bin", &[0u8, 159, 146, 150, 0, 1, 2]);
        std::fs::remove_file(dir.join("gone.txt")).unwrap();
        let mut perms = std::fs::metadata(dir.join("run.sh")).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(dir.join("run.sh"), perms).unwrap();
        git(&["add", "-A"]);
        let diff = git(&["diff", "--cached", "-M", "-C", "--find-copies-harder"]);
        let _ = std::fs::remove_dir_all(&dir);
        // What the output holds (guards that the shapes really are there).
        for shape in [
            "+++ b/evil.py",
            "rename from old name.py",
            "copy to copy of copied.py",
            "\"b/caf\\303\\251 d\\303\\251j\\303\\240.py\"",
            "Binary files /dev/null and b/weights.bin differ",
            "old mode 100644",
            "deleted file mode",
        ] {
            assert!(diff.contains(shape), "{shape} not in:\n{diff}");
        }
        assert_eq!(
            patch_paths(&diff),
            vec![
                "caf\u{e9} d\u{e9}j\u{e0}.py",
                "copy of copied.py",
                "gone.txt",
                "new name.py",
                "old name.py",
                "run.sh",
                "src/engine.py",
                "weights.bin",
            ],
            "{diff}"
        );
    }
}
