//! The terminal side of the event stream: an indicatif progress bar (tasks × variants ×
//! repeats, with ETA), a line per finished attempt, and JSON lines with `--json`.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use perfarena_core::events::{Event, EventSink};

pub struct ProgressSink {
    bar: ProgressBar,
    json: bool,
    lines: Mutex<()>,
}

impl ProgressSink {
    pub fn new(total: u64, done: u64, json: bool) -> ProgressSink {
        let bar = ProgressBar::new(total);
        if json || !std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} attempts, ETA {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_position(done);
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
                eprintln!("{line}");
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
            if let Ok(line) = serde_json::to_string(&event) {
                let _guard = self.lines.lock();
                println!("{line}");
            }
        }
        match &event {
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
            Event::AttemptFinished {
                task,
                variant,
                round_idx,
                status,
                primary,
                duration_s,
                message,
            } => {
                self.bar.inc(1);
                let value = primary.map(|v| format!(" {v:.2}")).unwrap_or_default();
                let note = if message.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", first_line(message))
                };
                self.println(&format!(
                    "  {} {:<22} round {:>2}: {:<12}{value} ({duration_s:.1}s){note}",
                    task.short(12),
                    variant.to_string(),
                    round_idx,
                    status.as_str()
                ));
            }
            Event::Message { text } => self.println(text),
            _ => {}
        }
    }
}

fn first_line(text: &str) -> &str {
    let line = text.lines().next().unwrap_or("");
    match line.char_indices().nth(160) {
        Some((idx, _)) => &line[..idx],
        None => line,
    }
}
