//! What a finished job means for its attempt: the job script's status file (what happened inside
//! the job) read together with Slurm's final state (what Slurm did to the job), mapped to an
//! attempt status and a message. Pure functions, tested with the states real daemons report.

use std::collections::BTreeMap;

use perfarena_core::AttemptStatus;
use perfarena_core::builtin::Usage;

/// The job script's `status` file: `key=value` lines, the last value of a key wins.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusFile {
    values: BTreeMap<String, String>,
}

impl StatusFile {
    pub fn parse(text: &str) -> StatusFile {
        let mut values = BTreeMap::new();
        for line in text.lines() {
            if let Some((key, value)) = line.split_once('=') {
                values.insert(key.trim().to_string(), value.trim().to_string());
            }
        }
        StatusFile { values }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn number(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(|v| v.parse().ok())
    }

    fn code(&self, key: &str) -> Option<i32> {
        self.get(key).and_then(|v| v.parse().ok())
    }

    /// Whether the script got as far as writing its result.
    pub fn has_result(&self) -> bool {
        self.get("result").is_some()
    }

    /// The node the job ran on.
    pub fn node(&self) -> Option<&str> {
        self.get("node")
    }

    /// Seconds from the script's start to readiness.
    pub fn ready_after_s(&self) -> Option<f64> {
        Some(self.number("ready")? - self.number("started")?).filter(|s| *s >= 0.0)
    }

    /// Seconds from the script's start to its end.
    pub fn duration_s(&self) -> Option<f64> {
        Some(self.number("ended")? - self.number("started")?).filter(|s| *s >= 0.0)
    }

    /// What the job script measured of `role` (`client`, `server`): its wall-clock time from
    /// `ROLE_started` to `ROLE_ended`, and its CPU time when the script could count it
    /// (`ROLE_user`, `ROLE_sys` as the shell's `times` prints them).
    pub fn usage(&self, role: &str) -> Option<Usage> {
        let wall_s =
            Some(self.number(&format!("{role}_ended"))? - self.number(&format!("{role}_started"))?)
                .filter(|s| *s >= 0.0)?;
        let cpu = |key: &str| {
            self.get(&format!("{role}_{key}"))
                .and_then(shell_times_seconds)
        };
        Some(Usage {
            wall_s,
            user_s: cpu("user"),
            sys_s: cpu("sys"),
            max_rss_mb: None,
        })
    }
}

/// A duration as the shell builtin `times` prints it: `0m0.310000s` (dash), `0m0.297s` (bash,
/// busybox), `125m3.000s` past an hour.
pub fn shell_times_seconds(text: &str) -> Option<f64> {
    let (minutes, seconds) = text.trim().strip_suffix('s')?.split_once('m')?;
    let minutes: f64 = minutes.trim().parse().ok()?;
    let seconds: f64 = seconds.trim().parse().ok()?;
    Some(minutes * 60.0 + seconds).filter(|s| s.is_finite() && *s >= 0.0)
}

/// Slurm's final word on a job.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FinalState {
    /// `COMPLETED`, `FAILED`, `TIMEOUT`, `CANCELLED`, `NODE_FAIL`, `OUT_OF_MEMORY`… (the first
    /// word: sacct writes `CANCELLED by 0`).
    pub state: String,
    /// `ExitCode=exit:signal`.
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub node: Option<String>,
    pub reason: Option<String>,
    /// Which command told us (`sacct`, `scontrol`, `sacct -c`, `squeue`).
    pub source: &'static str,
}

/// Job states after which nothing more happens.
pub fn is_terminal(state: &str) -> bool {
    matches!(
        state,
        "COMPLETED"
            | "FAILED"
            | "TIMEOUT"
            | "CANCELLED"
            | "NODE_FAIL"
            | "OUT_OF_MEMORY"
            | "PREEMPTED"
            | "BOOT_FAIL"
            | "DEADLINE"
            | "REVOKED"
            | "SPECIAL_EXIT"
    )
}

