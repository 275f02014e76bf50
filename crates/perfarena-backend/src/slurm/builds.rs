//! Image builds as Slurm jobs (`perfarena images build --backend slurm`): a build plan (a program
//! and its arguments, e.g. `docker build …`) becomes a batch script; several builds go as one
//! job array capped at `slurm.array_limit` concurrent tasks (`--array=0-N%cap`). Each array task
//! writes `build-<index>.log` and `build-<index>.rc` in a shared directory, read back when the
//! array ends, together with Slurm's state of each task (time limit, out of memory, cancelled).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use perfarena_core::events::{Event, EventSink};
use perfarena_core::suite::SlurmSection;

use crate::slurm::cli::{QueueState, SlurmCli};
use crate::slurm::script::{BuildCommand, JobHeader, build_script};
use crate::slurm::status::{is_terminal, parse_exit_code};
use crate::{BackendError, CancelToken};

pub use crate::slurm::script::BuildCommand as BuildPlan;

/// A submitted build job (or job array).
#[derive(Debug, Clone)]
pub struct BuildSubmission {
    pub job_id: String,
    /// The batch script, kept for the user to read and resubmit.
    pub script: PathBuf,
    /// Where each build's log and exit code go.
    pub dir: PathBuf,
    pub builds: Vec<BuildCommand>,
}

/// How one build job ended.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildJobOutcome {
    pub name: String,
    pub index: usize,
    /// Whether the build command exited 0.
    pub ok: bool,
    /// Slurm's final state of the task (`COMPLETED`, `FAILED`, `TIMEOUT`, `OUT_OF_MEMORY`…), or
    /// `UNKNOWN` when Slurm no longer knows the job.
    pub state: String,
    pub exit_code: Option<i32>,
    pub log: PathBuf,
    pub message: String,
}

/// Writes the script of `builds` into `dir` and submits it: one job, or a job array of at most
/// `slurm.array_limit` concurrent tasks. `timeout` is each build's time limit (`build.timeout_s`)
/// unless `slurm.time_limit` is set.
pub fn submit_builds(
    settings: &SlurmSection,
    dir: &Path,
    builds: &[BuildCommand],
    timeout: Duration,
) -> Result<BuildSubmission, BackendError> {
    if builds.is_empty() {
        return Err(BackendError::Other("no builds to submit".into()));
    }
    crate::create_dir(dir)?;
    let array = builds.len() > 1;
    let output = if array {
        dir.join("slurm-%A_%a.out")
    } else {
        dir.join("slurm-%j.out")
    };
    let mut header = JobHeader::from_settings(settings, "pa-build".into(), output, timeout);
    if array {
        header.array = Some(format!(
            "0-{}%{}",
            builds.len() - 1,
            settings.array_limit.max(1)
        ));
    }
    let script = dir.join("build.sh");
    let text = build_script(&header, dir, builds, &settings.prologue);
    fs::write(&script, text)
        .map_err(|e| BackendError::io(format!("cannot write {}", script.display()), e))?;
    let comment = format!(
        "--comment=perfarena.build={};perfarena.owner={}:{}",
        builds.len(),
        super::hostname(),
        std::process::id()
    );
    match SlurmCli.submit(&script, &[comment])? {
        Ok(job_id) => Ok(BuildSubmission {
            job_id,
            script,
            dir: dir.to_path_buf(),
            builds: builds.to_vec(),
        }),
        Err(message) => Err(BackendError::Other(format!(
            "sbatch refused the build job ({}): {message}",
            script.display()
        ))),
    }
}

/// Waits for a build submission to end and reports each build. On cancellation the job is
/// cancelled and `Err(Cancelled)` returned.
pub fn wait_builds(
    submission: &BuildSubmission,
    poll: Duration,
    cancel: &CancelToken,
    events: &dyn EventSink,
) -> Result<Vec<BuildJobOutcome>, BackendError> {
    let cli = SlurmCli;
    let mut reported: BTreeMap<usize, bool> = BTreeMap::new();
    loop {
        if cancel.is_cancelled() {
            cli.cancel(std::slice::from_ref(&submission.job_id))?;
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline && still_queued(&cli, &submission.job_id) {
                std::thread::sleep(Duration::from_millis(100));
            }
            return Err(BackendError::Cancelled);
        }
        for (idx, build) in submission.builds.iter().enumerate() {
            if !reported.contains_key(&idx)
                && submission.dir.join(format!("build-{idx}.rc")).exists()
            {
                reported.insert(idx, true);
                events.emit(Event::BuildStep {
                    image: build.name.clone(),
                    step: format!("slurm job {} task {idx} finished", submission.job_id),
                });
            }
        }
        if !still_queued(&cli, &submission.job_id) {
            break;
        }
        std::thread::sleep(poll);
    }
    collect(&cli, submission)
}

