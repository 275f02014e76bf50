//! The Slurm commands the backend uses (`sbatch`, `squeue`, `sacct`, `scontrol`, `scancel`) and
//! parsers for their output. Slurm commands inherit `SLURM_CONF` from perfarena's environment.
//!
//! A job's final state is read from `sacct` (accounting), then `scontrol show job` (the
//! controller's memory, about five minutes after the end), then `sacct -c` (the jobcomp file,
//! when accounting is disabled): whichever answers first.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::BackendError;
use crate::slurm::status::{FinalState, is_terminal, parse_exit_code};

/// What `squeue` says about a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueState {
    /// Listed: its state (`PENDING`, `RUNNING`, `COMPLETING`, `COMPLETED`…), reason and node.
    Listed {
        state: String,
        reason: String,
        node: String,
    },
    /// Not known to the controller (never existed, or purged after MinJobAge).
    Unknown,
}

/// A job in `squeue`, with its comment (where perfarena's labels are).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedJob {
    pub job_id: String,
    pub state: String,
    pub comment: String,
}

/// Runs Slurm's commands.
#[derive(Debug, Clone, Default)]
pub struct SlurmCli;

fn output_text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).trim().to_string(),
    )
}

impl SlurmCli {
    fn run(&self, program: &str, args: &[&str]) -> Result<Output, BackendError> {
        self.run_with_env(program, args, &[])
    }

