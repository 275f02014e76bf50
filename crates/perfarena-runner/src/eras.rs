//! The facts `[[bench.eras]]` are chosen from, asked of git: whether a path exists at a
//! revision (`git cat-file -e REV:PATH`) and a task's date (`pr_date`, else the commit date).
//! Used by the runner (the commands of a task) and by `images build` (the Dockerfile of a commit).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use perfarena_backend::git::GitRepo;
use perfarena_core::eras::{self, BenchCommands, Facts};
use perfarena_core::{CommitId, Suite, Task};

/// Whether `path` exists at `rev` (false without a repository, or for an unknown revision).
fn exists_at(repo: Option<&GitRepo>, rev: &str, path: &str) -> bool {
    repo.and_then(|repo| repo.run(&["cat-file", "-e", &format!("{rev}:{path}")]).ok())
        .is_some_and(|out| out.status.success())
}

/// The task's date, asked of git only when some era selects by date.
fn task_date(suite: &Suite, repo: Option<&GitRepo>, task: &Task) -> Option<String> {
    if !suite
        .bench
        .eras
        .iter()
        .any(|e| e.since.is_some() || e.until.is_some())
    {
        return None;
    }
    task.pr_date
        .clone()
        .filter(|d| eras::day(d).is_some())
        .or_else(|| {
            repo.and_then(|repo| {
                repo.run_ok(&["show", "-s", "--format=%cI", task.commit.as_str()])
                    .ok()
            })
        })
}

/// The commands of `task` after its era, chosen at the task's parent (so that every variant of a
/// task runs the same commands).
pub fn commands(suite: &Suite, repo: Option<&GitRepo>, task: &Task) -> BenchCommands {
    let rev = task.parent.as_ref().unwrap_or(&task.commit).to_string();
    let exists = |path: &str| exists_at(repo, &rev, path);
    let facts = Facts {
        exists: &exists,
        date: task_date(suite, repo, task),
        kind: task.bench_kind(),
    };
    suite.bench.commands(&facts)
}

/// What the eras set for the images of the tasks (built from their commits and parents): the
/// Dockerfile where it is not `build.dockerfile`, and the eras' build arguments.
#[derive(Debug, Default)]
pub struct EraBuilds {
    pub dockerfiles: BTreeMap<CommitId, String>,
    pub args: BTreeMap<CommitId, BTreeMap<String, String>>,
}

pub fn builds(suite: &Suite, repo: &GitRepo, tasks: &[Task]) -> EraBuilds {
    let mut out = EraBuilds::default();
    let eras = &suite.bench.eras;
    if !eras
        .iter()
        .any(|e| e.dockerfile.is_some() || !e.build_args.is_empty())
    {
        return out;
    }
    for task in tasks {
        let date = task_date(suite, Some(repo), task);
        for commit in std::iter::once(&task.commit).chain(task.parent.as_ref()) {
            let exists = |path: &str| exists_at(Some(repo), commit.as_str(), path);
            let facts = Facts {
                exists: &exists,
                date: date.clone(),
                kind: task.bench_kind(),
            };
            let dockerfile = eras::dockerfile(eras, &suite.build.dockerfile, &facts);
            if dockerfile != suite.build.dockerfile {
                out.dockerfiles.insert(commit.clone(), dockerfile);
            }
            let args = eras::build_args(eras, &facts, commit.as_str());
            if !args.is_empty() {
                out.args.insert(commit.clone(), args);
            }
        }
    }
    out
}

/// For `images build --dry-run`: the benchmark commands each task's images will run, by era,
/// with the task's values filled in (`{port}` and the per-attempt ones stay placeholders).
pub fn describe_commands(suite: &Suite, repo: Option<&GitRepo>, tasks: &[Task]) -> String {
    let mut out = String::from("benchmark commands per task (era chosen at the parent commit):\n");
    for task in tasks {
        let chosen = commands(suite, repo, task);
        let era = match (&chosen.era, &chosen.reason) {
            (Some(name), Some(reason)) => format!("era {name}: {reason}"),
            _ => "no era: the plain [bench] commands".to_string(),
        };
        let _ = writeln!(
            out,
            "  task {} ({}, {era})",
            task.short_id(),
            task.bench_kind().as_str()
        );
        let mut vars: BTreeMap<&str, String> = perfarena_core::template::COMMAND_VARS
            .iter()
            .map(|name| (*name, format!("{{{name}}}")))
            .collect();
        crate::vars::insert_task_vars(&mut vars, suite, task);
        let fill = |template: &str| {
            perfarena_core::template::expand(template, &vars)
                .unwrap_or_else(|_| template.to_string())
        };
        if !chosen.setup.trim().is_empty() {
            let _ = writeln!(out, "     setup:  {}", fill(&chosen.setup));
        }
        if chosen.server.trim().is_empty() {
            let _ = writeln!(out, "     server: (none: the client runs alone)");
        } else {
            let _ = writeln!(out, "     server: {}", fill(&chosen.server));
            let _ = writeln!(
                out,
                "     ready:  {} {} within {} s",
                readiness_kind(suite),
                fill(&chosen.readiness_url),
                suite.bench.readiness.timeout_s
            );
        }
        let _ = writeln!(out, "     client: {}", fill(&chosen.client));
    }
    out
}

fn readiness_kind(suite: &Suite) -> &'static str {
    match suite.bench.readiness.kind {
        perfarena_core::suite::ReadinessKind::Http => "http",
        perfarena_core::suite::ReadinessKind::Tcp => "tcp",
        perfarena_core::suite::ReadinessKind::None => "none",
    }
}
