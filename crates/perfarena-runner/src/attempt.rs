//! One variant's preparation and one attempt's set-up and end: what goes to the backend (its
//! spec, with the suite's commands expanded for this task and variant) and what comes back
//! turned into the attempt's record (status, metrics parsed from the client's log, triage).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use perfarena_backend::{
    AttemptOutcome, AttemptSpec, BackendError, BackendKind, PatchSpec, Prepared, ReadinessSpec,
    VariantSpec,
};
use perfarena_core::eras::BenchCommands;
use perfarena_core::events::Event;
use perfarena_core::parse::{FormatChoice, parse_log};
use perfarena_core::{AttemptRecord, AttemptStage, AttemptStatus, Task, VariantKind, template};

use crate::engine::{Begun, RunCx, Runner};
use crate::schedule::Slot;
use crate::vars::insert_task_vars;
use crate::{Result, RunError, now};

impl Runner<'_> {
    /// The variant's directory under the run: `runs/<run>/<task>/<variant>`.
    pub(crate) fn variant_dir(
        &self,
        cx: &RunCx<'_>,
        task: &Task,
        variant: &VariantKind,
    ) -> PathBuf {
        self.state_dir
            .join("runs")
            .join(&cx.run.run_id.0)
            .join(task.short_id())
            .join(variant.dir_name())
    }

    /// A path as stored: relative to the store directory when inside it.
    fn relative(&self, path: &Path) -> String {
        path.strip_prefix(&self.state_dir)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// The task's commands: the plain `[bench]` ones, or those of its era (chosen from the
    /// task's parent revision, so that every variant of a task runs the same commands).
    fn bench_commands(&self, task: &Task) -> BenchCommands {
        crate::eras::commands(self.suite, self.repo.as_ref(), task)
    }

    fn env(&self) -> Vec<(String, String)> {
        self.suite
            .bench
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Asks the backend to prepare a variant.
    pub(crate) fn prepare(
        &self,
        cx: &RunCx<'_>,
        task: &Task,
        variant: &VariantKind,
    ) -> Result<Prepared> {
        cx.events.display.emit(Event::PrepareStarted {
            task: task.commit.clone(),
            variant: variant.clone(),
        });
        let patch = match variant {
            VariantKind::Candidate(name) => {
                let planned = cx
                    .run
                    .plan
                    .candidates
                    .iter()
                    .find(|c| c.task == task.commit && &c.name == name)
                    .ok_or_else(|| {
                        RunError::Input(format!(
                            "candidate {name} is not planned for {}",
                            task.short_id()
                        ))
                    })?;
                let text = cx.run.patches.get(&planned.patch_sha).ok_or_else(|| {
                    RunError::Input(format!(
                        "patch {} missing from the store",
                        planned.patch_sha
                    ))
                })?;
                Some(PatchSpec {
                    name: name.clone(),
                    sha256: planned.patch_sha.clone(),
                    text: text.clone(),
                })
            }
            _ => None,
        };
        let vars = self.vars(task, variant, None, None, 0);
        let commands = self.bench_commands(task);
        let setup = if commands.setup.trim().is_empty() {
            None
        } else {
            Some(
                template::expand_shell(&commands.setup, &vars)
                    .map_err(|e| RunError::Input(format!("bench.setup: {e}")))?,
            )
        };
        let spec = VariantSpec {
            run_id: cx.run.run_id.clone(),
            task: task.clone(),
            variant: variant.clone(),
            image: match self.backend.kind() {
                BackendKind::Local => None,
                _ => perfarena_core::images::image_ref(
                    &self.suite.images,
                    task,
                    variant,
                    patch.as_ref().map(|p| p.sha256.as_str()),
                )
                .ok(),
            },
            patch,
            setup,
            setup_timeout: Duration::from_secs(self.suite.bench.setup_timeout_s),
            env: self.env(),
            log_dir: self.variant_dir(cx, task, variant),
            rebuild_globs: self.suite.build.rebuild_globs.clone(),
            harness_globs: self.suite.bench.harness_globs.clone(),
            cancel: self.cancel.clone(),
        };
        Ok(self.backend.prepare(&spec, &cx.events)?)
    }

    /// The record of a variant that cannot be measured (its preparation or its check failed):
    /// recorded once, at the round where it was to run first.
    pub(crate) fn failed_variant_record(
        &self,
        cx: &RunCx<'_>,
        task: &Task,
        variant: &VariantKind,
        round: u32,
        failure: &perfarena_backend::PrepareFailure,
    ) -> AttemptRecord {
        let mut record =
            AttemptRecord::new(task.commit.clone(), variant.clone(), round, failure.status);
        record.run_id = Some(cx.run.run_id.0.clone());
        record.started_at = now();
        record.message = failure.message.clone();
        record.log_dir = failure.log.as_ref().map(|l| self.relative(l));
        record.backend = self.backend.kind().as_str().into();
        record.stage = AttemptStage::Prepare;
        // Kept beside the typed field for those who read the metadata.
        record.metadata = serde_json::json!({"stage": "prepare"});
        let log = failure
            .log
            .as_ref()
            .map(|l| read_lossy(l))
            .unwrap_or_default();
        record.failure = self
            .triage
            .classify_attempt(record.status, &record.message, &[&log]);
        record
    }

    /// Template values for one variant (and attempt, when `attempt_dir` is given).
    fn vars(
        &self,
        task: &Task,
        variant: &VariantKind,
        workdir: Option<&Path>,
        attempt_dir: Option<&Path>,
        port: u16,
    ) -> BTreeMap<&'static str, String> {
        let mut vars = BTreeMap::new();
        insert_task_vars(&mut vars, self.suite, task);
        vars.insert("port", port.to_string());
        vars.insert("variant", variant.to_string());
        if let Some(dir) = workdir {
            vars.insert("workdir", dir.display().to_string());
        }
        if let Some(dir) = attempt_dir {
            vars.insert("attempt_dir", dir.display().to_string());
        }
        let max_jobs = self
            .suite
            .build_override(task.commit.as_str())
            .and_then(|o| o.max_jobs)
            .map(|j| j.to_string());
        vars.insert(
            "max_jobs",
            max_jobs
                .or_else(|| self.suite.build.args.get("max_jobs").cloned())
                .unwrap_or_else(|| "1".into()),
        );
        vars
    }

    /// Sets an attempt up (its directory, port, commands): `Ready` to hand to the backend, or
    /// `Ended` when it cannot start.
    pub(crate) fn begin_attempt(
        &self,
        cx: &RunCx<'_>,
        task: &Task,
        variant: &VariantKind,
        round: u32,
        prepared: &Prepared,
        slot: &Slot,
    ) -> Result<Begun> {
        let attempt_dir = self
            .variant_dir(cx, task, variant)
            .join(format!("round-{round}"));
        if attempt_dir.exists() {
            // Left by an attempt that was interrupted: keep it aside, rerun once.
            let aside = attempt_dir.with_file_name(format!(
                "round-{round}.interrupted-{}",
                chrono::Utc::now().timestamp()
            ));
            std::fs::rename(&attempt_dir, &aside).map_err(|e| {
                RunError::io(format!("cannot move {} aside", attempt_dir.display()), e)
            })?;
        }
        std::fs::create_dir_all(&attempt_dir)
            .map_err(|e| RunError::io(format!("cannot create {}", attempt_dir.display()), e))?;
        let port = match self.suite.bench.port {
            0 => perfarena_backend::probe::free_port()
                .map_err(|e| RunError::io("cannot find a free port on 127.0.0.1", e))?,
            port => port,
        };
        let mut record = AttemptRecord::new(
            task.commit.clone(),
            variant.clone(),
            round,
            AttemptStatus::NotRun,
        );
        record.run_id = Some(cx.run.run_id.0.clone());
        record.is_warmup = round < cx.run.plan.warmup;
        record.started_at = now();
        record.backend = self.backend.kind().as_str().into();
        record.log_dir = Some(self.relative(&attempt_dir));
        record.image = prepared.image.clone();
        record.metadata = serde_json::json!({
            "port": port,
            "rebuild_paths": prepared.rebuild_paths,
            "harness_paths": prepared.harness_paths,
        });
        let bench = self.bench_commands(task);
        if let Some(era) = &bench.era {
            record.metadata["era"] = serde_json::json!(era);
            record.metadata["era_reason"] = serde_json::json!(bench.reason);
        }
        let vars = self.vars(
            task,
            variant,
            prepared.workdir.as_deref(),
            Some(&attempt_dir),
            port,
        );
        // Commands get every value as one shell word; the readiness URL is not a command.
        let expand = |field: &str, template_text: &str| {
            template::expand_shell(template_text, &vars).map_err(|e| format!("{field}: {e}"))
        };
        let commands = (|| -> std::result::Result<_, String> {
            let server = if bench.server.trim().is_empty() {
                None
            } else {
                Some(expand("bench.server", &bench.server)?)
            };
            let client = expand("bench.client", &bench.client)?;
            let url = template::expand(&bench.readiness_url, &vars)
                .map_err(|e| format!("bench.readiness.url: {e}"))?;
            Ok((server, client, url))
        })();
        let (server, client, url) = match commands {
            Ok(commands) => commands,
            Err(message) => {
                record.status = AttemptStatus::InfraError;
                record.message = if message.contains("{model}") {
                    format!(
                        "{message}: the task names no model; add `models` to the task or set bench.default_model"
                    )
                } else {
                    message
                };
                return Ok(Begun::Ended(record));
            }
        };
        cx.events.display.emit(Event::AttemptStarted {
            task: task.commit.clone(),
            variant: variant.clone(),
            round_idx: round,
        });
        let spec = AttemptSpec {
            run_id: cx.run.run_id.clone(),
            task: task.commit.clone(),
            variant: variant.clone(),
            round_idx: round,
            attempt_dir: attempt_dir.clone(),
            server,
            client,
            readiness: ReadinessSpec {
                kind: self.suite.bench.readiness.kind,
                url,
                interval: Duration::from_millis(self.suite.bench.readiness.interval_ms),
                timeout: Duration::from_secs(self.suite.bench.readiness.timeout_s),
            },
            port,
            env: self.env(),
            timeout: Duration::from_secs(self.suite.bench.timeout_s),
            kill_grace: Duration::from_secs(self.suite.bench.kill_grace_s),
            cancel: self.cancel.clone(),
            gpus: slot.gpus.clone(),
        };
        Ok(Begun::Ready(spec, record))
    }

    /// Turns the backend's result into the attempt's record: status, metrics parsed from the
    /// client's log, triage of failures.
    pub(crate) fn end_attempt(
        &self,
        mut record: AttemptRecord,
        result: std::result::Result<AttemptOutcome, BackendError>,
    ) -> Result<AttemptRecord> {
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(BackendError::Cancelled) => return Err(RunError::Cancelled),
            Err(e) => {
                record.status = AttemptStatus::InfraError;
                record.message = e.to_string();
                record.failure = self
                    .triage
                    .classify_attempt(record.status, &record.message, &[]);
                if e.stops_run() {
                    record.rerun_on_resume = true;
                    // Kept beside the typed field for those who read the metadata.
                    record.metadata["rerun_on_resume"] = serde_json::json!(true);
                }
                return Ok(record);
            }
        };
        record.status = outcome.status;
        record.exit_code = outcome.exit_code;
        record.duration_s = outcome.duration_s;
        record.message = outcome.message;
        if let Some(ready) = outcome.ready_after_s {
            record.metadata["ready_after_s"] = serde_json::json!(ready);
        }
        if outcome.oom_killed {
            record.metadata["oom_killed"] = serde_json::json!(true);
        }
        if record.status == AttemptStatus::Ok {
            let text = read_lossy(&outcome.client_log);
            // The suite checked the name when it was read.
            let choice =
                FormatChoice::from_name(&self.suite.metric.parser).unwrap_or(FormatChoice::Auto);
            let parse_error = match parse_log(&text, &choice, &self.suite.metric.custom) {
                Ok(parsed) => {
                    record.samples = parsed.flatten();
                    record.metadata["format"] = serde_json::json!(parsed.format);
                    if !parsed.warnings.is_empty() {
                        record.metadata["parse_warnings"] = serde_json::json!(parsed.warnings);
                    }
                    None
                }
                Err(e) => Some(e),
            };
            // What perfarena measured itself (wall_s, user_s…), unless the output named a
            // metric the same.
            let shadowed = outcome.builtin.merge_into(&mut record.samples);
            if !shadowed.is_empty() {
                record.metadata["builtin_shadowed"] = serde_json::json!(shadowed);
            }
            // In name order, as the store gives them back.
            record.samples.sort_by(|a, b| a.0.cmp(&b.0));
            let primary = &self.suite.metric.primary;
            if record.sample(primary).is_none() {
                record.status = AttemptStatus::NoMetrics;
                record.message = match parse_error {
                    Some(e) => format!("client exited 0 but its output has no result: {e}"),
                    None => {
                        let found: Vec<&str> =
                            record.samples.iter().map(|(k, _)| k.as_str()).collect();
                        format!(
                            "primary metric `{primary}` not in the client's output (found: {})",
                            found.join(", ")
                        )
                    }
                };
            }
        }
        if record.status != AttemptStatus::Ok {
            let server = outcome
                .server_log
                .as_deref()
                .map(read_lossy)
                .unwrap_or_default();
            let client = read_lossy(&outcome.client_log);
            record.failure =
                self.triage
                    .classify_attempt(record.status, &record.message, &[&server, &client]);
        }
        Ok(record)
    }
}

/// A log file as text (empty when unreadable), without failing on non-UTF-8 bytes.
pub fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}
