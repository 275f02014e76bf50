//! Reading unified diffs: which files a patch touches, and which of those match a set of globs
//! (`rebuild_globs`: needs a compile; harness globs: the benchmark's own files).

use std::collections::BTreeSet;

use globset::{Glob, GlobSetBuilder};
use sha2::{Digest, Sha256};

/// The sha256 of a patch's text, hex.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The repository-relative paths a unified or git diff touches (both sides of a rename).
pub fn patch_paths(text: &str) -> Vec<String> {
    let mut paths = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("diff --git ") {
            // `a/x b/y`: split on " b/" from the right to allow spaces in names.
            if let Some(idx) = rest.rfind(" b/") {
                let (a, b) = rest.split_at(idx);
                paths.insert(a.trim_start_matches("a/").to_string());
                paths.insert(b[3..].to_string());
            }
        } else if let Some(rest) = line
            .strip_prefix("+++ ")
            .or_else(|| line.strip_prefix("--- "))
        {
            let path = rest.split('\t').next().unwrap_or(rest).trim();
            if path != "/dev/null" {
                let path = path
                    .strip_prefix("a/")
                    .or_else(|| path.strip_prefix("b/"))
                    .unwrap_or(path);
                paths.insert(path.to_string());
            }
        }
    }
    paths.into_iter().collect()
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
}
