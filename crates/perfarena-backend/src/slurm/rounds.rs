//! `slurm.job_unit = "round"`: one job per task and interleaved round, running every variant's
//! attempt of that round one after the other on one node (so that they share the node and its
//! conditions), and the rounds of many tasks submitted together as one job array capped at
//! `slurm.array_limit` running tasks (`--array=0-N%cap`).
//!
//! Each attempt keeps its own script and status file (as with one job per attempt), so the
//! verdict of every attempt is read the same way; the round script only sequences them. Job ids
//! (`<id>` or `<array id>_<index>`) go to the ledger per attempt, so `--resume` re-attaches to a
//! round job that is still queued or running, and a round whose job vanished without results is
//! submitted once more.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use perfarena_core::events::{Event, EventSink};

use super::cli::QueueState;
use super::script::{self, JobHeader};
use super::status::{FinalState, StatusFile, is_terminal};
use super::{JobKey, SlurmBackend, copy_if_present, write_script};
use crate::{AttemptOutcome, AttemptSpec, BackendError, RoundOutcomes, RoundSpec};

/// One round on its way through Slurm.
struct RoundJob<'r, 'p> {
    round: &'r RoundSpec<'p>,
    /// `<log_dir>/<run>/<task>/round-N`: the round script and (single jobs) slurm's output.
    dir: PathBuf,
    /// `<id>` or `<array id>_<index>`.
    job_id: Option<String>,
    rerun: bool,
    results: Vec<Option<Result<AttemptOutcome, BackendError>>>,
    ready_seen: Vec<bool>,
}

impl RoundJob<'_, '_> {
    fn pending(&self) -> Vec<usize> {
        (0..self.results.len())
            .filter(|i| self.results[*i].is_none())
            .collect()
    }
}

fn key_of(spec: &AttemptSpec) -> JobKey {
    JobKey {
        run_id: spec.run_id.0.clone(),
        task: spec.task.clone(),
        variant: spec.variant.clone(),
        round_idx: spec.round_idx,
    }
}

/// `("123", Some(4))` for an array task `123_4`.
fn split_job_id(job_id: &str) -> (&str, Option<u32>) {
    match job_id.split_once('_') {
        Some((base, index)) => (base, index.parse().ok()),
        None => (job_id, None),
    }
}

