//! `perfarena selftest stats`: the trust benchmark of perfarena's statistics — synthetic
//! measurements with known truth, judged by perfarena, the legacy ±2 % rule and a fixed rule.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use serde::Serialize;

use perfarena_core::stats::{SelftestConfig, SelftestReport, SelftestRow, selftest};

/// Version of the `--json` output of `perfarena selftest stats`.
pub const SELFTEST_STATS_JSON_VERSION: u32 = 1;

#[derive(clap::Args, Debug)]
pub struct SelftestArgs {
    #[command(subcommand)]
    pub target: SelftestTarget,
}

#[derive(clap::Subcommand, Debug)]
pub enum SelftestTarget {
    /// Check the statistics on synthetic data with known truth.
    ///
    /// Scenarios A/A, +5 % and −5 % at a CV of 1, 3 and 8 %; for perfarena, the legacy
    /// single-run ±2 % rule and a fixed 20-run rule: verdict rates, false-verdict rate, power
    /// and attempts per variant. Exits 1 when one of perfarena's targets is missed.
    Stats(StatsArgs),
}

#[derive(clap::Args, Debug)]
pub struct StatsArgs {
    /// Trials per scenario and method.
    #[arg(long, default_value_t = SelftestConfig::DEFAULT_TRIALS)]
    pub trials: usize,
    /// Seed of the synthetic data (the same seed gives the same figures).
    #[arg(long, default_value_t = SelftestConfig::DEFAULT_SEED)]
    pub seed: u64,
    /// Print the report as JSON.
    #[arg(long, conflicts_with = "markdown")]
    pub json: bool,
    /// Print the table as Markdown (as in BENCHMARKS.md).
    #[arg(long)]
    pub markdown: bool,
}

/// The `--json` document: the report and its schema version.
#[derive(Serialize)]
struct JsonOutput<'a> {
    version: u32,
    command: &'static str,
    report: &'a SelftestReport,
}

/// Runs the selected self-test; exits 1 when a target is missed.
pub fn run(args: &SelftestArgs) -> Result<ExitCode> {
    match &args.target {
        SelftestTarget::Stats(stats_args) => run_stats(stats_args),
    }
}

fn run_stats(args: &StatsArgs) -> Result<ExitCode> {
    let cfg = SelftestConfig {
        trials: args.trials,
        seed: args.seed,
        ..SelftestConfig::default()
    };
    let report = selftest(&cfg).context("cannot run the statistics self-test")?;
    let text = if args.json {
        let output = JsonOutput {
            version: SELFTEST_STATS_JSON_VERSION,
            command: "selftest stats",
            report: &report,
        };
        let mut json = serde_json::to_string_pretty(&output).context("cannot encode the report")?;
        json.push('\n');
        json
    } else if args.markdown {
        render_markdown(&report)
    } else {
        render_text(&report)
    };
    print!("{text}");
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn pct(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

fn power(row: &SelftestRow) -> String {
    row.power.map_or_else(|| "–".to_string(), pct)
}

fn header(report: &SelftestReport) -> String {
    format!(
        "{} trials per scenario and method, seed {}, δ ±{}%, {}% confidence",
        report.trials,
        report.seed,
        level(report.delta * 100.0),
        level(report.confidence * 100.0)
    )
}

/// A percentage without needless decimals: 95, 98.3, 2.
fn level(value: f64) -> String {
    let text = format!("{value:.1}");
    text.strip_suffix(".0").map(str::to_string).unwrap_or(text)
}

/// The terminal table: one line per scenario and method, then the targets.
pub fn render_text(report: &SelftestReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "perfarena selftest stats: {}\n", header(report));
    let method_width = report
        .rows
        .iter()
        .map(|row| row.method_label.chars().count())
        .max()
        .unwrap_or(6)
        .max(6);
    let _ = writeln!(
        out,
        "{:<12} {:<method_width$} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8}",
        "scenario", "method", "better", "worse", "equiv", "inconc", "false", "power", "attempts"
    );
    let mut previous_scenario = None;
    for row in &report.rows {
        if previous_scenario.is_some_and(|scenario| scenario != row.scenario.as_str()) {
            out.push('\n');
        }
        previous_scenario = Some(row.scenario.as_str());
        // Pad by characters: labels hold "–" and "±", which are wider in bytes.
        let label_pad = method_width - row.method_label.chars().count();
        let _ = writeln!(
            out,
            "{:<12} {}{} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8.2}",
            row.scenario,
            row.method_label,
            " ".repeat(label_pad),
            pct(row.better),
            pct(row.worse),
            pct(row.equivalent),
            pct(row.inconclusive),
            pct(row.false_verdict_rate),
            power(row),
            row.mean_attempts
        );
    }
    out.push_str("\ntargets (perfarena):\n");
    for target in &report.targets {
        let _ = writeln!(
            out,
            "  {:<6} {}: {:.3} (target {})",
            if target.passed { "ok" } else { "MISSED" },
            target.name,
            target.observed,
            target.target
        );
    }
    out
}

/// The Markdown table of `BENCHMARKS.md`.
pub fn render_markdown(report: &SelftestReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}.\n", header(report));
    out.push_str(
        "| scenario | method | better | worse | equivalent | inconclusive | false verdict | power | attempts / variant |\n",
    );
    out.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for row in &report.rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.2} |",
            row.scenario,
            row.method_label,
            pct(row.better),
            pct(row.worse),
            pct(row.equivalent),
            pct(row.inconclusive),
            pct(row.false_verdict_rate),
            power(row),
            row.mean_attempts
        );
    }
    out.push_str("\n| target (perfarena) | required | observed | met |\n|---|---|---:|---|\n");
    for target in &report.targets {
        let _ = writeln!(
            out,
            "| {} | {} | {:.3} | {} |",
            target.name,
            target.target,
            target.observed,
            if target.passed { "yes" } else { "**no**" }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_report() -> SelftestReport {
        let cfg = SelftestConfig {
            trials: 20,
            ..SelftestConfig::default()
        };
        selftest(&cfg).expect("default settings are valid")
    }

    #[test]
    fn text_has_every_row_and_the_targets() {
        let report = small_report();
        let text = render_text(&report);
        assert!(text.contains("A/A cv 3%"));
        assert!(text.contains("legacy (1 run, ±2%)"));
        assert!(text.contains("targets (perfarena):"));
        assert_eq!(text.matches("perfarena (welch").count(), 9);
    }

    #[test]
    fn markdown_is_a_table() {
        let report = small_report();
        let markdown = render_markdown(&report);
        let rows = markdown
            .lines()
            .filter(|line| line.starts_with("| "))
            .count();
        // Header + 27 rows, target header + 3 targets.
        assert_eq!(rows, 1 + 27 + 1 + 3);
    }
}