    fn run_with_env(
        &self,
        program: &str,
        args: &[&str],
        env: &[(String, String)],
    ) -> Result<Output, BackendError> {
        let mut command = Command::new(program);
        command.args(args).stdin(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        command.output().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                BackendError::Unavailable(format!("`{program}` not found: the slurm backend needs Slurm's client commands on PATH (and SLURM_CONF set where there is no /etc/slurm/slurm.conf)"))
            } else {
                BackendError::io(format!("cannot run {program}"), e)
            }
        })
    }

    /// `sbatch --parsable [extra] script`: the job id, or sbatch's error.
    pub fn submit(
        &self,
        script: &Path,
        extra: &[String],
    ) -> Result<Result<String, String>, BackendError> {
        self.submit_with_env(script, extra, &[])
    }

    /// `submit` with `env` added to sbatch's environment, which the job inherits (sbatch's
    /// default `--export=ALL`): how secrets reach a job without being written into its script.
    pub fn submit_with_env(
        &self,
        script: &Path,
        extra: &[String],
        env: &[(String, String)],
    ) -> Result<Result<String, String>, BackendError> {
        let script_text = script.to_string_lossy();
        let mut args: Vec<&str> = vec!["--parsable"];
        args.extend(extra.iter().map(String::as_str));
        args.push(&script_text);
        let output = self.run_with_env("sbatch", &args, env)?;
        let (stdout, stderr) = output_text(&output);
        if !output.status.success() {
            return Ok(Err(if stderr.is_empty() {
                format!("sbatch exited with {}", output.status)
            } else {
                stderr
            }));
        }
        // `--parsable` prints `id` or `id;cluster`.
        match stdout
            .trim()
            .split(';')
            .next()
            .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
        {
            Some(id) => Ok(Ok(id.to_string())),
            None => Ok(Err(format!(
                "sbatch printed no job id: {:?} {stderr}",
                stdout.trim()
            ))),
        }
    }

    /// `squeue -j ID -t all`: the job's state while the controller knows it. `Err` when the
    /// controller cannot be reached.
    pub fn queue_state(&self, job_id: &str) -> Result<QueueState, BackendError> {
        let output = self.run(
            "squeue",
            &["-h", "-j", job_id, "-t", "all", "-o", "%T|%r|%N"],
        )?;
        let (stdout, stderr) = output_text(&output);
        if !output.status.success() {
            if stderr.contains("Invalid job id") {
                return Ok(QueueState::Unknown);
            }
            return Err(BackendError::Other(format!("squeue -j {job_id}: {stderr}")));
        }
        Ok(parse_squeue_line(&stdout))
    }

    /// The final state of a job from sacct, scontrol or the jobcomp file; `None` when none of
    /// them knows the job (it vanished).
    pub fn final_state(&self, job_id: &str) -> Result<Option<FinalState>, BackendError> {
        let output = self.run(
            "sacct",
            &[
                "-n",
                "-P",
                "-X",
                "-j",
                job_id,
                "-o",
                "JobID,State,ExitCode,NodeList",
            ],
        )?;
        let (stdout, _) = output_text(&output);
        if output.status.success()
            && let Some(state) = parse_sacct(&stdout, job_id, "sacct")
        {
            return Ok(Some(state));
        }
        let output = self.run("scontrol", &["show", "job", job_id])?;
        let (stdout, stderr) = output_text(&output);
        if output.status.success() {
            if let Some(state) = parse_scontrol(&stdout)
                .iter()
                .find(|r| r.get("JobId").map(String::as_str) == Some(job_id))
                .and_then(scontrol_state)
            {
                return Ok(Some(state));
            }
        } else if !stderr.contains("Invalid job id") {
            return Err(BackendError::Other(format!(
                "scontrol show job {job_id}: {stderr}"
            )));
        }
        let output = self.run(
            "sacct",
            &[
                "-c",
                "-n",
                "-P",
                "-j",
                job_id,
                "-o",
                "JobID,State,ExitCode,NodeList",
            ],
        )?;
        let (stdout, _) = output_text(&output);
        Ok(parse_sacct(&stdout, job_id, "sacct -c"))
    }

    /// The peak memory of a finished job from accounting (`sacct`: the largest `MaxRSS` of its
    /// steps, in bytes); `None` when accounting is off (`jobacct_gather/none`, no database) or
    /// says nothing for the job.
    pub fn job_max_rss(&self, job_id: &str) -> Result<Option<u64>, BackendError> {
        let output = self.run("sacct", &["-n", "-P", "-j", job_id, "-o", "JobID,MaxRSS"])?;
        let (stdout, _) = output_text(&output);
        if !output.status.success() {
            return Ok(None);
        }
        Ok(parse_sacct_max_rss(&stdout, job_id))
    }

    /// The records of `scontrol show job ID` (one per array task).
    pub fn show_job(&self, job_id: &str) -> Result<Vec<BTreeMap<String, String>>, BackendError> {
        let output = self.run("scontrol", &["show", "job", job_id])?;
        let (stdout, stderr) = output_text(&output);
        if !output.status.success() {
            if stderr.contains("Invalid job id") {
                return Ok(Vec::new());
            }
            return Err(BackendError::Other(format!(
                "scontrol show job {job_id}: {stderr}"
            )));
        }
        Ok(parse_scontrol(&stdout))
    }

    /// Array tasks in `squeue` (`ID_N|STATE`), while the controller knows them.
    pub fn array_states(&self, job_id: &str) -> Result<BTreeMap<u32, String>, BackendError> {
        let output = self.run(
            "squeue",
            &["-h", "-r", "-j", job_id, "-t", "all", "-o", "%i|%T"],
        )?;
        let (stdout, stderr) = output_text(&output);
        if !output.status.success() {
            if stderr.contains("Invalid job id") {
                return Ok(BTreeMap::new());
            }
            return Err(BackendError::Other(format!("squeue -j {job_id}: {stderr}")));
        }
        Ok(parse_array_states(&stdout))
    }

    /// `scancel` of the given jobs.
    pub fn cancel(&self, job_ids: &[String]) -> Result<(), BackendError> {
        if job_ids.is_empty() {
            return Ok(());
        }
        let args: Vec<&str> = job_ids.iter().map(String::as_str).collect();
        let output = self.run("scancel", &args)?;
        let (_, stderr) = output_text(&output);
        if !output.status.success()
            && !stderr.contains("Invalid job id")
            && !stderr.contains("already completing or completed")
        {
            return Err(BackendError::Other(format!(
                "scancel {}: {stderr}",
                job_ids.join(" ")
            )));
        }
        Ok(())
    }

    /// This user's pending and running jobs with their comments.
    pub fn my_jobs(&self) -> Result<Vec<QueuedJob>, BackendError> {
        // `%i` with `-r`: an array task is `<array id>_<index>`, as the ledger records it (with
        // `%A` a resumed run's sweep would not recognise its own array tasks).
        let output = self.run("squeue", &["-h", "-r", "--me", "-o", "%i|%T|%k"])?;
        let (stdout, stderr) = output_text(&output);
        if !output.status.success() {
            return Err(BackendError::Unavailable(format!("squeue --me: {stderr}")));
        }
        Ok(stdout
            .lines()
            .filter_map(|line| {
                let mut parts = line.splitn(3, '|');
                let job_id = parts.next()?.trim().to_string();
                let state = parts.next()?.trim().to_string();
                let comment = parts.next().unwrap_or("").trim().to_string();
                Some(QueuedJob {
                    job_id,
                    state,
                    comment,
                })
            })
            .collect())
    }

    /// Sets a job's comment (`scontrol update`), e.g. to record a new owner on re-attach.
    pub fn set_comment(&self, job_id: &str, comment: &str) -> Result<(), BackendError> {
        let comment_arg = format!("comment={comment}");
        let output = self.run(
            "scontrol",
            &["update", &format!("jobid={job_id}"), &comment_arg],
        )?;
        if !output.status.success() {
            let (_, stderr) = output_text(&output);
            return Err(BackendError::Other(format!(
                "scontrol update jobid={job_id}: {stderr}"
            )));
        }
        Ok(())
    }
}

