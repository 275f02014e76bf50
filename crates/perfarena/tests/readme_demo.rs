//! The README as executable documentation, and `perfarena demo` as a newcomer meets it: the
//! README's first command runs literally from the root of a fresh clone; the demo runs from any
//! directory and never writes into or over the user's files.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{stderr, stdout};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// The commands of the README's "Two commands on a fresh machine" section, in order: the first
/// line of each fenced block there.
fn readme_setup_commands(readme: &str) -> Vec<String> {
    let section = readme
        .split("\n## ")
        .find(|section| section.starts_with("Two commands"))
        .expect("README has a 'Two commands on a fresh machine' section");
    let mut commands = Vec::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        if line.trim_start().starts_with("```")
            && let Some(command) = lines.next()
        {
            commands.push(command.trim().to_string());
            for rest in lines.by_ref() {
                if rest.trim_start().starts_with("```") {
                    break;
                }
            }
        }
    }
    commands
}

/// Runs `child` to completion, failing the test after `limit`.
fn wait_output(mut command: Command, limit: Duration) -> Output {
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("command starts");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(output) => output.expect("command output"),
        Err(_) => {
            // The child is ours (its pid is held by the waiting thread): stop it.
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("command did not finish within {limit:?}");
        }
    }
}

/// The path printed after `report: ` by the demo.
fn printed_report(text: &str) -> PathBuf {
    let line = text
        .lines()
        .find_map(|line| line.strip_prefix("report: "))
        .unwrap_or_else(|| panic!("the demo prints where its report is:\n{text}"));
    PathBuf::from(line.trim())
}

/// The demo's report shows every variant of the toy example.
fn assert_report_shows_the_variants(report: &Path) {
    let md = std::fs::read_to_string(report)
        .unwrap_or_else(|err| panic!("report {} exists: {err}", report.display()));
    for variant in [
        "baseline",
        "human",
        "candidate:fast",
        "candidate:neutral",
        "candidate:crash",
    ] {
        assert!(md.contains(variant), "report lacks {variant}:\n{md}");
    }
}

/// Every file below `dir` with its bytes (symlinks as their targets), for before/after checks.
fn snapshot_tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).expect("readable dir") {
            let path = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("metadata");
            let rel = path.strip_prefix(dir).expect("below dir").to_path_buf();
            if meta.is_dir() {
                out.insert(rel, b"<dir>".to_vec());
                stack.push(path);
            } else if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).expect("link");
                out.insert(rel, target.to_string_lossy().as_bytes().to_vec());
            } else {
                out.insert(rel, std::fs::read(&path).expect("file"));
            }
        }
    }
    out
}

#[test]
fn the_readme_names_the_two_setup_commands_and_ci_runs_the_second() {
    let root = workspace_root();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let commands = readme_setup_commands(&readme);
    assert_eq!(commands.len(), 2, "two commands: {commands:?}");
    assert_eq!(commands[1], "bash .ci/run", "the README's test command");
    let ci = std::fs::read_to_string(root.join(".ci/run")).expect(".ci/run");
    assert!(
        ci.lines()
            .any(|line| line.trim_start().starts_with("cargo test --workspace")),
        ".ci/run runs the workspace's tests"
    );
}

#[test]
fn the_readme_first_command_runs_literally_from_a_fresh_clone() {
    let root = workspace_root();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let first = readme_setup_commands(&readme)
        .into_iter()
        .next()
        .expect("the README's first command");
    let tmp = tempfile::tempdir().expect("tempdir");
    let clone = tmp.path().join("clone");
    // A clone, not a copy: only what is committed reaches a newcomer.
    let status = Command::new("git")
        .args(["clone", "--quiet", "--no-hardlinks"])
        .arg(&root)
        .arg(&clone)
        .status()
        .expect("git clone runs");
    assert!(status.success(), "git clone of the working tree");
    let demo_tmp = tmp.path().join("tmp");
    std::fs::create_dir(&demo_tmp).expect("tmp dir");
    let mut command = Command::new("sh");
    command.arg("-c").arg(&first).current_dir(&clone);
    // What cargo sets for this test binary is not what a newcomer's shell has.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("CARGO_") && key != "CARGO_HOME" {
            command.env_remove(&key);
        }
    }
    // Two deviations from a newcomer's shell, neither changes what runs: the build goes to this
    // workspace's target directory (its compiled dependencies are reused instead of rebuilt in
    // every clone), and the demo's fresh directory goes under this test's temporary directory.
    command
        .env("CARGO_TARGET_DIR", root.join("target"))
        .env("TMPDIR", &demo_tmp);
    let started = Instant::now();
    let out = wait_output(command, Duration::from_secs(45 * 60));
    assert!(
        out.status.success(),
        "`{first}` failed in a fresh clone:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    let report = printed_report(&text);
    assert!(
        report.starts_with(&demo_tmp),
        "the demo writes into a directory of its own, not the clone: {}",
        report.display()
    );
    assert_report_shows_the_variants(&report);
    let status = Command::new("git")
        .args(["status", "--porcelain", "--ignored"])
        .current_dir(&clone)
        .output()
        .expect("git status");
    assert!(
        stdout(&status).trim().is_empty(),
        "the README's first command leaves the clone as it was:\n{}",
        stdout(&status)
    );
    eprintln!("`{first}` took {:.0?} in a fresh clone", started.elapsed());
}

