//! The terminal side of the run's event stream: an indicatif progress bar (tasks × variants ×
//! repeats, with ETA), a line per finished attempt, and JSON lines with `--json`. Output errors
//! (a closed stdout or stderr) are ignored: they never stop a run.

use std::io::{IsTerminal, Write as _};
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use perfarena_core::events::{Event, EventSink};

pub struct ProgressSink {
    bar: ProgressBar,
    json: bool,
    lines: Mutex<()>,
}

impl ProgressSink {
    pub fn new(json: bool) -> ProgressSink {
        let bar = ProgressBar::new(0);
        if json || !std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} attempts, ETA {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        ProgressSink {
            bar,
            json,
            lines: Mutex::new(()),
        }
    }

    pub fn println(&self, line: &str) {
        let _guard = self.lines.lock();
        if self.bar.is_hidden() {
            if !self.json {
                note(line);
            }
        } else {
            self.bar.println(line);
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl EventSink for ProgressSink {
    fn emit(&self, event: Event) {
        if self.json {
            let _guard = self.lines.lock();
            let _ = writeln!(std::io::stdout(), "{}", event.to_json_line());
        }
        match &event {
            Event::RunPlanned {
                run_id,
                attempts_planned,
                recorded,
                plan,
                ..
            } => {
                self.bar.set_length((*attempts_planned).max(*recorded));
                self.bar.set_position(*recorded);
                self.println(&format!(
                    "run {run_id}: {} task(s), {attempts_planned} attempt(s) planned, {recorded} already recorded",
                    plan.tasks.len(),
                ));
            }
            Event::PrepareStarted { task, variant } => {
                self.bar
                    .set_message(format!("preparing {} {variant}", task.short(12)));
            }
            Event::AttemptStarted {
                task,
                variant,
                round_idx,
            } => {
                self.bar
                    .set_message(format!("{} {variant} round {round_idx}", task.short(12)));
            }
            Event::AttemptFinished { record, primary } => {
                self.bar.inc(1);
                let value = primary.map(|v| format!(" {v:.2}")).unwrap_or_default();
                let note = if record.message.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", first_line(&record.message))
                };
                self.println(&format!(
                    "  {} {:<22} round {:>2}: {:<12}{value} ({:.1}s){note}",
                    record.task.short(12),
                    record.variant.to_string(),
                    record.round_idx,
                    record.status.as_str(),
                    record.duration_s,
                ));
            }
            Event::Message { text } => self.println(text),
            _ => {}
        }
    }
}

/// A line on stderr; a closed or broken stderr (a terminal gone after SIGHUP) is no error.
pub fn note(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// A line on stdout; a closed stdout (`perfarena run | head`) never stops the work.
pub fn say(line: &str) {
    let _ = writeln!(std::io::stdout(), "{line}");
}

fn first_line(text: &str) -> &str {
    let line = text.lines().next().unwrap_or("");
    match line.char_indices().nth(160) {
        Some((idx, _)) => &line[..idx],
        None => line,
    }
}