/// `STATE|REASON|NODE` from squeue (the first line; empty output: unknown).
pub fn parse_squeue_line(text: &str) -> QueueState {
    let Some(line) = text.lines().map(str::trim).find(|l| !l.is_empty()) else {
        return QueueState::Unknown;
    };
    let mut parts = line.split('|');
    let state = parts.next().unwrap_or("").trim().to_string();
    let reason = parts.next().unwrap_or("").trim().to_string();
    let node = parts.next().unwrap_or("").trim().to_string();
    QueueState::Listed {
        state,
        reason,
        node,
    }
}

/// `ID_N|STATE` lines of an array; the array's own id without `_N` is skipped (pending
/// remainder) unless it carries a single task index.
pub fn parse_array_states(text: &str) -> BTreeMap<u32, String> {
    let mut states = BTreeMap::new();
    for line in text.lines() {
        let Some((id, state)) = line.trim().split_once('|') else {
            continue;
        };
        let Some((_, index)) = id.split_once('_') else {
            continue;
        };
        if let Ok(index) = index.parse::<u32>() {
            states.insert(index, state.trim().to_string());
        }
    }
    states
}

/// `JobID|State|ExitCode|NodeList` lines from sacct (`-c` or not): the line of `job_id`.
pub fn parse_sacct(text: &str, job_id: &str, source: &'static str) -> Option<FinalState> {
    for line in text.lines() {
        let fields: Vec<&str> = line.trim().split('|').collect();
        if fields.len() < 3 || fields[0] != job_id {
            continue;
        }
        let state = fields[1]
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string();
        if state.is_empty() {
            continue;
        }
        let (exit_code, signal) = parse_exit_code(fields[2]);
        let node = fields
            .get(3)
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty() && n != "None assigned");
        return Some(FinalState {
            state,
            exit_code,
            signal,
            node,
            reason: None,
            source,
        });
    }
    None
}

/// `JobID|MaxRSS` lines of a job and its steps (`ID`, `ID.batch`, `ID.extern`, `ID.0`…): the
/// largest MaxRSS, in bytes. sacct writes it with a unit (`1656K`, `160.43M`, `15.2G`; K without
/// one) and leaves it empty on the allocation's own line.
pub fn parse_sacct_max_rss(text: &str, job_id: &str) -> Option<u64> {
    text.lines()
        .filter_map(|line| line.trim().split_once('|'))
        .filter(|(id, _)| {
            *id == job_id
                || id
                    .strip_prefix(job_id)
                    .is_some_and(|rest| rest.starts_with('.'))
        })
        .filter_map(|(_, rss)| byte_size(rss.trim()))
        .max()
        .filter(|bytes| *bytes > 0)
}

/// `1656K`, `160.43M`, `15.2G`, `2T`, `512` (KiB) as bytes.
fn byte_size(text: &str) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    let (number, unit) = match text.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&text[..i], c.to_ascii_uppercase()),
        _ => (text, 'K'),
    };
    let scale: f64 = match unit {
        'K' => 1024.0,
        'M' => 1024.0 * 1024.0,
        'G' => 1024.0 * 1024.0 * 1024.0,
        'T' => 1024.0f64.powi(4),
        _ => return None,
    };
    let value: f64 = number.parse().ok()?;
    (value.is_finite() && value >= 0.0).then(|| (value * scale) as u64)
}