/// Runs `perfarena demo` with `args` from `cwd`, its fresh directories under `tmpdir`.
fn demo(cwd: &Path, tmpdir: &Path, args: &[&str]) -> Output {
    common::bin()
        .args(args)
        .current_dir(cwd)
        .env("TMPDIR", tmpdir)
        .output()
        .expect("perfarena runs")
}

#[test]
fn demo_from_a_users_project_runs_and_leaves_it_untouched() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // A user's perfarena project, with a suite, a store and files of their own.
    let (_toy_tmp, project) = common::toy_project();
    // Without the demo's marker file it is the user's own project, not a demo to reuse.
    std::fs::remove_file(project.join(".perfarena-demo")).expect("the demo's marker");
    std::fs::write(project.join("notes.txt"), "mine\n").expect("write");
    let before = snapshot_tree(&project);
    let demo_tmp = tmp.path().join("tmp");
    std::fs::create_dir(&demo_tmp).expect("tmp dir");

    let out = demo(&project, &demo_tmp, &["demo", "--repeats", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("demo project: "), "says where: {text}");
    assert!(text.contains("(new)"), "says it made a new one: {text}");
    let report = printed_report(&text);
    assert!(report.starts_with(&demo_tmp), "{}", report.display());
    assert_report_shows_the_variants(&report);
    assert_eq!(
        before,
        snapshot_tree(&project),
        "the user's project changed"
    );

    // Pointed at the user's project, the demo refuses and writes nothing.
    let out = demo(
        tmp.path(),
        &demo_tmp,
        &["-C", project.to_str().expect("utf-8"), "demo", "--no-run"],
    );
    assert!(!out.status.success(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("is not empty and is not a demo project") && err.contains("-C"),
        "a clear error that says what to do: {err}"
    );
    assert_eq!(
        before,
        snapshot_tree(&project),
        "the user's project changed"
    );
}

#[test]
fn demo_from_a_non_empty_directory_makes_its_own() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cwd = tmp.path().join("work");
    std::fs::create_dir(&cwd).expect("dir");
    std::fs::write(cwd.join("data.csv"), "a,b\n1,2\n").expect("write");
    let before = snapshot_tree(&cwd);
    let demo_tmp = tmp.path().join("tmp");
    std::fs::create_dir(&demo_tmp).expect("tmp dir");
    let out = demo(&cwd, &demo_tmp, &["demo", "--no-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let made: Vec<_> = std::fs::read_dir(&demo_tmp)
        .expect("tmp")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(made.len(), 1, "one fresh directory: {made:?}");
    assert!(
        text.contains(&format!("demo project: {} (new)", made[0].display())),
        "{text}"
    );
    assert!(made[0].join("perfarena.toml").is_file());
    assert_eq!(before, snapshot_tree(&cwd), "the current directory changed");
    // A second demo makes another fresh directory.
    let out = demo(&cwd, &demo_tmp, &["demo", "--no-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_dir(&demo_tmp).expect("tmp").count(), 2);
}

#[test]
fn demo_with_a_directory_creates_reuses_or_refuses_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("my-demo");
    let dir_arg = dir.to_str().expect("utf-8");
    let out = demo(tmp.path(), tmp.path(), &["-C", dir_arg, "demo", "--no-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&format!("demo project: {dir_arg} (new)")));
    // The same directory again: recognised as the demo's own and reused.
    let out = demo(
        tmp.path(),
        tmp.path(),
        &["-C", dir_arg, "demo", "--repeats", "1"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("(reused"), "{text}");
    assert_report_shows_the_variants(&printed_report(&text));

    // A file where the directory should be, and a path below a file: clear errors.
    let file = tmp.path().join("plain-file");
    std::fs::write(&file, "x").expect("write");
    for bad in [file.clone(), file.join("below")] {
        let out = demo(
            tmp.path(),
            tmp.path(),
            &["-C", bad.to_str().expect("utf-8"), "demo", "--no-run"],
        );
        assert!(!out.status.success(), "{}", stdout(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&bad.display().to_string()) && err.contains("-C"),
            "names the directory and what to do: {err}"
        );
    }
    assert_eq!(std::fs::read(&file).expect("file"), b"x");

    // No writable temporary directory: the error says to set TMPDIR.
    let out = demo(tmp.path(), &file.join("nope"), &["demo", "--no-run"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("TMPDIR"), "{}", stderr(&out));
}