/// `3:0` → `(Some(3), Some(0))`.
pub fn parse_exit_code(text: &str) -> (Option<i32>, Option<i32>) {
    let (code, signal) = text.trim().split_once(':').unwrap_or((text.trim(), ""));
    (code.parse().ok(), signal.parse().ok())
}

/// How an attempt's job ended, before its client log is parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct JobVerdict {
    pub status: AttemptStatus,
    pub exit_code: Option<i32>,
    pub message: String,
    pub oom_killed: bool,
}

/// The last non-empty lines of logs, for messages.
#[derive(Debug, Clone, Default)]
pub struct LogTails {
    pub server: String,
    pub client: String,
    pub job: String,
}

fn with_tail(mut message: String, tail: &str) -> String {
    if !tail.trim().is_empty() {
        message.push_str(": ");
        message.push_str(tail.trim());
    }
    message
}

/// Maps Slurm's final state and the status file to the attempt's status. `time_limit` is the
/// job's `--time`, `timeout_s` the attempt's own limit (the script enforces it).
pub fn verdict(
    state: &FinalState,
    status: &StatusFile,
    tails: &LogTails,
    job_id: &str,
    time_limit: &str,
    timeout_s: u64,
) -> JobVerdict {
    let verdict = |status: AttemptStatus, exit_code: Option<i32>, message: String| JobVerdict {
        status,
        exit_code,
        message,
        oom_killed: false,
    };
    let slurm_exit = match (state.exit_code, state.signal) {
        (Some(code), Some(signal)) if signal != 0 => format!("exit code {code}, signal {signal}"),
        (Some(code), _) => format!("exit code {code}"),
        _ => "exit code unknown".to_string(),
    };
    match state.state.as_str() {
        "TIMEOUT" => verdict(
            AttemptStatus::Timeout,
            None,
            format!(
                "job {job_id} hit its slurm time limit ({time_limit}) and was killed; raise slurm.time_limit or bench.timeout_s"
            ),
        ),
        "OUT_OF_MEMORY" => JobVerdict {
            status: AttemptStatus::Crashed,
            exit_code: state.exit_code,
            message: format!(
                "job {job_id} ran out of memory: slurm ended it with OUT_OF_MEMORY (oom-kill); raise slurm.mem"
            ),
            oom_killed: true,
        },
        "NODE_FAIL" => verdict(
            AttemptStatus::InfraError,
            None,
            format!(
                "node {} failed while job {job_id} ran (NODE_FAIL)",
                state.node.as_deref().unwrap_or("?")
            ),
        ),
        "CANCELLED" => verdict(
            AttemptStatus::InfraError,
            None,
            format!("job {job_id} was cancelled outside perfarena (scancel or an administrator)"),
        ),
        "PREEMPTED" | "BOOT_FAIL" | "DEADLINE" | "REVOKED" => verdict(
            AttemptStatus::InfraError,
            None,
            format!("job {job_id} ended with slurm state {}", state.state),
        ),
        "COMPLETED" | "FAILED" | "SPECIAL_EXIT" => match status.get("result") {
            Some("ok") if state.state == "COMPLETED" => {
                verdict(AttemptStatus::Ok, Some(0), String::new())
            }
            Some("server_exited") => {
                let code = status.code("server_exit");
                verdict(
                    AttemptStatus::Crashed,
                    code,
                    with_tail(
                        format!(
                            "server exited with code {} before it was ready",
                            code.map(|c| c.to_string()).unwrap_or("?".into())
                        ),
                        &tails.server,
                    ),
                )
            }
            Some("not_ready") => verdict(
                AttemptStatus::Timeout,
                None,
                format!(
                    "server not ready after {:.0}s (readiness timeout)",
                    status.duration_s().unwrap_or(0.0)
                ),
            ),
            Some("timeout") => verdict(
                AttemptStatus::Timeout,
                None,
                format!("attempt timed out after {timeout_s}s while the client was running"),
            ),
            Some("client_failed") => {
                let code = status.code("client_exit");
                let mut message = format!(
                    "client exited with code {}",
                    code.map(|c| c.to_string()).unwrap_or("?".into())
                );
                if status.get("server_exit").is_some() {
                    message.push_str("; the server had exited");
                }
                verdict(
                    AttemptStatus::Crashed,
                    code,
                    with_tail(message, &tails.client),
                )
            }
            Some("missing_image") => verdict(
                AttemptStatus::MissingImage,
                None,
                status
                    .get("message")
                    .map(str::to_string)
                    .unwrap_or_else(|| "the image cannot be started on the node".into()),
            ),
            Some("no_probe") => verdict(
                AttemptStatus::InfraError,
                None,
                status
                    .get("message")
                    .unwrap_or("the node has no readiness probe tool")
                    .to_string(),
            ),
            Some("terminated") => verdict(
                AttemptStatus::InfraError,
                None,
                format!(
                    "job {job_id} was terminated (SIGTERM) before the attempt finished; slurm state {}",
                    state.state
                ),
            ),
            Some(other) if state.state == "COMPLETED" && other != "ok" => verdict(
                AttemptStatus::InfraError,
                None,
                format!("job {job_id} completed but its script reported `{other}`"),
            ),
            _ => verdict(
                AttemptStatus::InfraError,
                state.exit_code,
                with_tail(
                    format!(
                        "job {job_id} ended {} ({slurm_exit}) without an attempt result; see its slurm output (job.out)",
                        state.state
                    ),
                    &tails.job,
                ),
            ),
        },
        other => verdict(
            AttemptStatus::InfraError,
            state.exit_code,
            format!("job {job_id} ended with unexpected slurm state {other:?}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(name: &str, exit: &str) -> FinalState {
        let (exit_code, signal) = parse_exit_code(exit);
        FinalState {
            state: name.into(),
            exit_code,
            signal,
            node: Some("localhost".into()),
            reason: None,
            source: "scontrol",
        }
    }

    fn check(
        slurm: &str,
        exit: &str,
        status_text: &str,
        expected: AttemptStatus,
        message_part: &str,
    ) -> JobVerdict {
        let status = StatusFile::parse(status_text);
        let tails = LogTails {
            server: "server said bye".into(),
            client: "Traceback: boom".into(),
            job: "sh: 1: bad".into(),
        };
        let v = verdict(&state(slurm, exit), &status, &tails, "42", "0:01:00", 120);
        assert_eq!(v.status, expected, "{slurm} {status_text}: {v:?}");
        assert!(
            v.message.contains(message_part),
            "{slurm}: {:?} lacks {message_part:?}",
            v.message
        );
        v
    }

    #[test]
    fn status_file_keeps_the_last_value() {
        let s = StatusFile::parse(
            "job_id=7\nstarted=100.5\nready=102.0\nresult=ok\nended=110.5\nnode=n1\nresult=ok\n",
        );
        assert_eq!(s.ready_after_s(), Some(1.5));
        assert_eq!(s.duration_s(), Some(10.0));
        assert_eq!(s.node(), Some("n1"));
        assert!(s.has_result());
        assert!(!StatusFile::parse("started=1\n").has_result());
    }

    /// The lines the job script writes (`pa_start`), with `times` as dash and bash print it.
    #[test]
    fn roles_usage_from_the_status_file() {
        let s = StatusFile::parse(
            "started=100.0\nserver_started=100.01\nclient_started=101.5\nclient_user=0m0.310000s\nclient_sys=0m0.010000s\nclient_ended=103.75\nserver_ended=104.0\n",
        );
        let client = s.usage("client").unwrap();
        assert!((client.wall_s - 2.25).abs() < 1e-9);
        assert_eq!(client.user_s, Some(0.31));
        assert_eq!(client.sys_s, Some(0.01));
        let server = s.usage("server").unwrap();
        assert!((server.wall_s - 3.99).abs() < 1e-9);
        assert_eq!(
            server.user_s, None,
            "a launcher whose processes the script cannot count"
        );
        assert!(
            StatusFile::parse("client_started=5\n")
                .usage("client")
                .is_none()
        );
        assert_eq!(shell_times_seconds("0m0.297s"), Some(0.297));
        assert_eq!(shell_times_seconds("125m3.000s"), Some(7503.0));
        assert_eq!(shell_times_seconds("0m 0.00s"), Some(0.0));
        assert_eq!(shell_times_seconds("0.3s"), None);
        assert_eq!(shell_times_seconds(""), None);
    }

    #[test]
    fn slurm_states_map_to_attempt_statuses() {
        check("COMPLETED", "0:0", "result=ok", AttemptStatus::Ok, "");
        let v = check(
            "FAILED",
            "3:0",
            "client_exit=3\nresult=client_failed",
            AttemptStatus::Crashed,
            "client exited with code 3: Traceback: boom",
        );
        assert_eq!(v.exit_code, Some(3));
        check(
            "FAILED",
            "3:0",
            "client_exit=1\nserver_exit=1\nresult=client_failed",
            AttemptStatus::Crashed,
            "the server had exited",
        );
        check(
            "FAILED",
            "3:0",
            "server_exit=1\nresult=server_exited",
            AttemptStatus::Crashed,
            "server exited with code 1 before it was ready: server said bye",
        );
        check(
            "FAILED",
            "124:0",
            "started=1\nresult=not_ready\nended=31",
            AttemptStatus::Timeout,
            "not ready after 30s",
        );
        check(
            "FAILED",
            "124:0",
            "result=timeout",
            AttemptStatus::Timeout,
            "timed out after 120s",
        );
        check(
            "FAILED",
            "4:0",
            "result=missing_image\nmessage=image x is not on the node",
            AttemptStatus::MissingImage,
            "image x",
        );
        check(
            "FAILED",
            "70:0",
            "result=no_probe\nmessage=no curl",
            AttemptStatus::InfraError,
            "no curl",
        );
        check(
            "TIMEOUT",
            "0:15",
            "result=terminated",
            AttemptStatus::Timeout,
            "slurm time limit (0:01:00)",
        );
        check("TIMEOUT", "0:9", "", AttemptStatus::Timeout, "time limit");
        check(
            "CANCELLED",
            "0:15",
            "result=terminated",
            AttemptStatus::InfraError,
            "cancelled outside perfarena",
        );
        check(
            "NODE_FAIL",
            "0:0",
            "",
            AttemptStatus::InfraError,
            "node localhost failed",
        );
        let v = check(
            "OUT_OF_MEMORY",
            "0:125",
            "",
            AttemptStatus::Crashed,
            "oom-kill",
        );
        assert!(v.oom_killed);
        check(
            "FAILED",
            "0:9",
            "",
            AttemptStatus::InfraError,
            "FAILED (exit code 0, signal 9) without an attempt result; see its slurm output (job.out): sh: 1: bad",
        );
        check(
            "BOOT_FAIL",
            "0:0",
            "",
            AttemptStatus::InfraError,
            "BOOT_FAIL",
        );
        check(
            "COMPLETED",
            "0:0",
            "",
            AttemptStatus::InfraError,
            "without an attempt result",
        );
    }

    #[test]
    fn oom_is_a_resource_failure_for_triage() {
        let v = check("OUT_OF_MEMORY", "0:125", "", AttemptStatus::Crashed, "oom");
        let class = perfarena_core::triage::Triage::builtin()
            .classify_attempt(v.status, &v.message, &[])
            .unwrap();
        assert_eq!(
            class.kind,
            perfarena_core::FailureKind::Resource,
            "{class:?}"
        );
    }

    #[test]
    fn exit_codes() {
        assert_eq!(parse_exit_code("3:0"), (Some(3), Some(0)));
        assert_eq!(parse_exit_code("0:15"), (Some(0), Some(15)));
        assert_eq!(parse_exit_code("x"), (None, None));
    }
}