impl SlurmBackend {
    pub(super) fn run_rounds_as_jobs(
        &self,
        rounds: &[RoundSpec<'_>],
        events: &dyn EventSink,
    ) -> Result<RoundOutcomes, BackendError> {
        let started = Instant::now();
        let mut jobs = Vec::with_capacity(rounds.len());
        for round in rounds {
            let Some((first, _)) = round.attempts.first() else {
                jobs.push(RoundJob {
                    round,
                    dir: PathBuf::new(),
                    job_id: None,
                    rerun: false,
                    results: Vec::new(),
                    ready_seen: Vec::new(),
                });
                continue;
            };
            let dir = self
                .options
                .log_root
                .join(&first.run_id.0)
                .join(round.task.short(12))
                .join(format!("round-{}", round.round_idx));
            let mut job = RoundJob {
                round,
                dir,
                job_id: None,
                rerun: false,
                results: round.attempts.iter().map(|_| None).collect(),
                ready_seen: vec![false; round.attempts.len()],
            };
            self.reattach(&mut job, events)?;
            for (spec, _) in &round.attempts {
                crate::create_dir(&spec.attempt_dir)?;
                if job.job_id.is_some() {
                    // The job runs these very scripts: rewriting them under a running shell
                    // would change what it reads next; keep copies instead. (Rounds submitted
                    // now get theirs written at submission.)
                    let job_root = self.job_root(spec);
                    copy_if_present(&job_root.join("job.sh"), &spec.attempt_dir.join("job.sh"))?;
                    copy_if_present(
                        &job.dir.join("round.sh"),
                        &spec.attempt_dir.join("round.sh"),
                    )?;
                }
            }
            jobs.push(job);
        }
        let fresh: Vec<usize> = (0..jobs.len())
            .filter(|i| jobs[*i].job_id.is_none() && !jobs[*i].pending().is_empty())
            .collect();
        self.submit_rounds(&mut jobs, &fresh, events)?;
        self.track_rounds(&mut jobs, events, started)?;
        Ok(jobs
            .into_iter()
            .map(|job| {
                job.results
                    .into_iter()
                    .map(|r| {
                        r.unwrap_or_else(|| {
                            Err(BackendError::Other("the round job left no result".into()))
                        })
                    })
                    .collect()
            })
            .collect())
    }

    /// Re-attaches to the job an earlier process of this run submitted for this round, when
    /// every attempt of the round names the same one.
    fn reattach(
        &self,
        job: &mut RoundJob<'_, '_>,
        events: &dyn EventSink,
    ) -> Result<(), BackendError> {
        let mut job_id: Option<String> = None;
        let mut rerun = false;
        for (spec, _) in &job.round.attempts {
            let Some(entry) = self.ledger.lookup(&key_of(spec))? else {
                return Ok(());
            };
            let usable = entry.state == "submitted"
                || entry.state == "rerun"
                || entry.state.starts_with("ended:");
            if !usable || job_id.as_ref().is_some_and(|id| *id != entry.job_id) {
                return Ok(());
            }
            rerun |= entry.state == "rerun";
            job_id = Some(entry.job_id);
        }
        let Some(job_id) = job_id else {
            return Ok(());
        };
        events.emit(Event::Message {
            text: format!(
                "  {} round {}: re-attached to slurm job {job_id}",
                job.round.task.short(12),
                job.round.round_idx
            ),
        });
        let (base, index) = split_job_id(&job_id);
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(job_id.clone(), self.run_of(job));
        let _ = self
            .cli
            .set_comment(base, &self.round_comment(job, index.is_some()));
        job.job_id = Some(job_id);
        job.rerun = rerun;
        Ok(())
    }

    fn run_of(&self, job: &RoundJob<'_, '_>) -> String {
        job.round
            .attempts
            .first()
            .map(|(s, _)| s.run_id.0.clone())
            .unwrap_or_default()
    }

    fn arrays_dir(&self, job: &RoundJob<'_, '_>) -> PathBuf {
        self.options.log_root.join(self.run_of(job)).join("arrays")
    }

    /// Slurm's output of a round's job: next to the round script for a job of its own
    /// (`--output=…/slurm-%j.out`), in the arrays directory for an array task (`slurm-%A_%a.out`).
    fn out_path(&self, job: &RoundJob<'_, '_>, job_id: &str) -> PathBuf {
        let dir = match split_job_id(job_id) {
            (_, Some(_)) => self.arrays_dir(job),
            (_, None) => job.dir.clone(),
        };
        dir.join(format!("slurm-{job_id}.out"))
    }

    fn round_comment(&self, job: &RoundJob<'_, '_>, array: bool) -> String {
        format!(
            "perfarena.run={};perfarena.task={};perfarena.variant=round-{};perfarena.project={};perfarena.owner={}",
            self.run_of(job),
            if array {
                "array".to_string()
            } else {
                job.round.task.short(12).to_string()
            },
            job.round.round_idx,
            self.project,
            self.owner
        )
    }

    /// The wall-clock a round needs: each attempt's limit plus its teardown, one after the other.
    fn round_time(&self, job: &RoundJob<'_, '_>, pending: &[usize]) -> Duration {
        pending
            .iter()
            .map(|i| {
                let spec = &job.round.attempts[*i].0;
                spec.timeout + spec.kill_grace * 2 + Duration::from_secs(60)
            })
            .sum()
    }

    /// Writes the round script of `job`'s attempts that have no result yet; returns its path.
    fn write_round_script(
        &self,
        job: &RoundJob<'_, '_>,
    ) -> Result<(PathBuf, JobHeader), BackendError> {
        let pending = job.pending();
        // Each attempt's own script, next to its status file; no job runs it now (a fresh
        // round, or one whose job vanished).
        for i in &pending {
            let (spec, prepared) = &job.round.attempts[*i];
            let job_root = self.job_root(spec);
            let text = self.attempt_script(spec, prepared, &job_root)?.render();
            write_script(&spec.attempt_dir.join("job.sh"), &text)?;
            write_script(&job_root.join("job.sh"), &text)?;
        }
        let header = JobHeader::from_settings(
            self.settings(),
            format!("pa-{}-r{}", job.round.task.short(12), job.round.round_idx),
            job.dir.join("slurm-%j.out"),
            self.round_time(job, &pending),
        );
        let attempts: Vec<(String, PathBuf)> = pending
            .iter()
            .map(|i| {
                let spec = &job.round.attempts[*i].0;
                (spec.variant.to_string(), self.job_root(spec).join("job.sh"))
            })
            .collect();
        let about = vec![
            format!(
                "perfarena round: run {}, task {}, round {}",
                self.run_of(job),
                job.round.task,
                job.round.round_idx
            ),
            "Written by perfarena before submission; resubmit by hand with `sbatch <this file>`."
                .into(),
            "Each attempt below is a complete job script of its own; they run in this order:"
                .into(),
        ];
        let text = script::round_script(&header, &about, &attempts);
        let path = job.dir.join("round.sh");
        write_script(&path, &text)?;
        for i in &pending {
            write_script(
                &job.round.attempts[*i].0.attempt_dir.join("round.sh"),
                &text,
            )?;
        }
        Ok((path, header))
    }

    /// Submits the rounds `which`: one job, or one job array for several. Rounds sbatch refuses
    /// get an infra error for each of their attempts.
    fn submit_rounds(
        &self,
        jobs: &mut [RoundJob<'_, '_>],
        which: &[usize],
        events: &dyn EventSink,
    ) -> Result<(), BackendError> {
        if which.is_empty() {
            return Ok(());
        }
        let mut scripts = Vec::with_capacity(which.len());
        for &j in which {
            fs::create_dir_all(&jobs[j].dir).map_err(|e| {
                BackendError::io(
                    format!("cannot create {} (slurm.log_dir)", jobs[j].dir.display()),
                    e,
                )
            })?;
            scripts.push(self.write_round_script(&jobs[j])?);
        }
        let submitted = if let [j] = which {
            let j = *j;
            let mut extra = vec![format!("--comment={}", self.round_comment(&jobs[j], false))];
            if self.settings().same_node
                && let Some(node) = self
                    .nodes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&jobs[j].round.task)
            {
                extra.push(format!("--nodelist={node}"));
            }
            let submitted = self
                .cli
                .submit_with_env(&scripts[0].0, &extra, &self.secret_env())?;
            if let Ok(id) = &submitted {
                jobs[j].job_id = Some(id.clone());
            }
            submitted
        } else {
            let first = &jobs[which[0]];
            let arrays = self.arrays_dir(first);
            let round_idx = first.round.round_idx;
            let longest = which
                .iter()
                .map(|&j| self.round_time(&jobs[j], &jobs[j].pending()))
                .max()
                .unwrap_or_default();
            let mut header = JobHeader::from_settings(
                self.settings(),
                format!("pa-rounds-r{round_idx}"),
                arrays.join("slurm-%A_%a.out"),
                longest,
            );
            header.array = Some(format!(
                "0-{}%{}",
                which.len() - 1,
                self.settings().array_limit.max(1)
            ));
            let about = vec![
                format!(
                    "perfarena rounds: run {}, round {round_idx}, {} tasks (array task i runs the i-th round script)",
                    self.run_of(first),
                    which.len()
                ),
                "Written by perfarena before submission; resubmit by hand with `sbatch <this file>`.".into(),
            ];
            let paths: Vec<PathBuf> = scripts.iter().map(|(p, _)| p.clone()).collect();
            let text = script::round_array_script(&header, &about, &paths);
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or_default();
            let path = arrays.join(format!("round-{round_idx}-{stamp}.sh"));
            write_script(&path, &text)?;
            let comment = format!("--comment={}", self.round_comment(first, true));
            let submitted = self
                .cli
                .submit_with_env(&path, &[comment], &self.secret_env())?;
            if let Ok(base) = &submitted {
                for (index, &j) in which.iter().enumerate() {
                    let id = format!("{base}_{index}");
                    jobs[j].job_id = Some(id);
                }
                events.emit(Event::Message {
                    text: format!(
                        "submitted round {round_idx} of {} tasks as slurm job array {base} ({})",
                        which.len(),
                        path.display()
                    ),
                });
            }
            submitted
        };
        match submitted {
            Ok(_) => {
                for &j in which {
                    let job = &jobs[j];
                    let Some(id) = &job.job_id else { continue };
                    self.live
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(id.clone(), self.run_of(job));
                    for i in job.pending() {
                        self.ledger.record(
                            &key_of(&job.round.attempts[i].0),
                            id,
                            if job.rerun { "rerun" } else { "submitted" },
                        )?;
                    }
                }
            }
            Err(message) => {
                for &j in which {
                    for i in jobs[j].pending() {
                        jobs[j].results[i] = Some(Ok(refused(
                            &jobs[j].round.attempts[i].0,
                            &format!("sbatch refused the job: {message}"),
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// Polls the rounds' jobs until each has ended, finishing their attempts as they end.
    fn track_rounds(
        &self,
        jobs: &mut [RoundJob<'_, '_>],
        events: &dyn EventSink,
        started: Instant,
    ) -> Result<(), BackendError> {
        let cancel = jobs
            .iter()
            .find_map(|j| j.round.attempts.first().map(|(s, _)| s.cancel.clone()))
            .unwrap_or_default();
        let mut unreachable_since: Option<Instant> = None;
        loop {
            let live: Vec<usize> = (0..jobs.len())
                .filter(|j| jobs[*j].job_id.is_some() && !jobs[*j].pending().is_empty())
                .collect();
            if live.is_empty() {
                return Ok(());
            }
            if cancel.is_cancelled() {
                let ids: Vec<String> = live
                    .iter()
                    .filter_map(|j| jobs[*j].job_id.clone())
                    .collect();
                self.cancel_jobs(&ids);
                for &j in &live {
                    for i in jobs[j].pending() {
                        let _ = self
                            .ledger
                            .set_state(&key_of(&jobs[j].round.attempts[i].0), "cancelled");
                    }
                }
                return Err(BackendError::Cancelled);
            }
            let mut resubmit = Vec::new();
            let mut arrays: std::collections::HashMap<
                String,
                std::collections::BTreeMap<u32, String>,
            > = std::collections::HashMap::new();
            let mut failed_query = None;
            for &j in &live {
                let job_id = jobs[j].job_id.clone().unwrap_or_default();
                let (base, index) = split_job_id(&job_id);
                let state = match index {
                    Some(index) => {
                        if !arrays.contains_key(base) {
                            match self.cli.array_states(base) {
                                Ok(states) => {
                                    arrays.insert(base.to_string(), states);
                                }
                                Err(e) => {
                                    failed_query = Some(e);
                                    continue;
                                }
                            }
                        }
                        arrays.get(base).and_then(|s| s.get(&index)).cloned()
                    }
                    None => match self.cli.queue_state(&job_id) {
                        Ok(QueueState::Listed { state, .. }) => Some(state),
                        Ok(QueueState::Unknown) => None,
                        Err(e) => {
                            failed_query = Some(e);
                            continue;
                        }
                    },
                };
                match state {
                    Some(state) if !is_terminal(&state) => {
                        if state == "RUNNING" {
                            self.announce_ready(&mut jobs[j], &job_id, events);
                        }
                    }
                    _ => match self.round_final_state(&job_id)? {
                        Some(final_state) => {
                            self.finish_round(&mut jobs[j], &job_id, &final_state, started)?
                        }
                        None => {
                            // Slurm forgot the job: attempts with a result in their status file
                            // are finished from it; the others run once more.
                            let fallback = FinalState {
                                state: "VANISHED".into(),
                                source: "status file",
                                ..FinalState::default()
                            };
                            self.finish_round_with_results(
                                &mut jobs[j],
                                &job_id,
                                &fallback,
                                started,
                            )?;
                            self.live
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .remove(&job_id);
                            if jobs[j].pending().is_empty() {
                                continue;
                            }
                            if jobs[j].rerun {
                                for i in jobs[j].pending() {
                                    let spec = &jobs[j].round.attempts[i].0;
                                    let _ = self.ledger.set_state(&key_of(spec), "vanished");
                                    jobs[j].results[i] = Some(Ok(refused(
                                        spec,
                                        &format!(
                                            "slurm job {job_id} vanished without a result, and so did the job before it; check the controller (slurmctld log)"
                                        ),
                                    )));
                                }
                            } else {
                                events.emit(Event::Message {
                                    text: format!(
                                        "  {} round {}: slurm job {job_id} vanished without a result; submitting it once more",
                                        jobs[j].round.task.short(12),
                                        jobs[j].round.round_idx
                                    ),
                                });
                                jobs[j].rerun = true;
                                jobs[j].job_id = None;
                                resubmit.push(j);
                            }
                        }
                    },
                }
            }
            match failed_query {
                Some(e) => {
                    // The controller may restart; give it a few minutes before giving up.
                    let since = *unreachable_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_secs(300) {
                        return Err(BackendError::Unavailable(format!(
                            "slurm has not answered for 5 minutes while round jobs ran: {e}"
                        )));
                    }
                }
                None => unreachable_since = None,
            }
            self.submit_rounds(jobs, &resubmit, events)?;
            std::thread::sleep(self.poll_interval());
        }
    }

    /// Emits `ServerReady` for attempts of a running round whose status file says so.
    fn announce_ready(&self, job: &mut RoundJob<'_, '_>, job_id: &str, events: &dyn EventSink) {
        for i in job.pending() {
            if job.ready_seen[i] {
                continue;
            }
            let spec = &job.round.attempts[i].0;
            let status = read_status(&self.job_root(spec), job_id);
            if let Some(after) = status.ready_after_s() {
                job.ready_seen[i] = true;
                events.emit(Event::ServerReady {
                    task: spec.task.clone(),
                    variant: spec.variant.clone(),
                    round_idx: spec.round_idx,
                    after_s: after,
                });
            }
        }
    }

    /// Slurm's final word on a job or array task; `None` when it no longer knows it.
    fn round_final_state(&self, job_id: &str) -> Result<Option<FinalState>, BackendError> {
        if let (base, Some(index)) = split_job_id(job_id) {
            let index = index.to_string();
            if let Some(state) = self
                .cli
                .show_job(base)?
                .iter()
                .find(|r| r.get("ArrayTaskId") == Some(&index))
                .and_then(super::cli::scontrol_state)
            {
                return Ok(Some(state));
            }
        }
        self.cli.final_state(job_id)
    }

    /// Finishes every attempt of an ended round: from its own status file when it has a result
    /// (other attempts of the round may have failed), else from the job's end (time limit, out
    /// of memory, node failure, cancellation).
    fn finish_round(
        &self,
        job: &mut RoundJob<'_, '_>,
        job_id: &str,
        final_state: &FinalState,
        started: Instant,
    ) -> Result<(), BackendError> {
        if matches!(final_state.state.as_str(), "COMPLETED" | "FAILED") {
            // A shared filesystem may show the last lines late.
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline
                && job.pending().iter().any(|i| {
                    !read_status(&self.job_root(&job.round.attempts[*i].0), job_id).has_result()
                })
            {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        self.finish_round_with_results(job, job_id, final_state, started)?;
        let round = job.round;
        for i in job.pending() {
            let spec = &round.attempts[i].0;
            let result = if read_status(&self.job_root(spec), job_id)
                .get("started")
                .is_none()
                && !matches!(final_state.state.as_str(), "COMPLETED" | "FAILED")
            {
                let _ = self
                    .ledger
                    .set_state(&key_of(spec), &format!("ended:{}", final_state.state));
                Ok(refused(
                    spec,
                    &format!(
                        "did not run: round job {job_id} ended {} before this attempt started",
                        final_state.state
                    ),
                ))
            } else {
                self.finish_attempt_of_round(job, i, job_id, final_state.clone(), started)
            };
            job.results[i] = Some(result);
        }
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(job_id);
        Ok(())
    }

    /// Finishes the attempts of `job` whose status file holds a result of their own.
    fn finish_round_with_results(
        &self,
        job: &mut RoundJob<'_, '_>,
        job_id: &str,
        final_state: &FinalState,
        started: Instant,
    ) -> Result<(), BackendError> {
        let round = job.round;
        for i in job.pending() {
            let spec = &round.attempts[i].0;
            let status = read_status(&self.job_root(spec), job_id);
            let own = match status.get("result") {
                None | Some("terminated") => continue,
                Some("ok") => "COMPLETED",
                Some(_) => "FAILED",
            };
            let state = FinalState {
                state: own.into(),
                exit_code: None,
                signal: None,
                node: final_state.node.clone(),
                reason: None,
                source: "status file",
            };
            let result = self.finish_attempt_of_round(job, i, job_id, state, started);
            job.results[i] = Some(result);
        }
        Ok(())
    }

    fn finish_attempt_of_round(
        &self,
        job: &RoundJob<'_, '_>,
        i: usize,
        job_id: &str,
        state: FinalState,
        started: Instant,
    ) -> Result<AttemptOutcome, BackendError> {
        let spec = &job.round.attempts[i].0;
        let out = self.out_path(job, job_id);
        self.redact_file(&out)?;
        copy_if_present(&out, &spec.attempt_dir.join("job.out"))?;
        self.finish(
            job_id,
            state,
            &key_of(spec),
            spec,
            &self.job_root(spec),
            started,
        )
    }
}

fn read_status(job_root: &Path, job_id: &str) -> StatusFile {
    StatusFile::parse(
        &fs::read_to_string(job_root.join(format!("job-{job_id}")).join("status"))
            .unwrap_or_default(),
    )
}

/// An infra error for an attempt that never ran.
fn refused(spec: &AttemptSpec, message: &str) -> AttemptOutcome {
    AttemptOutcome {
        status: perfarena_core::AttemptStatus::InfraError,
        exit_code: None,
        message: message.to_string(),
        server_log: None,
        client_log: spec.attempt_dir.join("client.log"),
        duration_s: 0.0,
        ready_after_s: None,
        oom_killed: false,
        builtin: Default::default(),
    }
}
