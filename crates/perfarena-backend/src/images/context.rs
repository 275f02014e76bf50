//! Build contexts: a commit's files exported from git (`git archive`, never the working tree),
//! an optional shell step on them (a per-commit `pre_build_patch`), and the tar sent to the
//! engine.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use perfarena_core::CommitId;

use super::ImagesError;
use crate::CancelToken;
use crate::git::GitRepo;
use crate::process::{GroupChild, WaitResult};

/// Writes `commit`'s files (all of them, or only `paths` that exist there) into `dest`, which
/// is created. Returns the paths written when `paths` was given.
pub fn export(
    repo: &GitRepo,
    commit: &CommitId,
    dest: &Path,
    paths: Option<&[String]>,
) -> Result<Vec<String>, ImagesError> {
    std::fs::create_dir_all(dest)
        .map_err(|e| ImagesError::io(format!("cannot create {}", dest.display()), e))?;
    let mut selected = Vec::new();
    if let Some(paths) = paths {
        // `git archive` fails on a path the commit lacks (a file the patch creates): keep those it has.
        let mut args = vec!["ls-tree", "-r", "--name-only", "-z", commit.as_str(), "--"];
        args.extend(paths.iter().map(String::as_str));
        let output = repo.run(&args)?;
        if !output.status.success() {
            return Err(ImagesError::Git(format!(
                "ls-tree {}: {}",
                commit.short(12),
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        selected = output
            .stdout
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        if selected.is_empty() {
            return Ok(selected);
        }
    }
    let mut cmd = Command::new("git");
    cmd.arg("-C")
        .arg(&repo.root)
        .args(["archive", "--format=tar", commit.as_str()]);
    if paths.is_some() {
        cmd.arg("--").args(&selected);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ImagesError::io("cannot run git archive", e))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| ImagesError::Other("git archive: no stdout".into()))?;
    let unpacked = tar::Archive::new(stdout).unpack(dest);
    let output = child
        .wait_with_output()
        .map_err(|e| ImagesError::io("git archive", e))?;
    if !output.status.success() {
        return Err(ImagesError::Git(format!(
            "archive {}: {}",
            commit.short(12),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    unpacked.map_err(|e| {
        ImagesError::io(
            format!(
                "cannot unpack commit {} into {}",
                commit.short(12),
                dest.display()
            ),
            e,
        )
    })?;
    Ok(selected)
}

/// Makes `dir`, an export of `commit`, a repository of that one commit: `.git` with the commit's
/// objects only (a depth-1 fetch from `repo`), HEAD detached at it and the index matching it, so
/// that `git rev-parse HEAD`, `git describe --always` and setuptools_scm work in a build that
/// bind-mounts `.git` (vLLM's version). Nothing of `repo` leaks in: no other commits, refs,
/// remotes, hooks or config. Edits a `pre_build_patch` made show as local changes.
pub fn add_git_dir(repo: &GitRepo, commit: &CommitId, dir: &Path) -> Result<(), ImagesError> {
    let scratch = GitRepo {
        root: dir.to_path_buf(),
    };
    let source = std::path::absolute(&repo.root)
        .map_err(|e| ImagesError::io(format!("cannot resolve {}", repo.root.display()), e))?;
    let source = source.to_string_lossy();
    let sha = commit.as_str();
    // An empty template: no sample hooks, no description. Protocol v2 (git's default since
    // 2.26) fetches any commit by its id, not only branch tips.
    scratch.run_ok(&["init", "-q", "--template="])?;
    scratch.run_ok(&[
        "-c",
        "protocol.version=2",
        "fetch",
        "-q",
        "--depth",
        "1",
        "--no-tags",
        &source,
        sha,
    ])?;
    scratch.run_ok(&["update-ref", "--no-deref", "HEAD", sha])?;
    scratch.run_ok(&["read-tree", sha])?;
    // It names the host's repository path: nothing the image needs.
    let _ = std::fs::remove_file(dir.join(".git").join("FETCH_HEAD"));
    let head = scratch.run_ok(&["rev-parse", "HEAD"])?;
    if head != sha {
        return Err(ImagesError::Git(format!(
            "the .git made for the build context is at {head}, not {sha}"
        )));
    }
    Ok(())
}

/// How a shell step on the exported source ended.
#[derive(Debug, PartialEq, Eq)]
pub enum StepResult {
    Ok,
    Failed(String),
    TimedOut,
}

/// Runs `script` with `sh -c` in `dir`, its output appended to `log`.
pub fn run_step(
    script: &str,
    dir: &Path,
    log: &Path,
    deadline: Instant,
    cancel: &CancelToken,
) -> Result<StepResult, ImagesError> {
    let mut child = GroupChild::spawn(script, dir, &[], log, None)?;
    match child.wait_until(deadline, cancel) {
        WaitResult::Exited(status) if status.success() => Ok(StepResult::Ok),
        WaitResult::Exited(status) => Ok(StepResult::Failed(crate::local::describe_exit(status))),
        WaitResult::TimedOut => {
            child.kill_group(Duration::from_secs(2));
            Ok(StepResult::TimedOut)
        }
        WaitResult::Cancelled => {
            child.kill_group(Duration::from_secs(2));
            Err(ImagesError::Cancelled)
        }
    }
}

/// A tar of `dir` (without a top-level `.git` unless `with_git`; every entry owned by root),
/// plus `extra` files `(name, contents)` at its root.
pub fn tar_dir(
    dir: &Path,
    extra: &[(String, Vec<u8>)],
    with_git: bool,
) -> Result<Vec<u8>, ImagesError> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    let io = |path: &Path, e| {
        ImagesError::io(
            format!("cannot add {} to the build context", path.display()),
            e,
        )
    };
    while let Some(current) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&current)
            .map_err(|e| io(&current, e))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        entries.sort();
        for path in entries {
            let rel = path.strip_prefix(dir).unwrap_or(&path);
            if rel == Path::new(".git") && !with_git {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).map_err(|e| io(&path, e))?;
            // Owned by root whoever exports: the files land in images as root's, like COPY.
            let mut header = tar::Header::new_gnu();
            header.set_metadata(&meta);
            header.set_uid(0);
            header.set_gid(0);
            if meta.is_dir() {
                header.set_size(0);
                header.set_cksum();
                builder
                    .append_data(&mut header, rel, std::io::empty())
                    .map_err(|e| io(&path, e))?;
                stack.push(path);
            } else if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).map_err(|e| io(&path, e))?;
                header.set_size(0);
                builder
                    .append_link(&mut header, rel, &target)
                    .map_err(|e| io(&path, e))?;
            } else {
                let file = std::fs::File::open(&path).map_err(|e| io(&path, e))?;
                header.set_cksum();
                builder
                    .append_data(&mut header, rel, file)
                    .map_err(|e| io(&path, e))?;
            }
        }
    }
    for (name, contents) in extra {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_cksum();
        builder
            .append_data(&mut header, name, contents.as_slice())
            .map_err(|e| ImagesError::io(format!("build context: {name}"), e))?;
    }
    builder
        .into_inner()
        .map_err(|e| ImagesError::io("build context", e))
}

/// A layer tar (paths from the image's root): the files `copied` (relative to `dir`) placed
/// under `target`, and whiteouts (`.wh.<name>`) for the `deleted` ones. Owned by root.
pub fn layer_tar(
    dir: &Path,
    target: &str,
    copied: &[String],
    deleted: &[String],
) -> Result<Vec<u8>, ImagesError> {
    let root = target.trim_matches('/');
    let in_image = |path: &str| {
        if root.is_empty() {
            path.to_string()
        } else {
            format!("{root}/{path}")
        }
    };
    let mut builder = tar::Builder::new(Vec::new());
    for path in copied {
        let from = dir.join(path);
        let meta = std::fs::symlink_metadata(&from)
            .map_err(|e| ImagesError::io(format!("cannot read {}", from.display()), e))?;
        let mut header = tar::Header::new_gnu();
        header.set_metadata(&meta);
        header.set_uid(0);
        header.set_gid(0);
        header.set_cksum();
        let file = std::fs::File::open(&from)
            .map_err(|e| ImagesError::io(format!("cannot read {}", from.display()), e))?;
        builder
            .append_data(&mut header, in_image(path), file)
            .map_err(|e| ImagesError::io("layer", e))?;
    }
    for path in deleted {
        let (parent, name) = path
            .rsplit_once('/')
            .map(|(p, n)| (format!("{p}/"), n))
            .unwrap_or((String::new(), path.as_str()));
        let mut header = tar::Header::new_gnu();
        header.set_size(0);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_cksum();
        builder
            .append_data(
                &mut header,
                in_image(&format!("{parent}.wh.{name}")),
                std::io::empty(),
            )
            .map_err(|e| ImagesError::io("layer", e))?;
    }
    builder
        .into_inner()
        .map_err(|e| ImagesError::io("layer", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    #[test]
    fn exports_the_commit_not_the_working_tree() {
        let tmp = tempfile::tempdir().unwrap();
        let repo_dir = tmp.path().join("repo");
        std::fs::create_dir_all(repo_dir.join("src")).unwrap();
        git(&repo_dir, &["init", "-q"]);
        std::fs::write(repo_dir.join("src/a.py"), "committed\n").unwrap();
        std::fs::write(repo_dir.join("b.txt"), "b\n").unwrap();
        git(&repo_dir, &["add", "-A"]);
        git(&repo_dir, &["commit", "-q", "-m", "one"]);
        let commit = CommitId::parse(&git(&repo_dir, &["rev-parse", "HEAD"])).unwrap();
        std::fs::write(repo_dir.join("src/a.py"), "dirty working tree\n").unwrap();
        std::fs::write(repo_dir.join("untracked.txt"), "x\n").unwrap();
        let repo = GitRepo::open(&repo_dir).unwrap();

        let out = tmp.path().join("out");
        export(&repo, &commit, &out, None).unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("src/a.py")).unwrap(),
            "committed\n"
        );
        assert!(!out.join("untracked.txt").exists());

        let some = tmp.path().join("some");
        let paths = vec!["src/a.py".to_string(), "new/file.py".to_string()];
        assert_eq!(
            export(&repo, &commit, &some, Some(&paths)).unwrap(),
            vec!["src/a.py".to_string()]
        );
        assert!(some.join("src/a.py").exists() && !some.join("b.txt").exists());

        let tar = tar_dir(
            &out,
            &[("extra/Dockerfile".into(), b"FROM x\n".to_vec())],
            false,
        )
        .unwrap();
        let mut names: Vec<String> = tar::Archive::new(tar.as_slice())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        names.sort();
        assert_eq!(names, vec!["b.txt", "extra/Dockerfile", "src", "src/a.py"]);
    }

    #[test]
    fn a_git_dir_of_the_one_commit() {
        let tmp = tempfile::tempdir().unwrap();
        let repo_dir = tmp.path().join("repo");
        std::fs::create_dir_all(&repo_dir).unwrap();
        git(&repo_dir, &["init", "-q"]);
        std::fs::write(repo_dir.join("a.py"), "one\n").unwrap();
        git(&repo_dir, &["add", "-A"]);
        git(&repo_dir, &["commit", "-q", "-m", "one"]);
        let first = git(&repo_dir, &["rev-parse", "HEAD"]);
        git(&repo_dir, &["tag", "v0.1"]);
        std::fs::write(repo_dir.join("a.py"), "two\n").unwrap();
        git(&repo_dir, &["commit", "-q", "-am", "two"]);
        let repo = GitRepo::open(&repo_dir).unwrap();
        // The first commit, which is no branch's tip.
        let commit = CommitId::parse(&first).unwrap();
        let out = tmp.path().join("out");
        export(&repo, &commit, &out, None).unwrap();
        add_git_dir(&repo, &commit, &out).unwrap();
        assert_eq!(git(&out, &["rev-parse", "HEAD"]), first);
        assert_eq!(
            git(&out, &["describe", "--always", "--dirty"]),
            &first[..7],
            "clean, detached, no tags"
        );
        assert_eq!(git(&out, &["rev-list", "--all", "--count"]), "1");
        assert!(git(&out, &["remote"]).is_empty());
        assert!(!out.join(".git/FETCH_HEAD").exists());
        assert_eq!(
            std::fs::read_to_string(out.join(".git/HEAD"))
                .unwrap()
                .trim(),
            first
        );
        let names = |with_git| -> Vec<String> {
            tar::Archive::new(tar_dir(&out, &[], with_git).unwrap().as_slice())
                .entries()
                .unwrap()
                .map(|e| e.unwrap().path().unwrap().display().to_string())
                .collect()
        };
        assert!(names(true).iter().any(|n| n == ".git/HEAD"));
        assert!(!names(false).iter().any(|n| n.starts_with(".git")));
    }

    #[test]
    fn layers_place_files_and_whiteouts_under_the_target() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("pkg")).unwrap();
        std::fs::write(tmp.path().join("pkg/a.py"), "a\n").unwrap();
        let tar = layer_tar(
            tmp.path(),
            "/workspace/src/",
            &["pkg/a.py".into()],
            &["pkg/old.py".into(), "top.txt".into()],
        )
        .unwrap();
        let names: Vec<(String, u64, u32)> = tar::Archive::new(tar.as_slice())
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().uid().unwrap(),
                    e.header().mode().unwrap() & 0o777,
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("workspace/src/pkg/a.py".to_string(), 0, 0o644),
                ("workspace/src/pkg/.wh.old.py".to_string(), 0, 0o644),
                ("workspace/src/.wh.top.txt".to_string(), 0, 0o644)
            ]
        );
    }

    #[test]
    fn steps_report_failure_and_timeout() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("log");
        let cancel = CancelToken::new();
        let soon = Instant::now() + Duration::from_secs(10);
        assert_eq!(
            run_step("echo hi > f", tmp.path(), &log, soon, &cancel).unwrap(),
            StepResult::Ok
        );
        assert!(tmp.path().join("f").exists());
        assert!(matches!(
            run_step("exit 3", tmp.path(), &log, soon, &cancel).unwrap(),
            StepResult::Failed(_)
        ));
        let now = Instant::now() + Duration::from_millis(200);
        assert_eq!(
            run_step("sleep 5", tmp.path(), &log, now, &cancel).unwrap(),
            StepResult::TimedOut
        );
    }
}