/// The records of `scontrol show job` output: `Key=Value` words, records separated by blank
/// lines.
pub fn parse_scontrol(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut records = Vec::new();
    let mut current = BTreeMap::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                records.push(std::mem::take(&mut current));
            }
            continue;
        }
        for word in line.split_whitespace() {
            if let Some((key, value)) = word.split_once('=') {
                current
                    .entry(key.to_string())
                    .or_insert_with(|| value.to_string());
            }
        }
    }
    if !current.is_empty() {
        records.push(current);
    }
    records
}

/// A record of `scontrol show job` as a final state (`None` while the job still runs).
pub fn scontrol_state(record: &BTreeMap<String, String>) -> Option<FinalState> {
    let state = record.get("JobState")?.clone();
    if !is_terminal(&state) {
        return None;
    }
    let (exit_code, signal) = record
        .get("ExitCode")
        .map(|e| parse_exit_code(e))
        .unwrap_or((None, None));
    Some(FinalState {
        state,
        exit_code,
        signal,
        node: record.get("NodeList").cloned().filter(|n| n != "(null)"),
        reason: record.get("Reason").cloned().filter(|r| r != "None"),
        source: "scontrol",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_lines() {
        assert_eq!(parse_squeue_line(""), QueueState::Unknown);
        assert_eq!(
            parse_squeue_line("RUNNING|None|localhost\n"),
            QueueState::Listed {
                state: "RUNNING".into(),
                reason: "None".into(),
                node: "localhost".into()
            }
        );
        let states = parse_array_states("7_0|COMPLETED\n7_1|RUNNING\n7_[2-3%2]|PENDING\n");
        assert_eq!(states.len(), 2);
        assert_eq!(states[&1], "RUNNING");
    }

    /// Shapes from sacct as it prints jobs with steps (an allocation line without MaxRSS, the
    /// batch and extern steps, srun steps), with and without units.
    #[test]
    fn max_rss_of_a_job_and_its_steps() {
        let text =
            "1234||\n1234.batch|227220K\n1234.extern|1656K\n1234.0|160.43M\n12345.batch|15.2G\n";
        // 227220K (the batch step) is more than 160.43M (step 0); 12345 is another job.
        assert_eq!(parse_sacct_max_rss(text, "1234"), Some(227220 * 1024));
        let srun_peak = "9||\n9.batch|1656K\n9.0|160.43M\n";
        assert_eq!(
            parse_sacct_max_rss(srun_peak, "9"),
            Some((160.43 * 1024.0 * 1024.0) as u64)
        );
        assert_eq!(
            parse_sacct_max_rss("7|\n7.batch|1340\n", "7"),
            Some(1340 * 1024)
        );
        assert_eq!(parse_sacct_max_rss("7|\n7.batch|0\n", "7"), None);
        assert_eq!(
            parse_sacct_max_rss("Slurm accounting storage is disabled\n", "7"),
            None
        );
        assert_eq!(parse_sacct_max_rss("7.batch|lots\n", "7"), None);
    }

    #[test]
    fn sacct_lines_including_jobcomp() {
        let s = parse_sacct("1|FAILED|3:0|localhost\n", "1", "sacct -c").unwrap();
        assert_eq!(
            (s.state.as_str(), s.exit_code, s.signal),
            ("FAILED", Some(3), Some(0))
        );
        let s = parse_sacct("12|CANCELLED by 0|0:15|None assigned\n", "12", "sacct").unwrap();
        assert_eq!(s.state, "CANCELLED");
        assert_eq!(s.node, None);
        assert!(parse_sacct("13|COMPLETED|0:0|x\n", "1", "sacct").is_none());
        assert!(parse_sacct("Slurm accounting storage is disabled\n", "1", "sacct").is_none());
    }

    #[test]
    fn scontrol_records() {
        let text = "JobId=7 ArrayJobId=7 ArrayTaskId=3 JobName=x\n   JobState=FAILED Reason=NonZeroExitCode Dependency=(null)\n   ExitCode=3:0\n   NodeList=localhost\n\nJobId=8 ArrayJobId=7 ArrayTaskId=0\n   JobState=RUNNING Reason=None\n";
        let records = parse_scontrol(text);
        assert_eq!(records.len(), 2);
        let s = scontrol_state(&records[0]).unwrap();
        assert_eq!(
            (
                s.state.as_str(),
                s.exit_code,
                s.node.as_deref(),
                s.reason.as_deref()
            ),
            (
                "FAILED",
                Some(3),
                Some("localhost"),
                Some("NonZeroExitCode")
            )
        );
        assert!(scontrol_state(&records[1]).is_none());
    }
}