/// Submits and waits.
pub fn run_builds(
    settings: &SlurmSection,
    dir: &Path,
    builds: &[BuildCommand],
    timeout: Duration,
    cancel: &CancelToken,
    events: &dyn EventSink,
) -> Result<Vec<BuildJobOutcome>, BackendError> {
    let submission = submit_builds(settings, dir, builds, timeout)?;
    events.emit(Event::Message {
        text: format!(
            "submitted {} build(s) as slurm job {} ({})",
            builds.len(),
            submission.job_id,
            submission.script.display()
        ),
    });
    wait_builds(
        &submission,
        Duration::from_millis(settings.poll_interval_ms.max(1)),
        cancel,
        events,
    )
}

/// Whether any task of the job is pending, running or completing.
fn still_queued(cli: &SlurmCli, job_id: &str) -> bool {
    match cli.array_states(job_id) {
        Ok(states) if !states.is_empty() => states.values().any(|s| !is_terminal(s)),
        _ => match cli.queue_state(job_id) {
            Ok(QueueState::Listed { state, .. }) => !is_terminal(&state),
            Ok(QueueState::Unknown) => false,
            // The controller is unreachable: keep waiting.
            Err(_) => true,
        },
    }
}

fn collect(
    cli: &SlurmCli,
    submission: &BuildSubmission,
) -> Result<Vec<BuildJobOutcome>, BackendError> {
    let array = submission.builds.len() > 1;
    // Slurm's view of each task: scontrol while it remembers the job, else the jobcomp file.
    let mut states: BTreeMap<usize, (String, Option<i32>)> = BTreeMap::new();
    for record in cli.show_job(&submission.job_id)? {
        let index = if array {
            record
                .get("ArrayTaskId")
                .and_then(|i| i.parse::<usize>().ok())
        } else {
            Some(0)
        };
        if let (Some(index), Some(state)) = (index, record.get("JobState")) {
            let (code, _) = record
                .get("ExitCode")
                .map(|e| parse_exit_code(e))
                .unwrap_or((None, None));
            states.insert(index, (state.clone(), code));
        }
    }
    if states.is_empty()
        && !array
        && let Ok(Some(state)) = cli.final_state(&submission.job_id)
    {
        states.insert(0, (state.state, state.exit_code));
    }
    let mut outcomes = Vec::new();
    for (index, build) in submission.builds.iter().enumerate() {
        let log = submission.dir.join(format!("build-{index}.log"));
        let rc: Option<i32> = fs::read_to_string(submission.dir.join(format!("build-{index}.rc")))
            .ok()
            .and_then(|t| t.trim().parse().ok());
        let (state, slurm_code) = states
            .get(&index)
            .cloned()
            .unwrap_or_else(|| ("UNKNOWN".into(), None));
        let ok = rc == Some(0) && state != "TIMEOUT" && state != "OUT_OF_MEMORY";
        let exit_code = rc.or(slurm_code);
        let message = match (ok, state.as_str(), rc) {
            (true, _, _) => String::new(),
            (_, "TIMEOUT", _) => format!(
                "build job hit its slurm time limit (task {index} of job {})",
                submission.job_id
            ),
            (_, "OUT_OF_MEMORY", _) => {
                format!(
                    "build job ran out of memory (oom-kill, task {index} of job {}): lower max_jobs or raise slurm.mem",
                    submission.job_id
                )
            }
            (_, "CANCELLED", None) => format!(
                "build job was cancelled (task {index} of job {})",
                submission.job_id
            ),
            (_, _, Some(code)) => format!(
                "build exited with code {code}: {}",
                crate::process::tail_lines(&log, 1)
            ),
            (_, state, None) => format!(
                "build job ended {state} without an exit code; see {}",
                submission.dir.display()
            ),
        };
        outcomes.push(BuildJobOutcome {
            name: build.name.clone(),
            index,
            ok,
            state,
            exit_code,
            log,
            message,
        });
    }
    Ok(outcomes)
}
